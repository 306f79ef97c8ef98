//! Database credentials: the RDS secret format, and a cache that fetches the secret once per
//! execution environment and again only when Postgres rejects the cached password (rotation).

use std::{fmt, sync::Arc};

use aws_sdk_secretsmanager::{
    Client, error::SdkError, operation::get_secret_value::GetSecretValueError,
};
use serde::Deserialize;
use tokio::sync::Mutex;

/// A password that never shows itself in `Debug` or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The secret Secrets Manager keeps for an RDS database.
#[derive(Debug, Clone, Deserialize)]
pub struct DbSecret {
    pub username: String,
    pub password: Password,
    pub host: Option<String>,
    #[serde(default, deserialize_with = "port_number_or_string")]
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub engine: Option<String>,
}

// RDS writes the port as a number; secrets made by hand often hold it as a string.
fn port_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("port is not a number")),
    }
}

impl DbSecret {
    /// Parses the secret string. The error never quotes the input: it is a password.
    pub fn parse(json: &str) -> Result<Self, SecretError> {
        serde_json::from_str(json).map_err(|e| {
            // serde's messages for a missing field or wrong shape name the field, not the value.
            let detail = match e.classify() {
                serde_json::error::Category::Data if e.to_string().starts_with("missing field") => {
                    e.to_string()
                }
                category => format!(
                    "{category:?} error at line {} column {}",
                    e.line(),
                    e.column()
                ),
            };
            SecretError::Malformed(detail)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("GetSecretValue failed: {}", crate::aws::error_line(.0.as_ref()))]
    Fetch(#[source] Box<SdkError<GetSecretValueError>>),
    #[error("the secret has no SecretString (binary secrets are not supported)")]
    NotAString,
    #[error("the secret is not an RDS credentials secret: {0}")]
    Malformed(String),
}

impl SecretError {
    /// Whether trying again later can help: throttling, timeouts and network faults can;
    /// a missing secret, a denied call or a malformed value cannot.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Fetch(e) => match e.as_ref() {
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
                SdkError::ResponseError(_) => true,
                SdkError::ServiceError(service) => {
                    let status = service.raw().status().as_u16();
                    status >= 500
                        || status == 429
                        || service.err().meta().code() == Some("ThrottlingException")
                }
                _ => false,
            },
            Self::NotAString | Self::Malformed(_) => false,
        }
    }
}

/// One secret, fetched lazily and kept for the life of the execution environment.
pub struct SecretCache {
    client: Client,
    secret_id: String,
    cached: Mutex<Option<Arc<DbSecret>>>,
}

impl SecretCache {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            cached: Mutex::new(None),
        }
    }

    /// The cached secret, fetched on first use.
    pub async fn get(&self) -> Result<Arc<DbSecret>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(secret) = cached.as_ref() {
            return Ok(secret.clone());
        }
        let fresh = Arc::new(self.fetch(None).await?);
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Fetches the secret again because `stale` was rejected. When another task already
    /// replaced `stale`, its result is returned instead of fetching twice.
    ///
    /// Secrets Manager's single-user rotation sets the new password in the database before it
    /// makes that version current, so for a moment AWSCURRENT still holds the rejected password
    /// while AWSPENDING holds the working one: then the pending version is used.
    pub async fn refresh(&self, stale: &Arc<DbSecret>) -> Result<Arc<DbSecret>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref() {
            if !Arc::ptr_eq(current, stale) {
                return Ok(current.clone());
            }
        }
        let mut fresh = self.fetch(None).await?;
        if fresh.password == stale.password {
            match self.fetch(Some("AWSPENDING")).await {
                Ok(pending) => fresh = pending,
                // No rotation in progress: the current version is all there is.
                Err(e) => tracing::debug!(error = %e, "no pending secret version"),
            }
        }
        let fresh = Arc::new(fresh);
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch(&self, stage: Option<&str>) -> Result<DbSecret, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
            .map_err(|e| SecretError::Fetch(Box::new(e)))?;
        crate::cold_start::mark("secret");
        let secret = DbSecret::parse(out.secret_string().ok_or(SecretError::NotAString)?)?;
        tracing::info!(
            secret_id = %self.secret_id,
            version = out.version_id().unwrap_or("-"),
            stage = stage.unwrap_or("AWSCURRENT"),
            "fetched database secret"
        );
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rds_format() {
        let s = DbSecret::parse(
            r#"{"username":"app","password":"p@ss","engine":"postgres","host":"db","port":5432,"dbname":"app"}"#,
        )
        .unwrap();
        assert_eq!(s.username, "app");
        assert_eq!(s.password.expose(), "p@ss");
        assert_eq!(s.port, Some(5432));
        assert!(!format!("{s:?}").contains("p@ss"));
    }

    #[test]
    fn accepts_a_port_written_as_text() {
        let s = DbSecret::parse(r#"{"username":"a","password":"b","port":"6543"}"#).unwrap();
        assert_eq!(s.port, Some(6543));
    }

    #[test]
    fn errors_never_quote_the_secret() {
        for bad in [
            r#"{"username":"a","password":12345678}"#,
            r#"{"username":"a","password":"topsecret","port":"topsecret"}"#,
            r#"{"username":"a","password":"topsecret""#,
            "topsecret",
        ] {
            let err = DbSecret::parse(bad).unwrap_err().to_string();
            assert!(
                !err.contains("topsecret") && !err.contains("12345678"),
                "{err}"
            );
        }
        let err = DbSecret::parse(r#"{"username":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `password`"), "{err}");
    }
}
