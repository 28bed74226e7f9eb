//! Small dense linear algebra in f64 (row-major d×d): moments, products, Cholesky, a Jacobi
//! eigensolver. Reference-quality, for the Gaussian oracles, the Fréchet distance and tests —
//! dimensions of tens to a few hundred, never on a network's hot path.

/// Sample mean and (unbiased) covariance of the rows of `x` (`d` columns).
pub fn sample_moments(x: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / d;
    let mut mean = vec![0.0; d];
    x.chunks_exact(d).for_each(|r| r.iter().zip(&mut mean).for_each(|(v, m)| *m += *v as f64 / n as f64));
    let mut cov = vec![0.0; d * d];
    for r in x.chunks_exact(d) {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect();
        for i in 0..d {
            for j in i..d {
                cov[i * d + j] += c[i] * c[j];
            }
        }
    }
    let denom = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            cov[i * d + j] /= denom;
            cov[j * d + i] = cov[i * d + j];
        }
    }
    (mean, cov)
}

pub fn matvec(a: &[f64], x: &[f64], d: usize) -> Vec<f64> {
    (0..d).map(|i| (0..d).map(|j| a[i * d + j] * x[j]).sum()).collect()
}

pub fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            for j in 0..d {
                c[i * d + j] += a[i * d + k] * b[k * d + j];
            }
        }
    }
    c
}

/// Lower Cholesky factor of an SPD matrix.
pub fn cholesky(a: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            l[i * d + j] =
                if i == j { (a[i * d + i] - s).max(1e-300).sqrt() } else { (a[i * d + j] - s) / l[j * d + j] };
        }
    }
    l
}

/// Inverse of an SPD matrix through its eigendecomposition.
pub fn spd_inverse(a: &[f64], d: usize) -> Vec<f64> {
    let (vals, vecs) = sym_eigen(a, d);
    reconstruct(&vecs, &vals.iter().map(|v| 1.0 / v).collect::<Vec<_>>(), d)
}

/// V diag(s) Vᵀ (eigenvectors in the columns of V).
pub fn reconstruct(vecs: &[f64], s: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| vecs[i * d + k] * s[k] * vecs[j * d + k]).sum();
        }
    }
    out
}

/// Symmetric eigendecomposition by cyclic Jacobi rotations: (eigenvalues, eigenvectors in
/// columns). Converges quadratically; D here is tens at most.
pub fn sym_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; d * d];
    (0..d).for_each(|i| v[i * d + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = m[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (mkp, mkq) = (m[k * d + p], m[k * d + q]);
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let (mpk, mqk) = (m[p * d + k], m[q * d + k]);
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| m[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_and_inverse_reconstruct() {
        let a = vec![4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let inv = spd_inverse(&a, 3);
        let id = matmul(&a, &inv, 3);
        for i in 0..3 {
            for j in 0..3 {
                assert!((id[i * 3 + j] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let l = cholesky(&a, 3);
        let mut llt = [0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                llt[i * 3 + j] = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
            }
        }
        assert!(llt.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
    }
}
