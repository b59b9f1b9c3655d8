//! Non-negative least squares for the small dense systems the capacity model fits (tens of rows, at most
//! a handful of columns).
//!
//! Lawson and Hanson's active-set method (Solving Least Squares Problems, 1974, ch. 23): grow a passive
//! set of free variables by the most positive gradient component, solve the unconstrained problem on it,
//! and step back to the feasible boundary when a variable would turn negative. The inner unconstrained
//! solves use the normal equations with a Cholesky factorisation after scaling every column to unit norm;
//! with ≤ 6 columns the squared condition number is harmless, and a ridge of 1e-12 on the scaled Gram
//! matrix keeps a rank-deficient passive set solvable (collinear columns then share the weight).

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NnlsError {
    #[error("design matrix has no columns")]
    NoColumns,
    #[error("design matrix rows have {got} entries, expected {expected}")]
    Ragged { expected: usize, got: usize },
    #[error("{rows} observations for {cols} unknowns")]
    TooFewRows { rows: usize, cols: usize },
    #[error("design matrix or observations contain a non-finite value")]
    NonFinite,
    #[error("active-set iteration did not converge")]
    NoConvergence,
}

/// Solves min ‖A·x − b‖₂ subject to x ≥ 0. `a` holds one row per observation.
pub fn nnls(a: &[Vec<f64>], b: &[f64]) -> Result<Vec<f64>, NnlsError> {
    let n = a.first().map(Vec::len).ok_or(NnlsError::NoColumns)?;
    if n == 0 {
        return Err(NnlsError::NoColumns);
    }
    if let Some(row) = a.iter().find(|r| r.len() != n) {
        return Err(NnlsError::Ragged {
            expected: n,
            got: row.len(),
        });
    }
    if a.len() != b.len() || a.is_empty() {
        return Err(NnlsError::TooFewRows {
            rows: a.len().min(b.len()),
            cols: n,
        });
    }
    if a.iter().flatten().chain(b).any(|v| !v.is_finite()) {
        return Err(NnlsError::NonFinite);
    }

    // Scale columns to unit norm so the tolerance and the ridge mean the same for every term.
    let scale: Vec<f64> = (0..n)
        .map(|j| {
            let norm = a.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt();
            if norm > 0.0 { norm } else { 1.0 }
        })
        .collect();
    let scaled: Vec<Vec<f64>> = a
        .iter()
        .map(|r| r.iter().zip(&scale).map(|(v, s)| v / s).collect())
        .collect();

    let b_norm = b
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    let tol = 1e-10 * b_norm;
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];

    for _ in 0..(3 * n + 10) {
        let w = gradient(&scaled, b, &x);
        let candidate = (0..n)
            .filter(|&j| !passive[j] && w[j] > tol)
            .max_by(|&i, &j| w[i].total_cmp(&w[j]));
        let Some(t) = candidate else {
            return Ok(x.iter().zip(&scale).map(|(v, s)| v / s).collect());
        };
        passive[t] = true;

        let mut inner = 0;
        loop {
            inner += 1;
            if inner > 3 * n + 10 {
                return Err(NnlsError::NoConvergence);
            }
            let z = solve_passive(&scaled, b, &passive);
            if (0..n).filter(|&j| passive[j]).all(|j| z[j] > 0.0) {
                x = z;
                break;
            }
            // Step from x towards z until the first passive variable reaches zero.
            let alpha = (0..n)
                .filter(|&j| passive[j] && z[j] <= 0.0)
                .map(|j| x[j] / (x[j] - z[j]))
                .fold(f64::INFINITY, f64::min);
            for j in 0..n {
                x[j] += alpha * (z[j] - x[j]);
                if passive[j] && x[j] <= 1e-15 {
                    passive[j] = false;
                    x[j] = 0.0;
                }
            }
        }
    }
    Err(NnlsError::NoConvergence)
}

/// Aᵀ(b − A·x).
fn gradient(a: &[Vec<f64>], b: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut w = vec![0.0; n];
    for (row, bi) in a.iter().zip(b) {
        let r = bi - row.iter().zip(x).map(|(v, xi)| v * xi).sum::<f64>();
        for j in 0..n {
            w[j] += row[j] * r;
        }
    }
    w
}

