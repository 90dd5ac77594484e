//! AES-256-GCM for secrets at rest. (being written)
