//! An egress proxy stand-in speaking HTTP CONNECT (RFC 9110 §9.3.6) as squid or tinyproxy
//! do: it checks `Proxy-Authorization` when given credentials (407 otherwise), records each
//! CONNECT target, answers 200 and joins the tunnel to 127.0.0.1 on the requested port, so a
//! made-up host name resolves only here, as names resolve at a real proxy.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct EgressProxy {
    pub port: u16,
    targets: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EgressProxy {
    /// Serves on a free loopback port; `basic` is the `Proxy-Authorization: Basic` value it
    /// demands, if any.
    pub async fn start(basic: Option<&str>) -> EgressProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (seen, basic) = (targets.clone(), basic.map(|b| format!("Basic {b}")));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(tunnel(tcp, seen.clone(), basic.clone()));
            }
        });
        EgressProxy {
            port,
            targets,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// The `host:port` of every CONNECT it accepted, in order.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(mut tcp: TcpStream, seen: Arc<Mutex<Vec<String>>>, basic: Option<String>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || tcp.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let target = match request.split(' ').collect::<Vec<_>>()[..] {
        ["CONNECT", target, "HTTP/1.1"] => target.to_string(),
        _ => {
            let _ = tcp
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                .await;
            return;
        }
    };
    let authorized = basic.as_deref().is_none_or(|want| {
        lines.any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("proxy-authorization") && v.trim() == want
            })
        })
    });
    if !authorized {
        let _ = tcp
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"egress\"\r\n\r\n")
            .await;
        return;
    }
    let port = target
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(443);
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
        let _ = tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if let Ok(mut t) = seen.lock() {
        t.push(target);
    }
    if tcp
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
}
