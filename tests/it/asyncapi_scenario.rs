//! A contract used directly: a scenario whose `protocol:` is an AsyncAPI document, and the
//! smoke scenario `squall scenario new` writes from one, run against a small server that
//! speaks the Kraken request/reply document (../shared/asyncapi/, read from there).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{next_json, results, send_all, TestServer};
use serde_json::{json, Value};

fn kraken_doc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/asyncapi/kraken-request-reply-3.1.yml")
}

fn squall(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// How the test server departs from the document.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// subscriptionStatus without channelID (required by its success branch).
    MissingField,
    /// pong with another reqid than its ping's.
    WrongReqid,
}

/// Speaks the Kraken document: systemStatus on connect, ping → pong with the reqid,
/// subscribe/unsubscribe → subscriptionStatus with the reqid.
fn kraken_server(fault: Fault) -> TestServer {
    TestServer::start(move |mut ws, sent| async move {
        let status = json!({"event": "systemStatus", "connectionID": 1, "status": "online", "version": "1.8.0"});
        send_all(&mut ws, &sent, [status]).await;
        while let Some(req) = next_json(&mut ws).await {
            let reqid = req["reqid"].clone();
            let reply = match req["event"].as_str() {
                Some("ping") if fault == Fault::WrongReqid => {
                    json!({"event": "pong", "reqid": reqid.as_i64().unwrap_or(0) + 1000})
                }
                Some("ping") => json!({"event": "pong", "reqid": reqid}),
                Some("subscribe" | "unsubscribe") => {
                    let mut s = json!({"event": "subscriptionStatus", "reqid": reqid,
                        "channelID": 42, "channelName": "ticker", "pair": ["XBT/USD"],
                        "subscription": {"name": "ticker"}});
                    if fault == Fault::MissingField {
                        s.as_object_mut().unwrap().remove("channelID");
                    }
                    s
                }
                _ => continue,
            };
            send_all(&mut ws, &sent, [reply]).await;
        }
    })
}

/// Writes the smoke scenario for the Kraken document into `dir`; it passes `squall check`.
fn generated(dir: &Path) -> PathBuf {
    let out = dir.join("kraken.yaml");
    let doc = kraken_doc();
    let made = squall(
        dir,
        &[
            "scenario",
            "new",
            "--from",
            doc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let checked = squall(dir, &["check", out.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    out
}

fn run(dir: &Path, scenario: &Path, server: &TestServer) -> (Option<i32>, Value, String) {
    let target = format!("ws://{}/", server.addr);
    let o = squall(
        dir,
        &[
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--no-report",
            "--duration",
            "2s",
            "--out",
            "out",
            "--target",
            &target,
        ],
    );
    (o.status.code(), results(&dir.join("out")), text(&o))
}

#[test]
fn the_generated_scenario_runs_clean_against_a_server_that_keeps_the_contract() {
    let d = tempfile::tempdir().unwrap();
    let sc = generated(d.path());
    let yaml = std::fs::read_to_string(&sc).unwrap();
    assert!(
        yaml.contains("protocol: \"") && yaml.contains("kraken-request-reply-3.1.yml"),
        "{yaml}"
    );
    assert!(
        yaml.contains(r#"match: { "/reqid": "{{sent./reqid}}" }"#),
        "{yaml}"
    );
    let (code, doc, out) = run(d.path(), &sc, &kraken_server(Fault::None));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        doc["violations"]["checked"].as_u64().unwrap() >= 7,
        "{}",
        doc["violations"]
    );
    assert_eq!(doc["violations"]["total"], 0);
}

#[test]
fn a_reply_missing_a_required_field_fails_the_generated_scenario() {
    let d = tempfile::tempdir().unwrap();
    let sc = generated(d.path());
    let (code, doc, out) = run(d.path(), &sc, &kraken_server(Fault::MissingField));
    assert_eq!(code, Some(1), "{out}");
    let groups = doc["violations"]["groups"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g["kind"] == "subscriptionStatus" && g["dir"] == "in"),
        "{groups:#?}"
    );
}

#[test]
fn a_pong_with_a_wrong_reqid_fails_the_generated_scenario() {
    let d = tempfile::tempdir().unwrap();
    let sc = generated(d.path());
    let (code, doc, out) = run(d.path(), &sc, &kraken_server(Fault::WrongReqid));
    assert_eq!(code, Some(1), "{out}");
    let groups = doc["violations"]["groups"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g["kind"] == "pong" && g["keyword"] == "reply_mismatch"),
        "{groups:#?}"
    );
}

const API: &str = r#"asyncapi: 3.0.0
info: { title: echo, version: '1' }
channels:
  c:
    address: /
    messages:
      hi: { payload: { type: object, required: [op], properties: { op: { const: hi } } } }
      ho: { payload: { type: object, required: [op, n], properties: { op: { const: ho }, n: { type: integer } } } }
operations:
  hi: { action: receive, channel: { $ref: '#/channels/c' }, messages: [{ $ref: '#/channels/c/messages/hi' }] }
  ho: { action: send, channel: { $ref: '#/channels/c' }, messages: [{ $ref: '#/channels/c/messages/ho' }] }
"#;

const SCENARIO: &str = r#"name: contract
protocol: ./api.asyncapi.yaml
target: ws://127.0.0.1:9/
load: { vus: 1, duration: 1s }
behaviours:
  - steps:
      - send: { op: hi }
      - expect: { kind: ho, within: 1s }
thresholds:
  - "violations == 0"
"#;

#[test]
fn a_scenario_names_an_asyncapi_document_as_its_protocol() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("api.asyncapi.yaml"), API).unwrap();
    let sc = d.path().join("s.yaml");
    std::fs::write(&sc, SCENARIO).unwrap();
    let checked = squall(d.path(), &["check", "s.yaml"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    // `ho` needs n: a server that leaves it out breaks the contract.
    let server = TestServer::start(|mut ws, sent| async move {
        while let Some(v) = next_json(&mut ws).await {
            if v["op"] == "hi" {
                send_all(&mut ws, &sent, [json!({"op": "ho"})]).await;
            }
        }
    });
    let (code, doc, out) = run(d.path(), &sc, &server);
    assert_eq!(code, Some(1), "{out}");
    let groups = doc["violations"]["groups"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g["kind"] == "ho" && g["keyword"] == "required"),
        "{groups:#?}"
    );
}

#[test]
fn a_broken_document_is_reported_at_its_own_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let broken = API.replace("action: send", "action: publish");
    std::fs::write(d.path().join("api.asyncapi.yaml"), broken).unwrap();
    std::fs::write(d.path().join("s.yaml"), SCENARIO).unwrap();
    let checked = squall(d.path(), &["check", "s.yaml"]);
    let t = text(&checked);
    assert_eq!(checked.status.code(), Some(2), "{t}");
    assert!(t.contains("api.asyncapi.yaml:11:"), "{t}");
    assert!(t.contains("expected send or receive"), "{t}");
    let ran = squall(
        d.path(),
        &["run", "s.yaml", "--quiet", "--no-report", "--out", "out"],
    );
    assert_eq!(ran.status.code(), Some(2), "{}", text(&ran));
    assert!(
        text(&ran).contains("api.asyncapi.yaml:11:"),
        "{}",
        text(&ran)
    );
}
