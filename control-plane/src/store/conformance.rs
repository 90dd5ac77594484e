//! Conformance suite run against every store backend: the embedded store's unit tests and
//! `tests/store_etcd.rs` call [`run_all`]. Each check panics on the first broken promise, as
//! a test does.
//!
//! Every check writes under its own fresh key prefix, so the suite can run on an etcd that
//! holds other data. The revision checks expect no other writer of the store while they run.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{EventKind, KeyValue, Revision, Store, StoreError, Txn, WatchEvent, WatchStream};

/// How long a watch may take to deliver an event that is due.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a watch must stay silent to show it sends nothing more.
const QUIET: Duration = Duration::from_millis(300);

/// Runs every check in turn.
pub async fn run_all(store: Arc<dyn Store>) {
    put_get_delete(&store).await;
    revisions_count_writing_txns(&store).await;
    create_and_mod_revisions(&store).await;
    list_is_sorted_and_prefix_isolated(&store).await;
    list_range_is_half_open(&store).await;
    compare_and_swap(&store).await;
    absent_compare(&store).await;
    multi_op_atomicity(&store).await;
    rejects_invalid_txns(&store).await;
    concurrent_cas_has_one_winner(&store).await;
    watch_replays_then_follows(&store).await;
    watch_is_prefix_isolated(&store).await;
    watch_sees_deletes(&store).await;
}

/// A key prefix no other check or run uses.
fn unique(check: &str) -> String {
    format!("conformance/{}/{check}/", uuid::Uuid::new_v4().simple())
}

async fn put(store: &Arc<dyn Store>, key: &str, value: &str) -> Revision {
    let response = store
        .txn(Txn::new().put(key, value))
        .await
        .expect("put failed");
    assert!(
        response.succeeded,
        "unconditional put of {key} did not succeed"
    );
    response.revision
}

async fn get(store: &Arc<dyn Store>, key: &str) -> Option<KeyValue> {
    store.get(key).await.expect("get failed")
}

async fn revision(store: &Arc<dyn Store>) -> Revision {
    store.revision().await.expect("revision failed")
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("watch delivered an unexpected item: {item:?}");
    }
}

fn put_event(
    key: &str,
    value: &str,
    create_revision: Revision,
    mod_revision: Revision,
) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key.to_owned(),
            value: value.as_bytes().to_vec(),
            create_revision,
            mod_revision,
        },
    }
}

fn delete_event(key: &str, revision: Revision) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: key.to_owned(),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: revision,
        },
    }
}

/// A put is readable with its revisions; a delete removes it; deleting a missing key is fine.
pub async fn put_get_delete(store: &Arc<dyn Store>) {
    let key = format!("{}k", unique("put_get_delete"));
    assert_eq!(get(store, &key).await, None, "fresh key exists");
    let rev = put(store, &key, "v1").await;
    let expected = KeyValue {
        key: key.clone(),
        value: b"v1".to_vec(),
        create_revision: rev,
        mod_revision: rev,
    };
    assert_eq!(get(store, &key).await, Some(expected));
    let deleted = store.txn(Txn::new().delete(&key)).await.expect("delete");
    assert!(deleted.succeeded);
    assert_eq!(deleted.revision, rev + 1, "a delete is a write");
    assert_eq!(get(store, &key).await, None, "deleted key still readable");
    let again = store
        .txn(Txn::new().delete(&key))
        .await
        .expect("delete missing");
    assert!(again.succeeded, "deleting a missing key must not fail");
}

/// Each writing txn bumps the revision by exactly one; txns that write nothing do not.
pub async fn revisions_count_writing_txns(store: &Arc<dyn Store>) {
    let p = unique("revisions");
    let start = revision(store).await;
    let r1 = put(store, &format!("{p}a"), "1").await;
    assert_eq!(r1, start + 1, "a put bumps the revision by one");
    let multi = Txn::new()
        .put(format!("{p}b"), "2")
        .put(format!("{p}c"), "3");
    let r2 = store.txn(multi).await.expect("multi put").revision;
    assert_eq!(r2, r1 + 1, "a txn of two puts bumps the revision once");
    assert_eq!(revision(store).await, r2);

    let failed = store
        .txn(
            Txn::new()
                .when(format!("{p}a"), r1 + 100)
                .put(format!("{p}a"), "x"),
        )
        .await
        .expect("failed txn");
    assert!(!failed.succeeded);
    assert_eq!(
        failed.revision, r2,
        "a failed txn reports the current revision"
    );
    let empty = store
        .txn(Txn::new().when(format!("{p}a"), r1))
        .await
        .expect("empty txn");
    assert!(empty.succeeded, "compares of an op-less txn hold");
    assert_eq!(empty.revision, r2, "a txn without ops does not bump");
    let missing = store
        .txn(Txn::new().delete(format!("{p}missing")))
        .await
        .expect("delete missing");
    assert_eq!(
        missing.revision, r2,
        "deleting a missing key writes nothing"
    );
    assert_eq!(revision(store).await, r2);
    assert_eq!(put(store, &format!("{p}a"), "4").await, r2 + 1);
}

