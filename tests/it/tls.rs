//! `wss://` through rustls: a self-signed test server is refused by default (counted as a
//! TLS failure) and accepted with `insecure: true`.

use std::sync::Arc;

use crate::support::*;
use futures_util::SinkExt;
use squall::run::{execute, RunArgs};
use tokio_tungstenite::tungstenite::Message;

/// A wss server on 127.0.0.1:0 with a fresh self-signed certificate for `localhost`; it
/// sends a welcome and then echoes nothing.
fn tls_server() -> std::net::SocketAddr {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    let _ = ws.send(Message::text(r#"{"type":"welcome"}"#)).await;
                    use futures_util::StreamExt;
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
    });
    rx.recv().unwrap()
}

fn run(insecure: bool, port: u16) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
name: tls
target: wss://localhost:{port}/ws
load: {{ vus: 1, duration: 1s }}
connect: {{ insecure: {insecure}, timeout: 2s }}
behaviours:
  - steps:
      - expect: {{ kind: welcome, within: 2s, metric: welcome }}
      - close: 1000
"#
    );
    let sc = scenario(dir.path(), "tls.yaml", &yaml);
    let out = dir.path().join("out");
    execute(RunArgs {
        scenario: sc,
        out: Some(out.clone()),
        quiet: true,
        threads: Some(1),
        ..RunArgs::default()
    })
    .unwrap();
    results(&out)
}

#[test]
fn self_signed_is_refused_unless_insecure() {
    let addr = tls_server();
    let strict = run(false, addr.port());
    let conns = &strict["counters"]["connections"];
    assert_eq!(conns["opened"], 0, "{conns}");
    assert!(
        conns["failed_by_cause"]["tls"].as_u64().unwrap() >= 1,
        "{conns}"
    );

    let lax = run(true, addr.port());
    assert!(lax["counters"]["connections"]["opened"].as_u64().unwrap() >= 1);
    assert!(
        lax["metrics"]["welcome"]["latency"]["count"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(lax["counters"]["errors"], 0);
}
