//! What several tests (and the benchmark) build alike: unique names, sign-up events, the
//! environment a function is started with, and the managed-rule rows sg-ip-update keeps.

use serde_json::{Value, json};

use crate::{Route, Stack, TestDb, event};

/// `prefix`, a dash and a random suffix: a name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The sample sign-up event (`events/post-confirmation.json`) for the user `sub` with the
/// handle `handle`; the sample's name and email are kept.
pub fn signup(sub: &str, handle: &str) -> Value {
    let mut e = event("post-confirmation.json");
    let attrs = &mut e["request"]["userAttributes"];
    attrs["sub"] = json!(sub);
    attrs["preferred_username"] = json!(handle);
    e
}

/// [`signup`] with an email of its own.
pub fn signup_with_email(sub: &str, handle: &str, email: &str) -> Value {
    let mut e = signup(sub, handle);
    e["request"]["userAttributes"]["email"] = json!(email);
    e
}

fn owned(vars: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
}

/// A function's environment: `db` by `DATABASE_URL` over verify-full TLS, AWS at `moto`'s
/// endpoint (which need not be `db`'s stack), and `vars`.
pub fn function_env(db: &TestDb, moto: &Stack, vars: &[(&str, &str)]) -> Vec<(String, String)> {
    function_env_via(db, moto, Route::Direct, vars)
}

/// [`function_env`] with `db` reached by `route`.
pub fn function_env_via(
    db: &TestDb,
    moto: &Stack,
    route: Route,
    vars: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = db.url_env_via(route);
    env.retain(|(k, _)| !k.starts_with("AWS_ENDPOINT"));
    env.push(("AWS_ENDPOINT_URL".into(), moto.aws_endpoint.clone()));
    env.extend(owned(vars));
    env
}

/// A function's environment: the database credentials in the Secrets Manager secret `arn` on
/// `moto`, `db`'s CA bundle, and `vars`.
pub fn secret_env(
    db: &TestDb,
    moto: &Stack,
    arn: &str,
    vars: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = moto.aws_env();
    env.extend([
        ("DB_SECRET_ARN".to_owned(), arn.to_owned()),
        (
            "DB_CA_BUNDLE".to_owned(),
            db.stack.ca_bundle.display().to_string(),
        ),
    ]);
    env.extend(owned(vars));
    env
}

/// A row of `managed_ingress_rules` as sg-ip-update leaves a rule it applied; fields left at
/// their default are the table's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleRow<'a> {
    pub owner: &'a str,
    pub cidr: Option<&'a str>,
    pub aws_rule_id: Option<&'a str>,
    pub allow_private: bool,
    /// Who may move it through the Function URL.
    pub principal: Option<&'a str>,
    /// Whether a bus event or a bare direct invocation may move it.
    pub allow_unverified: bool,
}

/// Inserts `row` into `group`'s managed rules, `applied`.
pub async fn add_managed_rule(db: &TestDb, group: &str, row: RuleRow<'_>) {
    db.connect_as_app()
        .await
        .expect("connecting as app")
        .execute(
            "INSERT INTO managed_ingress_rules \
             (security_group_id, owner, cidr, aws_rule_id, status, allow_private, principal, allow_unverified) \
             VALUES ($1, $2, $3::text::cidr, $4, 'applied', $5, $6, $7)",
            &[
                &group,
                &row.owner,
                &row.cidr,
                &row.aws_rule_id,
                &row.allow_private,
                &row.principal,
                &row.allow_unverified,
            ],
        )
        .await
        .expect("inserting a managed rule");
}
