//! The resource's physical id, which records the trigger the pool had before ours, signed.
//!
//! CloudFormation hands a Delete request only the physical id and the properties (a custom
//! resource's `Data` is for `Fn::GetAtt`, never sent back), so what Delete puts back lives in
//! the id CloudFormation holds: `<pool id>/<trigger mark>/<earlier trigger ARN, or "none">/
//! <signature>`, the mark being `post-confirmation` or `pre-sign-up` ([`Trigger::id_mark`]) and
//! the signature the stack's record key's over the rest ([`crate::record_key`]). Anyone may
//! send this function a Delete naming any id; only one it signed is acted on. The id stays the
//! same across Updates of the same pool and trigger, so CloudFormation never replaces it.
//!
//! Ids the previous version made have no signature (`<pool>/<mark>/<earlier or "none">`): the
//! earlier trigger they name is not trusted ([`PhysicalId::Unsigned`]).

use crate::{record_key::RecordKey, trigger::Trigger};

const NONE: &str = "none";
/// What the signature covers besides the id's parts, so it means nothing anywhere else.
const DOMAIN: &str = "db-sync pool-trigger physical id v2";

/// What a Create did: the pool and the trigger it wired, and the earlier trigger it recorded
/// to put back (a Lambda function of the stack's account and region, or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    pub pool_id: String,
    pub trigger: Trigger,
    pub previous: Option<String>,
}

impl Wired {
    /// `<pool>/<mark>/<earlier or "none">`: the id without its signature, as the previous
    /// version made them.
    fn unsigned(&self) -> String {
        let previous = self.previous.as_deref().unwrap_or(NONE);
        format!("{}/{}/{previous}", self.pool_id, self.trigger.id_mark())
    }

    /// The id, signed with `key`.
    pub fn signed_id(&self, key: &RecordKey) -> String {
        let unsigned = self.unsigned();
        let signature = key.sign(&format!("{DOMAIN}\n{unsigned}"));
        format!("{unsigned}/{signature}")
    }
}

/// A physical id this function may have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhysicalId {
    /// This version's: what it names holds only if the signature verifies ([`Self::verified`]).
    Signed { wired: Wired, signature: String },
    /// The previous version's, unsigned: only its pool and trigger are read.
    Unsigned(Wired),
}

impl PhysicalId {
    /// Reads an id of either shape; `None` for any other (the id of a Create that failed
    /// before it changed anything), which Delete then leaves alone.
    pub fn parse(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.split('/').collect();
        let (pool_id, mark, previous, signature) = match parts.as_slice() {
            [pool, mark, previous] => (*pool, *mark, *previous, None),
            [pool, mark, previous, signature] if !signature.is_empty() => {
                (*pool, *mark, *previous, Some(*signature))
            }
            _ => return None,
        };
        if pool_id.is_empty() || previous.is_empty() {
            return None;
        }
        let wired = Wired {
            pool_id: pool_id.to_owned(),
            trigger: Trigger::from_id_mark(mark)?,
            previous: (previous != NONE).then(|| previous.to_owned()),
        };
        Some(match signature {
            Some(signature) => Self::Signed {
                wired,
                signature: signature.to_owned(),
            },
            None => Self::Unsigned(wired),
        })
    }

    /// The pool and trigger the id names, and the earlier trigger it claims.
    pub fn wired(&self) -> &Wired {
        match self {
            Self::Signed { wired, .. } | Self::Unsigned(wired) => wired,
        }
    }

    /// What a signed id records, if `key` signed it.
    pub fn verified(&self, key: &RecordKey) -> Option<&Wired> {
        match self {
            Self::Signed { wired, signature }
                if key.verifies(&format!("{DOMAIN}\n{}", wired.unsigned()), signature) =>
            {
                Some(wired)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:aws:lambda:us-east-1:123456789012:function:old:live";

    fn key(byte: u8) -> RecordKey {
        RecordKey::new(vec![byte; 64]).unwrap()
    }

    fn wired(trigger: Trigger, previous: Option<&str>) -> Wired {
        Wired {
            pool_id: "us-east-1_abc".into(),
            trigger,
            previous: previous.map(str::to_owned),
        }
    }

    #[test]
    fn a_signed_id_round_trips_for_each_trigger_with_and_without_an_earlier_one() {
        for trigger in Trigger::ALL {
            for previous in [None, Some(OLD)] {
                let w = wired(trigger, previous);
                let id = PhysicalId::parse(&w.signed_id(&key(1))).unwrap();
                assert_eq!(id.wired(), &w);
                assert_eq!(id.verified(&key(1)), Some(&w));
                assert_eq!(id.verified(&key(2)), None, "another stack's key");
            }
        }
    }

    #[test]
    fn each_trigger_has_its_own_id() {
        let post = wired(Trigger::PostConfirmation, Some(OLD)).signed_id(&key(1));
        let pre = wired(Trigger::PreSignUp, Some(OLD)).signed_id(&key(1));
        assert!(post.starts_with(&format!("us-east-1_abc/post-confirmation/{OLD}/")));
        assert!(pre.starts_with(&format!("us-east-1_abc/pre-sign-up/{OLD}/")));
        assert_ne!(post.rsplit_once('/'), pre.rsplit_once('/'));
    }

    /// A signature moved onto another earlier trigger, trigger or pool verifies nowhere.
    #[test]
    fn a_signature_holds_only_for_the_id_it_was_made_for() {
        let genuine = wired(Trigger::PreSignUp, Some(OLD)).signed_id(&key(1));
        let (_, signature) = genuine.rsplit_once('/').unwrap();
        for forged in [
            format!("us-east-1_abc/pre-sign-up/none/{signature}"),
            format!(
                "us-east-1_abc/pre-sign-up/arn:aws:lambda:us-east-1:9:function:evil/{signature}"
            ),
            format!("us-east-1_abc/post-confirmation/{OLD}/{signature}"),
            format!("us-east-1_xyz/pre-sign-up/{OLD}/{signature}"),
            format!("us-east-1_abc/pre-sign-up/{OLD}/{}", "A".repeat(43)),
        ] {
            let id = PhysicalId::parse(&forged).unwrap();
            assert_eq!(id.verified(&key(1)), None, "{forged}");
        }
    }

    /// Ids CloudFormation holds for stacks made by the previous version (and, for
    /// PostConfirmation, before PreSignUp existed): read, unsigned, never verified.
    #[test]
    fn ids_the_previous_version_made_read_as_unsigned() {
        let id = PhysicalId::parse("us-east-1_abc/post-confirmation/none").unwrap();
        assert_eq!(
            id,
            PhysicalId::Unsigned(wired(Trigger::PostConfirmation, None))
        );
        assert_eq!(id.verified(&key(1)), None);
        let id = PhysicalId::parse(&format!("us-east-1_abc/pre-sign-up/{OLD}")).unwrap();
        assert_eq!(
            id,
            PhysicalId::Unsigned(wired(Trigger::PreSignUp, Some(OLD)))
        );
        assert_eq!(id.verified(&key(1)), None);
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
            "us-east-1_abc/pre-sign-up/none/",
            "us-east-1_abc/pre-sign-up/none/sig/more",
            "/post-confirmation/none",
            "/pre-sign-up/none",
        ] {
            assert_eq!(PhysicalId::parse(id), None, "{id}");
        }
    }
}
