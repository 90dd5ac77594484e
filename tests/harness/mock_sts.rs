//! A mock AWS STS answering `AssumeRoleWithWebIdentity` in its documented Query API shape
//! (form-encoded POST, XML answer; `ErrorResponse` with `Code` and `Message` on failure), for
//! one web identity token, with fixed temporary credentials; it counts the exchanges.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

pub struct MockSts {
    pub url: String,
    calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The temporary credentials the mock hands out.
pub struct Issued {
    pub access_key_id: &'static str,
    pub secret_access_key: String,
    pub session_token: &'static str,
    pub role_arn: &'static str,
    /// The web identity token it accepts.
    pub token: &'static str,
}

impl MockSts {
    pub async fn start(issued: Issued) -> MockSts {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls = Arc::new(AtomicUsize::new(0));
        let (issued, counter) = (Arc::new(issued), calls.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (issued, counter) = (issued.clone(), counter.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (issued, counter) = (issued.clone(), counter.clone());
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let form: HashMap<String, String> =
                                form_pairs(&String::from_utf8_lossy(&body.unwrap_or_default()));
                            counter.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(answer(&issued, &form))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        MockSts { url, calls, task }
    }

    /// Exchanges answered so far (accepted or not).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for MockSts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn form_pairs(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Percent-decoding of a form value (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn answer(issued: &Issued, form: &HashMap<String, String>) -> Response<Full<bytes::Bytes>> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let error = |status: u16, code: &str, message: &str| {
        let xml = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>mock</RequestId></ErrorResponse>"
        );
        Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(Full::from(xml))
            .expect("response")
    };
    if get("Action") != "AssumeRoleWithWebIdentity" || get("Version") != "2011-06-15" {
        return error(400, "InvalidAction", "unknown action or version");
    }
    if get("WebIdentityToken") != issued.token {
        return error(
            400,
            "InvalidIdentityToken",
            "The web identity token is not valid",
        );
    }
    if get("RoleArn") != issued.role_arn {
        return error(
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    let expires = aws_smithy_types::DateTime::from(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .fmt(aws_smithy_types::date_time::Format::DateTime)
    .expect("date");
    let xml = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<AssumeRoleWithWebIdentityResult>\
<SubjectFromWebIdentityToken>system:serviceaccount:tollgate:tollgate</SubjectFromWebIdentityToken>\
<AssumedRoleUser><Arn>{role}/{session}</Arn><AssumedRoleId>AROAMOCK:{session}</AssumedRoleId></AssumedRoleUser>\
<Credentials>\
<SessionToken>{token}</SessionToken>\
<SecretAccessKey>{secret}</SecretAccessKey>\
<Expiration>{expires}</Expiration>\
<AccessKeyId>{id}</AccessKeyId>\
</Credentials>\
<Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>\
</AssumeRoleWithWebIdentityResult>\
<ResponseMetadata><RequestId>mock</RequestId></ResponseMetadata>\
</AssumeRoleWithWebIdentityResponse>",
        role = issued.role_arn,
        session = get("RoleSessionName"),
        token = issued.session_token,
        secret = issued.secret_access_key,
        id = issued.access_key_id,
    );
    Response::builder()
        .header("content-type", "text/xml")
        .body(Full::from(xml))
        .expect("response")
}
