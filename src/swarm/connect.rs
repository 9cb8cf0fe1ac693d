//! Opening one WebSocket connection: DNS, TCP, TLS and the upgrade, under one deadline,
//! with every failure classified so results can count it by cause.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::source::Sources;
use crate::metrics::FailCause;
use crate::scenario::plan::ConnectPlan;

/// Most bytes tungstenite may queue for writing on one connection (its default is no limit):
/// the largest message a scenario may send (64 MiB, checked at load) and 1 MiB already
/// queued. A backstop: a peer that reads nothing is closed well before it (`io.rs`,
/// `WRITE_STALL` and `PONG_BACKLOG`).
pub const MAX_WRITE_BUFFER: usize = (64 << 20) + (1 << 20);

/// An open client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<Tcp>>;

/// Bytes of the upgrade answer kept to explain a refusal tungstenite cannot read.
const HEAD_MAX: usize = 512;

/// The TCP stream under a connection. While the upgrade is under way it keeps the first
/// bytes it reads, so an answer tungstenite refuses to parse (an HTTP/1.0 `404` from a
/// server that is no WebSocket server) still tells its status; afterwards it only passes
/// reads and writes through.
pub struct Tcp {
    inner: TcpStream,
    head: Option<Arc<Mutex<Vec<u8>>>>,
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let (Some(head), Poll::Ready(Ok(()))) = (&self.head, &read) {
            if let Ok(mut head) = head.lock() {
                let new = &buf.filled()[before..];
                let room = HEAD_MAX.saturating_sub(head.len());
                head.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        read
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why a connection could not be opened, with a one-line cause for people.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ConnectError {
    /// The category results count it under.
    pub cause: FailCause,
    /// What happened, in one line.
    pub detail: String,
}

impl ConnectError {
    fn new(cause: FailCause, detail: impl Into<String>) -> Self {
        ConnectError {
            cause,
            detail: detail.into(),
        }
    }
}

/// Everything needed to connect, prepared once per run and shared by every VU.
#[derive(Clone)]
pub struct Connecter {
    config: WebSocketConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    sources: Option<Arc<Sources>>,
}

impl Connecter {
    /// Prepares the WebSocket and TLS configuration. The read buffer is 4 KiB rather than
    /// tungstenite's 128 KiB default: three times the message rate and a tenth of the memory
    /// per idle connection on this kind of machine (see DESIGN.md, performance notes). The
    /// write queue is capped at [`MAX_WRITE_BUFFER`].
    pub fn new(plan: &ConnectPlan, target: &str) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .max_write_buffer_size(MAX_WRITE_BUFFER)
            .max_message_size(Some(plan.max_message_size))
            .max_frame_size(Some(plan.max_message_size));
        let tls = target
            .starts_with("wss://")
            .then(|| Arc::new(tls_config(plan.insecure)));
        Connecter {
            config,
            tls,
            timeout: plan.timeout,
            sources: None,
        }
    }

    /// Connects from these source addresses, in turn (`--source-ip`).
    pub fn with_sources(mut self, sources: Option<Arc<Sources>>) -> Self {
        self.sources = sources;
        self
    }

    /// The configured deadline for one attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Connects to `url` with the given extra headers and subprotocols, within the deadline.
    pub async fn connect(
        &self,
        url: &str,
        headers: &[(String, String)],
        subprotocols: &[String],
    ) -> Result<Ws, ConnectError> {
        match tokio::time::timeout(self.timeout, self.attempt(url, headers, subprotocols)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::new(
                FailCause::Timeout,
                format!("no connection within {:?}", self.timeout),
            )),
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &[(String, String)],
        subprotocols: &[String],
    ) -> Result<Ws, ConnectError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| ConnectError::new(FailCause::Other, format!("bad target URL: {e}")))?;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ConnectError::new(FailCause::Other, format!("header {name}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ConnectError::new(FailCause::Other, format!("header value: {e}")))?;
            request.headers_mut().append(name, value);
        }
        if !subprotocols.is_empty() {
            let joined = HeaderValue::from_str(&subprotocols.join(", "))
                .map_err(|e| ConnectError::new(FailCause::Other, format!("subprotocol: {e}")))?;
            request
                .headers_mut()
                .insert("sec-websocket-protocol", joined);
        }
        let host = request.uri().host().unwrap_or_default().to_string();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = request.uri().port_u16().unwrap_or(match self.tls {
            Some(_) => 443,
            None => 80,
        });
        let head = Arc::new(Mutex::new(Vec::new()));
        let stream = Tcp {
            inner: tcp_connect_from(host, port, self.sources.as_deref()).await?,
            // Over TLS the bytes read are ciphertext: nothing to learn from them.
            head: self.tls.is_none().then(|| head.clone()),
        };
        let connector = match &self.tls {
            Some(cfg) => Connector::Rustls(cfg.clone()),
            None => Connector::Plain,
        };
        let (mut ws, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(self.config),
            Some(connector),
        )
        .await
        .map_err(|e| classify(e, &head))?;
        match ws.get_mut() {
            MaybeTlsStream::Plain(t) => t.head = None,
            MaybeTlsStream::Rustls(t) => t.get_mut().0.head = None,
            _ => {}
        }
        Ok(ws)
    }
}

/// Resolves and opens TCP, telling DNS failures apart from refusals.
pub async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    tcp_connect_from(host, port, None).await
}

