//! Test harness: starts real etcd, the real binaries and mock providers.
