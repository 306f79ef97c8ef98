//! The EC2 calls on a managed security group: list its ingress rules, and make one rule let
//! in exactly one host (modify in place, create, or replace across address families).

use std::time::Duration;

use aws_sdk_ec2::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::{
        Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroupRuleRequest,
        SecurityGroupRuleUpdate, Tag, TagSpecification,
    },
};

use crate::{
    ip::{Cidr, HostCidr},
    rule::ManagedRule,
};

/// The tag every rule this stack creates carries, naming the owner it was made for. It is how
/// a rule proves it is ours: a rule without it (made by hand, or allowlisted) is never taken
/// over, even when it lets in exactly the address a developer asks for.
pub const OWNER_TAG: &str = "db-sync:owner";

/// An EC2 call that failed, with the AWS error code and whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[error("EC2 {operation} failed: {message}")]
pub struct Ec2Error {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

impl Ec2Error {
    /// Whether AWS refused a rule because the group is at its rules quota.
    pub fn is_group_full(&self) -> bool {
        self.code.as_deref() == Some(crate::capacity::GROUP_FULL)
    }
}

fn ec2_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> Ec2Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // A missing group, a missing permission or a malformed request stays so however often it
    // is retried; only throttling, AWS's own faults and the network pass by themselves.
    Ec2Error {
        operation,
        code: e.code().map(str::to_owned),
        message: shared::aws::error_line(&e),
        retryable: shared::aws::is_transient(&e),
    }
}

/// The source of a rule that is not a CIDR: whatever it names lets in, now and after any later
/// change to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferencedSource {
    /// A managed prefix list (`pl-…`): every address the list holds.
    PrefixList(String),
    /// Another security group (`sg-…`): everything that group is attached to.
    Group(String),
}

impl ReferencedSource {
    /// The list's or the group's id, as AWS writes it.
    pub fn id(&self) -> &str {
        match self {
            Self::PrefixList(id) | Self::Group(id) => id,
        }
    }
}

/// An ingress rule as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRule {
    pub id: String,
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// The CIDR source; `None` for a rule whose source is a group or prefix list.
    pub cidr: Option<Cidr>,
    /// The source of a rule whose source is a prefix list or another group.
    pub referenced: Option<ReferencedSource>,
    pub description: Option<String>,
    /// The owner named by the rule's [`OWNER_TAG`], when it has one.
    pub tagged_owner: Option<String>,
}

impl AwsRule {
    /// Whether this stack created the rule (it carries [`OWNER_TAG`]).
    pub fn is_ours(&self) -> bool {
        self.tagged_owner.is_some()
    }

    /// Whether the rule lets in one host only, as a developer's rule does. A wider CIDR, a
    /// prefix list or another group lets in more than any one developer.
    pub fn lets_in_one_host(&self) -> bool {
        self.cidr.is_some_and(|c| c.is_one_host())
    }

    /// The source as text: the CIDR, or the prefix list's or group's id.
    pub fn source(&self) -> Option<String> {
        self.cidr
            .map(|c| c.to_string())
            .or_else(|| self.referenced.as_ref().map(|r| r.id().to_owned()))
    }

    /// Whether this rule lets in exactly what `rule` wants with source `cidr`.
    pub fn matches(&self, rule: &ManagedRule, cidr: Cidr) -> bool {
        self.ip_protocol == rule.ip_protocol
            && self.from_port == rule.from_port
            && self.to_port == rule.to_port
            && self.cidr == Some(cidr)
    }
}

