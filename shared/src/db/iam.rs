//! IAM database authentication: instead of a password, a short-lived token signed with the
//! function's own AWS credentials (SigV4 query presigning for the `rds-db` service, action
//! `connect`), accepted by RDS and RDS Proxy for a user granted `rds_iam` and allowed
//! `rds-db:connect` in the function's policy. A token is valid for 15 minutes from its signing,
//! and only at connect time, so one is made for every new connection, never cached.

use std::{fmt::Write as _, time::Duration, time::SystemTime};

use aws_sdk_secretsmanager::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign},
    sign::v4,
};

/// How long a token is valid: RDS accepts no more than 15 minutes.
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Where and as whom to connect; what the token is signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("no AWS credentials to sign the IAM database token with")]
    NoCredentialsProvider,
    #[error("could not load AWS credentials to sign the IAM database token: {0}")]
    Credentials(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("could not sign the IAM database token: {0}")]
    Signing(String),
}

impl IamError {
    /// Whether asking again can succeed (credentials that could not be fetched just now).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Credentials(_))
    }
}

/// Makes a fresh token per connection from the SDK's credentials.
#[derive(Clone)]
pub struct TokenSource {
    target: IamTarget,
    credentials: SharedCredentialsProvider,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Uses the credentials of the function's SDK config (its execution role on Lambda).
    pub fn new(target: IamTarget, sdk: &aws_config::SdkConfig) -> Result<Self, IamError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or(IamError::NoCredentialsProvider)?;
        Ok(Self {
            target,
            credentials,
        })
    }

    pub fn target(&self) -> &IamTarget {
        &self.target
    }

    /// A token signed now, to be sent as the password of one new connection.
    pub async fn token(&self) -> Result<String, IamError> {
        // The SDK's provider chain reads the execution role's keys from the environment on
        // Lambda: no network call per connection.
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| IamError::Credentials(Box::new(e)))?;
        auth_token(&self.target, &credentials, SystemTime::now())
    }
}

/// The token for `target`, signed with `credentials` at `now`: the URL `botocore`'s
/// `generate_db_auth_token` makes, without its `https://`.
pub fn auth_token(
    target: &IamTarget,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, IamError> {
    let url = format!(
        "https://{}:{}/?Action=connect&DBUser={}",
        target.host,
        target.port,
        query_escape(&target.user)
    );
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(TOKEN_LIFETIME);
    settings.signature_location = SignatureLocation::QueryParams;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("rds-db")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| IamError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| IamError::Signing(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| IamError::Signing(e.to_string()))?
        .into_parts();
    let mut token = url
        .strip_prefix("https://")
        .unwrap_or(url.as_str())
        .to_owned();
    // Any order is valid; botocore's (the signature last) makes tokens comparable byte for byte.
    let params = instructions.params();
    let (signature, rest): (Vec<_>, Vec<_>) = params
        .iter()
        .partition(|(name, _)| *name == "X-Amz-Signature");
    for (name, value) in rest.into_iter().chain(signature) {
        let _ = write!(token, "&{name}={}", query_escape(value));
    }
    Ok(token)
}

/// Percent-encodes all but SigV4's unreserved characters, as the signature's canonical query
/// string does: the token must carry the parameters exactly as they were signed.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_carries_the_user_the_lifetime_and_the_scope() {
        let target = IamTarget {
            host: "db.proxy-abc.us-east-1.rds.amazonaws.com".into(),
            port: 5432,
            user: "app user".into(),
            region: "us-east-1".into(),
        };
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let t = auth_token(&target, &creds, SystemTime::UNIX_EPOCH).unwrap();
        assert!(
            t.starts_with(
                "db.proxy-abc.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app%20user&"
            ),
            "{t}"
        );
        assert!(t.contains("X-Amz-Expires=900"), "{t}");
        assert!(
            t.contains(
                "X-Amz-Credential=AKIDEXAMPLE%2F19700101%2Fus-east-1%2Frds-db%2Faws4_request"
            ),
            "{t}"
        );
        assert!(!t.contains("secret"), "{t}");
    }
}
