//! The template's functions and the AWS calls their code makes, as the IAM tests read them:
//! which crate each function is built from, the SDK calls and the action each needs, and every
//! IAM statement of the template.

use serde_norway::Value;

use super::{template, untag};

/// The SDK calls the code makes, and the IAM action each needs (tags sent with a create need
/// `ec2:CreateTags` as well).
pub const CALLS: [(&str, &str); 9] = [
    (".get_secret_value()", "secretsmanager:GetSecretValue"),
    (
        ".describe_security_group_rules()",
        "ec2:DescribeSecurityGroupRules",
    ),
    (
        ".authorize_security_group_ingress()",
        "ec2:AuthorizeSecurityGroupIngress",
    ),
    (
        ".modify_security_group_rules()",
        "ec2:ModifySecurityGroupRules",
    ),
    (
        ".revoke_security_group_ingress()",
        "ec2:RevokeSecurityGroupIngress",
    ),
    (".tag_specifications(", "ec2:CreateTags"),
    (".list_users()", "cognito-idp:ListUsers"),
    (".describe_user_pool()", "cognito-idp:DescribeUserPool"),
    (".update_user_pool()", "cognito-idp:UpdateUserPool"),
];

/// Each function's resource, and the crate it is built from.
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("PostConfirmationFunction", "post-confirmation"),
    ("SgIpUpdateFunction", "sg-ip-update"),
    ("SgIpUpdateBusFunction", "sg-ip-update"),
    ("DriftCheckFunction", "drift-check"),
    ("PoolTriggerFunction", "pool-trigger"),
    ("SchemaMigrationsFunction", "schema-migrations"),
];

/// A call a function's binary carries (in `shared`) but its own code cannot reach, so it is
/// not granted; and the names its crates would have to use to reach it. pool-trigger uses
/// `shared` for logging and the SDK config, never the database or its secret.
pub const UNREACHED: [(&str, &str, &[&str]); 1] = [(
    "PoolTriggerFunction",
    "secretsmanager:GetSecretValue",
    &["Db", "DbConfig", "secret", "db::"],
)];

/// Every IAM statement under `v`, tagged with the resource that holds it.
fn statements(v: &Value, owner: &str, out: &mut Vec<(String, Value)>) {
    match untag(v) {
        Value::Mapping(m) => {
            if let Some(Value::Sequence(items)) = m.get("Statement").map(untag) {
                out.extend(items.iter().map(|i| (owner.to_owned(), untag(i).clone())));
            }
            m.values().for_each(|child| statements(child, owner, out));
        }
        Value::Sequence(items) => items.iter().for_each(|i| statements(i, owner, out)),
        _ => {}
    }
}

pub fn all_statements() -> Vec<(String, Value)> {
    let t = template();
    let mut out = Vec::new();
    if let Value::Mapping(resources) = &t["Resources"] {
        for (name, resource) in resources {
            statements(resource, name.as_str().unwrap(), &mut out);
        }
    }
    out
}