/// `create_revision` stays until the key is deleted; `mod_revision` follows every write.
pub async fn create_and_mod_revisions(store: &Arc<dyn Store>) {
    let key = format!("{}k", unique("create_mod"));
    let r1 = put(store, &key, "1").await;
    let r2 = put(store, &key, "2").await;
    let kv = get(store, &key).await.expect("key written");
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2));
    store.txn(Txn::new().delete(&key)).await.expect("delete");
    let r4 = put(store, &key, "3").await;
    let kv = get(store, &key).await.expect("key rewritten");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (r4, r4),
        "recreated key"
    );
}

/// `list` returns the keys under a prefix, sorted, and no key that merely starts alike.
pub async fn list_is_sorted_and_prefix_isolated(store: &Arc<dyn Store>) {
    let p = unique("list");
    for key in ["a/c", "a/a", "ab", "a", "a/b/x", "b/a"] {
        put(store, &format!("{p}{key}"), key).await;
    }
    let (kvs, read_at) = store.list(&format!("{p}a/")).await.expect("list");
    let keys: Vec<_> = kvs.iter().map(|kv| kv.key.strip_prefix(&p)).collect();
    assert_eq!(keys, [Some("a/a"), Some("a/b/x"), Some("a/c")]);
    assert_eq!(kvs[0].value, b"a/a");
    assert_eq!(
        read_at,
        revision(store).await,
        "list reports its read revision"
    );
    assert!(kvs.iter().all(|kv| kv.mod_revision <= read_at));
    let (all, _) = store.list(&p).await.expect("list all");
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2).all(|w| w[0].key < w[1].key),
        "list is not sorted"
    );
    let (none, _) = store.list(&format!("{p}zzz/")).await.expect("empty list");
    assert!(none.is_empty());
}

pub async fn list_range_is_half_open(store: &Arc<dyn Store>) {
    let p = unique("range");
    for key in [
        "t/001/a", "t/002/b", "t/002/c", "t/003/d", "t/004/e", "u/002/x",
    ] {
        put(store, &format!("{p}{key}"), key).await;
    }
    let range = |start: &str, end: &str| {
        let (start, end) = (format!("{p}{start}"), format!("{p}{end}"));
        async move {
            let kvs = store.list_range(&start, &end).await.expect("range");
            kvs.iter()
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        range("t/002", "t/004").await,
        ["t/002/b", "t/002/c", "t/003/d"]
    );
    assert_eq!(range("t/", "t0").await.len(), 5, "a prefix as a range");
    assert!(range("t/004", "t/002").await.is_empty(), "start after end");
    assert!(range("t/005", "t/009").await.is_empty());
}

/// A txn applies when its compares hold and writes nothing at all when one fails.
pub async fn compare_and_swap(store: &Arc<dyn Store>) {
    let p = unique("cas");
    let (key, other) = (format!("{p}k"), format!("{p}other"));
    let r1 = put(store, &key, "1").await;
    let won = store
        .txn(Txn::new().when(&key, r1).put(&key, "2"))
        .await
        .expect("cas");
    assert!(won.succeeded, "cas at the current revision must apply");
    let stale = Txn::new().when(&key, r1).put(&key, "3").put(&other, "x");
    let lost = store.txn(stale).await.expect("stale cas");
    assert!(!lost.succeeded, "cas at a stale revision must fail");
    assert_eq!(lost.revision, won.revision);
    let kv = get(store, &key).await.expect("key");
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision),
        (&b"2"[..], won.revision)
    );
    assert_eq!(get(store, &other).await, None, "failed txn wrote a key");
}

/// Revision 0 in a compare means "absent": a create-if-missing.
pub async fn absent_compare(store: &Arc<dyn Store>) {
    let key = format!("{}k", unique("absent"));
    let create = || Txn::new().when(&key, 0).put(&key, "v");
    assert!(store.txn(create()).await.expect("create").succeeded);
    assert!(!store.txn(create()).await.expect("recreate").succeeded);
    store.txn(Txn::new().delete(&key)).await.expect("delete");
    assert!(store.txn(create()).await.expect("create again").succeeded);
}

/// All ops of a txn land at one revision, or none do.
pub async fn multi_op_atomicity(store: &Arc<dyn Store>) {
    let p = unique("atomic");
    let (x, y, z) = (format!("{p}x"), format!("{p}y"), format!("{p}z"));
    put(store, &z, "z").await;
    let txn = Txn::new().put(&x, "x").put(&y, "y").delete(&z);
    let response = store.txn(txn).await.expect("multi-op txn");
    assert!(response.succeeded);
    for key in [&x, &y] {
        let kv = get(store, key).await.expect("written");
        assert_eq!(kv.mod_revision, response.revision);
    }
    assert_eq!(get(store, &z).await, None);
    let failing = Txn::new()
        .when(&x, response.revision)
        .when(&y, 0)
        .put(&x, "x2")
        .delete(&y);
    assert!(!store.txn(failing).await.expect("failing txn").succeeded);
    assert_eq!(get(store, &x).await.map(|kv| kv.value), Some(b"x".to_vec()));
    assert!(get(store, &y).await.is_some(), "failed txn deleted a key");
}

