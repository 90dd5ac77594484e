//! The sync API in-process: a tonic server on 127.0.0.1:0 over an embedded store in a
//! tempdir, written to through the admin services (as `tollgatectl` would), read by a real
//! gRPC client (as a data plane would).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_control_plane::api::{self, Ctx};
use tollgate_control_plane::crypto::Keyring;
use tollgate_control_plane::model::AiLlm;
use tollgate_control_plane::store::{EmbeddedStore, Store};
use tollgate_control_plane::sync::{self, SyncTransport};
use tollgate_control_plane::validate::Validator;
use tollgate_control_plane::{bootstrap, db, keys};
use tollgate_proto::admin as adm;
use tollgate_proto::admin::ai_llm_service_server::AiLlmService as _;
use tollgate_proto::admin::api_key_service_server::ApiKeyService as _;
use tollgate_proto::admin::repository_service_server::RepositoryService as _;
use tollgate_proto::sync as pb;
use tollgate_proto::sync::sync_service_client::SyncServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Request};

const TOKEN: &str = "tgadm_sync_test_owner_token";
const SECRET: &str = "sk-sync-test-secret-0123456789";
const WAIT: Duration = Duration::from_secs(5);

/// A sync server over a fresh store, and the admin services to change that store.
struct Harness {
    _dir: tempfile::TempDir,
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    async fn start(transport: SyncTransport) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&dir.path().join("store.redb"), "/tollgate/v1/").expect("store"),
        );
        let boot = bootstrap::bootstrap(store.as_ref(), Some(TOKEN))
            .await
            .expect("bootstrap");
        let ctx = Arc::new(Ctx {
            store,
            keyring: Arc::new(Keyring::generate()),
            validator: Validator::new(Duration::from_secs(5), false),
            org_id: boot.org_id,
            alerts: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(sync::serve(
            ctx.clone(),
            listener,
            transport,
            sync::TokenCheck::disabled(),
            async {
                let _ = stopped.await;
            },
        ));
        Harness {
            _dir: dir,
            ctx,
            addr,
            stop: Some(stop),
            server,
        }
    }

    async fn plaintext() -> Harness {
        Self::start(SyncTransport::Insecure).await
    }

    async fn client(&self) -> SyncServiceClient<Channel> {
        SyncServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    fn llms(&self) -> api::ai_llm::Service {
        api::ai_llm::Service(self.ctx.clone())
    }

    async fn create_llm(&self, name: &str, envs: &[&str], passthrough: bool) -> String {
        let mode = if passthrough {
            adm::CredentialMode::Passthrough
        } else {
            adm::CredentialMode::Managed
        };
        let r = adm::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: name.into(),
            ai_type: adm::AiType::Openai as i32,
            secret: if passthrough { "" } else { SECRET }.into(),
            credential_mode: mode as i32,
            environments: envs.iter().map(|e| e.to_string()).collect(),
            models: vec!["gpt-4o".into()],
            ..Default::default()
        };
        let resp = self
            .llms()
            .create_ai_llm(authed(r))
            .await
            .expect("create llm");
        resp.into_inner().ai_llm_id
    }

    async fn update_llm(&self, id: &str, envs: Option<&[&str]>, models: Option<&[&str]>) {
        let list = |v: &[&str]| adm::StringList {
            values: v.iter().map(|s| s.to_string()).collect(),
        };
        let r = adm::UpdateAiLlmRequest {
            id: id.into(),
            environments: envs.map(list),
            models: models.map(list),
            ..Default::default()
        };
        self.llms()
            .update_ai_llm(authed(r))
            .await
            .expect("update llm");
    }

    async fn create_repo(&self, name: &str, llm: &str) -> String {
        let repos = api::repository::Service(self.ctx.clone());
        let repo = repos
            .create_repository(authed(adm::CreateRepositoryRequest {
                workspace_id: "default".into(),
                name: name.into(),
            }))
            .await
            .expect("create repo")
            .into_inner();
        repos
            .attach_ai_llm(authed(adm::AttachAiLlmRequest {
                repository_id: repo.id.clone(),
                ai_llm_id: llm.into(),
                workspace_id: String::new(),
            }))
            .await
            .expect("attach");
        repo.id
    }

    /// Creates a key; returns its id and secret.
    async fn create_key(&self, repo: &str, name: &str) -> (String, String) {
        let r = api::api_key::Service(self.ctx.clone())
            .create_api_key(authed(adm::CreateApiKeyRequest {
                repository_id: repo.into(),
                name: name.into(),
                ..Default::default()
            }))
            .await
            .expect("create key")
            .into_inner();
        (r.api_key.expect("key").id, r.secret)
    }

    async fn revoke_key(&self, id: &str) {
        api::api_key::Service(self.ctx.clone())
            .revoke_api_key(authed(adm::RevokeApiKeyRequest { id: id.into() }))
            .await
            .expect("revoke");
    }

    /// Stops the server and checks that it returns (open streams must not hold it up).
    async fn shutdown(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(WAIT, &mut self.server)
            .await
            .expect("server stops within 5 s")
            .expect("server task")
            .expect("server result");
    }
}

