//! Which devices a run uses: `cpu`, `cuda:N`, a list, or `auto` (every visible GPU, else the CPU).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Devices as a recipe or `--devices` names them: one string (maybe comma-separated) or a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DeviceList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses one device name; `auto` is not a device and is handled by [`resolve`].
    pub fn parse_one(s: &str) -> Result<DeviceSpec, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        if t == "auto" {
            // Accepted here so the recipe check does not flag it; `resolve` expands it.
            return Ok(DeviceSpec::Cpu);
        }
        if t == "cuda" {
            return Ok(DeviceSpec::Cuda(0));
        }
        if let Some(n) = t.strip_prefix("cuda:") {
            return n.parse::<usize>().map(DeviceSpec::Cuda).map_err(|_| {
                format!("device `{s}`: the GPU index after `cuda:` must be a number")
            });
        }
        Err(format!("unknown device `{s}`"))
    }

    pub fn to_tch(self) -> tch::Device {
        match self {
            DeviceSpec::Cpu => tch::Device::Cpu,
            DeviceSpec::Cuda(i) => tch::Device::Cuda(i),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Names from the recipe or `--devices` (comma separated), as a flat list.
pub fn names(list: &DeviceList) -> Vec<String> {
    match list {
        DeviceList::One(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        DeviceList::Many(v) => v.iter().map(|x| x.trim().to_string()).collect(),
    }
}

/// Expands `auto` and checks that every named GPU exists. `gpu_count` is `tch::Cuda::device_count()` (passed in so
/// the logic is testable without a GPU).
pub fn resolve(names: &[String], gpu_count: usize) -> Result<Vec<DeviceSpec>, String> {
    let mut out = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("auto") {
            if gpu_count == 0 {
                out.push(DeviceSpec::Cpu);
            } else {
                out.extend((0..gpu_count).map(DeviceSpec::Cuda));
            }
            continue;
        }
        let d = DeviceSpec::parse_one(name)?;
        if let DeviceSpec::Cuda(i) = d {
            if i >= gpu_count {
                return Err(format!(
                    "device `{name}` does not exist: {gpu_count} GPU(s) visible to libtorch; use `cpu`, `auto`, \
                     or a CUDA build of libtorch (LIBTORCH) on a GPU machine"
                ));
            }
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.is_empty() {
        return Err("no devices given; use `auto`, `cpu` or `cuda:0`".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_expands_to_every_gpu_or_the_cpu() {
        let auto = vec!["auto".to_string()];
        assert_eq!(resolve(&auto, 0).unwrap(), vec![DeviceSpec::Cpu]);
        assert_eq!(
            resolve(&auto, 2).unwrap(),
            vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]
        );
    }

    #[test]
    fn missing_gpus_and_bad_names_are_errors() {
        assert!(resolve(&["cuda:1".into()], 1).is_err());
        assert!(resolve(&["tpu".into()], 1).is_err());
        assert_eq!(
            names(&DeviceList::One("cuda:0, cuda:1".into())),
            vec!["cuda:0", "cuda:1"]
        );
    }
}
