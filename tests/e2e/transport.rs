//! Transport security and control-plane replicas, with the real binaries: mTLS on the sync
//! port (only data planes with a certificate from the configured CA get config), plaintext
//! refused off loopback on both sides, HTTPS for apps (h2 and HTTP/1.1), two control planes
//! on one etcd, and etcd down.

use std::time::{Duration, Instant};

use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::sync as pb;
use tollgate_sdk::proto;
use tollgate_tests::egress_proxy::EgressProxy;
use tollgate_tests::tls::{Alpn, Ca, https_request};
use tollgate_tests::{
    Backend, ControlPlane, DataPlane, Etcd, MockProvider, SyncTls, bins, free_port, http,
};

const SECRET: &str = "sk-transport-e2e-provider-secret-4c2d";
const BODY: &str = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
const ANSWER: &str = "Hello from mock OpenAI";

/// An API key: its secret and its id.
struct Key {
    secret: String,
    id: String,
}

/// Connection `openai` (the mock), repository `app` with it attached, and `keys` API keys on
/// `app`, all through `client`.
async fn provision(client: &tollgate_sdk::Client, mock: &MockProvider, keys: usize) -> Vec<Key> {
    provision_at(client, &format!("{}/v1", mock.url()), keys).await
}

/// [`provision`] with the connection's endpoint `endpoint`.
async fn provision_at(client: &tollgate_sdk::Client, endpoint: &str, keys: usize) -> Vec<Key> {
    client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "openai".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: endpoint.into(),
            secret: SECRET.into(),
            models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        })
        .await
        .expect("create llm");
    client
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "default".into(),
            name: "app".into(),
        })
        .await
        .expect("create repository");
    client
        .attach_ai_llm(proto::AttachAiLlmRequest {
            repository_id: "app".into(),
            ai_llm_id: "openai".into(),
            workspace_id: "default".into(),
        })
        .await
        .expect("attach");
    let mut out = Vec::new();
    for i in 0..keys {
        let created = client
            .create_api_key(proto::CreateApiKeyRequest {
                repository_id: "app".into(),
                workspace_id: "default".into(),
                name: format!("key-{i}"),
                ..Default::default()
            })
            .await
            .expect("create key");
        out.push(Key {
            secret: created.secret,
            id: created.api_key.expect("api key").id,
        });
    }
    out
}

/// `llm validate` of the connection [`provision`] made.
async fn validate(client: &tollgate_sdk::Client) -> proto::ValidateAiLlmResponse {
    client
        .validate_ai_llm(proto::ValidateAiLlmRequest {
            id: "openai".into(),
            workspace_id: "default".into(),
        })
        .await
        .expect("validate answers")
}

/// One chat completion through `dp` (plain HTTP).
async fn chat(dp: &DataPlane, key: &str) -> (u16, serde_json::Value) {
    http::post_json(&format!("{}/v1/chat/completions", dp.url), Some(key), BODY).await
}

fn assert_routed(status: u16, body: &serde_json::Value, what: &str) {
    assert_eq!(status, 200, "{what}: {body}");
    assert_eq!(
        body["choices"][0]["message"]["content"], ANSWER,
        "{what}: {body}"
    );
}

