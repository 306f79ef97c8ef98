//! Who may move a rule: the principal a row names (`managed_ingress_rules.principal`), and
//! whether the caller AWS authenticated is that principal.
//!
//! A pattern is an exact ARN, or an assumed-role ARN whose session name is `*` (any session of
//! that one role). Nothing else is a wildcard: `*` anywhere but the whole session name, a
//! plain role ARN (no caller ever presents one: a role's callers are its sessions), or any
//! other shape is refused. The column's CHECK (migration V6) admits exactly what
//! [`PrincipalPattern::from_str`] admits.

use std::{fmt, str::FromStr};

/// A row's principal, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalPattern {
    text: String,
    /// `Some(prefix)` when the pattern is `<prefix>*`: any session of one role.
    any_session_of: Option<usize>,
}

/// Why a principal pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a principal pattern (arn:aws:iam::ACCOUNT:user/NAME, \
     arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION or arn:aws:sts::ACCOUNT:assumed-role/ROLE/*)"
)]
pub struct BadPrincipal(pub String);

/// IAM's characters for user, role and path names (`[\w+=,.@-]`).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
}

fn is_name(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(is_name_char)
}

/// A session name as STS allows it: 2 to 64 of `[\w+=,.@-]`.
fn is_session_name(s: &str) -> bool {
    is_name(s, 2..=64)
}

impl FromStr for PrincipalPattern {
    type Err = BadPrincipal;

    fn from_str(s: &str) -> Result<Self, BadPrincipal> {
        let bad = || BadPrincipal(s.chars().take(200).collect());
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        if !["aws", "aws-cn", "aws-us-gov"].contains(&partition)
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let mut any_session_of = None;
        match (service, resource.split_once('/')) {
            ("iam", Some(("user", path_and_name))) => {
                let mut segments: Vec<&str> = path_and_name.split('/').collect();
                let name = segments.pop().unwrap_or_default();
                if !is_name(name, 1..=64) || !segments.iter().all(|p| is_name(p, 1..=usize::MAX)) {
                    return Err(bad());
                }
            }
            ("sts", Some(("assumed-role", role_and_session))) => {
                let Some((role, session)) = role_and_session.split_once('/') else {
                    return Err(bad());
                };
                if !is_name(role, 1..=64) {
                    return Err(bad());
                }
                if session == "*" {
                    any_session_of = Some(s.len() - 1);
                } else if !is_session_name(session) {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
        Ok(Self {
            text: s.to_owned(),
            any_session_of,
        })
    }
}

impl PrincipalPattern {
    /// Whether `caller` (the ARN AWS authenticated, `requestContext.authorizer.iam.userArn`)
    /// is this principal: the same ARN, byte for byte (so case counts), or, for a `/*`
    /// pattern, a session of that role with a valid session name.
    pub fn matches(&self, caller: &str) -> bool {
        match self.any_session_of {
            None => caller == self.text,
            Some(prefix_len) => caller
                .strip_prefix(&self.text[..prefix_len])
                .is_some_and(is_session_name),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PrincipalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> PrincipalPattern {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    const ANDREW_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/dev-andrew/*";

    #[test]
    fn an_exact_arn_matches_only_itself() {
        let bea = pattern("arn:aws:iam::123456789012:user/bea");
        assert!(bea.matches("arn:aws:iam::123456789012:user/bea"));
        for other in [
            "arn:aws:iam::123456789012:user/Bea",
            "arn:aws:iam::123456789012:user/bea/",
            "arn:aws:iam::123456789012:user/bea2",
            "arn:aws:iam::123456789012:user/team/bea",
            "arn:aws:iam::210987654321:user/bea",
            "arn:aws-cn:iam::123456789012:user/bea",
            "arn:aws:iam::123456789012:user/be",
            "arn:aws:sts::123456789012:assumed-role/bea/bea",
            "",
        ] {
            assert!(!bea.matches(other), "{other}");
        }
        let session = pattern(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/andrew@example.com",
        );
        assert!(session.matches(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/andrew@example.com"
        ));
        assert!(!session.matches(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/bea@example.com"
        ));
    }

    #[test]
    fn a_role_pattern_matches_the_sessions_of_that_role_only() {
        let andrew = pattern(ANDREW_ROLE);
        for session in ["laptop", "andrew@example.com", "i-0abc", "ab"] {
            let caller = format!("arn:aws:sts::123456789012:assumed-role/dev-andrew/{session}");
            assert!(andrew.matches(&caller), "{caller}");
        }
        for near_miss in [
            // another account, another role, a role whose name starts the same
            "arn:aws:sts::210987654321:assumed-role/dev-andrew/laptop",
            "arn:aws:sts::123456789012:assumed-role/dev-bea/laptop",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew-evil/laptop",
            "arn:aws:sts::123456789012:assumed-role/dev-andre/laptop",
            // case
            "arn:aws:sts::123456789012:assumed-role/Dev-Andrew/laptop",
            "ARN:AWS:STS::123456789012:ASSUMED-ROLE/dev-andrew/laptop",
            // no session, an empty or one-character session, a trailing slash, a longer path
            "arn:aws:sts::123456789012:assumed-role/dev-andrew",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/x",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/laptop/",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/laptop/extra",
            // characters no session name has, and a session too long
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/*",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/lap top",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/laptop\n",
            &format!(
                "arn:aws:sts::123456789012:assumed-role/dev-andrew/{}",
                "s".repeat(65)
            ),
            // the role itself, and an IAM user of that name
            "arn:aws:iam::123456789012:role/dev-andrew",
            "arn:aws:iam::123456789012:user/dev-andrew",
        ] {
            assert!(!andrew.matches(near_miss), "{near_miss}");
        }
    }

    #[test]
    fn a_star_anywhere_but_the_whole_session_name_is_refused() {
        for bad in [
            "*",
            "arn:aws:sts::123456789012:assumed-role/*",
            "arn:aws:sts::123456789012:assumed-role/*/laptop",
            "arn:aws:sts::123456789012:assumed-role/dev-*/laptop",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/lap*",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/**",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/*/",
            "arn:aws:sts::*:assumed-role/dev-andrew/*",
            "arn:aws:sts::12345678901*:assumed-role/dev-andrew/*",
            "arn:*:sts::123456789012:assumed-role/dev-andrew/*",
            "arn:aws:iam::123456789012:user/*",
            "arn:aws:iam::123456789012:user/team/*",
            "arn:aws:iam::123456789012:*",
        ] {
            assert!(bad.parse::<PrincipalPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for bad in [
            "",
            "andrew",
            "arn:aws:iam::123456789012:role/dev-andrew",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:group/devs",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:iam::123456789012:user/bea/",
            "arn:aws:iam::123456789012:user//bea",
            "arn:aws:iam::123456789012:user/be a",
            "arn:aws:iam::12345678901:user/bea",
            "arn:aws:iam::1234567890123:user/bea",
            "arn:aws:iam:us-east-1:123456789012:user/bea",
            "arn:aws:lambda::123456789012:user/bea",
            "arn:aws-iso:iam::123456789012:user/bea",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/x",
            "arn:aws:sts::123456789012:assumed-role//laptop",
            "arn:aws:sts::123456789012:federated-user/bea",
            " arn:aws:iam::123456789012:user/bea",
            "arn:aws:iam::123456789012:user/bea ",
        ] {
            assert!(bad.parse::<PrincipalPattern>().is_err(), "{bad:?}");
        }
        for good in [
            "arn:aws:iam::123456789012:user/bea",
            "arn:aws:iam::123456789012:user/team/dev/bea",
            "arn:aws-us-gov:iam::123456789012:user/bea",
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/laptop",
            ANDREW_ROLE,
        ] {
            assert_eq!(pattern(good).as_str(), good);
        }
    }
}