fn authed<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    let value = format!("Bearer {TOKEN}").parse().expect("header");
    r.metadata_mut().insert("authorization", value);
    r
}

/// A data plane's side of one subscription.
struct Sub {
    acks: mpsc::Sender<pb::DataPlaneMessage>,
    updates: tonic::Streaming<pb::ConfigUpdate>,
}

async fn subscribe(
    client: &mut SyncServiceClient<Channel>,
    env: &str,
    version: i64,
) -> Result<Sub, tonic::Status> {
    let (acks, rx) = mpsc::channel(16);
    let hello = pb::Hello {
        instance_id: "dp-test".into(),
        environment: env.into(),
        version,
        ..Default::default()
    };
    let msg = pb::data_plane_message::Message::Hello(hello);
    acks.send(pb::DataPlaneMessage { message: Some(msg) })
        .await
        .expect("queue hello");
    let updates = client
        .subscribe(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok(Sub { acks, updates })
}

impl Sub {
    async fn next(&mut self) -> pb::ConfigUpdate {
        tokio::time::timeout(WAIT, self.updates.message())
            .await
            .expect("an update within 5 s")
            .expect("stream ok")
            .expect("stream open")
    }

    /// Nothing arrives for a while.
    async fn quiet(&mut self) {
        let got = tokio::time::timeout(Duration::from_millis(300), self.updates.message()).await;
        assert!(got.is_err(), "unexpected message: {got:?}");
    }

    async fn ack(&self, version: i64, accepted: bool) {
        let ack = pb::Ack {
            version,
            accepted,
            error: if accepted { "" } else { "test rejects this" }.into(),
            ..Default::default()
        };
        let msg = pb::data_plane_message::Message::Ack(ack);
        self.acks
            .send(pb::DataPlaneMessage { message: Some(msg) })
            .await
            .expect("ack");
    }
}

fn connections(u: &pb::ConfigUpdate) -> Vec<&pb::Connection> {
    u.upserts
        .iter()
        .filter_map(|r| match &r.resource {
            Some(pb::resource::Resource::Connection(c)) => Some(c),
            _ => None,
        })
        .collect()
}

fn removal(kind: pb::ResourceKind, id: &str) -> pb::ResourceRef {
    pb::ResourceRef {
        kind: kind as i32,
        id: id.into(),
    }
}

#[tokio::test]
async fn sync_full_snapshot_first_with_decrypted_secret() {
    let h = Harness::plaintext().await;
    let prod = h.create_llm("prod", &["production"], false).await;
    let staging = h.create_llm("staging", &["staging"], false).await;
    let byok = h.create_llm("byok", &["production", "staging"], true).await;
    let repo = h.create_repo("app", &prod).await;
    let (key, key_secret) = h.create_key(&repo, "k1").await;
    let (revoked, _) = h.create_key(&repo, "k2").await;
    h.revoke_key(&revoked).await;

    let mut client = h.client().await;
    let mut sub = subscribe(&mut client, "production", 0)
        .await
        .expect("subscribe");
    let snap = sub.next().await;
    assert!(snap.full && snap.version > 0 && snap.removals.is_empty());
    let conns = connections(&snap);
    let ids: Vec<&str> = conns.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.contains(&prod.as_str()) && ids.contains(&byok.as_str()));
    assert!(
        !ids.contains(&staging.as_str()),
        "staging-only connection leaked"
    );
    let c = conns.iter().find(|c| c.id == prod).expect("prod");
    assert_eq!(c.secret, SECRET, "the data plane gets the decrypted secret");
    assert_eq!(c.models, ["gpt-4o"]);
    assert_eq!(c.ai_type, adm::AiType::Openai as i32);
    assert_eq!(c.endpoint, "https://api.openai.com/v1");
    assert!(!c.passthrough);
    let b = conns.iter().find(|c| c.id == byok).expect("byok");
    assert!(b.passthrough && b.secret.is_empty());

    let mut repos = Vec::new();
    let mut keys_seen = Vec::new();
    for r in &snap.upserts {
        match &r.resource {
            Some(pb::resource::Resource::Repository(r)) => repos.push(r.clone()),
            Some(pb::resource::Resource::ApiKey(k)) => keys_seen.push(k.clone()),
            _ => {}
        }
    }
    assert_eq!(repos.len(), 1);
    assert_eq!(
        (repos[0].id.as_str(), repos[0].connection_ids.as_slice()),
        (repo.as_str(), &[prod.clone()][..])
    );
    assert_eq!(keys_seen.len(), 1, "the revoked key is left out");
    assert_eq!(keys_seen[0].id, key);
    assert_eq!(keys_seen[0].repository_id, repo);
    assert_eq!(
        keys_seen[0].hash,
        Sha256::digest(key_secret.as_bytes()).to_vec()
    );
    assert_eq!(keys_seen[0].expires_at, 0);
    sub.ack(snap.version, true).await;
    sub.quiet().await;
    h.shutdown().await;
}