/// Unconstrained least squares over the passive columns; zero elsewhere.
fn solve_passive(a: &[Vec<f64>], b: &[f64], passive: &[bool]) -> Vec<f64> {
    let cols: Vec<usize> = (0..passive.len()).filter(|&j| passive[j]).collect();
    let k = cols.len();
    let mut g = vec![vec![0.0; k]; k];
    let mut rhs = vec![0.0; k];
    for (row, bi) in a.iter().zip(b) {
        for (p, &cp) in cols.iter().enumerate() {
            rhs[p] += row[cp] * bi;
            for (q, &cq) in cols.iter().enumerate() {
                g[p][q] += row[cp] * row[cq];
            }
        }
    }
    for (p, gp) in g.iter_mut().enumerate() {
        gp[p] += 1e-12;
    }
    let sol = cholesky_solve(g, rhs);
    let mut z = vec![0.0; passive.len()];
    for (p, &cp) in cols.iter().enumerate() {
        z[cp] = sol[p];
    }
    z
}

/// Solves G·y = r for a symmetric positive definite G (the ridge guarantees definiteness).
fn cholesky_solve(mut g: Vec<Vec<f64>>, mut r: Vec<f64>) -> Vec<f64> {
    let k = r.len();
    for j in 0..k {
        let d = g[j][j] - (0..j).map(|p| g[j][p] * g[j][p]).sum::<f64>();
        // The ridge keeps d positive up to rounding; clamp rather than take the root of a negative.
        let d = d.max(1e-300).sqrt();
        g[j][j] = d;
        for i in (j + 1)..k {
            let s = g[i][j] - (0..j).map(|p| g[i][p] * g[j][p]).sum::<f64>();
            g[i][j] = s / d;
        }
    }
    for i in 0..k {
        r[i] = (r[i] - (0..i).map(|p| g[i][p] * r[p]).sum::<f64>()) / g[i][i];
    }
    for i in (0..k).rev() {
        r[i] = (r[i] - ((i + 1)..k).map(|p| g[p][i] * r[p]).sum::<f64>()) / g[i][i];
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn recovers_exact_non_negative_solution() {
        let a = vec![
            vec![1.0, 0.0, 2.0],
            vec![0.0, 1.0, 1.0],
            vec![1.0, 1.0, 0.0],
            vec![2.0, 1.0, 1.0],
        ];
        let truth = [0.5, 2.0, 3.0];
        let b: Vec<f64> = a
            .iter()
            .map(|r| r.iter().zip(truth).map(|(v, t)| v * t).sum())
            .collect();
        let x = nnls(&a, &b).unwrap();
        for (got, want) in x.iter().zip(truth) {
            assert!(close(*got, want), "{x:?}");
        }
    }

    #[test]
    fn clamps_a_term_that_least_squares_would_make_negative() {
        // Unconstrained LS gives y = 2 − 1·t: the slope must clamp to 0 and the intercept absorb the mean.
        let a = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![1.0, 2.0]];
        let b = vec![2.0, 1.0, 0.0];
        let x = nnls(&a, &b).unwrap();
        assert!(close(x[0], 1.0), "{x:?}");
        assert_eq!(x[1], 0.0);
    }

    #[test]
    fn handles_collinear_columns() {
        let a = vec![vec![1.0, 2.0], vec![2.0, 4.0], vec![3.0, 6.0]];
        let b = vec![5.0, 10.0, 15.0];
        let x = nnls(&a, &b).unwrap();
        let fit: Vec<f64> = a.iter().map(|r| r[0] * x[0] + r[1] * x[1]).collect();
        for (f, t) in fit.iter().zip(&b) {
            assert!(close(*f, *t), "{x:?}");
        }
        assert!(x.iter().all(|v| *v >= 0.0));
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(nnls(&[], &[]), Err(NnlsError::NoColumns));
        assert!(matches!(
            nnls(&[vec![1.0], vec![1.0, 2.0]], &[1.0, 2.0]),
            Err(NnlsError::Ragged { .. })
        ));
        assert_eq!(nnls(&[vec![f64::NAN]], &[1.0]), Err(NnlsError::NonFinite));
    }
}
