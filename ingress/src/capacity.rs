//! Room in the managed groups: how many inbound rules each group holds per address family, as
//! AWS reports them (every rule counts, not only ours), against the quota "Inbound or outbound
//! rules per security group" (60 by default); and which group a new rule goes to.
//!
//! AWS counts IPv4 and IPv6 rules apart; a rule whose source is another security group or a
//! prefix list counts in both families (a prefix list as its maximum entries, which a rule
//! does not say: it is counted as one here, and AWS's own refusal moves a rule on).

use std::fmt;

use serde::Serialize;

use crate::{
    ec2::{AwsRule, Ec2, Ec2Error},
    ip::HostCidr,
    rule::ManagedRule,
};

/// The error code AWS answers when a group's rules are at the quota.
pub const GROUP_FULL: &str = "RulesPerSecurityGroupLimitExceeded";

/// The quota's name in Service Quotas (code L-0EA8095F), as the docs and answers name it.
pub const QUOTA_NAME: &str = "Inbound or outbound rules per security group";

/// The default of [`QUOTA_NAME`].
pub const DEFAULT_RULES_PER_GROUP: usize = 60;

/// `RULES_PER_SECURITY_GROUP`, read at cold start: the rules a managed group takes per family
/// ([`QUOTA_NAME`]), from 1 to 1,000 (AWS's ceiling for rules per group times groups per
/// network interface); [`DEFAULT_RULES_PER_GROUP`] when unset.
pub fn rules_per_group(env: &impl shared::env::Env) -> Result<usize, shared::env::ConfigError> {
    const VAR: &str = "RULES_PER_SECURITY_GROUP";
    const EXPECTED: &str = "a whole number from 1 to 1000";
    let n: usize = env.parse_or(VAR, DEFAULT_RULES_PER_GROUP, EXPECTED)?;
    if !(1..=1000).contains(&n) {
        return Err(shared::env::ConfigError::invalid(
            VAR,
            format!("expected {EXPECTED}"),
        ));
    }
    Ok(n)
}

/// An address family: AWS counts each against the quota apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of_ipv6(is_ipv6: bool) -> Self {
        if is_ipv6 { Self::Ipv6 } else { Self::Ipv4 }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        })
    }
}

/// One group's inbound rules per family, as AWS reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupUse {
    pub group: String,
    pub ipv4_rules: usize,
    pub ipv6_rules: usize,
}

impl GroupUse {
    /// Counts `rules`, the group's inbound rules.
    pub fn of(group: &str, rules: &[AwsRule]) -> Self {
        let (mut ipv4_rules, mut ipv6_rules) = (0, 0);
        for r in rules {
            match r.cidr {
                Some(c) if c.is_ipv6() => ipv6_rules += 1,
                Some(_) => ipv4_rules += 1,
                None => {
                    ipv4_rules += 1;
                    ipv6_rules += 1;
                }
            }
        }
        Self {
            group: group.to_owned(),
            ipv4_rules,
            ipv6_rules,
        }
    }

    pub fn rules(&self, family: Family) -> usize {
        match family {
            Family::Ipv4 => self.ipv4_rules,
            Family::Ipv6 => self.ipv6_rules,
        }
    }

    /// The fuller family's share of `quota`, in percent.
    pub fn percent(&self, quota: usize) -> f64 {
        percent(self.ipv4_rules.max(self.ipv6_rules), quota)
    }
}

/// `used` as a share of `quota`, in percent, to two decimals.
pub fn percent(used: usize, quota: usize) -> f64 {
    if quota == 0 {
        return 100.0;
    }
    (used as f64 * 10_000.0 / quota as f64).round() / 100.0
}

/// The managed groups' use as a whole: the fuller family's rules over all groups against the
/// quota times the number of groups, in percent.
pub fn whole_percent(uses: &[GroupUse], quota: usize) -> f64 {
    let v4: usize = uses.iter().map(|u| u.ipv4_rules).sum();
    let v6: usize = uses.iter().map(|u| u.ipv6_rules).sum();
    percent(v4.max(v6), quota * uses.len())
}

