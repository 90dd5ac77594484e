//! The sync token on the plaintext (loopback) sync port: a data plane without it, or with a
//! wrong one, gets no config and says why; with the right one it syncs. The control plane
//! refuses plaintext sync without a token, and `dev` generates one (0600) that extra data
//! planes can use. The token never shows in any process's output.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tollgate_tests::{Backend, ControlPlane, DataPlane, bins, free_port, http};

/// A data plane that never synced answers 503 on the gateway and is not ready.
async fn assert_no_config(dp: &DataPlane, what: &str) {
    assert!(!dp.is_ready().await, "{what}: became ready");
    let (status, body) = http::get(&format!("{}/v1/models", dp.url))
        .await
        .expect("gateway answers");
    assert_eq!(status, 503, "{what}: {body}");
}

/// Waits until `logs()` contains `needle`; panics with the logs after `secs`.
async fn wait_for_log(secs: u64, what: &str, needle: &str, logs: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if logs().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never logged {needle:?}:\n{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_sync_admits_only_the_token() {
    let cp = ControlPlane::start(Backend::Embedded).await;
    let token = cp.sync_token().expect("plaintext sync always has a token");

    let started = Instant::now();
    let without = DataPlane::builder(&cp, "production")
        .sync_token(None)
        .no_wait_ready()
        .start()
        .await;
    let wrong = DataPlane::builder(&cp, "production")
        .sync_token(Some("tgsync_not-the-right-token-0123456789"))
        .no_wait_ready()
        .start()
        .await;
    let good = DataPlane::start(&cp, "production").await;
    eprintln!(
        "data plane with the token ready after {:?}",
        started.elapsed()
    );

    wait_for_log(
        10,
        "the data plane without a token",
        "requires a sync token",
        || without.logs(),
    )
    .await;
    wait_for_log(
        10,
        "the data plane with a wrong token",
        "does not match",
        || wrong.logs(),
    )
    .await;
    for (dp, what) in [(&without, "no token"), (&wrong, "wrong token")] {
        assert_no_config(dp, what).await;
        let said = dp
            .logs()
            .lines()
            .find(|l| l.contains("refused the sync call: sync token missing or wrong"))
            .unwrap_or_else(|| panic!("{what}: no clear error in:\n{}", dp.logs()))
            .to_string();
        assert!(said.contains("ERROR"), "{what}: {said}");
        assert!(said.contains("--sync-token-file"), "{what}: {said}");
        eprintln!("{what}: {said}");
    }
    let cp_logs = cp.logs();
    assert!(
        cp_logs.contains("sync call without a sync token refused")
            && cp_logs.contains("sync call with a wrong sync token refused"),
        "{cp_logs}"
    );
    // Still nothing after a few retries; the one with the token is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_no_config(&without, "no token").await;
    assert_no_config(&wrong, "wrong token").await;
    assert!(good.is_ready().await);

    for (name, text) in [
        ("control plane", cp.logs()),
        ("data plane with the token", good.logs()),
        ("data plane without a token", without.logs()),
        ("data plane with a wrong token", wrong.logs()),
    ] {
        assert!(
            !text.contains(&token),
            "the sync token is in the {name}'s output"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_sync_without_a_token_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("master.key");
    tollgate_control_plane::crypto::Keyring::generate_file(&key_file).expect("master key");
    let store = dir.path().join("store.redb");
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
            &format!("127.0.0.1:{}", free_port()),
            "--sync-insecure",
        ],
        10,
    )
    .await;
    assert!(!exit.status.success(), "plaintext sync without a token ran");
    assert!(
        exit.output.contains("needs a sync token") && exit.output.contains("--sync-token-file"),
        "a clear message: {}",
        exit.output
    );
    assert!(!store.exists(), "the store was opened before the refusal");
}

/// `dev` makes `<data dir>/sync-token` (0600), gives it to its own data plane, and another
/// data plane syncs with that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_generates_the_token_for_its_data_planes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("state");
    let out = dir.path().join("dev.out");
    let (admin, sync, gw, gw_admin) = (free_port(), free_port(), free_port(), free_port());
    let log = std::fs::File::create(&out).expect("output file");
    let _dev =
        tollgate_tests::without_proxy(&mut Command::new(bins::path("tollgate-control-plane")))
            .arg("dev")
            .arg("--data-dir")
            .arg(&data)
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .args(["--sync-listen", &format!("127.0.0.1:{sync}")])
            .args(["--gateway-listen", &format!("127.0.0.1:{gw}")])
            .args(["--gateway-admin-listen", &format!("127.0.0.1:{gw_admin}")])
            .env("TOLLGATE_LOG", "debug")
            .env_remove("TOLLGATE_SYNC_TOKEN")
            .env_remove("TOLLGATE_SYNC_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn dev");
    let ready = |port: u16| async move {
        http::get(&format!("http://127.0.0.1:{port}/readyz"))
            .await
            .is_ok_and(|(s, _)| s == 200)
    };
    tollgate_tests::wait_until(30, "dev's own data plane", || ready(gw_admin)).await;

    let token_file = data.join("sync-token");
    let token = std::fs::read_to_string(&token_file)
        .expect("dev wrote the sync token")
        .trim()
        .to_string();
    assert!(token.len() >= 32, "a long random token");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (dp_port, dp_admin) = (free_port(), free_port());
    let dp_out = dir.path().join("dp.out");
    let dp_log = std::fs::File::create(&dp_out).expect("output file");
    let _dp = tollgate_tests::without_proxy(&mut Command::new(bins::path("tollgate-data-plane")))
        .args(["--control-plane", &format!("http://127.0.0.1:{sync}")])
        .arg("--sync-token-file")
        .arg(&token_file)
        .args(["--listen", &format!("127.0.0.1:{dp_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{dp_admin}")])
        .env("TOLLGATE_LOG", "debug")
        .env_remove("TOLLGATE_SYNC_TOKEN")
        .stdin(Stdio::null())
        .stdout(dp_log.try_clone().expect("log"))
        .stderr(dp_log)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn data plane");
    tollgate_tests::wait_until(30, "a data plane using dev's token file", || {
        ready(dp_admin)
    })
    .await;

    let dev_text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        dev_text.contains(&token_file.display().to_string()),
        "the banner says where the token is: {dev_text}"
    );
    for (name, text) in [
        ("dev", dev_text),
        (
            "data plane",
            std::fs::read_to_string(&dp_out).unwrap_or_default(),
        ),
    ] {
        assert!(
            !text.contains(&token),
            "the sync token is in {name}'s output"
        );
    }
}
