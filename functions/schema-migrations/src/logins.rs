//! The jobs' own database logins, made by the migrations so that no function but this one ever
//! needs the schema owner's secret.
//!
//! The stack creates one secret per job (a user name it chose and a password Secrets Manager
//! generated) and names them in `DB_JOB_LOGINS`. For each, on every Create and Update, this
//! function makes the login exist with exactly that password and a member of its job's group
//! role (`db_sync_<job>`, made by the migrations), then writes the database's address (host,
//! port, name) into the secret, so the job connects where the owner does.
//!
//! The password never travels in a statement: the server stores a SCRAM verifier computed here
//! (a server that logs DDL would otherwise log it). A login is only ever one this function
//! may own: its name starts with its group's, and an existing role with any power beyond
//! logging in (superuser, CREATEROLE, CREATEDB, replication, BYPASSRLS) is refused, never
//! given a new password.

use aws_sdk_secretsmanager::{
    Client,
    error::SdkError,
    operation::{get_secret_value::GetSecretValueError, put_secret_value::PutSecretValueError},
};
use serde_json::{Map, Value};
use shared::{
    db::{Address, DbError},
    env::{ConfigError, Env},
};
use tokio_postgres::GenericClient;

/// The group roles a job's login may join: the migrations make exactly these.
pub const JOB_ROLES: [&str; 5] = [
    "db_sync_post_confirmation",
    "db_sync_pre_sign_up",
    "db_sync_sg_ip_update",
    "db_sync_drift_check",
    "db_sync_sign_in_guard",
];

/// The longest name Postgres keeps (NAMEDATALEN - 1); a longer one would be cut silently.
const MAX_NAME: usize = 63;

/// One job's login, as the template names it: its group role and the secret that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLogin {
    pub role: &'static str,
    pub secret_arn: String,
}

/// Reads `DB_JOB_LOGINS`: `role=secret-arn` pairs separated by commas; empty items (a part
/// left out of the stack) are skipped, and no variable means no logins to make.
pub fn from_lookup(env: &impl Env) -> Result<Vec<JobLogin>, ConfigError> {
    const VAR: &str = "DB_JOB_LOGINS";
    let Some(text) = env.non_empty(VAR) else {
        return Ok(Vec::new());
    };
    let mut logins: Vec<JobLogin> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (role, arn) = item.split_once('=').ok_or_else(|| {
            ConfigError::invalid(VAR, "each item is role=secret-arn, separated by commas")
        })?;
        let role = JOB_ROLES
            .iter()
            .find(|r| **r == role.trim())
            .ok_or_else(|| {
                ConfigError::invalid(
                    VAR,
                    format!("a role is not one of {}", JOB_ROLES.join(", ")),
                )
            })?;
        let arn = arn.trim();
        if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
            return Err(ConfigError::invalid(
                VAR,
                format!("{role}'s secret is not a Secrets Manager ARN"),
            ));
        }
        if logins.iter().any(|l| l.role == *role) {
            return Err(ConfigError::invalid(VAR, format!("{role} is named twice")));
        }
        logins.push(JobLogin {
            role,
            secret_arn: arn.to_owned(),
        });
    }
    Ok(logins)
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("reading {role}'s login secret: {}", shared::aws::error_line(.source.as_ref()))]
    Read {
        role: &'static str,
        #[source]
        source: Box<SdkError<GetSecretValueError>>,
    },
    #[error("writing the database's address into {role}'s login secret: {}", shared::aws::error_line(.source.as_ref()))]
    Write {
        role: &'static str,
        #[source]
        source: Box<SdkError<PutSecretValueError>>,
    },
    #[error("{role}'s login secret is not usable: {reason}")]
    Malformed { role: &'static str, reason: String },
    #[error(
        "{role}'s login user {user} already exists with more than the right to log in \
         (superuser, CREATEROLE, CREATEDB, replication or BYPASSRLS): refusing to set its password"
    )]
    Privileged { role: &'static str, user: String },
    #[error("making {role}'s login user: {}", shared::db::error::describe(.source))]
    Sql {
        role: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the database's address: {0}")]
    Address(#[source] DbError),
}

/// The user name and password a login secret holds, checked: the name must be one this
/// function may own for `role`.
pub fn credentials(
    role: &'static str,
    secret: &Map<String, Value>,
) -> Result<(String, String), LoginError> {
    let malformed = |reason: &str| LoginError::Malformed {
        role,
        reason: reason.to_owned(),
    };
    let user = secret
        .get("username")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("no username"))?;
    let password = secret
        .get("password")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("no password"))?;
    let named_for_the_role = user
        .strip_prefix(role)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|suffix| !suffix.is_empty());
    let plain = user
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !named_for_the_role || !plain || user.len() > MAX_NAME {
        return Err(malformed(&format!(
            "the username must be {role}_ and a suffix of lower-case letters, digits or _, at \
             most {MAX_NAME} characters"
        )));
    }
    if password.chars().count() < 16 {
        return Err(malformed("the password is shorter than 16 characters"));
    }
    Ok((user.to_owned(), password.to_owned()))
}

/// The secret with the database's address in it, or `None` when it already holds it.
pub fn with_address(secret: &Map<String, Value>, address: &Address) -> Option<Map<String, Value>> {
    let mut next = secret.clone();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            next.insert(key.to_owned(), v);
        }
    };
    set("engine", Some(Value::from("postgres")));
    set("host", address.host.clone().map(Value::from));
    set("port", address.port.map(Value::from));
    set("dbname", address.dbname.clone().map(Value::from));
    (next != *secret).then_some(next)
}

