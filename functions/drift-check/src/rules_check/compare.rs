//! The comparison of a group's rows with its AWS rules, and the allowlist entries that keep a
//! foreign rule. Pure: every difference is decided here, before any change.

use std::{collections::HashSet, time::SystemTime};

use ingress::{
    ec2::AwsRule,
    ip::Cidr,
    rule::{ManagedRule, RuleStatus},
};

/// One difference in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleDrift {
    Missing(ManagedRule),
    Changed(ManagedRule, AwsRule),
    Unexpected(AwsRule),
    /// AWS has exactly what the row wants, under another rule id (a rule shared by developers
    /// behind one address, or one created when the answer was lost): the row takes that id.
    Adopt(ManagedRule, AwsRule),
    /// A rule no row describes that an allowlist entry names: kept.
    Allowed(AwsRule, AllowedRule),
    /// A rule no row describes that only an entry from before entries were pinned names (by
    /// CIDR or id alone): reported as drift, never revoked, until the entry is pinned.
    NamedByUnpinnedEntry(AwsRule, AllowedRule),
    /// A row past its lifetime, with its own AWS rule if AWS still has it: to be revoked.
    Expired(ManagedRule, Option<AwsRule>),
}

/// An entry of `drift_allowed_rules`: a foreign rule an operator declared expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRule {
    pub cidr: Option<Cidr>,
    pub aws_rule_id: Option<String>,
    pub ip_protocol: Option<String>,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub reason: String,
    pub added_by: String,
}

impl AllowedRule {
    /// Whether the entry pins what it allows: source, protocol and ports.
    pub fn is_pinned(&self) -> bool {
        self.cidr.is_some()
            && self.ip_protocol.is_some()
            && self.from_port.is_some()
            && self.to_port.is_some()
    }

    /// Exact matching only, on everything the entry pins: an entry never covers a wider
    /// source, another protocol or other ports, so a rule widened by hand (0.0.0.0/0, every
    /// port) is drift, and 0.0.0.0/0 stays only when an entry names it. An unpinned entry
    /// covers nothing.
    pub fn covers(&self, aws: &AwsRule) -> bool {
        self.is_pinned()
            && self.cidr == aws.cidr
            && self.ip_protocol.as_deref() == Some(aws.ip_protocol.as_str())
            && self.from_port == Some(aws.from_port)
            && self.to_port == Some(aws.to_port)
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }

    /// An unpinned entry's old meaning (its CIDR, its id, or both): the rule it was written
    /// for, now reported until the entry is pinned.
    fn names(&self, aws: &AwsRule) -> bool {
        !self.is_pinned()
            && (self.cidr.is_some() || self.aws_rule_id.is_some())
            && self.cidr.is_none_or(|c| aws.cidr == Some(c))
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }
}

