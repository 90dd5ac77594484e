//! Errors of the command line, what they print on stderr and their exit codes.

use std::process::ExitCode;

use tollgate_sdk::apply::ApplyError;
use tollgate_sdk::json::JsonError;

/// Exit codes, also shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the control plane refused the call (its message on stderr)
  2  usage error: bad flags, bad apply file, unreadable secret, missing token
  3  the control plane could not be reached";

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The admin API answered with an error or could not be reached.
    Api(tollgate_sdk::Error),
    /// The command line or a local input is wrong.
    Usage(String),
    /// Something local went wrong (rendering, runtime).
    Local(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api(tollgate_sdk::Error::Transport { .. }) => 3,
            Self::Api(tollgate_sdk::Error::Config(_)) | Self::Usage(_) => 2,
            Self::Api(_) | Self::Local(_) => 1,
        }
    }

    /// What goes to stderr: `error: <code>: <message>`, then one line per field violation.
    pub fn render(&self) -> String {
        match self {
            Self::Api(e) => {
                let mut s = format!("error: {e}\n");
                let headline = s.clone();
                for (field, description) in e.field_violations() {
                    // The control plane's message usually is the one violation already.
                    let line = format!("{field}: {description}");
                    if !headline.contains(&line) {
                        s.push_str(&format!("  {line}\n"));
                    }
                }
                s
            }
            Self::Usage(m) | Self::Local(m) => format!("error: {m}\n"),
        }
    }

    /// Prints to stderr and returns the exit code.
    pub fn report(&self) -> ExitCode {
        eprint!("{}", self.render());
        ExitCode::from(self.exit_code())
    }
}

impl From<tollgate_sdk::Error> for CliError {
    fn from(e: tollgate_sdk::Error) -> Self {
        Self::Api(e)
    }
}

impl From<JsonError> for CliError {
    fn from(e: JsonError) -> Self {
        Self::Local(e.to_string())
    }
}

impl From<tollgate_sdk::SecretError> for CliError {
    fn from(e: tollgate_sdk::SecretError) -> Self {
        Self::Usage(e.to_string())
    }
}

impl From<ApplyError> for CliError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Api(e) => Self::Api(e),
            other => Self::Usage(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_renders_code_message_and_violations() {
        let e = CliError::Api(tollgate_sdk::Error::Status {
            code: tonic::Code::InvalidArgument,
            message: "endpoint is not a URL".into(),
            field_violations: vec![("endpoint".into(), "must start with https://".into())],
        });
        assert_eq!(
            e.render(),
            "error: INVALID_ARGUMENT: endpoint is not a URL\n  endpoint: must start with https://\n"
        );
        assert_eq!(e.exit_code(), 1);
        // A violation the message already says is not printed again.
        let e = CliError::Api(tollgate_sdk::Error::Status {
            code: tonic::Code::InvalidArgument,
            message: "endpoint: must start with https://".into(),
            field_violations: vec![("endpoint".into(), "must start with https://".into())],
        });
        assert_eq!(
            e.render(),
            "error: INVALID_ARGUMENT: endpoint: must start with https://\n"
        );
    }

    #[test]
    fn exit_codes() {
        let transport = CliError::Api(tollgate_sdk::Error::Transport {
            addr: "http://127.0.0.1:7070".into(),
            detail: "refused".into(),
        });
        assert_eq!(transport.exit_code(), 3);
        assert!(
            transport
                .render()
                .contains("is the control plane running at")
        );
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Local("x".into()).exit_code(), 1);
    }
}
