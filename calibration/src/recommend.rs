//! Choosing the default (method, T, K) for a target from the sweep: the fastest point at the
//! bundle's encode time whose quality is close to the best found there.
//!
//! The T is the bundle author's: below it the OT targets are nearly clean training images and
//! OT-ALD turns into retrieval — on the demo, T = 100 scores a better Fréchet distance than
//! T = 500 with a low SSIM to the source (assets/demo.calibration/calibration.md, the sweep), i.e.
//! it returns training boots. Accuracy and Fréchet distance cannot see that, so the
//! recommendation picks K (and the method) at that T, compared with the best point there (not
//! the whole sweep), and the sweep shows every T for the author to choose another.

use brenier::backend::Precision;
use brenier::bundle::calibration::{Recommendation, SweepPoint};

/// A point qualifies if its Fréchet distance is within this factor of the best at the bundle's T…
pub const FRECHET_SLACK: f64 = 1.15;
/// …and its target-class accuracy within this much of the best there.
pub const ACCURACY_SLACK: f64 = 0.03;

/// The fastest qualifying point at encode time `t` (all points if the sweep has none there;
/// ties to fewer NFE); `None` for an empty sweep.
pub fn recommend(points: &[SweepPoint], t: usize, target: &str, precision: Precision) -> Option<Recommendation> {
    let at_t: Vec<SweepPoint> = points.iter().filter(|p| p.t == t).cloned().collect();
    let points = if at_t.is_empty() { points } else { &at_t };
    let best_fd = points.iter().map(|p| p.quality.frechet).fold(f64::INFINITY, f64::min);
    let best_acc = points.iter().map(|p| p.quality.target_accuracy).fold(0.0, f64::max);
    let ok = |p: &&SweepPoint| {
        p.quality.frechet <= best_fd * FRECHET_SLACK && p.quality.target_accuracy >= best_acc - ACCURACY_SLACK
    };
    let pick =
        points.iter().filter(ok).min_by(|a, b| a.ms_per_image.total_cmp(&b.ms_per_image).then(a.nfe.cmp(&b.nfe)))?;
    Some(Recommendation {
        target: target.into(),
        precision,
        method: pick.method.clone(),
        t: pick.t,
        k: pick.k,
        ms_per_image: pick.ms_per_image,
        reason: format!(
            "fastest point at T = {} with Fréchet ≤ {FRECHET_SLACK}× the best there ({best_fd:.2}) and target \
             accuracy ≥ best − {ACCURACY_SLACK} ({best_acc:.3}): Fréchet {:.2}, accuracy {:.3}, {} NFE",
            pick.t, pick.quality.frechet, pick.quality.target_accuracy, pick.nfe
        ),
    })
}

/// The device profile this process runs as (CPU targets; GPU profiles come with their backend).
pub fn this_target() -> String {
    format!("cpu-{}", std::env::consts::ARCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brenier::bundle::calibration::Quality;

    fn point(method: &str, k: usize, ms: f64, fd: f64, acc: f64) -> SweepPoint {
        SweepPoint {
            method: method.into(),
            t: 500,
            k,
            nfe: 2 * k,
            ms_per_image: ms,
            quality: Quality {
                count: 64,
                target_accuracy: acc,
                frechet: fd,
                ssim_to_source: None,
                rms_to_source: None,
            },
        }
    }

    #[test]
    fn picks_the_fastest_point_near_the_best_quality() {
        let pts = vec![
            point("ddib", 100, 900.0, 50.0, 1.0),
            point("ot-ald", 25, 250.0, 40.0, 0.99),
            point("ot-ald", 10, 100.0, 45.0, 0.98), // FD 45 ≤ 1.15·40 = 46, acc 0.98 ≥ 0.97: qualifies
            point("ot-ald", 5, 50.0, 60.0, 0.99),   // FD too far from the best
            point("ddib", 5, 40.0, 41.0, 0.90),     // accuracy too low
        ];
        let r = recommend(&pts, 500, "cpu-x86_64", Precision::F32).unwrap();
        assert_eq!((r.method.as_str(), r.k), ("ot-ald", 10));
        assert!(recommend(&[], 500, "cpu-x86_64", Precision::F32).is_none());
        // A faster, better-looking point at another T does not win.
        let mut early = point("ot-ald", 5, 10.0, 20.0, 1.0);
        early.t = 100;
        let mut with_early = pts.clone();
        with_early.push(early);
        let r = recommend(&with_early, 500, "cpu-x86_64", Precision::F32).unwrap();
        assert_eq!((r.t, r.k), (500, 10));
    }
}
