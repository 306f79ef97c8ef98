//! Why a run could not check, and whether a retry can help. Drift itself is never an error.

use ingress::ec2::Ec2Error;
use lambda_runtime::Diagnostic;
use shared::{
    db::DbError,
    errors::{Classified, diagnostic},
    schema::SchemaBehind,
};

use crate::{listing::HandOverError, request::RequestError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(#[from] RequestError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    SchemaBehind(#[from] SchemaBehind),
    #[error("could not check: {0}")]
    Ec2(#[from] Ec2Error),
    #[error("could not check: Cognito ListUsers failed: {message}")]
    Cognito { message: String, retryable: bool },
    /// A hand-over from the lister was refused; nothing of it was staged or compared.
    #[error("hand-over refused: {0}")]
    HandOver(#[from] HandOverError),
    /// A staged listing could not be read back.
    #[error("could not check: the staged listing is unreadable: {0}")]
    Listing(String),
}

impl Error {
    /// A failed ListUsers page, classified as every SDK error is.
    pub fn cognito<E, R>(e: &aws_sdk_cognitoidentityprovider::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata
            + std::error::Error
            + 'static,
        R: std::fmt::Debug,
    {
        Self::Cognito {
            message: shared::aws::error_line(e),
            retryable: shared::aws::is_transient(e),
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl Classified for Error {
    fn is_retryable(&self) -> bool {
        match self {
            Self::BadRequest(_) => false,
            Self::Db(e) => e.is_retryable(),
            // Passes once the stack's migration step has run.
            Self::SchemaBehind(_) => true,
            Self::Ec2(e) => e.retryable,
            Self::Cognito { retryable, .. } => *retryable,
            Self::HandOver(_) | Self::Listing(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Db(_) => "Database",
            Self::SchemaBehind(_) => "SchemaBehind",
            Self::Ec2(_) => "Ec2",
            Self::Cognito { .. } => "Cognito",
            Self::HandOver(_) => "HandOver",
            Self::Listing(_) => "Listing",
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic(&e)
    }
}