/// Both backends reject what etcd rejects: a key written twice, more than 128 ops.
pub async fn rejects_invalid_txns(store: &Arc<dyn Store>) {
    let p = unique("invalid");
    let key = format!("{p}k");
    let before = revision(store).await;
    let twice = Txn::new().put(&key, "1").put(&key, "2");
    let put_delete = Txn::new().put(&key, "1").delete(&key);
    let mut many = Txn::new();
    for i in 0..129 {
        many = many.put(format!("{p}{i}"), "v");
    }
    for txn in [twice, put_delete, many] {
        match store.txn(txn).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    let deletes = Txn::new().delete(&key).delete(&key);
    assert!(store.txn(deletes).await.expect("double delete").succeeded);
    assert_eq!(revision(store).await, before, "a rejected txn wrote");
    assert!(store.list(&p).await.expect("list").0.is_empty());
}

/// 20 racing compare-and-swaps from one revision: exactly one wins.
pub async fn concurrent_cas_has_one_winner(store: &Arc<dyn Store>) {
    let key = format!("{}k", unique("race"));
    let start = put(store, &key, "start").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let txn = Txn::new().when(&key, start).put(&key, format!("task-{i}"));
                (i, store.txn(txn).await.expect("racing cas"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, response) = task.await.expect("cas task panicked");
        if response.succeeded {
            winners.push((i, response.revision));
        }
    }
    let [(winner, revision)] = winners[..] else {
        panic!("expected exactly one winner, got {winners:?}");
    };
    let kv = get(store, &key).await.expect("key");
    assert_eq!(kv.value, format!("task-{winner}").into_bytes());
    assert_eq!((kv.mod_revision, revision), (start + 1, start + 1));
}

/// A watch from a past revision replays history in order, then follows live changes.
pub async fn watch_replays_then_follows(store: &Arc<dyn Store>) {
    let p = unique("watch_replay");
    let (a, b, c, d) = (
        format!("{p}a"),
        format!("{p}b"),
        format!("{p}c"),
        format!("{p}d"),
    );
    let r1 = put(store, &a, "1").await;
    // Ops in reverse key order: events of a txn still come in key order.
    let r2 = store
        .txn(Txn::new().put(&c, "3").put(&b, "2"))
        .await
        .expect("txn")
        .revision;
    let r3 = put(store, &a, "1b").await;

    let mut all = store.watch(&p, r1 - 1).await.expect("watch");
    assert_eq!(next_event(&mut all).await, put_event(&a, "1", r1, r1));
    assert_eq!(next_event(&mut all).await, put_event(&b, "2", r2, r2));
    assert_eq!(next_event(&mut all).await, put_event(&c, "3", r2, r2));
    assert_eq!(next_event(&mut all).await, put_event(&a, "1b", r1, r3));
    let mut later = store.watch(&p, r2).await.expect("watch from r2");
    assert_eq!(next_event(&mut later).await, put_event(&a, "1b", r1, r3));
    assert_quiet(&mut all).await;

    let r4 = put(store, &d, "4").await;
    let r5 = put(store, &d, "5").await;
    for stream in [&mut all, &mut later] {
        assert_eq!(next_event(stream).await, put_event(&d, "4", r4, r4));
        assert_eq!(next_event(stream).await, put_event(&d, "5", r4, r5));
    }
    assert_quiet(&mut later).await;
}

/// A watch sees only its prefix, not keys that merely start alike or other prefixes.
pub async fn watch_is_prefix_isolated(store: &Arc<dyn Store>) {
    let p = unique("watch_prefix");
    let from = revision(store).await;
    let mut stream = store.watch(&format!("{p}w/"), from).await.expect("watch");
    put(store, &format!("{p}wx"), "no").await;
    put(store, &format!("{p}other/k"), "no").await;
    let rev = put(store, &format!("{p}w/k"), "yes").await;
    let key = format!("{p}w/k");
    assert_eq!(
        next_event(&mut stream).await,
        put_event(&key, "yes", rev, rev)
    );
    assert_quiet(&mut stream).await;
}

/// Deletes reach watchers, with an empty value and the delete's revision.
pub async fn watch_sees_deletes(store: &Arc<dyn Store>) {
    let p = unique("watch_delete");
    let key = format!("{p}k");
    let from = revision(store).await;
    let r1 = put(store, &key, "v").await;
    let mut stream = store.watch(&p, from).await.expect("watch");
    let r2 = store
        .txn(Txn::new().delete(&key))
        .await
        .expect("delete")
        .revision;
    assert_eq!(next_event(&mut stream).await, put_event(&key, "v", r1, r1));
    assert_eq!(next_event(&mut stream).await, delete_event(&key, r2));
    let r3 = put(store, &key, "again").await;
    assert_eq!(
        next_event(&mut stream).await,
        put_event(&key, "again", r3, r3)
    );
    assert_quiet(&mut stream).await;
}
