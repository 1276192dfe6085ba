//! The HTTP side of WHIP (RFC 9725) on hyper: POST an offer (following 307 and 308
//! redirects), DELETE a session. Each request has its own connection and a deadline; nothing
//! the endpoint sends is trusted beyond [`MAX_BODY`] bytes.
//!
//! `https://` is TLS 1.2/1.3 with rustls on ring: the server's certificate must chain to one
//! of the system's roots (`ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`) or to the
//! publication's own `ca_file`, and be valid for the URL's host ([`tls_config`]). A redirect
//! from https to http is refused: the token and the session would go in clear.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// The largest answer (or error body) read from an endpoint.
pub const MAX_BODY: usize = 256 * 1024;
/// Redirects followed for one offer.
pub const MAX_REDIRECTS: usize = 5;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection (refused, unreachable, no such host).
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// No complete response within the deadline.
    #[error("no response from {0} within {1:?}")]
    Timeout(String, Duration),
    /// The exchange broke off (the connection closed, an invalid response).
    #[error("{0}: {1}")]
    Exchange(String, String),
    /// A response body larger than [`MAX_BODY`].
    #[error("{0}: the response is larger than {MAX_BODY} bytes")]
    TooLarge(String),
    /// Redirected too often, or to somewhere unusable.
    #[error("{0}")]
    Redirect(String),
    /// The TLS handshake failed: the server's certificate is not trusted, not valid for the
    /// host, expired; or the server speaks no TLS.
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
}

/// The largest `ca_file` read.
pub const MAX_CA_FILE: u64 = 1024 * 1024;

/// The system's root certificates, read once (`ca-certificates`' bundle, or where
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` point).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("reading the system's root certificates: {e}");
        }
        found.certs
    })
}

/// The certificates of a PEM file (a private CA, for `ca_file`): at least one, each one
/// parsed; the error says what is wrong with the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if size > MAX_CA_FILE {
        return Err(format!(
            "{size} bytes: larger than {MAX_CA_FILE}, not a CA file"
        ));
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file of certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".to_owned());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| format!("certificate {}: {e}", i + 1))?;
    }
    Ok(certs)
}

/// Why no TLS configuration could be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// Nothing to trust: no system roots and no `ca_file`.
    #[error(
        "no trusted root certificates: none on this system (install ca-certificates) and no ca_file"
    )]
    NoRoots,
    /// rustls refused the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS configuration of a publication: the system's roots and `extra` (its `ca_file`'s
/// certificates), rustls's safe defaults (TLS 1.2 and 1.3) on ring, HTTP/1.1 by ALPN.
pub fn tls_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    // A root the system cannot parse is skipped (and was logged at debug level).
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    for cert in extra {
        roots.add(cert.clone())?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::NoRoots);
    }
    Ok(build_tls(roots)?)
}

/// A TLS configuration that trusts no certificate: for an `http://` publication on a system
/// without roots (a redirect to https then fails with "not trusted").
pub fn tls_config_trusting_nothing() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    build_tls(rustls::RootCertStore::empty())
}

fn build_tls(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a failed handshake means to a user, from rustls's error.
fn tls_reason(e: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return e.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not trusted (its issuer is not among the system's roots \
             nor in publish.ca_file)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!(
                "the server's certificate is not valid for {host} (check the host in publish.url)"
            )
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_owned()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet (is the board's clock right?)".to_owned()
        }
        rustls::Error::InvalidCertificate(other) => {
            format!("the server's certificate is refused: {other:?}")
        }
        rustls::Error::InvalidMessage(_) => {
            "the server does not speak TLS (an http:// endpoint?)".to_owned()
        }
        other => other.to_string(),
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// The URL that answered (after redirects): a relative `Location` resolves against it.
    pub url: Url,
    /// `Location`, resolved.
    pub location: Option<Url>,
    /// `Retry-After` in seconds, if given so.
    pub retry_after: Option<Duration>,
    /// `Content-Type`, without parameters.
    pub content_type: Option<String>,
    /// Its body (at most [`MAX_BODY`] bytes).
    pub body: Bytes,
}

/// A blocking client: a small single-threaded tokio runtime of its own (the sink has no other),
/// used from one publisher thread, and what it trusts for https ([`tls_config`]).
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    /// A client that trusts what `tls` does for `https://`.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self { rt, tls })
    }

    /// POSTs `sdp` to `url` (`Authorization: Bearer token` if given), following 307 and 308
    /// redirects, each request within `timeout`.
    pub fn post_offer(
        &self,
        url: &Url,
        token: Option<&str>,
        sdp: &str,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let reply = self.request(
                Method::POST,
                &url,
                token,
                Some(("application/sdp", Bytes::copy_from_slice(sdp.as_bytes()))),
                timeout,
            )?;
            if matches!(
                reply.status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                let Some(next) = reply.location else {
                    return Err(HttpError::Redirect(format!(
                        "{}: {} without a Location",
                        redact(&url),
                        reply.status
                    )));
                };
                redirect_allowed(&url, &next)?;
                tracing::debug!(from = %redact(&url), to = %redact(&next), "WHIP offer redirected");
                url = next;
                continue;
            }
            return Ok(reply);
        }
        Err(HttpError::Redirect(format!(
            "{}: more than {MAX_REDIRECTS} redirects",
            redact(&url)
        )))
    }

    /// DELETEs a session, within `timeout`: its status.
    pub fn delete(
        &self,
        url: &Url,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<StatusCode, HttpError> {
        self.request(Method::DELETE, url, token, None, timeout)
            .map(|r| r.status)
    }

    /// One request on a connection of its own.
    pub fn request(
        &self,
        method: Method,
        url: &Url,
        token: Option<&str>,
        body: Option<(&str, Bytes)>,
        timeout: Duration,
    ) -> Result<Reply, HttpError> {
        let shown = redact(url);
        let exchange = exchange(&self.tls, method, url, token, body, &shown);
        self.rt.block_on(async {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(HttpError::Timeout(shown.clone(), timeout)))
        })
    }
}