/// Makes every job's login as its secret says, and writes the address into each secret.
pub async fn ensure(
    secrets: &Client,
    db: &impl GenericClient,
    address: &Address,
    logins: &[JobLogin],
) -> Result<Vec<String>, LoginError> {
    let mut made = Vec::with_capacity(logins.len());
    for login in logins {
        let role = login.role;
        let secret = read(secrets, login).await?;
        let (user, password) = credentials(role, &secret)?;
        ensure_login(db, role, &user, &password).await?;
        if let Some(next) = with_address(&secret, address) {
            secrets
                .put_secret_value()
                .secret_id(&login.secret_arn)
                .secret_string(Value::Object(next).to_string())
                .send()
                .await
                .map_err(|e| LoginError::Write {
                    role,
                    source: Box::new(e),
                })?;
        }
        made.push(user);
    }
    Ok(made)
}

async fn read(secrets: &Client, login: &JobLogin) -> Result<Map<String, Value>, LoginError> {
    let role = login.role;
    let out = secrets
        .get_secret_value()
        .secret_id(&login.secret_arn)
        .send()
        .await
        .map_err(|e| LoginError::Read {
            role,
            source: Box::new(e),
        })?;
    let text = out.secret_string().ok_or_else(|| LoginError::Malformed {
        role,
        reason: "no SecretString".into(),
    })?;
    // serde's message could quote the text, which holds the password: name only the shape.
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(LoginError::Malformed {
            role,
            reason: "not a JSON object".into(),
        }),
    }
}

/// Creates `user` (or sets its password again) as a member of `role`, with nothing else.
async fn ensure_login(
    db: &impl GenericClient,
    role: &'static str,
    user: &str,
    password: &str,
) -> Result<(), LoginError> {
    let sql = |source| LoginError::Sql { role, source };
    let powers: Option<bool> = db
        .query_opt(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls \
             FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&user],
        )
        .await
        .map_err(sql)?
        .map(|row| row.get(0));
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    // Both names were checked to be [a-z0-9_]; the verifier is base64, digits, '$' and ':'.
    let (user_id, role_id, verifier) = (
        quote_ident(user),
        quote_ident(role),
        quote_literal(&verifier),
    );
    let statement = match powers {
        Some(true) => {
            return Err(LoginError::Privileged {
                role,
                user: user.to_owned(),
            });
        }
        Some(false) => format!(
            "ALTER ROLE {user_id} WITH LOGIN INHERIT PASSWORD {verifier}; GRANT {role_id} TO {user_id}"
        ),
        None => format!(
            "CREATE ROLE {user_id} WITH LOGIN INHERIT PASSWORD {verifier} IN ROLE {role_id}"
        ),
    };
    db.batch_execute(&statement).await.map_err(sql)?;
    tracing::info!(role, user, existed = powers.is_some(), "job login ready");
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-sync-login-AbCdEf";

    fn logins(value: &str) -> Result<Vec<JobLogin>, ConfigError> {
        from_lookup(&HashMap::from([("DB_JOB_LOGINS", value)]))
    }

    #[test]
    fn the_list_skips_parts_left_out_and_refuses_what_it_does_not_know() {
        let got = logins(&format!(
            "db_sync_post_confirmation={ARN},,db_sync_drift_check={ARN},"
        ))
        .unwrap();
        assert_eq!(
            got.iter().map(|l| l.role).collect::<Vec<_>>(),
            ["db_sync_post_confirmation", "db_sync_drift_check"]
        );
        assert!(
            from_lookup(&HashMap::<&str, &str>::new())
                .unwrap()
                .is_empty()
        );
        for bad in [
            "db_sync_post_confirmation",
            "postgres=arn:aws:secretsmanager:us-east-1:1:secret:x",
            "db_sync_drift_check=not-an-arn",
        ] {
            let e = logins(bad).unwrap_err();
            assert_eq!(e.var(), "DB_JOB_LOGINS", "{bad}");
        }
        let twice = logins(&format!(
            "db_sync_drift_check={ARN},db_sync_drift_check={ARN}"
        ));
        assert!(twice.unwrap_err().to_string().contains("twice"));
    }

    fn secret(user: &str, password: &str) -> Map<String, Value> {
        serde_json::json!({"username": user, "password": password})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn only_a_name_of_the_jobs_own_may_be_given_a_password() {
        let role = "db_sync_sg_ip_update";
        let pw = "0123456789abcdefXYZ";
        assert!(credentials(role, &secret("db_sync_sg_ip_update_5b5f0e70", pw)).is_ok());
        for user in [
            "postgres",
            "db_sync_sg_ip_update",
            "db_sync_sg_ip_update_",
            "db_sync_drift_check_5b5f0e70",
            "db_sync_sg_ip_update_X",
            "db_sync_sg_ip_update_a\"; DROP ROLE postgres; --",
            &format!("db_sync_sg_ip_update_{}", "a".repeat(50)),
        ] {
            let e = credentials(role, &secret(user, pw)).unwrap_err();
            assert!(matches!(e, LoginError::Malformed { .. }), "{user}: {e}");
            // The refusal never quotes the password.
            assert!(!e.to_string().contains(pw), "{e}");
        }
        let short = credentials(role, &secret("db_sync_sg_ip_update_1", "short")).unwrap_err();
        assert!(short.to_string().contains("shorter"), "{short}");
    }

    #[test]
    fn the_address_is_written_once() {
        let address = Address {
            host: Some("db.example.internal".into()),
            port: Some(5432),
            dbname: Some("app".into()),
        };
        let first = with_address(&secret("u", "p"), &address).expect("written");
        assert_eq!(first["host"], "db.example.internal");
        assert_eq!(first["port"], 5432);
        assert_eq!(first["dbname"], "app");
        assert_eq!(first["engine"], "postgres");
        assert_eq!(first["password"], "p");
        assert_eq!(with_address(&first, &address), None, "nothing new to write");
    }
}