/// Polls `chat` every 10 ms until it answers `want`, for at most `limit`; returns how long
/// it took.
async fn time_until_status(dp: &DataPlane, key: &str, want: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = chat(dp, key).await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {status} (want {want}) after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn llm_calls(client: &tollgate_sdk::Client) -> (u64, u64, u64) {
    let stats = client
        .get_ai_llm_stats(proto::GetAiLlmStatsRequest {
            ai_llm_id: "openai".into(),
            ..Default::default()
        })
        .await
        .expect("stats");
    stats
        .stats
        .first()
        .map(|s| (s.total_api_calls, s.total_tokens_in, s.total_tokens_out))
        .unwrap_or_default()
}

/// Waits until the usage of exactly `served` calls has arrived (never more); with `settle`,
/// then checks that nothing more arrives for a little longer than one report period.
async fn usage_arrives_exactly_once(
    client: &tollgate_sdk::Client,
    served: u64,
    secs: u64,
    settle: bool,
) {
    let started = Instant::now();
    loop {
        let (calls, tin, tout) = llm_calls(client).await;
        assert!(calls <= served, "usage counted twice: {calls} > {served}");
        if calls == served {
            let (ti, to) = tollgate_tests::mock_provider::OPENAI_USAGE;
            assert_eq!((tin, tout), (served * ti, served * to), "token counts");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "usage did not arrive: {calls} of {served}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "usage of {served} calls complete {:?} after we started looking",
        started.elapsed()
    );
    if !settle {
        return;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(llm_calls(client).await.0, served, "usage arrived twice");
}

/// Subscribes to the sync API at `url` over TLS trusting `ca`, WITHOUT a client certificate.
async fn subscribe_without_client_cert(url: &str, ca: &Ca) -> Result<pb::ConfigUpdate, String> {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    http::install_crypto_provider();
    let ca_pem = std::fs::read(&ca.cert_file).map_err(|e| e.to_string())?;
    let channel = Channel::from_shared(url.to_string())
        .map_err(|e| e.to_string())?
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = pb::sync_service_client::SyncServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::DataPlaneMessage {
        message: Some(pb::data_plane_message::Message::Hello(pb::Hello {
            instance_id: "no-cert".into(),
            environment: "production".into(),
            version: 0,
            ..Default::default()
        })),
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut updates = client
        .subscribe(ReceiverStream::new(rx))
        .await
        .map_err(|e| format!("subscribe: {e}"))?
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(2), updates.message()).await {
        Ok(Ok(Some(u))) => Ok(u),
        other => Err(format!("no update: {other:?}")),
    }
}

/// Sync over mTLS: a data plane with a certificate from the CA gets config and routes; one
/// with another CA's certificate, or none, gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mtls_admits_only_certificates_from_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "tollgate data planes");
    let server = ca.server("control-plane");
    let good = ca.client("dp-good");
    let other_ca = Ca::new(dir.path(), "someone else");
    let stranger = other_ca.client("dp-stranger");

    let cp = ControlPlane::builder(Backend::Embedded)
        .sync_tls(SyncTls {
            cert: server.cert.clone(),
            key: server.key.clone(),
            client_ca: ca.cert_file.clone(),
        })
        .start()
        .await;
    assert!(cp.sync_url().starts_with("https://"), "{}", cp.sync_url());
    let mock = MockProvider::start(SECRET).await;
    let keys = provision(&cp.client().await, &mock, 1).await;
    let key = &keys[0].secret;

    let started = Instant::now();
    let dp = DataPlane::builder(&cp, "production")
        .client_tls(&ca.cert_file, &good.cert, &good.key)
        .start()
        .await;
    eprintln!("mTLS data plane ready {:?} after spawn", started.elapsed());
    let (status, body) = chat(&dp, key).await;
    assert_routed(status, &body, "data plane with the CA's client certificate");

    // Another CA's certificate: the process runs, but never gets config.
    let stranger_started = Instant::now();
    let mut stranger_dp = DataPlane::builder(&cp, "production")
        .client_tls(&ca.cert_file, &stranger.cert, &stranger.key)
        .no_wait_ready()
        .start()
        .await;

    // No client certificate flags: the data plane refuses to start (validation), ...
    let exit = bins::run_to_exit(
        "tollgate-data-plane",
        &[
            "--control-plane",
            &cp.sync_url(),
            "--control-plane-ca",
            &ca.cert_file.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        10,
    )
    .await;
    assert!(!exit.status.success(), "started without a client cert");
    assert!(
        exit.output.contains("--client-cert is required")
            && exit.output.contains("--client-key is required"),
        "names the missing flags: {}",
        exit.output
    );
    // ... and the control plane itself refuses a TLS client without a certificate.
    let refused = subscribe_without_client_cert(&cp.sync_url(), &ca).await;
    let Err(why) = refused else {
        panic!("a client without a certificate got a config update");
    };
    eprintln!("sync client without a certificate: {why}");

    // The stranger stays unready for 2 s and answers requests with 503, not a routed answer.
    while stranger_started.elapsed() < Duration::from_secs(2) {
        assert!(
            !stranger_dp.is_ready().await,
            "a data plane with another CA's certificate became ready"
        );
        assert!(stranger_dp.exited().is_none(), "the data plane exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = chat(&stranger_dp, key).await;
    assert_eq!(status, 503, "no config, no routing: {body}");
    let logs = stranger_dp.logs();
    let said = logs
        .lines()
        .find(|l| l.contains("config stream"))
        .unwrap_or("(nothing about the config stream)");
    eprintln!("data plane with another CA's certificate logs: {said}");
    assert_eq!(
        mock.calls("/v1/chat/completions").len(),
        1,
        "one routed call"
    );
    for text in [stranger_dp.logs(), dp.logs(), cp.logs()] {
        assert!(!text.contains(SECRET), "a provider secret leaked");
        assert!(!text.contains(key.as_str()), "an app key leaked");
    }
}

/// Plaintext sync is refused off loopback, by the data plane before it connects anywhere
/// and by the control plane before it touches the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_sync_refused_off_loopback() {
    let started = Instant::now();
    let exit = bins::run_to_exit(
        "tollgate-data-plane",
        &[
            // Never contacted: validation refuses it first.
            "--control-plane",
            "http://10.0.0.1:7071",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        10,
    )
    .await;
    assert!(!exit.status.success(), "plaintext to 10.0.0.1 was accepted");
    assert!(
        exit.output.contains("http://10.0.0.1:7071") && exit.output.contains("loopback"),
        "a clear message: {}",
        exit.output
    );
    eprintln!(
        "data plane refused http://10.0.0.1:7071 in {:?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("master.key");
    tollgate_control_plane::crypto::Keyring::generate_file(&key_file).expect("master key");
    let store = dir.path().join("store.redb");
    let sync_listen = format!("0.0.0.0:{}", free_port());
    let exit = bins::run_to_exit(
        "tollgate-control-plane",
        &[
            "serve",
            "--store",
            &format!("file://{}", store.display()),
            "--master-key-file",
            &key_file.display().to_string(),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--sync-listen",
            &sync_listen,
            "--sync-insecure",
        ],
        10,
    )
    .await;
    assert!(
        !exit.status.success(),
        "--sync-insecure on {sync_listen} was accepted"
    );
    assert!(
        exit.output.contains("--sync-insecure") && exit.output.contains("loopback"),
        "a clear message: {}",
        exit.output
    );
    assert!(!store.exists(), "the store was opened before the refusal");
}

/// HTTPS for apps: h2 and HTTP/1.1 through ALPN with a client trusting the test CA; a client
/// trusting another CA, and plain HTTP, fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tls_serves_h2_and_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "apps");
    let server = ca.server("gateway");
    let cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    let keys = provision(&cp.client().await, &mock, 1).await;
    let auth = format!("Bearer {}", keys[0].secret);
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let dp = DataPlane::builder(&cp, "production")
        .app_tls(&server.cert, &server.key)
        .start()
        .await;
    assert!(dp.url.starts_with("https://"), "{}", dp.url);
    let url = format!("{}/v1/chat/completions", dp.url);
    for (alpn, version) in [
        (Alpn::H2, hyper::Version::HTTP_2),
        (Alpn::Http11, hyper::Version::HTTP_11),
    ] {
        let answer = https_request(&ca, alpn, "POST", &url, &headers, BODY)
            .await
            .unwrap_or_else(|e| panic!("{alpn:?}: {e}"));
        assert_eq!(answer.version, version, "{alpn:?}");
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        assert_routed(answer.status, &body, &format!("{alpn:?}"));
        let models = https_request(
            &ca,
            alpn,
            "GET",
            &format!("{}/v1/models", dp.url),
            &headers,
            "",
        )
        .await
        .unwrap_or_else(|e| panic!("{alpn:?} models: {e}"));
        assert_eq!(models.status, 200, "{alpn:?}: {}", models.body);
        assert!(
            models.body.contains("openai/gpt-4o-mini"),
            "{}",
            models.body
        );
    }
    assert_eq!(mock.calls("/v1/chat/completions").len(), 2);

    // A client that does not trust the gateway's CA fails the handshake.
    let stranger = Ca::new(dir.path(), "not the gateway's");
    let err = https_request(&stranger, Alpn::Http11, "POST", &url, &headers, BODY)
        .await
        .expect_err("a certificate from an untrusted CA was accepted");
    eprintln!("client trusting another CA: {err}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = url.replacen("https://", "http://", 1);
    let res = http::request("POST", &plain, &headers, BODY.as_bytes().to_vec()).await;
    assert!(res.is_err(), "plain HTTP to the TLS port answered: {res:?}");
    assert_eq!(
        mock.calls("/v1/chat/completions").len(),
        2,
        "nothing else was routed"
    );
}

/// A provider endpoint whose certificate a private CA signed (a self-hosted model): with
/// `--upstream-ca-file` the control plane validates it and a data plane routes to it;
/// without, the handshake fails with an error naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_behind_a_private_ca_is_trusted_with_upstream_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "in-house models");
    let mock = MockProvider::start_tls(SECRET, ca.server("vllm").acceptor()).await;
    assert!(mock.url().starts_with("https://"), "{}", mock.url());
    let ca_file = ca.cert_file.display().to_string();
    let cp = ControlPlane::start_with(Backend::Embedded, &["--upstream-ca-file", &ca_file]).await;
    let client = cp.client().await;
    let keys = provision(&client, &mock, 1).await;
    let validated = validate(&client).await;
    assert!(validated.success, "{}", validated.message);

    let trusting = DataPlane::builder(&cp, "production")
        .args(&["--upstream-ca-file", &ca_file])
        .start()
        .await;
    let (status, body) = chat(&trusting, &keys[0].secret).await;
    assert_routed(status, &body, "data plane with the CA");
    let seen = mock.calls("/v1/chat/completions");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {SECRET}"))
    );

    let strict = DataPlane::builder(&cp, "production").start().await;
    let (status, body) = chat(&strict, &keys[0].secret).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("UnknownIssuer") && message.contains("--upstream-ca-file"),
        "{message}"
    );
    assert_eq!(mock.calls("/v1/chat/completions").len(), 1, "nothing sent");

    let plain_cp = ControlPlane::start(Backend::Embedded).await;
    let plain = plain_cp.client().await;
    provision(&plain, &mock, 0).await;
    let refused = validate(&plain).await;
    assert!(!refused.success);
    assert!(
        refused.message.contains("--upstream-ca-file"),
        "{}",
        refused.message
    );

    // A file that holds no certificate stops the data plane at start, naming it.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let junk = junk.display().to_string();
    let sync_url = cp.sync_url();
    let args = [
        "--control-plane",
        &sync_url,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--upstream-ca-file",
        &junk,
    ];
    let exit = bins::run_to_exit("tollgate-data-plane", &args, 10).await;
    assert!(!exit.status.success(), "{}", exit.output);
    assert!(
        exit.output.contains("--upstream-ca-file") && exit.output.contains("no PEM certificate"),
        "{}",
        exit.output
    );
}

/// Provider traffic through an egress proxy (`HTTPS_PROXY`, credentials in the URL): the
/// control plane validates and a data plane routes to a host name only the proxy resolves,
/// TLS to the provider inside the CONNECT tunnel; wrong proxy credentials give a 502 that
/// says so, and no log shows the proxy's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_reached_through_an_egress_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = "models.example.test";
    let ca = Ca::new(dir.path(), "in-house models");
    let mock = MockProvider::start_tls(SECRET, ca.server_for("vllm", &[host]).acceptor()).await;
    // bob:s3cret-proxy-pass
    let proxy = EgressProxy::start(Some("Ym9iOnMzY3JldC1wcm94eS1wYXNz")).await;
    let proxy_url = proxy.url(Some("bob:s3cret-proxy-pass"));
    let ca_file = ca.cert_file.display().to_string();
    let cp = ControlPlane::builder(Backend::Embedded)
        .args(&["--upstream-ca-file", &ca_file])
        .env("HTTPS_PROXY", &proxy_url)
        .start()
        .await;
    let client = cp.client().await;
    let target = format!("{host}:{}", mock.addr.port());
    let keys = provision_at(&client, &format!("https://{target}/v1"), 1).await;
    let validated = validate(&client).await;
    assert!(validated.success, "{}", validated.message);
    assert_eq!(proxy.targets(), vec![target.clone()], "validation tunneled");

    let dp = DataPlane::builder(&cp, "production")
        .args(&["--upstream-ca-file", &ca_file])
        .env("HTTPS_PROXY", &proxy_url)
        .env("NO_PROXY", "internal.example,10.0.0.0/8")
        .start()
        .await;
    let (status, body) = chat(&dp, &keys[0].secret).await;
    assert_routed(status, &body, "through the egress proxy");
    assert_eq!(proxy.targets().len(), 2, "{:?}", proxy.targets());
    assert_eq!(mock.calls("/v1/chat/completions").len(), 1);

    let wrong = DataPlane::builder(&cp, "production")
        .args(&["--upstream-ca-file", &ca_file])
        .env("https_proxy", &proxy.url(Some("bob:wrong")))
        .start()
        .await;
    let (status, body) = chat(&wrong, &keys[0].secret).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "the egress proxy 127.0.0.1:{} answered the CONNECT to {target} with 407 Proxy Authentication Required (it wants credentials",
            proxy.port
        )),
        "{message}"
    );
    assert_eq!(mock.calls("/v1/chat/completions").len(), 1, "nothing sent");

    for (what, logs) in [("control plane", cp.logs()), ("data plane", dp.logs())] {
        assert!(
            logs.contains(&format!(
                "egress proxy of the environment: HTTPS_PROXY=http://127.0.0.1:{}",
                proxy.port
            )),
            "{what} does not say which proxy it uses:\n{logs}"
        );
        assert!(
            !logs.contains("s3cret-proxy-pass"),
            "{what} logged the proxy password"
        );
    }
}

