//! Reading settings from the environment: the toolkit every function's `Config::from_env` is
//! built with, and the error that names the variable at fault.

use std::{fmt, str::FromStr, time::Duration};

/// A missing or malformed environment variable. Never carries a variable's value: some of
/// them hold passwords.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var} must be set{}", Hint(.hint))]
    Missing {
        /// The variable (or the alternatives, `A or B`) that must be set.
        var: String,
        /// What it should hold, or when it is needed.
        hint: Option<String>,
    },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: String, reason: String },
}

struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, " {h}"),
            None => Ok(()),
        }
    }
}

impl ConfigError {
    /// `var` is unset; `hint` says what it should hold (`"(sg-...)"`, `"when ..."`).
    pub fn missing(var: &str, hint: Option<&str>) -> Self {
        Self::Missing {
            var: var.to_owned(),
            hint: hint.map(str::to_owned),
        }
    }

    pub fn invalid(var: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var: var.to_owned(),
            reason: reason.into(),
        }
    }

    /// The variable this error is about.
    pub fn var(&self) -> &str {
        match self {
            Self::Missing { var, .. } | Self::Invalid { var, .. } => var,
        }
    }
}

/// Reads variables by name; the process environment in production, a map in unit tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;

    /// A variable that is set to something other than blanks.
    fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A variable that must be set to something other than blanks.
    fn required(&self, name: &str, hint: &str) -> Result<String, ConfigError> {
        self.non_empty(name)
            .ok_or_else(|| ConfigError::missing(name, Some(hint)))
    }

    /// Parses a variable, or returns `default` when it is unset.
    fn parse_or<T: FromStr>(
        &self,
        name: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.non_empty(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::invalid(name, format!("expected {expected}"))),
        }
    }

    /// A duration in milliseconds within `range_ms`.
    fn millis_or(
        &self,
        name: &str,
        default_ms: u64,
        range_ms: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let ms = self.parse_or(name, default_ms, "a whole number of milliseconds")?;
        if !range_ms.contains(&ms) {
            return Err(ConfigError::invalid(
                name,
                format!(
                    "{ms} ms is outside {}..={} ms",
                    range_ms.start(),
                    range_ms.end()
                ),
            ));
        }
        Ok(Duration::from_millis(ms))
    }
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<&str, &str, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).map(|v| (*v).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let env: HashMap<&str, &str> = [("N", "x"), ("T", "99999999")].into_iter().collect();
        let e = env.required("GONE", "(sg-...)").unwrap_err();
        assert_eq!(
            (e.var(), e.to_string().as_str()),
            ("GONE", "GONE must be set (sg-...)")
        );
        let e = env.parse_or("N", 1u8, "a number").unwrap_err();
        assert_eq!(e.to_string(), "N is invalid: expected a number");
        let e = env.millis_or("T", 1, 1..=10).unwrap_err();
        assert_eq!(e.var(), "T");
        assert_eq!(
            ConfigError::missing("A or B", None).to_string(),
            "A or B must be set"
        );
    }
}