/// Compares a group's rows with its AWS rules at `now`. A row is satisfied by any rule that lets
/// in exactly what it wants (its own first; developers behind one address share one), else its
/// own rule is `Changed`, else it is `Missing`. A row past its lifetime wants its rule gone
/// (`Expired`), and an expired row wants nothing. CIDR rules no row claims are unexpected,
/// unless an allowlist entry names them. Rules whose source is another group or a prefix list
/// are not ours to judge.
pub fn compare_group(
    desired: &[ManagedRule],
    actual: &[AwsRule],
    allowed: &[AllowedRule],
    now: SystemTime,
) -> Vec<RuleDrift> {
    let mut claimed = HashSet::new();
    let mut drift = Vec::new();
    for rule in desired {
        let Some(cidr) = rule.cidr else {
            continue;
        };
        if rule.status == RuleStatus::Expired {
            continue;
        }
        let own = rule
            .aws_rule_id
            .as_deref()
            .and_then(|id| actual.iter().find(|a| a.id == id));
        if rule.has_lapsed(now) {
            if let Some(a) = own {
                claimed.insert(a.id.clone());
            }
            drift.push(RuleDrift::Expired(rule.clone(), own.cloned()));
            continue;
        }
        // Another rule is taken only when this stack made it (a shared address, a lost
        // answer): a rule made by hand or allowlisted is never adopted.
        let exact = own
            .filter(|a| a.matches(rule, cidr))
            .or_else(|| actual.iter().find(|a| a.is_ours() && a.matches(rule, cidr)));
        match (exact, own) {
            (Some(a), _) => {
                claimed.insert(a.id.clone());
                if own.is_some_and(|o| o.id == a.id) {
                    continue;
                }
                drift.push(RuleDrift::Adopt(rule.clone(), a.clone()));
            }
            (None, Some(a)) => {
                claimed.insert(a.id.clone());
                drift.push(RuleDrift::Changed(rule.clone(), a.clone()));
            }
            (None, None) => drift.push(RuleDrift::Missing(rule.clone())),
        }
    }
    for a in actual {
        if a.cidr.is_some() && !claimed.contains(&a.id) {
            let covering = allowed.iter().find(|e| e.covers(a));
            let naming = || allowed.iter().find(|e| e.names(a));
            drift.push(match (covering, naming()) {
                (Some(entry), _) => RuleDrift::Allowed(a.clone(), entry.clone()),
                (None, Some(entry)) => RuleDrift::NamedByUnpinnedEntry(a.clone(), entry.clone()),
                (None, None) => RuleDrift::Unexpected(a.clone()),
            });
        }
    }
    drift
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ingress::rule::RuleStatus;

    use super::*;

    fn row(owner: &str, cidr: Option<&str>, id: Option<&str>) -> ManagedRule {
        ManagedRule {
            id: 1,
            security_group_id: "sg-0a1b2c3d".into(),
            owner: owner.into(),
            description: String::new(),
            ip_protocol: "tcp".into(),
            from_port: 5432,
            to_port: 5432,
            cidr: cidr.and_then(Cidr::parse),
            allow_private: false,
            principal: None,
            allow_unverified: false,
            aws_rule_id: id.map(str::to_owned),
            status: RuleStatus::Applied,
            last_request_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_rule_past_its_lifetime_is_to_be_revoked_and_an_expired_row_wants_nothing() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let mut lapsed = row("andrew", Some("34.201.17.5/32"), Some("sgr-a"));
        lapsed.expires_at = Some(now - hour);
        let mut fresh = row("bea", Some("52.14.99.8/32"), Some("sgr-b"));
        fresh.expires_at = Some(now + hour);
        let a = [
            aws("sgr-a", Some("34.201.17.5/32"), 5432),
            aws("sgr-b", Some("52.14.99.8/32"), 5432),
        ];
        let drift = compare_group(&[lapsed.clone(), fresh.clone()], &a, &[], now);
        assert_eq!(
            drift,
            [RuleDrift::Expired(lapsed.clone(), Some(a[0].clone()))]
        );

        // Already revoked by hand: still expired, nothing in AWS to revoke.
        let drift = compare_group(std::slice::from_ref(&lapsed), &a[1..], &[], now);
        assert_eq!(drift[0], RuleDrift::Expired(lapsed.clone(), None));

        // Once expired, the row wants no rule: one still there is unexpected, none is missing.
        let mut expired = lapsed;
        expired.status = RuleStatus::Expired;
        expired.aws_rule_id = None;
        assert!(compare_group(std::slice::from_ref(&expired), &[], &[], now).is_empty());
        let drift = compare_group(std::slice::from_ref(&expired), &a[..1], &[], now);
        assert_eq!(drift, [RuleDrift::Unexpected(a[0].clone())]);
    }

    fn aws(id: &str, cidr: Option<&str>, port: i32) -> AwsRule {
        AwsRule {
            id: id.into(),
            ip_protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            cidr: cidr.and_then(Cidr::parse),
            description: None,
            // Made by this stack, unless a test says otherwise.
            tagged_owner: Some("someone".into()),
        }
    }

    #[test]
    fn a_matching_rule_this_stack_did_not_make_is_never_adopted() {
        // The row wants exactly what a hand-made rule (no tag) lets in.
        let d = [row("a", Some("52.0.0.9/32"), None)];
        let by_hand = AwsRule {
            tagged_owner: None,
            ..aws("sgr-bastion", Some("52.0.0.9/32"), 5432)
        };
        let drift = compare_group(&d, std::slice::from_ref(&by_hand), &[], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::Missing(r), RuleDrift::Unexpected(a)]
                if r.owner == "a" && a.id == "sgr-bastion"),
            "{drift:?}"
        );
        // Made by this stack (for a developer behind the same address): shared.
        let ours = aws("sgr-shared", Some("52.0.0.9/32"), 5432);
        let drift = compare_group(&d, &[ours], &[], SystemTime::now());
        assert!(matches!(&drift[..], [RuleDrift::Adopt(..)]), "{drift:?}");
    }

    #[test]
    fn in_step_means_no_drift() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("52.14.99.8/32"), Some("sgr-2")),
        ];
        let a = [
            aws("sgr-1", Some("34.201.17.5/32"), 5432),
            aws("sgr-2", Some("52.14.99.8/32"), 5432),
        ];
        assert!(compare_group(&d, &a, &[], SystemTime::now()).is_empty());
    }

    #[test]
    fn developers_behind_one_address_share_its_rule() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("34.201.17.5/32"), None),
        ];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 5432)];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::Adopt(r, a)] if r.owner == "b" && a.id == "sgr-1"),
            "{drift:?}"
        );
    }

    #[test]
    fn a_leftover_rule_is_unexpected_and_the_right_one_adopted() {
        // An IPv6 to IPv4 move that created the new rule but could not revoke the old one.
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-old"))];
        let a = [
            aws("sgr-old", Some("2600:1f18::7/128"), 5432),
            aws("sgr-new", Some("34.201.17.5/32"), 5432),
        ];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert!(
            matches!(&drift[0], RuleDrift::Adopt(_, a) if a.id == "sgr-new"),
            "{drift:?}"
        );
        assert!(
            matches!(&drift[1], RuleDrift::Unexpected(a) if a.id == "sgr-old"),
            "{drift:?}"
        );
        assert_eq!(drift.len(), 2);
    }

    #[test]
    fn each_kind_is_found() {
        let d = [
            row("gone", Some("34.201.17.5/32"), Some("sgr-deleted")),
            row("moved", Some("52.14.99.8/32"), Some("sgr-2")),
            row("never", None, None),
        ];
        let a = [
            aws("sgr-2", Some("52.14.99.9/32"), 5432),
            aws("sgr-open", Some("0.0.0.0/0"), 5432),
            aws("sgr-app", None, 5432),
        ];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Missing(r) if r.owner == "gone"));
        assert!(
            matches!(&drift[1], RuleDrift::Changed(r, a) if r.owner == "moved" && a.id == "sgr-2")
        );
        assert!(matches!(&drift[2], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
    }

    #[test]
    fn an_allowlisted_rule_is_kept_and_only_the_one_it_names() {
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-1"))];
        let a = [
            aws("sgr-1", Some("34.201.17.5/32"), 5432),
            aws("sgr-vpn", Some("10.20.0.0/16"), 5432),
            aws("sgr-open", Some("0.0.0.0/0"), 5432),
            aws("sgr-bastion", Some("52.0.0.9/32"), 5432),
        ];
        let entry = |cidr: &str, id: Option<&str>| AllowedRule {
            cidr: Cidr::parse(cidr),
            aws_rule_id: id.map(str::to_owned),
            ip_protocol: Some("tcp".into()),
            from_port: Some(5432),
            to_port: Some(5432),
            reason: "vpn".into(),
            added_by: "ops".into(),
        };
        let allowed = [
            entry("10.20.0.0/16", None),
            entry("52.0.0.9/32", Some("sgr-bastion")),
            // The id given too: both must match, and this id has another source.
            entry("0.0.0.0/0", Some("sgr-vpn")),
        ];
        let drift = compare_group(&d, &a, &allowed, SystemTime::now());
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Allowed(a, _) if a.id == "sgr-vpn"));
        assert!(matches!(&drift[1], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
        assert!(matches!(&drift[2], RuleDrift::Allowed(a, _) if a.id == "sgr-bastion"));
        // A wider entry never covers a narrower or another rule: only an exact one does.
        assert!(!entry("0.0.0.0/0", None).covers(&a[1]));
        assert!(!entry("10.0.0.0/8", None).covers(&a[1]));

        // The bastion's rule widened by hand, to the world or to every port, is drift.
        let widened = [
            aws("sgr-bastion", Some("0.0.0.0/0"), 5432),
            AwsRule {
                ip_protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                ..aws("sgr-bastion", Some("52.0.0.9/32"), 5432)
            },
            aws("sgr-bastion", Some("52.0.0.9/32"), 22),
        ];
        for w in &widened {
            let drift = compare_group(&[], std::slice::from_ref(w), &allowed, SystemTime::now());
            assert!(
                matches!(&drift[..], [RuleDrift::Unexpected(_)]),
                "{w:?}: {drift:?}"
            );
        }
        // An entry from before pinning (its id alone) keeps nothing, and is named as the reason.
        let unpinned = AllowedRule {
            cidr: None,
            ip_protocol: None,
            from_port: None,
            to_port: None,
            ..entry("52.0.0.9/32", Some("sgr-bastion"))
        };
        let drift = compare_group(&[], &widened[..1], &[unpinned], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::NamedByUnpinnedEntry(..)]),
            "{drift:?}"
        );
    }

    #[test]
    fn other_ports_are_a_change() {
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-1"))];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 22)];
        assert!(matches!(
            compare_group(&d, &a, &[], SystemTime::now())[..],
            [RuleDrift::Changed(..)]
        ));
    }
}
