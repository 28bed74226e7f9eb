//! Exact discrete optimal transport between two equal-size uniform samples: the assignment
//! problem, solved by shortest augmenting paths with dual potentials (Hungarian method, O(n³)).
//! It is the ground truth the neural map is measured against on low-dimensional data, as the
//! DIOTM paper does with POT's exact solver.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ExactOtError {
    #[error("cost matrix has {got} entries, expected {n}×{n}")]
    Shape { n: usize, got: usize },
    #[error("cost[{row}][{col}] is {value}: every cost must be finite")]
    NonFinite { row: usize, col: usize, value: f64 },
    #[error("samples have {a} and {b} points of dimension {d}: exact OT here needs equal counts")]
    Samples { a: usize, b: usize, d: usize },
}

/// The permutation `col[row]` minimising Σ cost[row][col[row]] over an n×n row-major matrix.
pub fn assignment(cost: &[f64], n: usize) -> Result<Vec<usize>, ExactOtError> {
    if cost.len() != n * n {
        return Err(ExactOtError::Shape { n, got: cost.len() });
    }
    if let Some(i) = cost.iter().position(|c| !c.is_finite()) {
        return Err(ExactOtError::NonFinite { row: i / n, col: i % n, value: cost[i] });
    }
    // Index 0 is a virtual column that starts each augmenting path; rows and columns are 1-based.
    let mut u = vec![0f64; n + 1];
    let mut v = vec![0f64; n + 1];
    let mut row_of = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        row_of[0] = row;
        let mut col = 0;
        let mut min_reduced = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[col] = true;
            let r = row_of[col];
            let mut delta = f64::INFINITY;
            let mut next = 0;
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let reduced = cost[(r - 1) * n + j - 1] - u[r] - v[j];
                if reduced < min_reduced[j] {
                    min_reduced[j] = reduced;
                    way[j] = col;
                }
                if min_reduced[j] < delta {
                    delta = min_reduced[j];
                    next = j;
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[row_of[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_reduced[j] -= delta;
                }
            }
            col = next;
            if row_of[col] == 0 {
                break;
            }
        }
        // Flip the path back to the virtual column.
        while col != 0 {
            let prev = way[col];
            row_of[col] = row_of[prev];
            col = prev;
        }
    }
    let mut col_of = vec![0usize; n];
    for j in 1..=n {
        col_of[row_of[j] - 1] = j - 1;
    }
    Ok(col_of)
}

/// Squared Euclidean distance between rows of two `[n, d]` point sets.
pub fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum()
}

/// The optimal pairing of `xs` with `ys` (both `[n, d]`) under the squared Euclidean cost:
/// `pair[i]` is the point of `ys` that `xs[i]` goes to.
pub fn ot_pairing(xs: &[f32], ys: &[f32], d: usize) -> Result<Vec<usize>, ExactOtError> {
    let (a, b) = (xs.len() / d.max(1), ys.len() / d.max(1));
    if d == 0 || a != b || xs.len() != a * d || ys.len() != b * d {
        return Err(ExactOtError::Samples { a, b, d });
    }
    let cost: Vec<f64> =
        (0..a).flat_map(|i| (0..b).map(move |j| sq_dist(&xs[i * d..(i + 1) * d], &ys[j * d..(j + 1) * d]))).collect();
    assignment(&cost, a)
}

/// Squared 2-Wasserstein distance between two equal-size uniform samples (exact).
pub fn w2_squared(xs: &[f32], ys: &[f32], d: usize) -> Result<f64, ExactOtError> {
    let pair = ot_pairing(xs, ys, d)?;
    let n = pair.len().max(1);
    Ok(pair.iter().enumerate().map(|(i, &j)| sq_dist(&xs[i * d..(i + 1) * d], &ys[j * d..(j + 1) * d])).sum::<f64>()
        / n as f64)
}
