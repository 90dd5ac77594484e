//! Finds the workspace's binaries next to the test executable (`target/<profile>/`).

use std::path::PathBuf;

/// Path of a binary of this workspace; panics with the command that builds it when missing.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`)",
        p.display()
    );
    p
}

/// How a process that was expected to stop on its own ended.
#[derive(Debug)]
pub struct Exit {
    pub status: std::process::ExitStatus,
    /// stdout and stderr, together.
    pub output: String,
}

/// Runs `name args` and waits up to `secs` for it to exit by itself; panics (after killing it)
/// if it is still running then: for flags that must be refused at startup.
pub async fn run_to_exit(name: &str, args: &[&str], secs: u64) -> Exit {
    let mut cmd = tokio::process::Command::new(path(name));
    crate::process_env(&mut cmd, &[]);
    let child = cmd
        .args(args)
        .env_remove("TOLLGATE_MASTER_KEY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        child.wait_with_output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} {args:?} was still running after {secs}s"))
    .unwrap_or_else(|e| panic!("wait for {name}: {e}"));
    Exit {
        status: out.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
