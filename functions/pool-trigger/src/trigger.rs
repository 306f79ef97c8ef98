//! Which of the pool's triggers a resource manages, and every name that follows from it.
//!
//! One function serves one resource per trigger. Each name a trigger gives (the `Trigger`
//! property's value, the mark in the physical id, the pool tags, the variable naming the one
//! function it may be set to) is decided here, so the
//! two kinds can never share a tag or an id and a stack made before PreSignUp existed keeps
//! reading as PostConfirmation.

use std::{fmt, str::FromStr};

/// One trigger of a Cognito user pool's `LambdaConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    PostConfirmation,
    PreSignUp,
    /// The sign-in guard.
    PostAuthentication,
}

impl Trigger {
    pub const ALL: [Trigger; 3] = [
        Trigger::PostConfirmation,
        Trigger::PreSignUp,
        Trigger::PostAuthentication,
    ];

    /// The `Trigger` property's value, which is also the `LambdaConfig` field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostConfirmation => "PostConfirmation",
            Self::PreSignUp => "PreSignUp",
            Self::PostAuthentication => "PostAuthentication",
        }
    }

    /// The middle part of the physical id (`<pool>/<mark>/<earlier trigger>`). PostConfirmation's
    /// is the one ids had before there were two kinds.
    pub fn id_mark(self) -> &'static str {
        match self {
            Self::PostConfirmation => "post-confirmation",
            Self::PreSignUp => "pre-sign-up",
            Self::PostAuthentication => "sign-in-guard",
        }
    }

    /// The pool tag in which the previous version kept the trigger the pool had before ours.
    /// Anyone allowed to tag the pool can write it, so it is never read: every write of this
    /// trigger removes it.
    pub fn legacy_previous_tag(self) -> &'static str {
        match self {
            Self::PostConfirmation => "db-sync:previous-post-confirmation",
            Self::PreSignUp => "db-sync:previous-pre-sign-up",
            Self::PostAuthentication => "db-sync:previous-sign-in-guard",
        }
    }

    /// The pool tag saying this trigger was wired under a signed physical id
    /// ([`crate::physical_id`]), so that an unsigned id (the previous version's shape) names
    /// no resource of this pool's. Set by Create and Update, removed when Delete takes ours out.
    pub fn record_tag(self) -> &'static str {
        match self {
            Self::PostConfirmation => "db-sync:record-post-confirmation",
            Self::PreSignUp => "db-sync:record-pre-sign-up",
            Self::PostAuthentication => "db-sync:record-sign-in-guard",
        }
    }

    /// The variable holding the one function this trigger may be set to.
    pub fn function_var(self) -> &'static str {
        match self {
            Self::PostConfirmation => "TRIGGER_FUNCTION_ARN",
            Self::PreSignUp => "PRE_SIGN_UP_FUNCTION_ARN",
            Self::PostAuthentication => "SIGN_IN_GUARD_FUNCTION_ARN",
        }
    }

    /// The template's parameter that lets another function already set as this trigger be
    /// replaced.
    pub fn replace_parameter(self) -> &'static str {
        match self {
            Self::PostConfirmation => "ReplaceExistingPostConfirmationTrigger",
            Self::PreSignUp => "ReplaceExistingPreSignUpTrigger",
            Self::PostAuthentication => "ReplaceExistingPostAuthenticationTrigger",
        }
    }

    /// The kind a physical id's mark names.
    pub(crate) fn from_id_mark(mark: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id_mark() == mark)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Trigger` property that names no trigger this function manages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected \"PostConfirmation\", \"PreSignUp\" or \"PostAuthentication\"")]
pub struct UnknownTrigger;

impl FromStr for Trigger {
    type Err = UnknownTrigger;

    /// Exactly the `LambdaConfig` field's name: a near miss (`preSignUp`, `PreSignUp `) is
    /// refused rather than guessed at, since a wrong guess rewires the other trigger.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownTrigger)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn each_trigger_parses_from_its_own_name_only() {
        for t in Trigger::ALL {
            assert_eq!(t.as_str().parse(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        for bad in [
            "",
            "postConfirmation",
            "PRE_SIGN_UP",
            "PreSignUp ",
            "pre-sign-up",
            "PreAuthentication",
            "postAuthentication",
        ] {
            assert_eq!(bad.parse::<Trigger>(), Err(UnknownTrigger), "{bad:?}");
        }
    }

    #[test]
    fn the_kinds_share_no_name() {
        for name in [
            Trigger::id_mark,
            Trigger::legacy_previous_tag,
            Trigger::record_tag,
            Trigger::function_var,
            Trigger::replace_parameter,
        ] {
            let names: HashSet<&str> = Trigger::ALL.into_iter().map(name).collect();
            assert_eq!(names.len(), Trigger::ALL.len(), "{names:?}");
        }
    }
}
