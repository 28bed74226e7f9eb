//! The timestep grid shared by every pipeline (docs/DESIGN.md, "Timestep grid"): a K-step path between
//! data and time T visits t_0 = −1 and t_k = round(k·(T+1)/K) − 1, halves rounded up.

use crate::error::{Error, Result};

/// Returns `[t_0, …, t_K]` (K+1 entries, strictly increasing, t_0 = −1, t_K = T).
pub fn grid(t_end: usize, steps: usize) -> Result<Vec<i64>> {
    if steps == 0 || steps > t_end + 1 {
        return Err(Error::InvalidArgument(format!(
            "{steps} steps to T = {t_end}: the step count must be in 1..={} (at most one step per train index)",
            t_end + 1
        )));
    }
    let (t1, k) = (t_end as u64 + 1, steps as u64);
    // round(k·(T+1)/K) with halves up, in integers: floor((2k(T+1) + K) / 2K).
    Ok((0..=k).map(|i| ((2 * i * t1 + k) / (2 * k)) as i64 - 1).collect())
}

/// The train step at which the ε-network is evaluated to encode from `from` (clean data is
/// evaluated at step 0, the nearest step the network was trained on).
pub fn encode_eval_t(from: i64) -> i64 {
    from.max(0)
}
