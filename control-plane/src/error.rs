//! The one place where control-plane errors become `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::crypto::CryptoError;
use crate::store::StoreError;

/// An admin API error. Messages say what is wrong and how to fix it; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::Unavailable(format!(
                "the store is unavailable ({m}); check that etcd is running and reachable, then retry"
            )),
            StoreError::Invalid(m) => ApiError::FailedPrecondition(format!(
                "the store refused this change as one transaction ({m}); make it in smaller steps"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(e: CryptoError) -> Self {
        ApiError::Internal(format!(
            "a stored secret could not be decrypted ({e}); is the right master key configured?"
        ))
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = e.to_string();
        match e {
            ApiError::InvalidArgument { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field.clone(), message.clone());
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("{field}: {message}"),
                    details,
                )
            }
            ApiError::Unauthenticated(_) => Status::unauthenticated(message),
            ApiError::PermissionDenied(_) => Status::permission_denied(message),
            ApiError::NotFound(_) => Status::not_found(message),
            ApiError::AlreadyExists(_) => Status::already_exists(message),
            ApiError::FailedPrecondition(_) => Status::failed_precondition(message),
            ApiError::Aborted(_) => Status::aborted(message),
            ApiError::Unavailable(_) => Status::unavailable(message),
            ApiError::Internal(_) => {
                tracing::error!(error = %message, "internal error");
                Status::internal(message)
            }
        }
    }
}