#[tokio::test]
async fn sync_change_sends_only_what_changed() {
    let h = Harness::plaintext().await;
    let a = h.create_llm("a", &["production"], false).await;
    let b = h.create_llm("b", &["production"], false).await;
    let repo = h.create_repo("app", &a).await;
    let (key, _) = h.create_key(&repo, "k1").await;
    let mut client = h.client().await;
    let mut sub = subscribe(&mut client, "production", 0)
        .await
        .expect("subscribe");
    let snap = sub.next().await;
    assert_eq!(connections(&snap).len(), 2);
    // A rejection is logged and the stream keeps serving.
    sub.ack(snap.version, false).await;

    // One connection changes: only it is sent.
    let t = Instant::now();
    h.update_llm(&a, None, Some(&["gpt-4o-mini"])).await;
    let u = sub.next().await;
    eprintln!(
        "propagation store write -> update received: {:?}",
        t.elapsed()
    );
    assert!(!u.full && u.version > snap.version);
    assert_eq!((u.upserts.len(), u.removals.len()), (1, 0));
    assert_eq!(connections(&u)[0].id, a);
    assert_eq!(connections(&u)[0].models, ["gpt-4o-mini"]);
    assert_eq!(connections(&u)[0].secret, SECRET);
    sub.ack(u.version, true).await;

    // Leaving the environment is a removal.
    let t = Instant::now();
    h.update_llm(&b, Some(&["staging"]), None).await;
    let u2 = sub.next().await;
    eprintln!(
        "propagation (environment change -> removal): {:?}",
        t.elapsed()
    );
    assert!(u2.upserts.is_empty() && u2.version > u.version);
    assert_eq!(u2.removals, [removal(pb::ResourceKind::Connection, &b)]);

    // Revoking a key is a removal.
    h.revoke_key(&key).await;
    let u3 = sub.next().await;
    assert!(u3.upserts.is_empty());
    assert_eq!(u3.removals, [removal(pb::ResourceKind::ApiKey, &key)]);

    // Writes no data plane cares about (usage) send nothing.
    let report = usage_report(1, &a, 1);
    sync_client_report(&mut client, report)
        .await
        .expect("report");
    sub.quiet().await;
    h.shutdown().await;
}

