//! `scheduler_config.json` as the file has it, read with the defaults of whichever class uses it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::SchedulerError;
use super::kind::SchedulerKind;

/// A scheduler config as the file has it: `_class_name` plus whatever keys are present.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    pub class_name: String,
    values: Map<String, Value>,
    path: PathBuf,
}

impl SchedulerConfig {
    pub fn from_file(path: &Path) -> Result<Self, SchedulerError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchedulerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// `origin` names the file in error messages.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Self, SchedulerError> {
        let json_err = |reason: String| SchedulerError::Json {
            path: origin.to_path_buf(),
            reason,
        };
        // Python writes infinities as bare `-Infinity` (e.g. DPM-Solver's lambda_min_clipped), which is not JSON.
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(first) => {
                let quoted = regex::Regex::new(r#"(:\s*)(-?Infinity|NaN)(\s*[,}\]])"#)
                    .map(|re| re.replace_all(text, "$1\"$2\"$3").into_owned())
                    .unwrap_or_else(|_| text.to_owned());
                serde_json::from_str(&quoted).map_err(|_| json_err(first.to_string()))?
            }
        };
        let Value::Object(values) = value else {
            return Err(json_err("the top level is not an object".into()));
        };
        Self::from_map(values, origin)
    }

    pub fn from_map(values: Map<String, Value>, origin: &Path) -> Result<Self, SchedulerError> {
        let class_name = values
            .get("_class_name")
            .and_then(Value::as_str)
            .unwrap_or("PNDMScheduler")
            .to_owned();
        Ok(Self {
            class_name,
            values,
            path: origin.to_path_buf(),
        })
    }

    /// The same config under another class, with the kind's overrides (diffusers' `Class.from_config`).
    pub fn with_kind(&self, kind: SchedulerKind) -> Self {
        let mut values = self.values.clone();
        for (k, v) in kind.overrides() {
            values.insert(k.to_owned(), v);
        }
        values.insert("_class_name".into(), Value::from(kind.class_name()));
        Self {
            class_name: kind.class_name().to_owned(),
            values,
            path: self.path.clone(),
        }
    }

    /// Sets one key (as `from_config(config, key=value)` does).
    pub fn set(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_owned(), value);
    }

    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn bad(&self, key: &str, reason: &str) -> SchedulerError {
        SchedulerError::BadValue {
            path: self.path.clone(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        }
    }

    pub(crate) fn get_is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A present, non-null value.
    fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, SchedulerError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "inf" | "infinity" => Ok(f64::INFINITY),
                "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(self.bad(key, &format!("must be a number, found {s:?}"))),
            },
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.bad(key, &format!("must be a number, found {v}"))),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, SchedulerError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.bad(key, &format!("must be a non-negative integer, found {v}"))
            }),
        }
    }

    pub fn i64_or(&self, key: &str, default: i64) -> Result<i64, SchedulerError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| self.bad(key, &format!("must be an integer, found {v}"))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, SchedulerError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(key, &format!("must be true or false, found {v}"))),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String, SchedulerError> {
        match self.get(key) {
            None => Ok(default.to_owned()),
            Some(v) => v
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| self.bad(key, &format!("must be a string, found {v}"))),
        }
    }

    pub fn f64_list(&self, key: &str) -> Result<Option<Vec<f64>>, SchedulerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| self.bad(key, "must be a list of numbers"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.bad(key, &format!("must be a list of numbers, found {v}"))),
        }
    }

    /// Rejects a key whose value this implementation does not support (rather than silently ignoring it).
    pub(crate) fn require(
        &self,
        key: &str,
        supported: &[&str],
        default: &str,
    ) -> Result<String, SchedulerError> {
        let v = self.str_or(key, default)?;
        if supported.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.bad(key, &format!("is {v:?}; texaug supports {supported:?}")))
        }
    }

    pub(crate) fn require_false(&self, key: &str) -> Result<(), SchedulerError> {
        if self.bool_or(key, false)? {
            Err(self.bad(
                key,
                "is true, which texaug does not support; set it to false",
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_kind_keeps_keys_and_applies_overrides() {
        let cfg = SchedulerConfig::from_json_str(
            r#"{"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "steps_offset": 1}"#,
            Path::new("x.json"),
        )
        .unwrap();
        let k = cfg.with_kind(SchedulerKind::DpmPP2MKarras);
        assert_eq!(k.class_name, "DPMSolverMultistepScheduler");
        assert_eq!(k.i64_or("steps_offset", 0).unwrap(), 1);
        assert!(k.bool_or("use_karras_sigmas", false).unwrap());
        assert_eq!(k.str_or("algorithm_type", "").unwrap(), "dpmsolver++");
    }

    #[test]
    fn python_infinity_is_read() {
        let cfg = SchedulerConfig::from_json_str(
            "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"lambda_min_clipped\": -Infinity}",
            Path::new("s.json"),
        )
        .unwrap();
        assert_eq!(
            cfg.f64_or("lambda_min_clipped", 0.0).unwrap(),
            f64::NEG_INFINITY
        );
    }
}