/// The EC2 calls on security groups.
#[derive(Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    /// An EC2 client whose calls end within `timeout`.
    pub fn new(sdk: &aws_config::SdkConfig, timeout: Duration) -> Self {
        Self {
            client: Client::new(&shared::aws::with_timeout(sdk, timeout)),
        }
    }

    /// Every ingress rule of a group (all pages).
    pub async fn ingress_rules(&self, security_group_id: &str) -> Result<Vec<AwsRule>, Ec2Error> {
        let mut pages = self
            .client
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .values(security_group_id)
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        let mut rules = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ec2_error("DescribeSecurityGroupRules", e))?;
            for r in page.security_group_rules() {
                if r.is_egress() == Some(true) || r.group_id() != Some(security_group_id) {
                    continue;
                }
                let cidr = r.cidr_ipv4().or(r.cidr_ipv6()).and_then(Cidr::parse);
                rules.push(AwsRule {
                    id: r.security_group_rule_id().unwrap_or_default().to_owned(),
                    ip_protocol: r.ip_protocol().unwrap_or_default().to_owned(),
                    from_port: r.from_port().unwrap_or(-1),
                    to_port: r.to_port().unwrap_or(-1),
                    cidr,
                    referenced: r
                        .prefix_list_id()
                        .map(|id| ReferencedSource::PrefixList(id.to_owned()))
                        .or_else(|| {
                            r.referenced_group_info()
                                .and_then(|g| g.group_id())
                                .map(|id| ReferencedSource::Group(id.to_owned()))
                        }),
                    description: r.description().map(str::to_owned),
                    tagged_owner: r
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some(OWNER_TAG))
                        .and_then(|t| t.value())
                        .map(str::to_owned),
                });
            }
        }
        Ok(rules)
    }

    /// Makes AWS allow exactly `cidr` for `rule`; returns the AWS rule id now holding it.
    /// Modifies the known rule in place, in its group ([`ManagedRule::group`]); creates it in
    /// `target` when there is none or it was deleted behind our back; replaces it with one in
    /// `target` when the address family changes.
    pub async fn apply(
        &self,
        rule: &ManagedRule,
        cidr: HostCidr,
        target: &str,
    ) -> Result<String, Ec2Error> {
        let Some(id) = rule.aws_rule_id.as_deref() else {
            return self.authorize(rule, cidr, target).await;
        };
        let group = rule.group();
        let existing = self.ingress_rules(group).await?;
        let Some(current) = existing.iter().find(|r| r.id == id) else {
            tracing::warn!(
                rule_id = id,
                group,
                "managed rule is gone from AWS; creating it again"
            );
            return self.authorize(rule, cidr, target).await;
        };
        let same_family = current.cidr.is_some_and(|c| c.is_ipv6() == cidr.is_ipv6());
        if same_family {
            self.modify(rule, id, cidr).await?;
            return Ok(id.to_owned());
        }
        // A rule's source cannot change between IPv4 and IPv6: add the new one, then drop the
        // old, so access is never missing in between.
        let new_id = self.authorize(rule, cidr, target).await?;
        self.revoke(group, id).await?;
        Ok(new_id)
    }

    async fn modify(&self, rule: &ManagedRule, id: &str, cidr: HostCidr) -> Result<(), Ec2Error> {
        let mut request = SecurityGroupRuleRequest::builder()
            .ip_protocol(&rule.ip_protocol)
            .from_port(rule.from_port)
            .to_port(rule.to_port)
            .description(rule.aws_description());
        request = if cidr.is_ipv6() {
            request.cidr_ipv6(cidr.to_string())
        } else {
            request.cidr_ipv4(cidr.to_string())
        };
        self.client
            .modify_security_group_rules()
            .group_id(rule.group())
            .security_group_rules(
                SecurityGroupRuleUpdate::builder()
                    .security_group_rule_id(id)
                    .security_group_rule(request.build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| ec2_error("ModifySecurityGroupRules", e))?;
        Ok(())
    }

    async fn authorize(
        &self,
        rule: &ManagedRule,
        cidr: HostCidr,
        group: &str,
    ) -> Result<String, Ec2Error> {
        let mut permission = IpPermission::builder()
            .ip_protocol(&rule.ip_protocol)
            .from_port(rule.from_port)
            .to_port(rule.to_port);
        permission = if cidr.is_ipv6() {
            permission.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(cidr.to_string())
                    .description(rule.aws_description())
                    .build(),
            )
        } else {
            permission.ip_ranges(
                IpRange::builder()
                    .cidr_ip(cidr.to_string())
                    .description(rule.aws_description())
                    .build(),
            )
        };
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroupRule)
            .tags(Tag::builder().key(OWNER_TAG).value(&rule.owner).build())
            .build();
        let result = self
            .client
            .authorize_security_group_ingress()
            .group_id(group)
            .ip_permissions(permission.build())
            .tag_specifications(tags)
            .send()
            .await;
        match result {
            Ok(out) => out
                .security_group_rules()
                .first()
                .and_then(|r| r.security_group_rule_id())
                .map(str::to_owned)
                .ok_or(Ec2Error {
                    operation: "AuthorizeSecurityGroupIngress",
                    code: None,
                    message: "the response named no security group rule".to_owned(),
                    retryable: true,
                }),
            Err(e) if e.code() == Some("InvalidPermission.Duplicate") => {
                // Already there. A rule this stack made carries its tag (an earlier attempt
                // whose answer was lost, or a developer behind the same address, who shares
                // it): take it. A rule made by hand (or allowlisted) with the same source is
                // not ours: taking it over would let this developer's next move rewrite or
                // revoke it.
                let existing = self.ingress_rules(group).await?;
                let Some(found) = existing.into_iter().find(|r| r.matches(rule, cidr.into()))
                else {
                    return Err(ec2_error("AuthorizeSecurityGroupIngress", e));
                };
                if found.is_ours() {
                    return Ok(found.id);
                }
                Err(Ec2Error {
                    operation: "AuthorizeSecurityGroupIngress",
                    code: Some("ForeignRuleInTheWay".to_owned()),
                    message: format!(
                        "rule {} already lets {cidr} in on these ports, and this stack did not \
                         create it (no {OWNER_TAG} tag); it is left alone and not taken over",
                        found.id
                    ),
                    retryable: false,
                })
            }
            Err(e) => Err(ec2_error("AuthorizeSecurityGroupIngress", e)),
        }
    }

    /// Removes one ingress rule; a rule already gone counts as removed.
    pub async fn revoke(&self, security_group_id: &str, rule_id: &str) -> Result<(), Ec2Error> {
        match self
            .client
            .revoke_security_group_ingress()
            .group_id(security_group_id)
            .security_group_rule_ids(rule_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code().is_some_and(|c| c.ends_with(".NotFound")) => Ok(()),
            Err(e) => Err(ec2_error("RevokeSecurityGroupIngress", e)),
        }
    }
}
