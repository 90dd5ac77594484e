//! The SDK's one error type: what the server said, or why it could not be reached.

use tonic_types::StatusExt;

/// An admin API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control plane answered with a gRPC error.
    #[error("{}: {message}", code_name(*code))]
    Status {
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message (says what is wrong and how to fix it).
        message: String,
        /// `(field, description)` pairs from a `google.rpc.BadRequest` detail.
        field_violations: Vec<(String, String)>,
    },
    /// The control plane could not be reached.
    #[error("cannot connect to {addr}: {detail}; is the control plane running at {addr}?")]
    Transport {
        /// The address that was dialed.
        addr: String,
        /// What the transport reported.
        detail: String,
    },
    /// The client was configured wrongly (bad address, token not a valid header value).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Builds an error from a status, treating transport failures as [`Error::Transport`].
    pub fn from_status(status: tonic::Status, addr: &str) -> Self {
        if is_transport_failure(&status) {
            return Self::Transport {
                addr: addr.to_string(),
                detail: source_chain(&status),
            };
        }
        let field_violations = status
            .get_error_details()
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| (v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Self::Status {
            code: status.code(),
            message: status.message().to_string(),
            field_violations,
        }
    }

    /// The gRPC code, when the server answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The field violations, when the server sent any.
    pub fn field_violations(&self) -> &[(String, String)] {
        match self {
            Self::Status {
                field_violations, ..
            } => field_violations,
            _ => &[],
        }
    }
}

/// A status that tonic produced locally because the connection failed, not one the server sent.
fn is_transport_failure(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

/// Builds a transport error from a failed connect.
pub(crate) fn transport(addr: &str, err: &tonic::transport::Error) -> Error {
    Error::Transport {
        addr: addr.to_string(),
        detail: source_chain(err),
    }
}

/// The canonical upper-snake name of a gRPC code (`NOT_FOUND`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn decodes_field_violations() {
        let details = ErrorDetails::with_bad_request_violation("name", "must not be empty");
        let status =
            tonic::Status::with_error_details(tonic::Code::InvalidArgument, "bad input", details);
        let err = Error::from_status(status, "http://x");
        assert_eq!(err.code(), Some(tonic::Code::InvalidArgument));
        assert_eq!(
            err.field_violations(),
            &[("name".to_string(), "must not be empty".to_string())]
        );
        assert_eq!(err.to_string(), "INVALID_ARGUMENT: bad input");
    }

    #[test]
    fn plain_status_has_no_violations() {
        let err = Error::from_status(tonic::Status::not_found("no llm x"), "http://x");
        assert_eq!(err.to_string(), "NOT_FOUND: no llm x");
        assert!(err.field_violations().is_empty());
    }

    #[test]
    fn transport_message_names_the_address() {
        let err = Error::Transport {
            addr: "http://127.0.0.1:7070".into(),
            detail: "connection refused".into(),
        };
        assert!(
            err.to_string()
                .ends_with("is the control plane running at http://127.0.0.1:7070?")
        );
    }
}
