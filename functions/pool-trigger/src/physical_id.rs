//! The resource's physical id, which also keeps the pool's earlier PostConfirmation trigger.
//!
//! CloudFormation hands a Delete request only the physical id and the properties (a custom
//! resource's `Data` is for `Fn::GetAtt`, never sent back), so what Delete must put back
//! lives in the id: `<pool id>/post-confirmation/<earlier trigger ARN, or "none">`. The id
//! stays the same across Updates of the same pool, so CloudFormation never replaces it.

use std::fmt;

const MARK: &str = "post-confirmation";
const NONE: &str = "none";

/// What a Create did: the pool it wired, and the trigger the pool had before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    pub pool_id: String,
    pub previous: Option<String>,
}

impl Wired {
    /// Reads an id this function made; `None` for any other (the id of a Create that failed
    /// before it changed anything), which Delete then leaves alone.
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, '/');
        let (pool_id, mark, previous) = (parts.next()?, parts.next()?, parts.next()?);
        if pool_id.is_empty() || mark != MARK || previous.is_empty() {
            return None;
        }
        Some(Self {
            pool_id: pool_id.to_owned(),
            previous: (previous != NONE).then(|| previous.to_owned()),
        })
    }
}

impl fmt::Display for Wired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous = self.previous.as_deref().unwrap_or(NONE);
        write!(f, "{}/{MARK}/{previous}", self.pool_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_with_and_without_an_earlier_trigger() {
        for previous in [
            None,
            Some("arn:aws:lambda:us-east-1:123456789012:function:old:live".to_owned()),
        ] {
            let w = Wired {
                pool_id: "us-east-1_abc".into(),
                previous,
            };
            assert_eq!(Wired::parse(&w.to_string()), Some(w));
        }
    }

    #[test]
    fn ids_this_function_did_not_make_are_not_read() {
        for id in [
            "",
            "PoolTrigger-not-created-r-1",
            "us-east-1_abc/other/none",
            "/post-confirmation/none",
        ] {
            assert_eq!(Wired::parse(id), None, "{id}");
        }
    }
}
