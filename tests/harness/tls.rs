//! Test PKI (rcgen): CAs, a server certificate for `127.0.0.1`/`localhost`, client
//! certificates, written as PEM files; and an HTTPS client (hyper-rustls, ring) that trusts
//! a test CA and speaks one chosen protocol (ALPN `h2` or `http/1.1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::CertificateDer;

/// A certificate authority.
pub struct Ca {
    /// PEM file of the CA certificate.
    pub cert_file: PathBuf,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A leaf certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// A server-side TLS acceptor with this certificate (ALPN h2 and http/1.1).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .expect("read cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM cert");
        let key = PrivateKeyDer::from_pem_file(&self.key).expect("PEM key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("certificate and key");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Ca {
    /// A self-signed CA named `name`, whose files go to `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        let cert_file = dir.join(format!("{}-ca.pem", slug(name)));
        std::fs::write(&cert_file, cert.pem()).expect("write CA");
        Ca {
            cert_file,
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            dir: dir.to_path_buf(),
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self, name: &str) -> CertFiles {
        self.leaf(name, &LOOPBACK, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate for `hosts`.
    pub fn server_for(&self, name: &str, hosts: &[&str]) -> CertFiles {
        self.leaf(name, hosts, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mTLS).
    pub fn client(&self, name: &str) -> CertFiles {
        self.leaf(name, &LOOPBACK, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, name: &str, hosts: &[&str], usage: ExtendedKeyUsagePurpose) -> CertFiles {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(hosts).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages.push(usage);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let files = CertFiles {
            cert: self.dir.join(format!("{}.pem", slug(name))),
            key: self.dir.join(format!("{}.key", slug(name))),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    /// rustls roots holding only this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("add CA root");
        roots
    }
}

const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Which protocol the HTTPS client offers in ALPN (and then speaks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    H2,
    Http11,
}

/// An answer over HTTPS: status, the HTTP version spoken, body.
#[derive(Debug)]
pub struct HttpsAnswer {
    pub status: u16,
    pub version: hyper::Version,
    pub body: String,
}

/// One request over HTTPS to `url`, trusting only `ca`, offering only `alpn`.
pub async fn https_request(
    ca: &Ca,
    alpn: Alpn,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpsAnswer, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let mut client = Client::builder(TokioExecutor::new());
    let client = match alpn {
        Alpn::H2 => client
            .http2_only(true)
            .build(builder.enable_http2().build()),
        Alpn::Http11 => client.build(builder.enable_http1().build()),
    };
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(HttpsAnswer {
        status,
        version,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