/// [`tcp_connect`] from the next of `sources` (none: the kernel picks).
pub async fn tcp_connect_from(
    host: &str,
    port: u16,
    sources: Option<&Sources>,
) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| match out_of_files(&e) {
            true => files_error(&e),
            false => ConnectError::new(FailCause::Dns, format!("cannot resolve {host}: {e}")),
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        let opened = match sources {
            Some(from) => from.connect(addr).await,
            None => TcpStream::connect(addr).await,
        };
        match opened {
            Ok(s) => {
                // Request/reply latency is what we measure: Nagle would add up to 40 ms.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ConnectError::new(FailCause::Refused, format!("connection refused by {addr}"))
        }
        Some((_, e)) if out_of_files(&e) => files_error(&e),
        Some((addr, e)) => ConnectError::new(FailCause::Other, format!("connect to {addr}: {e}")),
        None => ConnectError::new(FailCause::Dns, format!("{host} resolved to no address")),
    })
}

/// Whether `e` says the process (EMFILE) or the system (ENFILE) has no file left.
fn out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// EMFILE/ENFILE, with the limit and what to do about it.
fn files_error(e: &std::io::Error) -> ConnectError {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let limit = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } {
        0 => format!("the limit is {} open files", r.rlim_cur),
        _ => "the open-file limit is unknown".to_string(),
    };
    ConnectError::new(
        FailCause::Files,
        format!("{e}: {limit}; raise it (`ulimit -n`, LimitNOFILE=) or run fewer VUs per process"),
    )
}

fn classify(e: WsError, head: &Mutex<Vec<u8>>) -> ConnectError {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Http(resp) => {
            let status = resp.status();
            ConnectError::new(
                FailCause::Http(status.as_u16()),
                format!("upgrade answered with HTTP {status}"),
            )
        }
        WsError::Tls(t) => ConnectError::new(FailCause::Tls, format!("TLS: {t}")),
        WsError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            ConnectError::new(FailCause::Tls, format!("TLS: {io}"))
        }
        WsError::Io(io) if out_of_files(&io) => files_error(&io),
        WsError::Protocol(ProtocolError::SecWebSocketAcceptKeyMismatch) => ConnectError::new(
            FailCause::BadAccept,
            "the 101 answer's Sec-WebSocket-Accept does not match the key sent \
             (not a WebSocket server, or a proxy in between rewrote the upgrade)",
        ),
        WsError::Protocol(p) => match status_line(head) {
            Some((code, line)) => ConnectError::new(
                FailCause::Http(code),
                format!("upgrade answered with {line}"),
            ),
            None => ConnectError::new(FailCause::Handshake, format!("handshake failed: {p}")),
        },
        other => ConnectError::new(FailCause::Other, format!("handshake failed: {other}")),
    }
}

/// The status code and line of an HTTP answer that is not `101` (e.g. `HTTP/1.0 404 Not
/// Found`), from the first bytes the connection read.
fn status_line(head: &Mutex<Vec<u8>>) -> Option<(u16, String)> {
    let head = head.lock().ok()?;
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let rest = line.strip_prefix("HTTP/")?;
    let code: u16 = rest.split(' ').nth(1)?.parse().ok()?;
    (code != 101 && (100..1000).contains(&code)).then(|| (code, line.chars().take(120).collect()))
}

fn tls_config(insecure: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    }
}

/// `insecure: true`: accepts any certificate, for self-signed test targets. Signatures are
/// still checked so the handshake itself is sound.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Appends `query` pairs to `url`, percent-encoding names and values.
pub fn with_query(url: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let mut out = String::with_capacity(url.len() + 32);
    out.push_str(url);
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in query {
        out.push(sep);
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
        sep = '&';
    }
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_status_line_is_read_from_the_first_bytes() {
        let line = |bytes: &[u8]| status_line(&Mutex::new(bytes.to_vec()));
        assert_eq!(
            line(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n"),
            Some((404, "HTTP/1.0 404 Not Found".to_string()))
        );
        assert_eq!(line(b"HTTP/1.1 101 Switching Protocols\r\n"), None);
        assert_eq!(line(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(line(b"HTTP/1.0 99999 Huge\r\n"), None);
        assert_eq!(line(b""), None);
    }

    #[test]
    fn query_is_appended_and_encoded() {
        let q = vec![
            ("token".to_string(), "a b&c".to_string()),
            ("x".to_string(), "1".to_string()),
        ];
        assert_eq!(with_query("ws://h/ws", &q), "ws://h/ws?token=a%20b%26c&x=1");
        assert_eq!(with_query("ws://h/ws?a=1", &q[1..]), "ws://h/ws?a=1&x=1");
    }
}
