//! Replays what the fuzzers found, and checks their seeds are still valid inputs.
//!
//! tests/fixtures/fuzz-regressions/<target>/ holds every input that once crashed a reader (from
//! `scripts/fuzz.sh`, or found by review); each goes through the same code as the fuzz target
//! (fuzz/src/exercise.rs, compiled in here), so a regression fails `cargo test` without nightly.

#[path = "../../fuzz/src/exercise.rs"]
mod exercise;

use std::path::{Path, PathBuf};

/// A fuzz target's body.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("bundle", exercise::bundle),
    ("manifest", exercise::manifest),
    ("record", exercise::record),
    ("npy", exercise::npy),
    ("png", exercise::png),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn every_recorded_crash_input_is_handled() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for f in files(&root().join("tests/fixtures/fuzz-regressions").join(target)) {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{target}: {} crashes the reader again", f.display());
            }
            replayed += 1;
        }
    }
    println!("{replayed} regression inputs replayed");
    assert!(replayed > 0);
}

#[test]
fn seeds_are_valid_inputs_and_pass_their_targets() {
    use brenier::bundle::{Bundle, ImageSpec, Manifest, Normalization};
    let seeds = root().join("fuzz/seeds");
    for (target, run) in TARGETS {
        let all = files(&seeds.join(target));
        assert!(!all.is_empty(), "no seeds for {target}: run scripts/fuzz.sh seeds");
        for f in all {
            let data = std::fs::read(&f).unwrap();
            run(&data);
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            // Whole seeds must be accepted, or the fuzzer starts from rejected inputs.
            let accepted = match target {
                "bundle" if name.contains("-cut") => true,
                "bundle" => Bundle::from_bytes(&data).is_ok(),
                "manifest" => Manifest::parse(&data).is_ok(),
                "record" => {
                    let m = Manifest::parse(exercise::RECORD_MANIFEST.as_bytes()).unwrap();
                    brenier::bundle::CalibrationRecord::parse(&data, &m, &exercise::record_reference_len).is_ok()
                }
                "npy" => brenier::io::npy::parse(&data).is_ok(),
                _ => {
                    let w = u32::from_be_bytes(data[16..20].try_into().unwrap()) as usize;
                    let h = u32::from_be_bytes(data[20..24].try_into().unwrap()) as usize;
                    let img = ImageSpec { channels: 1, height: h, width: w };
                    brenier::io::png::decode(&data, &f, img, Normalization::default()).is_ok()
                }
            };
            assert!(accepted, "seed {} is rejected: regenerate with scripts/fuzz.sh seeds", f.display());
        }
    }
}

#[test]
fn a_damaged_png_palette_is_a_typed_error() {
    use brenier::bundle::{ImageSpec, Normalization};
    let f = root().join("tests/fixtures/fuzz-regressions/png/palette-length-not-multiple-of-3.png");
    let data = std::fs::read(&f).unwrap();
    let img = ImageSpec { channels: 3, height: 6, width: 6 };
    let err = brenier::io::png::decode(&data, &f, img, Normalization::default()).unwrap_err().to_string();
    assert!(err.contains("palette (PLTE) has 49 bytes") && err.contains("damaged"), "{err}");
}
