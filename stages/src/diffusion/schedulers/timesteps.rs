//! NumPy's arithmetic as diffusers' `set_timesteps` uses it (linspace, float arange, round half to even,
//! interp), in double precision, so the schedules come out identical.

use super::config::SchedulerConfig;
use super::error::SchedulerError;

/// How inference timesteps are spread over the training range (diffusers' `timestep_spacing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spacing {
    Leading,
    Trailing,
    Linspace,
}

impl Spacing {
    pub fn from_config(cfg: &SchedulerConfig, default: &str) -> Result<Self, SchedulerError> {
        match cfg.str_or("timestep_spacing", default)?.as_str() {
            "leading" => Ok(Self::Leading),
            "trailing" => Ok(Self::Trailing),
            "linspace" => Ok(Self::Linspace),
            other => Err(cfg.bad(
                "timestep_spacing",
                &format!("{other:?} is not one of \"leading\", \"trailing\", \"linspace\""),
            )),
        }
    }
}

/// `np.linspace(start, stop, num)` (endpoint included).
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// `np.arange(start, stop, step)` for floats: NumPy fills with `start + i * delta`, where `delta` is the
/// difference of the first two values (not `step` itself).
pub fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        return Vec::new();
    }
    let delta = (start + step) - start;
    (0..len as usize)
        .map(|i| start + i as f64 * delta)
        .collect()
}

/// `np.round`: half to even.
pub fn round(x: f64) -> f64 {
    x.round_ties_even()
}

/// `np.interp(x, arange(len(fp)), fp)`.
pub fn interp_unit(x: f64, fp: &[f64]) -> f64 {
    let n = fp.len();
    if n == 0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return fp[0];
    }
    if x >= (n - 1) as f64 {
        return fp[n - 1];
    }
    let j = x.floor() as usize;
    let slope = (fp[j + 1] - fp[j]) / 1.0;
    slope * (x - j as f64) + fp[j]
}

/// diffusers' `_sigma_to_t`: the fractional training timestep whose log-sigma matches, by linear
/// interpolation in log space. `log_sigmas` ascends with t.
pub fn sigma_to_t(sigma: f64, log_sigmas: &[f64]) -> f64 {
    let log_sigma = sigma.max(1e-10).ln();
    let n = log_sigmas.len();
    // argmax of the cumulative count of `log_sigma >= log_sigmas[i]`: the last such i, or 0 when none.
    let low = log_sigmas
        .iter()
        .rposition(|&l| log_sigma - l >= 0.0)
        .unwrap_or(0)
        .min(n.saturating_sub(2));
    let high = low + 1;
    let (lo, hi) = (log_sigmas[low], log_sigmas[high]);
    let w = ((lo - log_sigma) / (lo - hi)).clamp(0.0, 1.0);
    (1.0 - w) * low as f64 + w * high as f64
}

/// `log(sigma)` of the training table for [`sigma_to_t`], rounded to float32 as diffusers' `np.log` of a
/// float32 array is.
pub fn log_sigmas(table: &[f32]) -> Vec<f64> {
    table
        .iter()
        .map(|&s| f64::from(f64::from(s).ln() as f32))
        .collect()
}

/// Karras et al. (2022) sigmas, rho = 7, from `sigma_max` down to `sigma_min`.
pub fn karras(sigma_min: f64, sigma_max: f64, num: usize) -> Vec<f64> {
    let rho = 7.0;
    let (min_inv, max_inv) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    linspace(0.0, 1.0, num)
        .into_iter()
        .map(|r| (max_inv + r * (min_inv - max_inv)).powf(rho))
        .collect()
}

/// The integer schedules DDIM and friends share: descending, `steps_offset` applied as diffusers does.
pub fn discrete(spacing: Spacing, train: usize, n: usize, steps_offset: i64) -> Vec<f64> {
    match spacing {
        Spacing::Linspace => linspace(0.0, (train - 1) as f64, n)
            .into_iter()
            .rev()
            .map(round)
            .collect(),
        Spacing::Leading => {
            let ratio = (train / n) as f64;
            (0..n)
                .rev()
                .map(|i| round(i as f64 * ratio) + steps_offset as f64)
                .collect()
        }
        Spacing::Trailing => {
            let ratio = train as f64 / n as f64;
            arange(train as f64, 0.0, -ratio)
                .into_iter()
                .map(|t| round(t) - 1.0)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_to_even_like_numpy() {
        assert_eq!(round(0.5), 0.0);
        assert_eq!(round(1.5), 2.0);
        assert_eq!(round(2.5), 2.0);
    }

    #[test]
    fn arange_counts_like_numpy() {
        assert_eq!(
            arange(1000.0, 0.0, -250.0),
            vec![1000.0, 750.0, 500.0, 250.0]
        );
        assert_eq!(arange(1000.0, 0.0, -1000.0 / 3.0).len(), 3);
    }

    #[test]
    fn interp_hits_knots_and_interpolates() {
        let fp = [0.0, 10.0, 30.0];
        assert_eq!(interp_unit(1.0, &fp), 10.0);
        assert_eq!(interp_unit(1.5, &fp), 20.0);
        assert_eq!(interp_unit(7.0, &fp), 30.0);
    }

    #[test]
    fn sigma_to_t_inverts_the_table() {
        let logs: Vec<f64> = (0..10).map(|i| i as f64 * 0.3 - 1.0).collect();
        for i in 0..10 {
            assert!((sigma_to_t(logs[i].exp(), &logs) - i as f64).abs() < 1e-9);
        }
        assert!((sigma_to_t((0.5f64 * (logs[3] + logs[4])).exp(), &logs) - 3.5).abs() < 1e-9);
    }
}
