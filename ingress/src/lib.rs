//! Managed database ingress: the rules that let each developer's current address into the
//! database's security group, shared by sg-ip-update (which moves a rule on request) and
//! drift-check (which converges AWS towards the rules).
//!
//! | module | concept |
//! |---|---|
//! | [`ip`] | which addresses may be let in: exactly one public host ([`ip::HostCidr`]); any CIDR as AWS states it ([`ip::Cidr`]) |
//! | [`group`] | [`group::SecurityGroupId`], the one validator for group ids |
//! | [`principal`] | [`principal::PrincipalPattern`], who may move a rule, and matching the caller AWS authenticated |
//! | [`rule`] | [`rule::ManagedRule`], a row of `managed_ingress_rules`, and its [`rule::RuleStatus`] |
//! | [`store`] | the SQL: reading rows, recording each step, the per-owner lock, the audit |
//! | [`ec2`] | the EC2 calls that make a group's rule match a row |
//! | [`capacity`] | room in the managed groups: rules per family against the quota, and which group a new rule goes to |
//!
//! The table is the source of truth: a new source is recorded (`pending`) before AWS is
//! called, so a failure or a crash in between leaves the row saying what should be.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod capacity;
pub mod ec2;
pub mod group;
pub mod ip;
pub mod principal;
pub mod rule;
pub mod store;