/// Two control planes on one etcd: writes through B reach a data plane subscribed to A
/// within 1 s; with A killed the data plane keeps serving, and the usage it took while A was
/// down arrives once A is back, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_replicas_share_one_etcd() {
    let mut a = ControlPlane::start(Backend::Etcd).await;
    let b = ControlPlane::builder(Backend::Etcd)
        .replica_of(&a)
        .start()
        .await;
    assert_eq!(a.store_url(), b.store_url());
    assert_eq!(a.key_file(), b.key_file());
    let mock = MockProvider::start(SECRET).await;
    let dp = DataPlane::start(&a, "production").await;
    let bc = b.client().await;

    // Config created through B, served through A.
    let keys = provision(&bc, &mock, 2).await;
    let created = time_until_status(&dp, &keys[0].secret, 200, Duration::from_secs(1)).await;
    eprintln!("replicas: config written through B routable through A after {created:?}");
    // A decrypts what B sealed: the same master key.
    let (status, body) = chat(&dp, &keys[1].secret).await;
    assert_routed(status, &body, "second key");

    let revoke_started = Instant::now();
    bc.revoke_api_key(proto::RevokeApiKeyRequest {
        id: keys[1].id.clone(),
    })
    .await
    .expect("revoke through B");
    let written = revoke_started.elapsed();
    let refused = time_until_status(&dp, &keys[1].secret, 401, Duration::from_secs(1)).await;
    eprintln!(
        "replicas: key revoked through B (write {written:?}) refused through A after {refused:?}"
    );

    // Every routed call so far has its usage, through either replica.
    let mut served = mock.calls("/v1/chat/completions").len() as u64;
    usage_arrives_exactly_once(&bc, served, 10, false).await;

    // A dies: the data plane keeps serving on its last snapshot.
    a.kill9().await;
    let during = 6u64;
    for _ in 0..during {
        let (status, body) = chat(&dp, &keys[0].secret).await;
        assert_routed(status, &body, "while A is down");
    }
    let (status, _) = chat(&dp, &keys[1].secret).await;
    assert_eq!(status, 401, "still revoked while A is down");
    assert!(dp.is_ready().await, "still holds its snapshot");
    served += during;
    assert_eq!(mock.calls("/v1/chat/completions").len() as u64, served);

    let restart = Instant::now();
    a.restart().await;
    eprintln!("A back after {:?}", restart.elapsed());
    usage_arrives_exactly_once(&bc, served, 20, true).await;

    // A resubscribed data plane follows writes through B again.
    let fresh = bc
        .create_api_key(proto::CreateApiKeyRequest {
            repository_id: "app".into(),
            workspace_id: "default".into(),
            name: "after-restart".into(),
            ..Default::default()
        })
        .await
        .expect("create key through B")
        .secret;
    let after = time_until_status(&dp, &fresh, 200, Duration::from_secs(1)).await;
    eprintln!("replicas: key created through B after A's restart routable after {after:?}");
}

