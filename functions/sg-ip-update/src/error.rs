//! What can go wrong with a request, whether a retry can help, and how each failure is
//! answered: the runtime's error type, a Function URL status, an audit outcome.

use ingress::{
    capacity::NoRoom,
    ec2::Ec2Error,
    ip::IpError,
    store::{AuditOutcome, Via},
};
use lambda_runtime::Diagnostic;
use shared::{
    db::DbError,
    errors::{Classified, diagnostic_for_client},
    schema::SchemaBehind,
};

use crate::Source;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the event is neither an EventBridge event nor a bare {{\"owner\", \"ip\"}} object: {0}"
    )]
    BadEvent(String),
    #[error(
        "EventBridge event from source {event_source:?} with detail-type {detail_type:?} refused: only \
         {expected_source:?} / {expected_detail_type:?} events are IP changes"
    )]
    WrongEnvelope {
        event_source: String,
        detail_type: String,
        expected_source: String,
        expected_detail_type: String,
    },
    #[error(
        "this function takes only {takes} requests (SG_IP_UPDATE_SOURCE); a {via} payload \
         is refused{}; nothing was changed",
        claimed.as_ref().map_or_else(String::new, |c| format!(" (it claims the caller {c}, which AWS did not check)"))
    )]
    WrongSource {
        takes: Source,
        via: Via,
        /// The identity a Function URL-shaped payload claims, as written by its invoker.
        claimed: Option<String>,
    },
    #[error(
        "this signed request for owner {0:?} was already taken; the same request again is \
         refused (sign a new one); nothing was changed"
    )]
    Replayed(String),
    #[error(
        "the Function URL request carries no caller identity (requestContext.authorizer.iam); \
         is the URL's AuthType AWS_IAM? nothing was changed"
    )]
    NoIdentity,
    #[error("{caller} may not move the rule of owner {owner:?}; nothing was changed")]
    Unauthorized { caller: String, owner: String },
    #[error(
        "owner {owner:?}'s rule moves only on a signed request from its principal (the Function \
         URL, scripts/send-ip-change); this {via} request proves no sender; nothing was changed"
    )]
    Unverified { owner: String, via: Via },
    #[error("owner {0:?} is not a valid owner name (1-64 of A-Z a-z 0-9 . _ @ + -)")]
    InvalidOwner(String),
    #[error("the description is invalid: {0}")]
    InvalidDescription(&'static str),
    #[error("owner {owner:?} has no managed rule in {security_group_id}; nothing was changed")]
    UnknownOwner {
        owner: String,
        security_group_id: String,
    },
    #[error("refused IP {ip:?}: {source}; nothing was changed")]
    InvalidIp { ip: String, source: IpError },
    #[error("another request for owner {0:?} held the rule for too long; try again")]
    Busy(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    SchemaBehind(#[from] SchemaBehind),
    #[error("{0}; the rule is marked failed and drift-check will converge it")]
    Apply(Ec2Error),
    /// Every managed group is at the rules quota. Not retried: no retry (nor drift-check)
    /// finds room until a rule lapses, the quota is raised or a group is added.
    #[error("{0}")]
    NoRoom(NoRoom),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl Classified for Error {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            // The row says what should be; a retry (or drift-check) applies it once AWS can.
            Self::Apply(e) => e.retryable,
            // Passes once the stack's migration step has run.
            Self::Busy(_) | Self::SchemaBehind(_) => true,
            Self::BadEvent(_)
            | Self::WrongEnvelope { .. }
            | Self::WrongSource { .. }
            | Self::Replayed(_)
            | Self::NoIdentity
            | Self::Unauthorized { .. }
            | Self::Unverified { .. }
            | Self::InvalidOwner(_)
            | Self::InvalidDescription(_)
            | Self::UnknownOwner { .. }
            | Self::InvalidIp { .. }
            | Self::NoRoom(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::WrongEnvelope { .. } => "WrongEnvelope",
            Self::WrongSource { .. } => "WrongSource",
            Self::Replayed(_) => "Replayed",
            Self::NoIdentity => "NoIdentity",
            // One name for the three, so an answer does not tell whether an owner exists.
            Self::Unauthorized { .. } | Self::Unverified { .. } | Self::UnknownOwner { .. } => {
                "Unauthorized"
            }
            Self::InvalidOwner(_) => "InvalidOwner",
            Self::InvalidDescription(_) => "InvalidDescription",
            Self::InvalidIp { .. } => "InvalidIp",
            Self::Busy(_) => "Busy",
            Self::Db(_) => "Database",
            Self::SchemaBehind(_) => "SchemaBehind",
            Self::Apply(_) => "AwsApply",
            Self::NoRoom(_) => "NoRoom",
        }
    }
}

impl Error {
    /// The HTTP status a Function URL caller gets: a refusal 403, a bad request 400, a
    /// failure that may pass 503, any other failure 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NoIdentity
            | Self::WrongSource { .. }
            | Self::Replayed(_)
            | Self::Unauthorized { .. }
            | Self::Unverified { .. }
            | Self::UnknownOwner { .. } => 403,
            Self::BadEvent(_)
            | Self::WrongEnvelope { .. }
            | Self::InvalidOwner(_)
            | Self::InvalidDescription(_)
            | Self::InvalidIp { .. } => 400,
            // The service cannot take the rule until an operator acts; the body says how.
            Self::NoRoom(_) => 503,
            e if e.is_retryable() => 503,
            _ => 500,
        }
    }

    /// How a refusal before the owner's row was read is audited.
    pub(crate) fn audit_outcome(&self) -> AuditOutcome {
        match self {
            Self::NoIdentity
            | Self::WrongSource { .. }
            | Self::Unauthorized { .. }
            | Self::Unverified { .. } => AuditOutcome::RefusedUnauthorized,
            Self::Replayed(_) => AuditOutcome::RefusedReplay,
            _ => AuditOutcome::RefusedInvalidRequest,
        }
    }
}

impl Error {
    /// What the caller is told. An unknown owner, a caller the row does not name and a sender
    /// the row does not accept get the same answer, so a caller cannot learn which owners
    /// exist by trying names; the log line and the audit keep which it was.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthorized { owner, .. }
            | Self::Unverified { owner, .. }
            | Self::UnknownOwner { owner, .. } => format!(
                "this request may not move a rule for owner {owner:?} (only a signed request \
                 from the principal its row names may); nothing was changed"
            ),
            other => other.to_string(),
        }
    }

    /// What a Function URL caller is told: [`Error::public_message`], except that a failure of
    /// the database or of EC2 is named without its text, which carries the database's host,
    /// port and name or EC2's own words (the log line and the row keep them).
    pub fn url_message(&self) -> String {
        match self {
            Self::Db(_) | Self::SchemaBehind(_) => {
                "the rules' database could not be used just now; nothing was changed; try again"
                    .to_owned()
            }
            Self::Apply(e) if e.retryable => "AWS did not apply the rule just now; the rule is \
                marked failed and drift-check will converge it; try again"
                .to_owned(),
            Self::Apply(_) => "AWS refused to apply the rule; the rule is marked failed, for \
                drift-check and the operators to see"
                .to_owned(),
            other => other.public_message(),
        }
    }

    /// The runtime's error: the class and kind, with [`Error::public_message`].
    pub fn diagnostic(&self) -> Diagnostic {
        diagnostic_for_client(self, self.public_message())
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        e.diagnostic()
    }
}
