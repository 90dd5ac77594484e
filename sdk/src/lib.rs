//! Tollgate SDK.