/// Whether an offer redirected from `from` may follow to `to`: http or https, and never from
/// https down to http (the token and the session would go in clear).
pub fn redirect_allowed(from: &Url, to: &Url) -> Result<(), HttpError> {
    match (from.scheme(), to.scheme()) {
        ("https", "http") => Err(HttpError::Redirect(format!(
            "{}: redirected from https to {}: refused (the token and the session would go in clear)",
            redact(from),
            redact(to)
        ))),
        (_, "http" | "https") => Ok(()),
        _ => Err(HttpError::Redirect(format!(
            "{}: redirected to {}, which is neither http:// nor https://",
            redact(from),
            redact(to)
        ))),
    }
}

/// Sends `request` on `io` (a TCP stream, or TLS over one) and returns the response head.
async fn send<S>(
    io: S,
    request: Request<Full<Bytes>>,
    broke: impl Fn(&dyn std::fmt::Display) -> HttpError,
) -> Result<Response<Incoming>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| broke(&e))?;
    // The connection runs beside the request; it ends when the sender is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await.map_err(|e| broke(&e))
}

async fn exchange(
    tls: &Arc<rustls::ClientConfig>,
    method: Method,
    url: &Url,
    token: Option<&str>,
    body: Option<(&str, Bytes)>,
    shown: &str,
) -> Result<Reply, HttpError> {
    let broke = |e: &dyn std::fmt::Display| HttpError::Exchange(shown.to_owned(), e.to_string());
    let host = url
        .host_str()
        .ok_or_else(|| broke(&"the URL has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| broke(&"the URL has no port"))?;
    // `[::1]` in a URL is `::1` to connect to.
    let connect_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((connect_host, port))
        .await
        .map_err(|e| HttpError::Connect(format!("{host}:{port}"), e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, authority);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let (content_type, bytes) = body.unwrap_or(("", Bytes::new()));
    if !content_type.is_empty() {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let request = request.body(Full::new(bytes)).map_err(|e| broke(&e))?;
    let response = match url.scheme() {
        "https" => {
            let name = ServerName::try_from(connect_host.to_owned())
                .map_err(|e| HttpError::Tls(format!("{host}:{port}"), e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(name, stream)
                .await
                .map_err(|e| HttpError::Tls(format!("{host}:{port}"), tls_reason(&e, host)))?;
            send(stream, request, broke).await?
        }
        _ => send(stream, request, broke).await?,
    };
    {
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge(shown.to_owned())
                } else {
                    broke(&e)
                }
            })?
            .to_bytes();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
        };
        Ok(Reply {
            status: parts.status,
            url: url.clone(),
            location: header(LOCATION).and_then(|l| url.join(l).ok()),
            retry_after: header(RETRY_AFTER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            content_type: header(CONTENT_TYPE).map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            }),
            body,
        })
    }
}

/// A URL as it may be shown (logs, status, metric labels): no user, password or query (a
/// query or a path may carry a key; the path is kept, it names the stream).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_never_go_from_https_down_to_http() {
        for (from, to, allowed) in [
            ("http://a/whip", "http://b/whip", true),
            ("http://a/whip", "https://b/whip", true),
            ("https://a/whip", "https://b/whip", true),
            ("https://a/whip", "http://b/whip", false),
            ("http://a/whip", "ftp://b/whip", false),
            ("https://a/whip", "ws://b/whip", false),
        ] {
            let (from, to) = (Url::parse(from).unwrap(), Url::parse(to).unwrap());
            assert_eq!(
                redirect_allowed(&from, &to).is_ok(),
                allowed,
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.contains("not a PEM file of certificates"), "{e}");
        std::fs::write(&path, "").unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
        // A PEM file of a certificate that is not DER inside is refused by the root store.
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.contains("certificate 1"), "{e}");
    }
}
