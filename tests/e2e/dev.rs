//! `tollgate-control-plane dev`: one process with the embedded store, the control plane and
//! a data plane, which keeps its state across restarts.

use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tollgate_sdk::proto;
use tollgate_tests::{MockProvider, free_port, http};

struct Dev {
    child: Child,
    admin: String,
    gateway: String,
}

async fn start_dev(dir: &std::path::Path, ports: (u16, u16, u16, u16)) -> (Dev, String) {
    let (admin, sync, gw, gw_admin) = ports;
    let mut child = tollgate_tests::without_proxy(&mut Command::new(tollgate_tests::bins::path(
        "tollgate-control-plane",
    )))
    .arg("dev")
    .arg("--data-dir")
    .arg(dir)
    .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
    .args(["--sync-listen", &format!("127.0.0.1:{sync}")])
    .args(["--gateway-listen", &format!("127.0.0.1:{gw}")])
    .args(["--gateway-admin-listen", &format!("127.0.0.1:{gw_admin}")])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .expect("spawn dev");
    // The banner is printed once everything listens.
    let mut out = child.stdout.take().expect("stdout");
    let mut banner = String::new();
    let mut buf = [0u8; 4096];
    while !banner.contains("curl") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), out.read(&mut buf))
            .await
            .expect("dev printed its banner")
            .expect("read");
        assert!(n > 0, "dev exited early: {banner}");
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let ready = format!("http://127.0.0.1:{gw_admin}/readyz");
    tollgate_tests::wait_until(10, "the in-process data plane", || {
        let ready = ready.clone();
        async move { http::get(&ready).await.is_ok_and(|(s, _)| s == 200) }
    })
    .await;
    (
        Dev {
            child,
            admin: format!("http://127.0.0.1:{admin}"),
            gateway: format!("http://127.0.0.1:{gw}"),
        },
        banner,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("state");
    let ports = (free_port(), free_port(), free_port(), free_port());
    let mock = MockProvider::start("sk-dev-e2e-secret-123456").await;

    let (mut dev, banner) = start_dev(&data, ports).await;
    let token = std::fs::read_to_string(data.join("admin-token"))
        .expect("token file")
        .trim()
        .to_string();
    assert!(
        banner.contains(&token),
        "the first start prints the admin token"
    );
    assert!(
        banner.contains(&dev.gateway) && banner.contains(&dev.admin),
        "{banner}"
    );
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    };
    assert_eq!(mode(&data.join("admin-token")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);

    let client = tollgate_sdk::Client::connect(&dev.admin, &token)
        .await
        .expect("connect");
    client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "openai".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: format!("{}/v1", mock.url()),
            secret: "sk-dev-e2e-secret-123456".into(),
            models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        })
        .await
        .expect("llm");
    client
        .create_repository(proto::CreateRepositoryRequest {
            workspace_id: "default".into(),
            name: "demo".into(),
        })
        .await
        .expect("repo");
    client
        .attach_ai_llm(proto::AttachAiLlmRequest {
            repository_id: "demo".into(),
            ai_llm_id: "openai".into(),
            ..Default::default()
        })
        .await
        .expect("attach");
    let key = client
        .create_api_key(proto::CreateApiKeyRequest {
            repository_id: "demo".into(),
            name: "k".into(),
            ..Default::default()
        })
        .await
        .expect("key")
        .secret;
    let body = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}"#;
    let url = format!("{}/v1/chat/completions", dev.gateway);
    let mut status = 0;
    for _ in 0..100 {
        status = http::post_json(&url, Some(&key), body).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);

    // Stop (SIGKILL) and start again on the same data dir: same token, same key, same routes.
    let _ = dev.child.start_kill();
    let _ = dev.child.wait().await;
    let (dev2, banner) = start_dev(&data, ports).await;
    assert!(
        !banner.contains(&token),
        "the token is printed only on the first start"
    );
    let (status, json) = http::post_json(&url, Some(&key), body).await;
    assert_eq!(status, 200, "{json}");
    let client = tollgate_sdk::Client::connect(&dev2.admin, &token)
        .await
        .expect("reconnect");
    let listed = client
        .list_ai_llms(proto::ListAiLlmsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.ai_llms.len(), 1);
}
