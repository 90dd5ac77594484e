//! Usage accounting: per-request metering, in-memory aggregation per minute window, and the
//! reporter that delivers it to the control plane exactly once.

mod aggregate;
mod meter;
mod reporter;

pub use aggregate::{Aggregator, Counters, UsageKey};
pub use meter::{MAX_TOKENS_PER_CALL, Meter, Recorder, Tokens};
pub use reporter::{UsageSender, run_reporter};
