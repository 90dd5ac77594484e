//! Embedded file-backed store. (being written)
pub struct EmbeddedStore;
