//! The comparison of a group's rows with its AWS rules, kept foreign rules judged by
//! [`super::allowlist`]. Pure: every difference is decided here, before any change.

use std::{
    collections::{HashMap, HashSet},
    time::SystemTime,
};

use ingress::{
    ec2::AwsRule,
    rule::{ManagedRule, RuleStatus},
};

pub use super::allowlist::AllowedRule;

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

/// When each row without an `expires_at` of its own lapses ([`ingress::store::LAPSES_AT`]),
/// by row id.
pub type OpenEnded = HashMap<i64, SystemTime>;

/// Compares a group's rows with its AWS rules at `now`. A row is satisfied by any rule that lets
/// in exactly what it wants (its own first; developers behind one address share one), else its
/// own rule is `Changed`, else it is `Missing`. A row past its lifetime (its `expires_at`, or
/// for a row without one its time in `open_ended`) wants its rule gone (`Expired`), and an
/// expired row wants nothing. Rules no row claims are unexpected, whatever their source (a
/// CIDR, a prefix list, another group), unless an allowlist entry names them.
pub fn compare_group(
    desired: &[ManagedRule],
    actual: &[AwsRule],
    allowed: &[AllowedRule],
    now: SystemTime,
    open_ended: &OpenEnded,
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
        let lapsed = rule.has_lapsed(now)
            || rule.expires_at.is_none() && open_ended.get(&rule.id).is_some_and(|at| *at <= now);
        if lapsed {
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
        if !claimed.contains(&a.id) {
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

    use ingress::{ec2::ReferencedSource, ip::Cidr, rule::RuleStatus};

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
            placed_group_id: None,
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
        let drift = compare_group(
            &[lapsed.clone(), fresh.clone()],
            &a,
            &[],
            now,
            &OpenEnded::new(),
        );
        assert_eq!(
            drift,
            [RuleDrift::Expired(lapsed.clone(), Some(a[0].clone()))]
        );

        // Already revoked by hand: still expired, nothing in AWS to revoke.
        let drift = compare_group(
            std::slice::from_ref(&lapsed),
            &a[1..],
            &[],
            now,
            &OpenEnded::new(),
        );
        assert_eq!(drift[0], RuleDrift::Expired(lapsed.clone(), None));

        // Once expired, the row wants no rule: one still there is unexpected, none is missing.
        let mut expired = lapsed;
        expired.status = RuleStatus::Expired;
        expired.aws_rule_id = None;
        assert!(
            compare_group(
                std::slice::from_ref(&expired),
                &[],
                &[],
                now,
                &OpenEnded::new()
            )
            .is_empty()
        );
        let drift = compare_group(
            std::slice::from_ref(&expired),
            &a[..1],
            &[],
            now,
            &OpenEnded::new(),
        );
        assert_eq!(drift, [RuleDrift::Unexpected(a[0].clone())]);
    }

    fn aws(id: &str, cidr: Option<&str>, port: i32) -> AwsRule {
        AwsRule {
            id: id.into(),
            ip_protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            cidr: cidr.and_then(Cidr::parse),
            referenced: None,
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
        let drift = compare_group(
            &d,
            std::slice::from_ref(&by_hand),
            &[],
            SystemTime::now(),
            &OpenEnded::new(),
        );
        assert!(
            matches!(&drift[..], [RuleDrift::Missing(r), RuleDrift::Unexpected(a)]
                if r.owner == "a" && a.id == "sgr-bastion"),
            "{drift:?}"
        );
        // Made by this stack (for a developer behind the same address): shared.
        let ours = aws("sgr-shared", Some("52.0.0.9/32"), 5432);
        let drift = compare_group(&d, &[ours], &[], SystemTime::now(), &OpenEnded::new());
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
        assert!(compare_group(&d, &a, &[], SystemTime::now(), &OpenEnded::new()).is_empty());
    }

    #[test]
    fn developers_behind_one_address_share_its_rule() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("34.201.17.5/32"), None),
        ];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 5432)];
        let drift = compare_group(&d, &a, &[], SystemTime::now(), &OpenEnded::new());
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
        let drift = compare_group(&d, &a, &[], SystemTime::now(), &OpenEnded::new());
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
            AwsRule {
                referenced: Some(ReferencedSource::Group("sg-0app0000".into())),
                ..aws("sgr-app", None, 5432)
            },
        ];
        let drift = compare_group(&d, &a, &[], SystemTime::now(), &OpenEnded::new());
        assert_eq!(drift.len(), 4, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Missing(r) if r.owner == "gone"));
        assert!(
            matches!(&drift[1], RuleDrift::Changed(r, a) if r.owner == "moved" && a.id == "sgr-2")
        );
        assert!(matches!(&drift[2], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
        // A rule from another group is judged like any other: no row claims it.
        assert!(matches!(&drift[3], RuleDrift::Unexpected(a) if a.id == "sgr-app"));
    }

    /// An entry naming a prefix list covers a rule from that list, on its ports only, and
    /// never a CIDR rule or a rule from another list.
    #[test]
    fn an_entry_may_name_a_prefix_list_and_covers_only_that_list() {
        let from = |list: &str| AwsRule {
            referenced: Some(ReferencedSource::PrefixList(list.into())),
            ..aws("sgr-list", None, 5432)
        };
        let entry = AllowedRule {
            cidr: None,
            source_ref: Some("pl-0a1b2c3d".into()),
            aws_rule_id: None,
            ip_protocol: Some("tcp".into()),
            from_port: Some(5432),
            to_port: Some(5432),
            reason: "office".into(),
            added_by: "ops".into(),
        };
        assert!(entry.is_pinned());
        assert!(entry.covers(&from("pl-0a1b2c3d")));
        assert!(!entry.covers(&from("pl-0fffffff")));
        assert!(!entry.covers(&aws("sgr-open", Some("0.0.0.0/0"), 5432)));
        let other_port = AwsRule {
            from_port: 22,
            to_port: 22,
            ..from("pl-0a1b2c3d")
        };
        assert!(!entry.covers(&other_port));
    }

    /// A row without an expiry lapses at the time the store computes for it (one lifetime
    /// after its last request); a row with one keeps its own.
    #[test]
    fn a_row_without_an_expiry_lapses_at_its_open_ended_time() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let stale = row("andrew", Some("34.201.17.5/32"), Some("sgr-a"));
        let fresh = ManagedRule {
            id: 2,
            ..row("bea", Some("52.14.99.8/32"), Some("sgr-b"))
        };
        let a = [
            aws("sgr-a", Some("34.201.17.5/32"), 5432),
            aws("sgr-b", Some("52.14.99.8/32"), 5432),
        ];
        let open_ended = OpenEnded::from([(1, now - hour), (2, now + hour)]);
        let drift = compare_group(&[stale.clone(), fresh], &a, &[], now, &open_ended);
        assert_eq!(drift, [RuleDrift::Expired(stale, Some(a[0].clone()))]);
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
            source_ref: None,
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
        let drift = compare_group(&d, &a, &allowed, SystemTime::now(), &OpenEnded::new());
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
            let drift = compare_group(
                &[],
                std::slice::from_ref(w),
                &allowed,
                SystemTime::now(),
                &OpenEnded::new(),
            );
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
        let drift = compare_group(
            &[],
            &widened[..1],
            &[unpinned],
            SystemTime::now(),
            &OpenEnded::new(),
        );
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
            compare_group(&d, &a, &[], SystemTime::now(), &OpenEnded::new())[..],
            [RuleDrift::Changed(..)]
        ));
    }
}
