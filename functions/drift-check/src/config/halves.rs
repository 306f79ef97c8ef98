//! The halves a run checks (`DRIFT_CHECKS`): the managed groups' rules and the user pool.

use shared::env::{ConfigError, Env};
/// One half of a run: the managed groups' rules, or the user pool against the users table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Rules,
    Users,
}

impl Half {
    pub const ALL: [Half; 2] = [Half::Rules, Half::Users];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rules => "rules",
            Self::Users => "users",
        }
    }
}

impl std::fmt::Display for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The halves a run checks (`DRIFT_CHECKS`, comma-separated; unset: both). The template
/// turns a half on only where the stack has what it checks: the rules half where there is a
/// managed group, the users half where there is a user pool (docs/deploying.md, "Which
/// parts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    pub rules: bool,
    pub users: bool,
}

impl Checks {
    pub const BOTH: Checks = Checks {
        rules: true,
        users: true,
    };

    pub fn runs(self, half: Half) -> bool {
        match half {
            Half::Rules => self.rules,
            Half::Users => self.users,
        }
    }

    pub(super) fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        const VAR: &str = "DRIFT_CHECKS";
        let Some(list) = env.non_empty(VAR) else {
            return Ok(Self::BOTH);
        };
        let mut checks = Checks {
            rules: false,
            users: false,
        };
        for word in list.split(',').map(str::trim) {
            match Half::parse(word) {
                Some(Half::Rules) => checks.rules = true,
                Some(Half::Users) => checks.users = true,
                None => {
                    return Err(ConfigError::invalid(
                        VAR,
                        format!("expected rules, users or rules,users; got {word:?}"),
                    ));
                }
            }
        }
        Ok(checks)
    }
}
