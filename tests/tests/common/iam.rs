//! The template's functions and the AWS calls their code makes, as the IAM tests read them:
//! which crate each function is built from (read from the template, never a hand-kept list),
//! the SDK calls and the action each needs, and every IAM statement of the template.

use harness::workspace::Workspace;
use serde_norway::Value;

use super::{resources_of_type, template, untag};

/// The SDK calls the code makes, and the IAM action each needs (tags sent with a create need
/// `ec2:CreateTags` as well).
pub const CALLS: [(&str, &str); 11] = [
    (".get_secret_value()", "secretsmanager:GetSecretValue"),
    (".put_secret_value()", "secretsmanager:PutSecretValue"),
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
    (".invoke()", "lambda:InvokeFunction"),
];

/// Every function of template `t` (each `AWS::Serverless::Function`, so a function added to
/// the template is checked without anyone remembering to list it), with the workspace crate
/// its `CodeUri` builds.
pub fn functions_of(t: &Value, ws: &Workspace) -> Vec<(String, String)> {
    let found: Vec<(String, String)> = resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, f)| {
            let code_uri = f["Properties"]["CodeUri"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: CodeUri is not a folder"));
            let krate = ws
                .functions()
                .into_iter()
                .find(|c| {
                    ws.dir(c)
                        .is_some_and(|d| d == std::path::Path::new(code_uri))
                })
                .unwrap_or_else(|| panic!("{name}: {code_uri} is no function crate"));
            (name.to_owned(), krate)
        })
        .collect();
    assert!(found.len() >= 6, "the template's functions: {found:?}");
    found
}

/// [`functions_of`] the template.
pub fn functions(ws: &Workspace) -> Vec<(String, String)> {
    functions_of(&template(), ws)
}

/// A function whose binary carries `shared`'s database code but whose own code never reaches
/// it, so it reads no database secret (and needs no key for one); and the names its crates
/// would have to use to reach it. pool-trigger uses `shared` for logging and the SDK config;
/// the one secret it reads is its own record key, granted as such. The drift-check lister's
/// one secret is the hand-over key (`DriftHandOverKey`, under Secrets Manager's own key, so no
/// `SecretKeyDecrypt`), granted as such. cfn-responder only invokes the migrations and
/// answers CloudFormation.
pub const NO_DATABASE: [(&str, &[&str]); 3] = [
    (
        "PoolTriggerFunction",
        &["Db", "DbConfig", "DB_SECRET", "db::"],
    ),
    (
        "CfnResponderFunction",
        &[
            "Db",
            "DbConfig",
            "DB_SECRET",
            "db::",
            "tokio_postgres",
            "secret::",
        ],
    ),
    // Its part of drift-check's crate ([`PARTS`]) only: it runs outside the VPC.
    (
        "DriftCheckListerFunction",
        &[
            "Db",
            "DbConfig",
            "DB_SECRET",
            "db::",
            "tokio_postgres",
            "ClientWrapper",
        ],
    ),
];

/// A function that runs one part of a crate another function is built from too: one binary,
/// two functions, the part chosen at cold start by a variable (drift-check's `DRIFT_RUNS_AS`),
/// so `sam build` links it once. Its SDK calls are the ones in `files` (under the crate's
/// folder) and no others; the crate's other functions never run those files (see
/// [`runs_part`]).
pub struct Part {
    pub function: &'static str,
    pub krate: &'static str,
    /// The variable and value in the function's environment that choose the part.
    pub chosen_by: (&'static str, &'static str),
    pub files: &'static [&'static str],
}

/// The lister lists the pool (`cognito_pages.rs`: `ListUsers`) and invokes drift-check
/// (`lister.rs`); drift-check, as deployed (`DRIFT_USERS_FROM=lister`), calls neither.
pub const PARTS: [Part; 1] = [Part {
    function: "DriftCheckListerFunction",
    krate: "drift-check",
    chosen_by: ("DRIFT_RUNS_AS", "lister"),
    files: &["src/lister.rs", "src/lister", "src/cognito_pages.rs"],
}];

/// The part `function` runs, if it is one.
pub fn part_of(function: &str) -> Option<&'static Part> {
    PARTS.iter().find(|p| p.function == function)
}

/// Whether `function`'s environment in `t` chooses `part` (the variable set to its value).
pub fn runs_part(t: &Value, function: &str, part: &Part) -> bool {
    let env = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
    env[part.chosen_by.0].as_str() == Some(part.chosen_by.1)
}

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
    statements_of(&template())
}

/// Every IAM statement of template `t`, tagged with the resource that holds it.
pub fn statements_of(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Value::Mapping(resources) = &t["Resources"] {
        for (name, resource) in resources {
            statements(resource, name.as_str().unwrap(), &mut out);
        }
    }
    out
}

/// The roles the `SecretKeyDecrypt` policy (kms:Decrypt on a customer-managed key) names;
/// a role named only where its part is deployed (`!If [PART, !Ref ROLE, !Ref AWS::NoValue]`)
/// counts as named.
pub fn key_roles(t: &Value) -> Vec<String> {
    let named = |v: &Value| -> Vec<String> {
        match super::tagged(v) {
            Some((tag, Value::Sequence(branches))) if tag == "If" && branches.len() == 3 => {
                branches[1..]
                    .iter()
                    .flat_map(super::strings)
                    .filter(|r| r != "AWS::NoValue")
                    .collect()
            }
            _ => super::strings(v),
        }
    };
    match untag(&t["Resources"]["SecretKeyDecrypt"]["Properties"]["Roles"]) {
        Value::Sequence(r) => r.iter().flat_map(named).collect(),
        other => panic!("SecretKeyDecrypt Roles: {other:?}"),
    }
}

/// The role of each function of `t` that reads the database secret (all but those
/// [`NO_DATABASE`]) which `SecretKeyDecrypt` does not name: with the secret under a
/// customer-managed key, that function could not read it.
pub fn roles_missing_the_key(t: &Value, ws: &Workspace) -> Vec<String> {
    let named = key_roles(t);
    functions_of(t, ws)
        .into_iter()
        .filter(|(f, _)| !NO_DATABASE.iter().any(|(u, _)| u == f))
        .map(|(f, _)| format!("{f}Role"))
        .filter(|role| !named.contains(role))
        .collect()
}
