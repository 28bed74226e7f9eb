//! The DDIM step against diffusers' DDIMScheduler (numbers made once by
//! `fixtures/make_fixtures.py`; the test needs no Python).

use brenier::sched::{ddim_update, DdimCoeffs, Schedule, ScheduleSpec};

#[test]
fn ddim_step_matches_diffusers() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ddim_diffusers.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = Schedule::new(&ScheduleSpec::default()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let f = |c: &serde_json::Value, k: &str| -> Vec<f32> {
        c[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };
    let mut worst = 0f32;
    for c in cases {
        let (t, prev, eta) = (c["t"].as_i64().unwrap(), c["prev"].as_i64().unwrap(), c["eta"].as_f64().unwrap());
        let mut x = f(c, "x");
        let coeffs = DdimCoeffs::new(&s, t, prev, eta);
        ddim_update(&mut x, &f(c, "eps"), Some(&f(c, "noise")), coeffs);
        for (a, b) in x.iter().zip(f(c, "out")) {
            let err = (a - b).abs() / b.abs().max(1.0);
            worst = worst.max(err);
            // diffusers computes in f32 through x̂0; we fold the step into two f64 coefficients.
            assert!(err < 2e-5, "t {t}→{prev} η {eta}: {a} vs {b}");
        }
    }
    println!("DDIM step vs diffusers: max relative error {worst:.2e}");
}
