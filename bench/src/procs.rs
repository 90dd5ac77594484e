//! Child processes that die with the harness, and what `/proc` says about them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A spawned process, killed (SIGKILL) and reaped when dropped: an early return or a panic
/// leaves nothing running.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {name} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the tail of the log if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Resource use of the process and its direct children (nginx's workers).
    pub fn usage(&self) -> Usage {
        let mut pids = vec![self.pid()];
        pids.extend(children(self.pid()));
        let mut u = Usage::default();
        for pid in pids {
            let (user, system) = cpu_times(pid).unwrap_or_default();
            u.cpu_secs += user + system;
            u.user_secs += user;
            u.rss_kib += status_kib(pid, "VmRSS:").unwrap_or(0);
            u.hwm_kib += status_kib(pid, "VmHWM:").unwrap_or(0);
        }
        u
    }
}

impl Drop for Proc {
    /// SIGTERM (nginx's master then stops its workers), SIGKILL after 3 s; then any child
    /// still there (same pid and start time as before, so never a recycled pid) is killed.
    fn drop(&mut self) {
        let pid = self.pid();
        let kids: Vec<(u32, Option<u64>)> = children(pid)
            .into_iter()
            .map(|k| (k, start_time(k)))
            .collect();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (k, started) in kids {
            if started.is_some() && start_time(k) == started {
                let _ = Command::new("kill")
                    .args(["-KILL", &k.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Start time of `pid` (field 22 of `/proc/<pid>/stat`), to recognise it later.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// CPU time and memory of a process tree at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// utime alone (the process's own code; stime is the kernel's work for it), seconds.
    pub user_secs: f64,
    /// Resident set (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident set (VmHWM), KiB.
    pub hwm_kib: u64,
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux ABI we run on; `getconf CLK_TCK` confirms it.
    100.0
}

/// utime and stime of `pid` in seconds, from `/proc/<pid>/stat` (fields 14 and 15).
pub fn cpu_times(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / clock_ticks(), stime / clock_ticks()))
}

/// A `kB` line of `/proc/<pid>/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until `check` succeeds, failing after `timeout` (or when `proc` exits).
pub async fn wait_until<F, Fut>(proc: &mut Proc, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        proc.check_alive()?;
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready after {timeout:?}:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True once something accepts TCP connections on `port`.
pub async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(loopback(port)).await.is_ok()
}

/// Path of a binary next to the harness's own (same cargo profile), unless `dir` says where.
pub fn bin(dir: Option<&Path>, name: &str) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .context("harness path has no parent")?
            .to_path_buf(),
    };
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p tollgate-control-plane -p tollgate-data-plane) or pass --bin-dir",
            path.display()
        );
    }
    Ok(path)
}
