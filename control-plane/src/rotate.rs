//! The re-encrypt pass of a master key rotation: every secret sealed with an older key is
//! sealed again with the active one, record by record, with compare-and-swap.

use crate::crypto::{self, Keyring};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::keys;
use crate::model::AiLlm;
use crate::store::{Store, Txn};

/// Re-encrypts what needs it; returns how many records were rewritten.
pub async fn reencrypt_all(store: &dyn Store, keyring: &Keyring) -> ApiResult<usize> {
    let mut rewritten = 0;
    for cur in db::list::<AiLlm>(store, keys::LLMS).await? {
        let mut llm = cur.value.clone();
        let rk = keys::llm(&llm.id);
        let mut changed = false;
        for (field, sealed) in [("key", &mut llm.key), ("secret", &mut llm.secret)] {
            if let Some(s) = sealed.as_mut()
                && keyring.needs_reencrypt_string(s)
            {
                *s = keyring.reencrypt_string(s, &crypto::aad(&rk, field))?;
                changed = true;
            }
        }
        if changed {
            let txn = Txn::new()
                .when(rk.clone(), cur.revision)
                .put(rk, db::encode(&llm));
            if !store.txn(txn).await?.succeeded {
                return Err(ApiError::Aborted(format!(
                    "configuration {} changed during the re-encrypt pass; run it again",
                    llm.id
                )));
            }
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