/// etcd fully down: admin writes fail with UNAVAILABLE, traffic keeps flowing; etcd back:
/// writes work again and reach the data plane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_fails_writes_not_traffic() {
    let mut cp = ControlPlane::start(Backend::Etcd).await;
    let mock = MockProvider::start(SECRET).await;
    let client = cp.client().await;
    let keys = provision(&client, &mock, 1).await;
    let dp = DataPlane::start(&cp, "production").await;
    let (status, body) = chat(&dp, &keys[0].secret).await;
    assert_routed(status, &body, "before the outage");

    cp.etcd.as_mut().expect("etcd backend").kill();
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let write = || async {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        client
            .create_api_key(proto::CreateApiKeyRequest {
                repository_id: "app".into(),
                workspace_id: "default".into(),
                name: format!("write-{n}"),
                ..Default::default()
            })
            .await
    };
    let started = Instant::now();
    let err = match write().await {
        Ok(k) => panic!("a write succeeded with etcd down: {k:?}"),
        Err(e) => e,
    };
    let failed_in = started.elapsed();
    eprintln!("etcd down: write failed in {failed_in:?}: {err}");
    assert_eq!(err.code(), Some(tonic::Code::Unavailable), "{err:?}");
    assert!(failed_in < Duration::from_secs(10), "took {failed_in:?}");

    for _ in 0..5 {
        let (status, body) = chat(&dp, &keys[0].secret).await;
        assert_routed(status, &body, "while etcd is down");
    }

    let restarted = Instant::now();
    cp.etcd.as_mut().expect("etcd backend").restart().await;
    let etcd_up = restarted.elapsed();
    let mut new_key = None;
    let mut last_err = String::new();
    while restarted.elapsed() < Duration::from_secs(15) {
        match write().await {
            Ok(k) => {
                new_key = Some(k.secret);
                break;
            }
            Err(e) => last_err = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new_key =
        new_key.unwrap_or_else(|| panic!("writes still fail after etcd is back: {last_err}"));
    let writable = restarted.elapsed();
    eprintln!("etcd restarted in {etcd_up:?}; first write ok {writable:?} after the restart began");
    // The control plane's watch resumed: the new key reaches the data plane.
    let propagated = time_until_status(&dp, &new_key, 200, Duration::from_secs(10)).await;
    eprintln!("etcd back: a key written after the outage routable after {propagated:?}");
}

/// The data plane honours `TOLLGATE_LOG` like the control plane does (the harness sets
/// `TOLLGATE_LOG=debug` so that the secret scans read debug logs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_honours_tollgate_log() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let dp = DataPlane::start(&cp, "production").await;
    let (status, _) = chat(&dp, "tg_not-a-key").await;
    assert_eq!(status, 401);
    let logs = dp.logs();
    assert!(
        logs.contains("DEBUG"),
        "TOLLGATE_LOG=debug gave no debug line:\n{logs}"
    );
}

