//! The HTTP/1.1 side of the listener: a bounded request-head reader, routing and plain responses.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proto::{Profile, Proto};

/// Largest request head accepted; a longer head gets 431.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;

/// A request head and whatever the client sent after it (the first WebSocket frames,
/// if it did not wait for our 101).
pub(crate) struct Head {
    buf: Vec<u8>,
    len: usize,
}

/// Why no head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The head did not end within [`HEAD_LIMIT`] bytes.
    TooLarge,
    /// The peer closed or the socket failed before the head ended.
    Io,
}

impl Head {
    /// Bytes received past the head's blank line.
    pub fn rest(&self) -> Vec<u8> {
        self.buf[self.len..].to_vec()
    }
}

/// Largest `/publish` body accepted.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// Reads a request body of `length` bytes, of which `rest` already arrived with the head.
pub(crate) async fn read_body(
    stream: &mut TcpStream,
    mut rest: Vec<u8>,
    length: usize,
) -> io::Result<Vec<u8>> {
    if length > BODY_LIMIT {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    rest.truncate(length);
    let have = rest.len();
    rest.resize(length, 0);
    stream.read_exact(&mut rest[have..]).await?;
    Ok(rest)
}

/// Reads until the blank line ending the head, never buffering more than the limit.
pub(crate) async fn read_head(stream: &mut TcpStream) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= HEAD_LIMIT {
            return Err(HeadError::TooLarge);
        }
        let before = buf.len();
        buf.reserve((HEAD_LIMIT - before).min(4096));
        let n = stream.read_buf(&mut buf).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io);
        }
        // Only rescan the new bytes plus three of the old, where a terminator could start.
        let from = before.saturating_sub(3);
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let len = from + i + 4;
            if len > HEAD_LIMIT {
                return Err(HeadError::TooLarge);
            }
            return Ok(Head { buf, len });
        }
    }
}

/// What the server does with a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /healthz`.
    Health,
    /// `POST /publish?protocol=P&room=R` with a JSON body of this many bytes.
    Publish {
        /// The raw query string.
        query: String,
        /// `Content-Length`.
        length: usize,
    },
    /// `GET /metrics`.
    Metrics,
    /// A valid WebSocket upgrade on a protocol's path.
    Upgrade(Request),
    /// A WebSocket path without (valid) upgrade headers: 426.
    UpgradeRequired,
    /// Any other path: 404.
    NotFound,
    /// Not parseable as HTTP/1.1: 400.
    BadRequest,
    /// More headers than we parse: 431.
    TooLarge,
}

/// A WebSocket upgrade request, owned so the head buffer can be dropped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The protocol its path selects.
    pub proto: Proto,
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// The path without the query.
    pub path: String,
    /// The query string after `?`, empty when absent.
    pub query: String,
    /// Every header as (name, value), values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
}

/// Decides the route from a complete head; `main` is the protocol answering at `/ws`.
pub(crate) fn route(head: &Head, main: Profile) -> Route {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head.buf[..head.len]) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Route::TooLarge,
        _ => return Route::BadRequest,
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let get = req.method == Some("GET");
    match path {
        "/healthz" if get => Route::Health,
        "/publish" if req.method == Some("POST") => {
            let length = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
            match length {
                Some(length) => Route::Publish {
                    query: query.to_owned(),
                    length,
                },
                None => Route::BadRequest,
            }
        }
        "/metrics" if get => Route::Metrics,
        p => match Proto::from_path(p, main) {
            None => Route::NotFound,
            Some(proto) => match upgrade_key(req.headers) {
                Some(key) if get => Route::Upgrade(Request {
                    proto,
                    key,
                    path: path.to_owned(),
                    query: query.to_owned(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value).into_owned();
                            (h.name.to_owned(), value)
                        })
                        .collect(),
                }),
                _ => Route::UpgradeRequired,
            },
        },
    }
}

/// The client's key when the headers ask for a version-13 WebSocket upgrade.
fn upgrade_key(headers: &[httparse::Header<'_>]) -> Option<String> {
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let has_token = |name: &str, token: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return None;
    }
    if value("sec-websocket-version") != Some("13") {
        return None;
    }
    value("sec-websocket-key")
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Writes a complete response with `Connection: close` and closes our side.
pub(crate) async fn respond(
    stream: &mut TcpStream,
    status: &str,
    extra_headers: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The query string with the values of credential parameters replaced, for logs.
pub(crate) fn redact_query(query: &str) -> String {
    const SECRET: [&str; 7] = [
        "token",
        "api_key",
        "apikey",
        "access_token",
        "key",
        "password",
        "secret",
    ];
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                format!("{k}=<redacted>")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The status line text for a refusal's status code.
pub(crate) fn status_line(status: u16) -> String {
    let phrase = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{status} {phrase}")
}

/// Writes the `101 Switching Protocols` answer to a valid upgrade.
pub(crate) async fn switch_protocols(stream: &mut TcpStream, key: &str) -> io::Result<()> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        Head {
            buf: text.as_bytes().to_vec(),
            len: text.len(),
        }
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_query("token=abc&room=x&API_KEY=k"),
            "token=<redacted>&room=x&API_KEY=<redacted>"
        );
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn routes_requests() {
        let up = "GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n\
                  Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let Route::Upgrade(req) = route(&head(up), Profile::Kite) else {
            panic!("an upgrade")
        };
        assert_eq!(req.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!((req.proto, req.query.as_str()), (Proto::Kite, "x=1"));
        assert_eq!(req.headers[0], ("Host".to_owned(), "a".to_owned()));
        let kecs = up.replace("/ws?x=1", "/kecs/ws");
        assert!(
            matches!(route(&head(&kecs), Profile::Kite), Route::Upgrade(r) if r.proto == Proto::Kecs)
        );
        let route = |text: &str| route(&head(text), Profile::Kite);
        assert_eq!(route("GET /ws HTTP/1.1\r\n\r\n"), Route::UpgradeRequired);
        assert_eq!(route("GET /healthz HTTP/1.1\r\n\r\n"), Route::Health);
        assert_eq!(route("GET /nope HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route("\x01\x02\r\n\r\n"), Route::BadRequest);
    }
}
