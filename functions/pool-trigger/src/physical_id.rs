//! The resource's physical id, which also keeps the trigger the pool had before ours.
//!
//! CloudFormation hands a Delete request only the physical id and the properties (a custom
//! resource's `Data` is for `Fn::GetAtt`, never sent back), so what Delete must put back
//! lives in the id: `<pool id>/<trigger mark>/<earlier trigger ARN, or "none">`, the mark
//! being `post-confirmation` or `pre-sign-up` ([`Trigger::id_mark`]). A PostConfirmation id
//! is what it was before there were two kinds, so existing stacks' ids still read. The id
//! stays the same across Updates of the same pool and trigger, so CloudFormation never
//! replaces it.

use std::fmt;

use crate::trigger::Trigger;

const NONE: &str = "none";

/// What a Create did: the pool and the trigger it wired, and what that trigger was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    pub pool_id: String,
    pub trigger: Trigger,
    pub previous: Option<String>,
}

impl Wired {
    /// Reads an id this function made; `None` for any other (the id of a Create that failed
    /// before it changed anything), which Delete then leaves alone.
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, '/');
        let (pool_id, mark, previous) = (parts.next()?, parts.next()?, parts.next()?);
        if pool_id.is_empty() || previous.is_empty() {
            return None;
        }
        Some(Self {
            pool_id: pool_id.to_owned(),
            trigger: Trigger::from_id_mark(mark)?,
            previous: (previous != NONE).then(|| previous.to_owned()),
        })
    }
}

impl fmt::Display for Wired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous = self.previous.as_deref().unwrap_or(NONE);
        write!(f, "{}/{}/{previous}", self.pool_id, self.trigger.id_mark())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:aws:lambda:us-east-1:123456789012:function:old:live";

    #[test]
    fn an_id_round_trips_for_each_trigger_with_and_without_an_earlier_one() {
        for trigger in Trigger::ALL {
            for previous in [None, Some(OLD.to_owned())] {
                let w = Wired {
                    pool_id: "us-east-1_abc".into(),
                    trigger,
                    previous,
                };
                assert_eq!(Wired::parse(&w.to_string()), Some(w));
            }
        }
    }

    #[test]
    fn each_trigger_has_its_own_id() {
        let wired = |trigger| Wired {
            pool_id: "us-east-1_abc".into(),
            trigger,
            previous: Some(OLD.to_owned()),
        };
        assert_eq!(
            wired(Trigger::PostConfirmation).to_string(),
            format!("us-east-1_abc/post-confirmation/{OLD}")
        );
        assert_eq!(
            wired(Trigger::PreSignUp).to_string(),
            format!("us-east-1_abc/pre-sign-up/{OLD}")
        );
    }

    /// Ids CloudFormation holds for stacks made before PreSignUp existed.
    #[test]
    fn ids_made_before_there_were_two_kinds_read_as_post_confirmation() {
        assert_eq!(
            Wired::parse("us-east-1_abc/post-confirmation/none"),
            Some(Wired {
                pool_id: "us-east-1_abc".into(),
                trigger: Trigger::PostConfirmation,
                previous: None,
            })
        );
        assert_eq!(
            Wired::parse(&format!("us-east-1_abc/post-confirmation/{OLD}"))
                .map(|w| (w.trigger, w.previous)),
            Some((Trigger::PostConfirmation, Some(OLD.to_owned())))
        );
    }

    #[test]
    fn ids_this_function_did_not_make_are_not_read() {
        for id in [
            "",
            "PoolTrigger-not-created-r-1",
            "us-east-1_abc/other/none",
            "us-east-1_abc/PreSignUp/none",
            "us-east-1_abc/pre-sign-up",
            "us-east-1_abc/pre-sign-up/",
            "/post-confirmation/none",
            "/pre-sign-up/none",
        ] {
            assert_eq!(Wired::parse(id), None, "{id}");
        }
    }
}