/// Every managed group is at the quota for the family: no rule can be added until a slot frees
/// or a group is added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no room for another {family} rule: the {groups} managed security groups hold {rules} rules \
     ({per_group} each at most, the quota \"{QUOTA_NAME}\"); raise that quota in Service Quotas \
     (code L-0EA8095F; then set RulesPerSecurityGroup to match), or add a group to \
     AdditionalDatabaseSecurityGroupIds (and attach it to the database); nothing was changed"
)]
pub struct NoRoom {
    pub family: Family,
    pub groups: usize,
    pub rules: usize,
    pub per_group: usize,
}

/// The most groups `AdditionalDatabaseSecurityGroupIds` may name: the template grants the
/// functions each of them through four conditions (`HasAdditionalGroup1`..`4`); a fifth would
/// be refused by IAM, an error no one reads as "full". Both configs refuse more at cold start.
pub const MAX_ADDITIONAL_GROUPS: usize = 4;

/// The managed groups a rule may be placed in, the first (`DatabaseSecurityGroupId`) first,
/// and the quota each is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    pub ids: Vec<String>,
    pub rules_per_group: usize,
}

impl Groups {
    /// Whether `group` is one of the managed groups (the function's IAM grants cover these
    /// only).
    pub fn manages(&self, group: &str) -> bool {
        self.ids.iter().any(|g| g == group)
    }

    /// A group with room for one more `family` rule, `prefer` first (the group the rule was in),
    /// then the others in order, skipping `full` (groups AWS just refused a rule in). Reads each
    /// group from AWS until one has room.
    pub async fn with_room(
        &self,
        ec2: &Ec2,
        family: Family,
        prefer: Option<&str>,
        full: &[String],
    ) -> Result<Result<String, NoRoom>, Ec2Error> {
        let order = prefer
            .filter(|p| self.ids.iter().any(|g| g == p))
            .into_iter()
            .chain(
                self.ids
                    .iter()
                    .map(String::as_str)
                    .filter(|g| Some(*g) != prefer),
            );
        let mut rules = 0;
        for group in order {
            if full.iter().any(|f| f == group) {
                rules += self.rules_per_group;
                continue;
            }
            let used = GroupUse::of(group, &ec2.ingress_rules(group).await?).rules(family);
            if used < self.rules_per_group {
                return Ok(Ok(group.to_owned()));
            }
            rules += used;
        }
        Ok(Err(NoRoom {
            family,
            groups: self.ids.len(),
            rules,
            per_group: self.rules_per_group,
        }))
    }
}

/// The group a rule moving to `cidr` stays in without looking for room: a live rule stays in
/// its group while the address family is the same (it is modified in place) and the group is
/// still managed. `None`: the rule is to be created (never applied, lapsed, a change of
/// family, or its group was removed from the managed ones, where the function has no grant),
/// where there is room.
pub fn kept_in<'r>(rule: &'r ManagedRule, cidr: HostCidr, groups: &Groups) -> Option<&'r str> {
    let same_family = rule.cidr.is_some_and(|c| c.is_ipv6() == cidr.is_ipv6());
    (rule.aws_rule_id.is_some() && same_family && groups.manages(rule.group()))
        .then(|| rule.group())
}

/// What came of [`apply_with_room`].
#[derive(Debug)]
pub enum Placed {
    /// AWS holds the rule, in `group`.
    Applied { rule_id: String, group: String },
    /// Every group was full; the rule was not applied.
    NoRoom(NoRoom),
}

/// Why [`apply_with_room`] failed.
#[derive(Debug)]
pub enum PlaceFailed {
    Aws(Ec2Error),
    Db(tokio_postgres::Error),
}

