//! The memory estimate behind `--memory-budget` predicts what a run really takes. `brenier bench
//! --memory` makes the estimate from its probe (one image, then one and two more in flight) and
//! measures a translation at the batch in a fresh process of its own, so neither figure depends
//! on other tests running in parallel (process-wide peaks are not comparable across tests that
//! share a process).

mod common;

use common::{brenier, s};

fn asset(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

/// Estimate and measured peak at batch 16 on the shipped bundle with four threads: at most 5 %
/// under (a budget must not let through a run that does not fit) and at most 20 % over. Four
/// threads keep four images in flight, one more than the probe's last point, so the
/// extrapolation itself is judged. Measured +5 % to +9.5 % before one image's run shared its
/// convolutions with the crew, +13 % to +15.5 % since: the probe's one-image point wakes the
/// crew's helpers, whose scratch its later points keep, and a fresh batch-16 run never wakes
/// them (docs/DESIGN.md, "Backends", memory). The build before the CPU backend gave pieces to
/// fixed threads overshot by up to +28 %. `brenier bench --memory` prints the table at
/// 1/4/16/64/256.
#[test]
fn the_estimate_at_batch_16_is_at_most_5_percent_under_and_20_percent_over_the_measured_peak() {
    let (ok, text) = brenier(&[
        "bench",
        "--bundle",
        s(&asset("demo.brn")),
        "--threads",
        "4",
        "--memory",
        "--memory-batches",
        "16",
        "--json",
    ]);
    assert!(ok, "{text}");
    let json = &text[text.find('{').unwrap()..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let row = &v["rows"][0];
    assert_eq!(row["batch"], 16);
    let (est, measured) = (row["host_estimate_mib"].as_f64().unwrap(), row["measured_peak_mib"].as_f64().unwrap());
    let err = row["relative_error"].as_f64().unwrap();
    assert!(
        (-0.05..=0.20).contains(&err),
        "estimate {est:.1} MiB vs measured {measured:.1} MiB ({:+.1} %)",
        100.0 * err
    );
    assert!(row["estimate"]["measured"].as_bool().unwrap());
    assert_eq!(row["estimate"]["images_in_flight"], 4);
}
