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
/// under (a budget must not let through a run that does not fit) and at most 30 % over. Four
/// threads keep four images in flight, one more than the probe's last point, so the
/// extrapolation itself is judged. On two cores it errs high: +5.8 % to +12.6 % over the runs
/// first measured, but +9 % to +26 % on 1 December 2026 (24 runs, the build before the direct
/// convolution kernel included: it failed the old 15 % bound too). The measured peak held at
/// 62–70 MiB; the spread is the probe's growth term (19.8–27.7 MiB for three more images in
/// flight), which depends on when each new thread first touches its allocator arena and kernel
/// scratch. The under bound, the one a budget relies on, is unchanged.
/// (`brenier bench --memory` prints the table at 1/4/16/64/256.)
#[test]
fn the_estimate_at_batch_16_is_at_most_5_percent_under_and_30_percent_over_the_measured_peak() {
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
        (-0.05..=0.30).contains(&err),
        "estimate {est:.1} MiB vs measured {measured:.1} MiB ({:+.1} %)",
        100.0 * err
    );
    assert!(row["estimate"]["measured"].as_bool().unwrap());
    assert_eq!(row["estimate"]["images_in_flight"], 4);
}
