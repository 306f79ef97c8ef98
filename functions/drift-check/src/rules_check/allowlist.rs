//! The allowlist: entries of `drift_allowed_rules`, each naming a foreign rule an operator
//! declared expected, and the exact matching that decides whether one keeps a rule.

use ingress::{ec2::AwsRule, ip::Cidr};

/// An entry of `drift_allowed_rules`: a foreign rule an operator declared expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRule {
    pub cidr: Option<Cidr>,
    /// The prefix list (`pl-…`) or group (`sg-…`) a rule whose source is not a CIDR names.
    pub source_ref: Option<String>,
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
        (self.cidr.is_some() || self.source_ref.is_some())
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
            && self.source_ref.as_deref() == aws.referenced.as_ref().map(|r| r.id())
            && self.ip_protocol.as_deref() == Some(aws.ip_protocol.as_str())
            && self.from_port == Some(aws.from_port)
            && self.to_port == Some(aws.to_port)
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }

    /// An unpinned entry's old meaning (its CIDR, its id, or both): the rule it was written
    /// for, now reported until the entry is pinned.
    pub(crate) fn names(&self, aws: &AwsRule) -> bool {
        !self.is_pinned()
            && (self.cidr.is_some() || self.aws_rule_id.is_some())
            && self.cidr.is_none_or(|c| aws.cidr == Some(c))
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }
}
