//! Typed JSON records over the store: read with their revision, write with compare-and-swap.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::store::{Revision, Store, Txn};

/// A record and the store revision that last wrote it (its version).
#[derive(Clone, Debug)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: Revision,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("stored record {key} is unreadable: {e}")))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain records cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

pub async fn get<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> ApiResult<Option<Versioned<T>>> {
    match store.get(key).await? {
        Some(kv) => Ok(Some(Versioned {
            value: decode(key, &kv.value)?,
            revision: kv.mod_revision,
        })),
        None => Ok(None),
    }
}

pub async fn get_string(store: &dyn Store, key: &str) -> ApiResult<Option<String>> {
    Ok(store
        .get(key)
        .await?
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
}

pub async fn list<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> ApiResult<Vec<Versioned<T>>> {
    let (kvs, _) = store.list(prefix).await?;
    kvs.iter()
        .map(|kv| {
            Ok(Versioned {
                value: decode(&kv.key, &kv.value)?,
                revision: kv.mod_revision,
            })
        })
        .collect()
}

/// The revision `key` was last written at; 0 when it does not exist (what `Txn::when` takes
/// for "still absent").
pub async fn revision_of(store: &dyn Store, key: &str) -> ApiResult<Revision> {
    Ok(store.get(key).await?.map_or(0, |kv| kv.mod_revision))
}

/// The records with keys in `[start, end)`, in key order.
pub async fn list_range<T: DeserializeOwned>(
    store: &dyn Store,
    start: &str,
    end: &str,
) -> ApiResult<Vec<T>> {
    store
        .list_range(start, end)
        .await?
        .iter()
        .map(|kv| decode(&kv.key, &kv.value))
        .collect()
}

/// Commits `txn`; a failed compare becomes `ABORTED` with `conflict` as the message.
pub async fn commit(
    store: &dyn Store,
    txn: Txn,
    conflict: impl Into<String>,
) -> ApiResult<Revision> {
    let resp = store.txn(txn).await?;
    if resp.succeeded {
        Ok(resp.revision)
    } else {
        Err(ApiError::Aborted(conflict.into()))
    }
}