/// Applies `rule` at `cidr` in `target` (already recorded as the row's group by the caller);
/// when AWS answers that `target` is full (another request took its last slot, or a prefix
/// list counts for more), records and tries the next group with room, until none is left.
pub async fn apply_with_room(
    ec2: &Ec2,
    groups: &Groups,
    rule: &ManagedRule,
    cidr: HostCidr,
    mut target: String,
    mut record: impl AsyncFnMut(&str) -> Result<(), tokio_postgres::Error>,
) -> Result<Placed, PlaceFailed> {
    let family = Family::of_ipv6(cidr.is_ipv6());
    let mut full = Vec::new();
    loop {
        match ec2.apply(rule, cidr, &target).await {
            Ok(rule_id) => {
                return Ok(Placed::Applied {
                    rule_id,
                    group: target,
                });
            }
            Err(e) if e.is_group_full() && !full.contains(&target) => {
                tracing::warn!(group = %target, "the group is at its rules quota; trying the next");
                full.push(target);
            }
            Err(e) => return Err(PlaceFailed::Aws(e)),
        }
        target = match groups
            .with_room(ec2, family, None, &full)
            .await
            .map_err(PlaceFailed::Aws)?
        {
            Ok(g) => g,
            Err(no_room) => return Ok(Placed::NoRoom(no_room)),
        };
        record(&target).await.map_err(PlaceFailed::Db)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ec2::ReferencedSource, ip::Cidr};

    fn rule(cidr: Option<&str>) -> AwsRule {
        AwsRule {
            id: "sgr-1".into(),
            ip_protocol: "tcp".into(),
            from_port: 5432,
            to_port: 5432,
            cidr: cidr.and_then(Cidr::parse),
            referenced: cidr
                .is_none()
                .then(|| ReferencedSource::Group("sg-0a1b2c3d".into())),
            description: None,
            tagged_owner: None,
        }
    }

    #[test]
    fn each_family_is_counted_apart_and_a_referenced_source_in_both() {
        let rules = [
            rule(Some("34.201.17.5/32")),
            rule(Some("0.0.0.0/0")),
            rule(Some("2600:1f18::7/128")),
            rule(None),
        ];
        let used = GroupUse::of("sg-0a1b2c3d", &rules);
        assert_eq!((used.ipv4_rules, used.ipv6_rules), (3, 2));
        assert_eq!(used.percent(60), 5.0);
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(48, 60), 80.0);
        assert_eq!(percent(47, 60), 78.33);
        assert_eq!(percent(1, 0), 100.0);
        let uses = [
            GroupUse {
                group: "a".into(),
                ipv4_rules: 60,
                ipv6_rules: 0,
            },
            GroupUse {
                group: "b".into(),
                ipv4_rules: 30,
                ipv6_rules: 1,
            },
        ];
        assert_eq!(whole_percent(&uses, 60), 75.0);
    }

    #[test]
    fn the_refusal_says_how_many_which_quota_and_what_to_do() {
        let e = NoRoom {
            family: Family::Ipv4,
            groups: 3,
            rules: 180,
            per_group: 60,
        }
        .to_string();
        for says in [
            "180 rules",
            "3 managed security groups",
            QUOTA_NAME,
            "L-0EA8095F",
            "AdditionalDatabaseSecurityGroupIds",
            "IPv4",
        ] {
            assert!(e.contains(says), "{says:?} in {e}");
        }
    }

    #[test]
    fn a_live_rule_stays_in_its_group_only_while_the_group_is_managed() {
        let groups = Groups {
            ids: vec!["sg-0a1b2c3d".into(), "sg-0e1f2a3b".into()],
            rules_per_group: 60,
        };
        let live = |placed: &str| crate::rule::ManagedRule {
            id: 1,
            security_group_id: "sg-0a1b2c3d".into(),
            owner: "dev".into(),
            description: String::new(),
            ip_protocol: "tcp".into(),
            from_port: 5432,
            to_port: 5432,
            cidr: Cidr::parse("34.201.17.5/32"),
            allow_private: false,
            principal: None,
            allow_unverified: true,
            aws_rule_id: Some("sgr-1".into()),
            placed_group_id: Some(placed.into()),
            status: crate::rule::RuleStatus::Applied,
            last_request_at: None,
            expires_at: None,
        };
        let to =
            crate::ip::HostCidr::recheck(Cidr::parse("34.201.17.6/32").unwrap(), false).unwrap();
        assert_eq!(
            kept_in(&live("sg-0e1f2a3b"), to, &groups),
            Some("sg-0e1f2a3b")
        );
        // Removed from the managed groups: no grant there, so it is placed again.
        assert_eq!(kept_in(&live("sg-0c0c0c0c"), to, &groups), None);
    }
}
