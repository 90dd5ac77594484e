//! Provider calls fenced in: link-local and metadata hosts refused, answer sizes capped,
//! credentials kept out of what reaches the app, and a patient first-byte timeout.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tollgate_proto::sync as pb;

use super::harness::{KEY, Running, bearer, call, key_hash, send, start, test_config};
use super::mock_upstream;
use crate::snapshot::build::tests::{conn, key, passthrough, repo};

pub(super) async fn gateway(resources: Vec<pb::Resource>, allow_link_local: bool) -> Running {
    let mut config = test_config("http://127.0.0.1:9");
    config.allow_link_local_upstreams = allow_link_local;
    start(config, Some(resources)).await
}

/// A repository `r1` with `conns`, and the test key.
pub(super) fn with_repo(mut conns: Vec<pb::Resource>) -> Vec<pb::Resource> {
    let ids: Vec<String> = conns
        .iter()
        .filter_map(|c| match &c.resource {
            Some(pb::resource::Resource::Connection(c)) => Some(c.id.clone()),
            _ => None,
        })
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    conns.push(repo("r1", &ids, vec![]));
    conns.push(key("k1", "r1", key_hash(KEY), 0));
    conns
}

fn with_org_key(mut res: pb::Resource, org: &str) -> pb::Resource {
    if let Some(pb::resource::Resource::Connection(c)) = &mut res.resource {
        c.key = org.into();
    }
    res
}

async fn chat(gw: &Running, model: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let body = format!(r#"{{"model":"{model}","messages":[]}}"#);
    call(
        "POST",
        format!("http://{}/v1/chat/completions", gw.addr),
        headers,
        body,
    )
    .await
}

/// Log lines written while the test runs (the test runtime is single-threaded, so every
/// task of the gateway logs on this thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn link_local_upstreams_are_refused_with_502_naming_the_host() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let resources = with_repo(vec![
        conn("c1", 1, "meta", &["m"], "http://169.254.169.254/v1"),
        // Not an IP literal: a name that resolves to 169.254.169.254.
        conn("c2", 1, "named", &["m"], "http://2852039166/v1"),
        conn("c3", 1, "v6", &["m"], "http://[fe80::1]:8080/v1"),
    ]);
    let gw = gateway(resources.clone(), false).await;
    for (model, host) in [
        ("meta/m", "169.254.169.254"),
        ("named/m", "2852039166"),
        ("v6/m", "[fe80::1]"),
    ] {
        let (status, body) = chat(&gw, model, &[("authorization", &bearer())]).await;
        assert_eq!(status, 502, "{body}");
        assert!(
            body.contains(&format!("endpoint host {host} ")) && body.contains("refused"),
            "{body}"
        );
        assert!(!body.contains("sk-"), "{body}");
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(
        logged.contains("refused"),
        "the refusal is logged: {logged}"
    );
    assert!(
        !logged.contains("sk-c") && !logged.contains(KEY),
        "{logged}"
    );

    // The operator can allow it: then the gateway tries to connect (fe80::1 without a zone
    // fails at once; no test traffic goes to a real metadata service).
    let gw = gateway(resources, true).await;
    let (status, body) = chat(&gw, "v6/m", &[("authorization", &bearer())]).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("refused;"), "{body}");
}

#[tokio::test]
async fn oversized_answers_are_502_not_buffered() {
    let (addr, _mock) = mock_upstream::start().await;
    let resources = with_repo(vec![conn(
        "c1",
        1,
        "oa",
        &["huge", "huge-error"],
        &format!("http://{addr}/v1"),
    )]);
    let gw = gateway(resources, false).await;
    let (status, body) = chat(&gw, "oa/huge", &[("authorization", &bearer())]).await;
    assert_eq!(status, 502, "{}", &body[..body.len().min(300)]);
    assert!(
        body.contains("larger than the gateway's limit of 16 MiB"),
        "{body}"
    );
    let (status, body) = chat(&gw, "oa/huge-error", &[("authorization", &bearer())]).await;
    assert_eq!(status, 502, "{}", &body[..body.len().min(300)]);
    assert!(
        body.contains("error answer is larger than the gateway's limit of 64 KiB"),
        "{body}"
    );
}

#[tokio::test]
async fn provider_errors_and_headers_do_not_leak_credentials() {
    let (addr, mock) = mock_upstream::start().await;
    let url = format!("http://{addr}/v1");
    let resources = with_repo(vec![
        with_org_key(
            conn("c1", 1, "oa", &["gpt-4o", "echo-key"], &url),
            "org-stored-key",
        ),
        passthrough(conn("c2", 1, "byok", &["echo-key"], &url)),
    ]);
    let gw = gateway(resources, false).await;
    let resp = send(
        "POST",
        format!("http://{}/v1/chat/completions", gw.addr),
        &[("authorization", &bearer())],
        r#"{"model":"oa/gpt-4o"}"#,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-1");
    assert!(resp.headers().get("openai-organization").is_none());

    // The provider refused the stored key: a 502 for the app, the provider's words inside.
    let (status, body) = chat(&gw, "oa/echo-key", &[("authorization", &bearer())]).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        !body.contains("sk-c1")
            && body.contains("[redacted]")
            && body.contains("upstream_credentials_refused"),
        "{body}"
    );

    let caller_key = "sk-caller-own-provider-key";
    let auth = format!("Bearer {caller_key}");
    let (status, body) = chat(
        &gw,
        "byok/echo-key",
        &[("x-tollgate-key", KEY), ("authorization", &auth)],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        !body.contains(caller_key) && body.contains("[redacted]"),
        "{body}"
    );
    // The provider did get the caller's key: only the answer is scrubbed.
    let seen = mock.requests.lock().expect("lock").clone();
    assert!(seen.iter().any(|(a, _)| a == &auth));
}

#[tokio::test]
async fn a_slow_first_byte_is_awaited_longer_than_the_idle_timeout() {
    let (addr, _mock) = mock_upstream::start().await;
    let resources = with_repo(vec![conn(
        "c1",
        1,
        "oa",
        &["think"],
        &format!("http://{addr}/v1"),
    )]);
    let gw = gateway(resources, false).await;
    // 600 ms before the head: above the 300 ms idle timeout, below the 1.5 s first-byte one.
    let (status, body) = chat(&gw, "oa/think", &[("authorization", &bearer())]).await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn chat_call_debug_shows_no_credential() {
    use crate::proxy::{Caller, ChatCall, parse_chat};
    use crate::secret::Secret;
    use crate::snapshot::KeyEntry;

    let body = bytes::Bytes::from_static(
        br#"{"model":"m","messages":[{"role":"user","content":"my prompt"}]}"#,
    );
    let call = ChatCall {
        accept: None,
        fields: parse_chat(&body).expect("parse"),
        body,
        targets: Default::default(),
        caller: Caller {
            key: Arc::new(KeyEntry {
                id: "k1".into(),
                repository_id: "r1".into(),
                hash: [7; 32],
                expires_at: None,
            }),
            repository: None,
            provider_key: Some(Secret::new("sk-caller-secret".into())),
        },
    };
    let shown = format!("{call:?}");
    assert!(
        shown.contains("k1") && shown.contains("provider_key: true"),
        "{shown}"
    );
    assert!(
        !shown.contains("sk-caller-secret") && !shown.contains("my prompt"),
        "{shown}"
    );
}
