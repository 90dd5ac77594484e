//! Tollgate data plane: the OpenAI-compatible gateway. Built by the data-plane issue.
