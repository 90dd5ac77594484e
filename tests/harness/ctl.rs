//! Runs the real `tollgatectl` binary and keeps what it printed.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

#[derive(Clone)]
pub struct Ctl {
    addr: String,
    token: String,
    env: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct CtlOutput {
    pub args: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CtlOutput {
    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "tollgatectl {} failed:\nstdout: {}\nstderr: {}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    /// Asserts failure with `needle` in stderr (case-insensitive).
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        assert_ne!(
            self.code, 0,
            "tollgatectl {} should fail; stdout: {}",
            self.args, self.stdout
        );
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "tollgatectl {}: stderr should mention '{needle}':\n{}",
            self.args,
            self.stderr
        );
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "tollgatectl {}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

impl Ctl {
    pub fn new(addr: &str, token: &str) -> Ctl {
        Ctl {
            addr: addr.to_string(),
            token: token.to_string(),
            env: vec![],
        }
    }

    pub fn with_token(&self, token: &str) -> Ctl {
        Ctl {
            token: token.to_string(),
            ..self.clone()
        }
    }

    pub fn with_env(&self, k: &str, v: &str) -> Ctl {
        let mut c = self.clone();
        c.env.push((k.to_string(), v.to_string()));
        c
    }

    pub async fn run(&self, args: &[&str]) -> CtlOutput {
        self.run_stdin(args, None).await
    }

    pub async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> CtlOutput {
        let mut cmd = Command::new(crate::bins::path("tollgatectl"));
        cmd.args(args)
            .env("TOLLGATE_ADDR", &self.addr)
            .env("TOLLGATE_TOKEN", &self.token)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tollgatectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        let out = child.wait_with_output().await.expect("tollgatectl output");
        CtlOutput {
            args: args.join(" "),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
