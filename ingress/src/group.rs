//! Security group ids: the one validator every input that names a group goes through, in step
//! with the `managed_ingress_rules.security_group_id` CHECK (`^sg-[0-9a-f]{8,17}$`).

use std::{fmt, str::FromStr};

/// A well-formed security group id: `sg-` and 8 to 17 lower-case hex digits, as AWS writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecurityGroupId(String);

impl SecurityGroupId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text is not a security group id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected sg- and 8 to 17 lower-case hex digits")]
pub struct BadGroupId;

impl FromStr for SecurityGroupId {
    type Err = BadGroupId;
    fn from_str(s: &str) -> Result<Self, BadGroupId> {
        let ok = s.strip_prefix("sg-").is_some_and(|hex| {
            (8..=17).contains(&hex.len())
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        ok.then(|| Self(s.to_owned())).ok_or(BadGroupId)
    }
}

impl fmt::Display for SecurityGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_group_id() {
        for good in ["sg-0123abcd", "sg-0123456789abcdef0"] {
            assert_eq!(good.parse::<SecurityGroupId>().unwrap().as_str(), good);
        }
        for bad in [
            "sg-0123ABCD",
            "sg-0123abc",
            "sg-0123456789abcdef01",
            "sg-0123abcg",
            "SG-0123abcd",
            "0123abcd",
            "sg-",
            "",
            " sg-0123abcd",
        ] {
            assert!(bad.parse::<SecurityGroupId>().is_err(), "{bad:?}");
        }
    }
}