#[tokio::test]
async fn sync_resume_gets_only_later_changes() {
    let h = Harness::plaintext().await;
    let a = h.create_llm("a", &["production"], false).await;
    let b = h.create_llm("b", &["production"], false).await;
    let mut client = h.client().await;
    let mut sub = subscribe(&mut client, "production", 0)
        .await
        .expect("subscribe");
    let version = sub.next().await.version;
    drop(sub);

    // Changed while the data plane was away.
    h.update_llm(&b, None, Some(&["o3"])).await;
    let mut sub = subscribe(&mut client, "production", version)
        .await
        .expect("resume");
    let u = sub.next().await;
    assert!(!u.full, "a resume is not a snapshot");
    assert_eq!(connections(&u).len(), 1);
    assert_eq!(connections(&u)[0].id, b);
    sub.quiet().await;
    drop(sub);

    // A version the store never had (a restored store): a full snapshot.
    let mut sub = subscribe(&mut client, "production", u.version + 1000)
        .await
        .expect("ahead");
    let snap = sub.next().await;
    assert!(snap.full && snap.version <= u.version);
    let mut ids: Vec<String> = connections(&snap).iter().map(|c| c.id.clone()).collect();
    ids.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(ids, want);
    h.shutdown().await;
}

/// Reads updates until every id in `want` arrived as an API key; returns how many updates
/// that took and the last version.
async fn read_keys(sub: &mut Sub, want: &[String], mut version: i64) -> (usize, i64) {
    let mut seen = std::collections::HashSet::new();
    let mut updates = 0;
    while want.iter().any(|k| !seen.contains(k)) {
        let u = sub.next().await;
        assert!(u.version > version, "versions strictly grow");
        version = u.version;
        updates += 1;
        for r in &u.upserts {
            if let Some(pb::resource::Resource::ApiKey(k)) = &r.resource {
                seen.insert(k.id.clone());
            }
        }
    }
    (updates, version)
}

#[tokio::test]
async fn sync_burst_does_not_block_and_backlog_is_coalesced() {
    let h = Harness::plaintext().await;
    let a = h.create_llm("a", &["production"], false).await;
    let repo = h.create_repo("app", &a).await;
    let mut client = h.client().await;
    let mut sub = subscribe(&mut client, "production", 0)
        .await
        .expect("subscribe");
    let snap = sub.next().await;

    // 120 writes while the data plane does not read: writers are never held up by it.
    let t = Instant::now();
    let mut keys = Vec::new();
    for i in 0..120 {
        keys.push(h.create_key(&repo, &format!("k{i}")).await.0);
    }
    eprintln!(
        "120 admin writes with a stalled subscriber: {:?}",
        t.elapsed()
    );
    let (updates, version) = read_keys(&mut sub, &keys, snap.version).await;
    eprintln!("120 live key creations arrived in {updates} update(s)");
    drop(sub);

    // A backlog (here: 120 revisions missed while disconnected) is coalesced, not replayed
    // revision by revision.
    let mut missed = Vec::new();
    for i in 0..120 {
        missed.push(h.create_key(&repo, &format!("m{i}")).await.0);
    }
    let t = Instant::now();
    let mut sub = subscribe(&mut client, "production", version)
        .await
        .expect("resume");
    let (updates, _) = read_keys(&mut sub, &missed, version).await;
    eprintln!(
        "backlog of 120 revisions: {updates} update(s) in {:?}",
        t.elapsed()
    );
    assert!(updates <= 2, "backlog sent as {updates} updates");
    h.shutdown().await;
}

#[tokio::test]
async fn sync_bad_hello_is_refused() {
    let h = Harness::plaintext().await;
    let mut client = h.client().await;
    let err = match subscribe(&mut client, "", 0).await {
        Ok(mut sub) => sub.updates.message().await.expect_err("refused"),
        Err(e) => e,
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("environment"), "{}", err.message());
    h.shutdown().await;
}

