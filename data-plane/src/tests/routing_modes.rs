//! Bare model names over managed and passthrough connections: a request goes only to
//! connections of its credential mode, and a caller's provider key only to one origin.

use super::harness::{KEY, bearer, call, key_hash, start, test_config};
use super::mock_upstream;
use crate::snapshot::build::tests::{conn, key, passthrough, repo};

#[tokio::test]
async fn bare_names_keep_to_the_credential_mode_and_one_origin() {
    let (a, mock_a) = mock_upstream::start().await;
    let (b, mock_b) = mock_upstream::start().await;
    let (url_a, url_b) = (format!("http://{a}/v1"), format!("http://{b}/v1"));
    let resources = vec![
        conn("m1", 1, "managed", &["gpt-4o"], &url_a),
        passthrough(conn("p1", 1, "byok-a", &["gpt-4o"], &url_a)),
        passthrough(conn("p2", 1, "byok-b", &["gpt-4o"], &url_b)),
        repo("r1", &["m1", "p1", "p2"], vec![]),
        key("k1", "r1", key_hash(KEY), 0),
    ];
    let gw = start(test_config("http://127.0.0.1:9"), Some(resources)).await;
    let chat = format!("http://{}/v1/chat/completions", gw.addr);
    let body = r#"{"model":"gpt-4o","messages":[]}"#;

    // Without a provider key: every request goes to the managed connection.
    for _ in 0..4 {
        let (status, answer) =
            call("POST", chat.clone(), &[("authorization", &bearer())], body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let seen: Vec<String> = mock_a
        .requests
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(seen, vec!["Bearer sk-m1"; 4]);

    // With one: the passthrough connections are at two origins, so the caller must choose.
    let own = "Bearer sk-callers-own";
    let byok = [("x-tollgate-key", KEY), ("authorization", own)];
    let (status, answer) = call("POST", chat.clone(), &byok, body).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer.contains("byok-a/gpt-4o") && answer.contains("byok-b/gpt-4o"),
        "{answer}"
    );
    assert!(mock_b.requests.lock().expect("lock").is_empty());

    let (status, answer) = call(
        "POST",
        chat.clone(),
        &byok,
        r#"{"model":"byok-b/gpt-4o","messages":[]}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(mock_b.requests.lock().expect("lock")[0].0, own);
}
