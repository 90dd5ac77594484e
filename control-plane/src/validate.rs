//! Provider validation calls. (being written)