fn usage_report(sequence: u64, llm: &str, calls: u64) -> pb::UsageReport {
    let minute = 29_000_000;
    let record = |model: &str| pb::UsageRecord {
        minute,
        ai_llm_id: llm.into(),
        repository_id: "repo_1".into(),
        api_key_id: "key_1".into(),
        model: model.into(),
        api_calls: calls,
        tokens_in: 10 * calls,
        tokens_out: 20 * calls,
        ..Default::default()
    };
    pb::UsageReport {
        instance_id: "dp-test".into(),
        sequence,
        environment: "production".into(),
        records: vec![record("gpt-4o"), record("meta/llama-3")],
        violations: Vec::new(),
    }
}

async fn sync_client_report(
    client: &mut SyncServiceClient<Channel>,
    report: pb::UsageReport,
) -> Result<pb::UsageAck, tonic::Status> {
    client.report_usage(report).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn sync_usage_report_is_applied_once() {
    let h = Harness::plaintext().await;
    let llm = h.create_llm("a", &["production"], false).await;
    let mut client = h.client().await;

    let first = sync_client_report(&mut client, usage_report(1, &llm, 3))
        .await
        .expect("report");
    assert_eq!((first.sequence, first.applied), (1, true));
    let again = sync_client_report(&mut client, usage_report(1, &llm, 3))
        .await
        .expect("retry");
    assert_eq!(
        (again.sequence, again.applied),
        (1, false),
        "a retry is not counted"
    );
    let second = sync_client_report(&mut client, usage_report(2, &llm, 1))
        .await
        .expect("next");
    assert!(second.applied);
    let stale = sync_client_report(&mut client, usage_report(1, &llm, 1))
        .await
        .expect("stale");
    assert!(!stale.applied);

    let record = db::get::<AiLlm>(h.ctx.store(), &keys::llm(&llm))
        .await
        .expect("read")
        .expect("llm");
    let stats = api::stats::llm_stats(&h.ctx, &record.value)
        .await
        .expect("stats");
    // Two records of 3 calls, then two of 1: 8 calls, each counted once.
    assert_eq!(stats.total_api_calls, 8);
    assert_eq!(stats.total_tokens_in, 80);
    assert_eq!(stats.total_tokens_out, 160);
    assert_eq!(stats.minute_buckets.len(), 1);
    assert_eq!(stats.day_buckets.len(), 1);
    let minute = stats.minute_buckets[0].totals.expect("totals");
    assert_eq!(minute.api_calls, 8);

    // Bad reports are refused, with what to fix, and count nothing.
    let mut zero = usage_report(0, &llm, 1);
    let err = sync_client_report(&mut client, zero.clone())
        .await
        .expect_err("seq 0");
    assert_eq!(err.code(), Code::InvalidArgument);
    zero.sequence = 9;
    zero.records = (0..64)
        .map(|i| pb::UsageRecord {
            minute: 29_000_000 + i * 1440,
            ai_llm_id: format!("llm_{i}"),
            api_calls: 1,
            ..Default::default()
        })
        .collect();
    let err = sync_client_report(&mut client, zero)
        .await
        .expect_err("too big");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("split"), "{}", err.message());
    let stats = api::stats::llm_stats(&h.ctx, &record.value)
        .await
        .expect("stats");
    assert_eq!(stats.total_api_calls, 8);
    h.shutdown().await;
}

