//! A calibration record edited by hand or cut short is refused when the bundle's record is read,
//! with a typed error naming the field, instead of panicking later in selftest (an empty
//! `eps_ts` used to index `ts[0]`; a t beyond the schedule indexed past ᾱ's table).

use std::path::PathBuf;

use brenier::bundle::calibration::CALIBRATION_SECTION;
use brenier::bundle::{rewrite_sections, Section};
use brenier::bundle::{Bundle, Manifest, SectionKind};
use brenier::Error;

#[path = "../../fuzz/src/exercise.rs"]
#[allow(dead_code)]
mod exercise;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped bundle with its record edited by `edit`; what reading the record says.
fn read_edited(edit: impl Fn(&mut serde_json::Value)) -> brenier::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.brn");
    std::fs::copy(root().join("assets/demo.brn"), &path).unwrap();
    let b = Bundle::open(&path).unwrap();
    let mut record: serde_json::Value = serde_json::from_slice(b.bytes(CALIBRATION_SECTION).unwrap()).unwrap();
    drop(b);
    edit(&mut record);
    let section = Section::bytes(CALIBRATION_SECTION, SectionKind::Calibration, serde_json::to_vec(&record).unwrap());
    rewrite_sections(&path, vec![section], &[]).unwrap();
    Bundle::open(&path).unwrap().calibration().map(|_| ())
}

/// A change made to the record's JSON.
type Edit = dyn Fn(&mut serde_json::Value);

#[test]
fn hand_edited_records_are_refused_naming_the_field() {
    read_edited(|_| {}).expect("the shipped record is valid");
    let cases: Vec<(&str, Box<Edit>)> = vec![
        ("quick.eps_ts", Box::new(|r| r["quick"]["eps_ts"] = serde_json::json!([]))),
        ("quick.eps_ts", Box::new(|r| r["quick"]["eps_ts"] = serde_json::json!([0, 250, 1000]))),
        ("quick.eps_ts", Box::new(|r| r["quick"]["eps_ts"] = serde_json::json!([-3, 250, 500]))),
        ("quick.t", Box::new(|r| r["quick"]["t"] = 5000.into())),
        ("quick.k", Box::new(|r| r["quick"]["k"] = 0.into())),
        ("quick.count", Box::new(|r| r["quick"]["count"] = 0.into())),
        ("quick.assignments", Box::new(|r| r["quick"]["assignments"][0] = 100_000.into())),
        ("quick.assignments", Box::new(|r| r["quick"]["assignments"].as_array_mut().unwrap().truncate(3))),
        ("quick.map", Box::new(|r| r["quick"]["map"] = "b->a".into())),
        ("quick.neural_maps", Box::new(|r| r["quick"]["neural_maps"] = serde_json::json!(["a->b", "a->b"]))),
        ("sweep[0]", Box::new(|r| r["sweep"][0]["t"] = 1000.into())),
        ("parity[0].ts", Box::new(|r| r["parity"][0]["ts"] = serde_json::json!([-1]))),
        // More inputs than the references hold: the sizes no longer match.
        (
            "calibration.inputs",
            Box::new(|r| {
                r["quick"]["count"] = 9.into();
                r["quick"]["map"] = serde_json::Value::Null;
                r["quick"]["assignments"] = serde_json::json!([]);
            }),
        ),
    ];
    for (field, edit) in cases {
        match read_edited(edit) {
            Err(Error::Section { section, problem }) => {
                let text = format!("{section}: {problem}");
                assert!(text.contains(field) && text.contains("brenier calibrate"), "{field}: {text}");
            }
            other => panic!("{field}: expected a typed refusal, got {other:?}"),
        }
    }
}

/// The inputs the record fuzz target once could not have survived (tests/fixtures/fuzz-
/// regressions/record/) are refused by the record's validation, each naming its field.
#[test]
fn recorded_bad_records_are_refused() {
    let m = Manifest::parse(exercise::RECORD_MANIFEST.as_bytes()).unwrap();
    let dir = root().join("tests/fixtures/fuzz-regressions/record");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let data = std::fs::read(f.path()).unwrap();
        let err = brenier::bundle::CalibrationRecord::parse(&data, &m, &exercise::record_reference_len)
            .expect_err("a bad record was accepted");
        assert!(err.to_string().contains("`quick."), "{}: {err}", f.path().display());
        n += 1;
    }
    assert!(n >= 5, "{n} regression records");
}
