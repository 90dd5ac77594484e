//! No secret in clear in the store's files, the logs, or any API response.

use tollgate_sdk::proto;
use tollgate_tests::{Backend, ControlPlane, MockProvider};

const SECRET: &str = "sk-MARKER-secret-never-in-clear-7b3f9e";
const KEY: &str = "AKIAMARKERKEYNEVERCLEAR";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn no_secret_in_clear(backend: Backend) {
    let mut cp = ControlPlane::start(backend).await;
    let mock = MockProvider::start(SECRET).await;
    let ctl = cp.ctl();
    let mut outputs = Vec::new();
    let out = ctl
        .run_stdin(
            &[
                "-o",
                "json",
                "llm",
                "create",
                "--workspace",
                "default",
                "--name",
                "m",
                "--type",
                "openai",
                "--endpoint",
                &format!("{}/v1", mock.url()),
                "--key",
                KEY,
                "--secret-stdin",
            ],
            Some(SECRET),
        )
        .await
        .ok();
    outputs.push(out.stdout.clone() + &out.stderr);
    let out = ctl
        .with_env("E2E_AWS_SECRET", SECRET)
        .run(&[
            "-o",
            "yaml",
            "llm",
            "create",
            "--workspace",
            "default",
            "--name",
            "aws",
            "--type",
            "aws",
            "--key",
            KEY,
            "--secret-env",
            "E2E_AWS_SECRET",
        ])
        .await
        .ok();
    outputs.push(out.stdout.clone() + &out.stderr);
    for args in [
        vec!["-o", "json", "llm", "list"],
        vec!["-o", "yaml", "llm", "get", "m"],
        vec!["llm", "get", "m"],
        vec!["-o", "json", "llm", "validate", "m"],
        vec!["-o", "json", "llm", "available"],
        vec!["llm", "list"],
    ] {
        let out = ctl.run(&args).await.ok();
        outputs.push(out.stdout.clone() + &out.stderr);
    }
    // A wrong secret echoed back by the provider is scrubbed too.
    let wrong = "sk-MARKER-wrong-secret-echoed-by-provider";
    ctl.run_stdin(&["llm", "update", "m", "--secret-stdin"], Some(wrong))
        .await
        .ok();
    let out = ctl.run(&["-o", "json", "llm", "validate", "m"]).await.ok();
    assert_eq!(out.json()["success"], false);
    outputs.push(out.stdout.clone() + &out.stderr);
    let client = cp.client().await;
    let got = client
        .get_ai_llm(proto::GetAiLlmRequest {
            id: "m".into(),
            ..Default::default()
        })
        .await
        .expect("get");
    outputs.push(format!("{got:?}"));
    assert!(got.key_set && got.secret_set);

    // App keys and admin tokens: shown once, never stored in clear.
    ctl.run(&["repo", "create", "--workspace", "default", "--name", "r"])
        .await
        .ok();
    let key = ctl
        .run(&["-o", "json", "key", "create", "--repo", "r", "--name", "k"])
        .await
        .ok()
        .json();
    let app_key = key["secret"].as_str().expect("secret").to_string();
    let tok = ctl
        .run(&[
            "-o",
            "json",
            "token",
            "create",
            "--name",
            "t",
            "--workspace",
            "default",
            "--role",
            "read",
        ])
        .await
        .ok()
        .json();
    let admin_token = tok["secret"].as_str().expect("token secret").to_string();

    for (i, o) in outputs.iter().enumerate() {
        for s in [SECRET, KEY, wrong] {
            assert!(!o.contains(s), "output {i} shows a secret: {o}");
        }
    }
    // Let the backend flush, then read every byte it keeps.
    cp.restart().await;
    let mut files = 0;
    for f in cp.store_files() {
        let bytes = std::fs::read(&f).expect("read store file");
        for s in [
            SECRET,
            KEY,
            wrong,
            &app_key,
            &admin_token,
            tollgate_tests::control_plane::BOOTSTRAP_TOKEN,
        ] {
            assert!(
                !contains(&bytes, s),
                "{} holds a secret in clear",
                f.display()
            );
        }
        files += 1;
    }
    assert!(files > 0, "no store files found");
    let logs = cp.logs();
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "logs were captured"
    );
    for s in [
        SECRET,
        KEY,
        wrong,
        app_key.as_str(),
        admin_token.as_str(),
        tollgate_tests::control_plane::BOOTSTRAP_TOKEN,
    ] {
        assert!(!logs.contains(s), "the control plane logged a secret");
    }
    // After the restart the secrets still decrypt (validation uses them).
    ctl.run_stdin(&["llm", "update", "m", "--secret-stdin"], Some(SECRET))
        .await
        .ok();
    let v = ctl
        .run(&["-o", "json", "llm", "validate", "m"])
        .await
        .ok()
        .json();
    assert_eq!(v["success"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_clear_embedded() {
    no_secret_in_clear(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_clear_etcd() {
    no_secret_in_clear(Backend::Etcd).await;
}

/// Rotation: a new active key with the old one kept decrypts everything; the re-encrypt pass
/// moves every secret to the new key, after which the old key can go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation() {
    let mut cp = ControlPlane::start(Backend::Embedded).await;
    let mock = MockProvider::start(SECRET).await;
    let client = cp.client().await;
    client
        .create_ai_llm(proto::CreateAiLlmRequest {
            workspace_id: "default".into(),
            name: "m".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: format!("{}/v1", mock.url()),
            secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("create");
    let old = std::fs::read_to_string(cp.key_file()).expect("key");
    let old = old.trim().to_string();
    let new = tollgate_control_plane::crypto::Keyring::generate_key_base64();
    cp.set_master_keys(&[new.expose(), &old]);
    cp.restart().await;
    let validate = |c: tollgate_sdk::Client| async move {
        c.validate_ai_llm(proto::ValidateAiLlmRequest {
            id: "m".into(),
            ..Default::default()
        })
        .await
        .expect("validate")
    };
    assert!(
        validate(cp.client().await).await.success,
        "old key still decrypts"
    );

    // The control plane holds the store file open, so the pass runs against it after a stop.
    cp.kill9().await;
    let out = tokio::process::Command::new(tollgate_tests::bins::path("tollgate-control-plane"))
        .args(["reencrypt", "--store", cp.store_url()])
        .arg("--master-key-file")
        .arg(cp.key_file())
        .output()
        .await
        .expect("reencrypt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1"));
    cp.set_master_keys(&[new.expose()]);
    cp.restart().await;
    assert!(
        validate(cp.client().await).await.success,
        "new key alone decrypts after the pass"
    );
}