/// The control plane reaches etcd over TLS with a client certificate (etcd's
/// `--client-cert-auth`); without the certificate it refuses to start with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "etcd");
    let etcd = Etcd::start_tls(ca.server("etcd"), ca.cert_file.clone()).await;
    let url = etcd.store_url();
    let client_cert = ca.client("tollgate");

    // No client certificate: etcd refuses the handshake and the control plane says so.
    let key_file = dir.path().join("master.key");
    tollgate_control_plane::crypto::Keyring::generate_file(&key_file).expect("key");
    let ca_file = ca.cert_file.to_string_lossy().to_string();
    let key_path = key_file.to_string_lossy().to_string();
    let sync_token = dir.path().join("sync-token");
    std::fs::write(&sync_token, "tgsync_etcd-tls-test-0123456789").expect("sync token");
    let out = bins::run_to_exit(
        "tollgate-control-plane",
        &[
            "serve",
            "--store",
            &url,
            "--master-key-file",
            &key_path,
            "--etcd-ca-file",
            &ca_file,
            "--admin-listen",
            "127.0.0.1:0",
            "--sync-listen",
            "127.0.0.1:0",
            "--sync-insecure",
            "--sync-token-file",
            &sync_token.display().to_string(),
        ],
        20,
    )
    .await;
    assert!(
        !out.status.success(),
        "started without a client certificate: {}",
        out.output
    );
    assert!(out.output.contains("etcd"), "{}", out.output);

    let cert = client_cert.cert.to_string_lossy().to_string();
    let key = client_cert.key.to_string_lossy().to_string();
    let cp = ControlPlane::builder(Backend::Etcd)
        .etcd(etcd)
        .args(&[
            "--etcd-ca-file",
            &ca_file,
            "--etcd-cert-file",
            &cert,
            "--etcd-key-file",
            &key,
        ])
        .start()
        .await;
    let client = cp.client().await;
    client
        .create_workspace(proto::CreateWorkspaceRequest {
            name: "over-tls".into(),
        })
        .await
        .expect("a write over TLS");
    let listed = client
        .list_workspaces(proto::ListWorkspacesRequest {})
        .await
        .expect("list");
    assert!(listed.workspaces.iter().any(|w| w.name == "over-tls"));
}