#[tokio::test]
async fn sync_concurrent_retries_count_once() {
    let h = Harness::plaintext().await;
    let llm = h.create_llm("a", &["production"], false).await;
    let client = h.client().await;
    // Eight copies of one report racing (a data plane retrying against several replicas).
    let racers = (0..8).map(|_| {
        let mut c = client.clone();
        let r = usage_report(1, &llm, 1);
        tokio::spawn(async move { sync_client_report(&mut c, r).await })
    });
    let mut applied = 0;
    for r in futures::future::join_all(racers).await {
        if r.expect("task").expect("ack").applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    let record = db::get::<AiLlm>(h.ctx.store(), &keys::llm(&llm))
        .await
        .expect("read")
        .expect("llm");
    let stats = api::stats::llm_stats(&h.ctx, &record.value)
        .await
        .expect("stats");
    assert_eq!(stats.total_api_calls, 2);
    h.shutdown().await;
}

#[tokio::test]
async fn sync_shutdown_ends_open_streams() {
    let h = Harness::plaintext().await;
    let mut client = h.client().await;
    let mut sub = subscribe(&mut client, "production", 0)
        .await
        .expect("subscribe");
    sub.next().await;
    h.shutdown().await;
    let end = tokio::time::timeout(WAIT, sub.updates.message())
        .await
        .expect("ends");
    match end {
        Err(status) => assert_eq!(status.code(), Code::Unavailable),
        Ok(None) => {}
        Ok(Some(u)) => panic!("unexpected update {}", u.version),
    }
}

#[test]
fn sync_insecure_is_refused_off_loopback() {
    let refused = sync::transport_from_flags(
        "0.0.0.0:7071".parse().expect("addr"),
        None,
        None,
        None,
        true,
    )
    .expect_err("plaintext on every interface");
    assert!(format!("{refused}").contains("loopback"), "{refused}");
    let ok = sync::transport_from_flags(
        "127.0.0.1:7071".parse().expect("addr"),
        None,
        None,
        None,
        true,
    );
    assert_eq!(ok.expect("loopback"), SyncTransport::Insecure);
}

mod mtls {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    use super::*;

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf signed by `ca`: (certificate PEM, key PEM).
    fn leaf(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    async fn try_snapshot(
        addr: SocketAddr,
        ca_pem: &str,
        client: Option<&(String, String)>,
    ) -> Result<pb::ConfigUpdate, String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        if let Some((cert, key)) = client {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let endpoint = Channel::from_shared(format!("https://127.0.0.1:{}", addr.port()))
            .map_err(|e| e.to_string())?
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect_timeout(WAIT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut client = SyncServiceClient::new(channel);
        let mut sub = subscribe(&mut client, "production", 0)
            .await
            .map_err(|e| format!("subscribe: {e}"))?;
        match tokio::time::timeout(WAIT, sub.updates.message()).await {
            Ok(Ok(Some(u))) => Ok(u),
            other => Err(format!("no snapshot: {other:?}")),
        }
    }

    #[tokio::test]
    async fn sync_mtls_requires_a_client_certificate_from_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca("tollgate data planes");
        let (server_cert, server_key) =
            leaf(&ca, "control plane", ExtendedKeyUsagePurpose::ServerAuth);
        let good = leaf(&ca, "dp-1", ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = leaf(
            &super::mtls::ca("someone else"),
            "dp-x",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write pem");
            path
        };
        let transport = SyncTransport::Tls {
            cert: write("server.pem", &server_cert),
            key: write("server.key", &server_key),
            client_ca: write("ca.pem", &ca.pem),
        };
        let h = Harness::start(transport).await;
        h.create_llm("a", &["production"], false).await;

        let none = try_snapshot(h.addr, &ca.pem, None).await;
        assert!(
            none.is_err(),
            "a client without a certificate got a snapshot"
        );
        eprintln!("no client certificate: {}", none.err().unwrap_or_default());
        let other = try_snapshot(h.addr, &ca.pem, Some(&stranger)).await;
        assert!(
            other.is_err(),
            "a certificate from another CA got a snapshot"
        );
        eprintln!(
            "certificate from another CA: {}",
            other.err().unwrap_or_default()
        );
        let plain = SyncServiceClient::connect(format!("http://{}", h.addr)).await;
        if let Ok(mut c) = plain {
            assert!(
                subscribe(&mut c, "production", 0).await.is_err(),
                "plaintext client served"
            );
        }

        let t = Instant::now();
        let snap = try_snapshot(h.addr, &ca.pem, Some(&good))
            .await
            .expect("good client");
        eprintln!("mTLS connect + full snapshot: {:?}", t.elapsed());
        assert!(snap.full);
        assert_eq!(connections(&snap)[0].secret, SECRET);
        h.shutdown().await;
    }
}
