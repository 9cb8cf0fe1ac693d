//! The importer on small documents written for each rule; the real documents are in
//! tests/it/asyncapi_import.rs.

use std::path::{Path, PathBuf};

use super::*;

fn doc(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn protocol(i: &Imported) -> &str {
    &i.files["protocol.yaml"]
}

const V3: &str = r#"asyncapi: 3.0.0
info: { title: t, version: '1' }
channels:
  c:
    address: /ws
    messages:
      hello: { $ref: '#/components/messages/hello' }
      order: { $ref: '#/components/messages/order' }
      ack: { $ref: '#/components/messages/ack' }
operations:
  sendHello: { action: send, channel: { $ref: '#/channels/c' }, messages: [{ $ref: '#/channels/c/messages/hello' }] }
  takeOrder:
    action: receive
    channel: { $ref: '#/channels/c' }
    messages: [{ $ref: '#/channels/c/messages/order' }]
    reply: { messages: [{ $ref: '#/channels/c/messages/ack' }] }
components:
  messages:
    hello: { payload: { type: object, properties: { op: { const: hello } } } }
    order:
      correlationId: { location: '$message.payload#/rid' }
      payload: { type: object, required: [op, rid], properties: { op: { const: order }, rid: { type: integer } } }
    ack:
      correlationId: { location: '$message.payload#/rid' }
      payload: { type: object, required: [op, rid], properties: { op: { type: string, enum: [ack] }, rid: { type: integer } } }
      examples:
        - { name: good, payload: { op: ack, rid: 1 } }
        - { name: bad, payload: { op: ack, rid: one } }
"#;

#[test]
fn v3_receive_is_what_squall_sends_and_reply_becomes_a_rule() {
    let d = tempfile::tempdir().unwrap();
    let i = import(&doc(d.path(), "shop.yaml", V3), &Options::default()).unwrap();
    let p = protocol(&i);
    assert_eq!(i.name, "shop");
    assert_eq!(i.discriminator, "/op");
    assert_eq!(i.correlation.as_deref(), Some("/rid"));
    assert!(p.contains("inbound:\n  \"ack\": inbound/ack.json"), "{p}");
    assert!(p.contains("\"hello\": inbound/hello.json"), "{p}");
    assert!(
        p.contains("outbound:\n  \"order\": outbound/order.json"),
        "{p}"
    );
    assert!(
        p.contains(r#"- { request: "order", reply: "ack", match: { "/rid": "/rid" } }"#),
        "{p}"
    );
    assert!(i.files.contains_key("examples/valid/in-ack-good.json"));
    assert!(i.files["examples/invalid/expected.yaml"].contains("in-ack-bad.json"));
    let readme = &i.files["README.md"];
    assert!(
        readme.contains("discriminator /op") && readme.contains("#/components/messages/"),
        "{readme}"
    );
    let dir = Path::new("/asyncapi/shop");
    let report = crate::protocol::lint_in(&i.source(dir), dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// [`V2`] with the file its `$ref` names, imported.
fn import_v2() -> Imported {
    let d = tempfile::tempdir().unwrap();
    doc(
        d.path(),
        "more.yaml",
        "tock:\n  payload: { type: object, properties: { event: { const: tock } } }\n",
    );
    import(&doc(d.path(), "live.yaml", V2), &Options::default()).unwrap()
}

const V2: &str = r#"asyncapi: '2.6.0'
info: { title: t, version: '1' }
servers:
  prod: { url: 'example.com/live', protocol: wss }
channels:
  /live:
    bindings:
      ws:
        query: { type: object, required: [token], properties: { token: { type: string }, depth: { type: integer, default: 5 } } }
    publish:
      message: { $ref: '#/components/messages/sub' }
    subscribe:
      message:
        oneOf:
          - { $ref: '#/components/messages/tick' }
          - { $ref: 'more.yaml#/tock' }
components:
  messages:
    sub: { payload: { type: object, properties: { event: { const: sub }, n: { type: integer } } } }
    tick: { payload: { type: object, properties: { event: { const: tick }, n: { type: integer } } } }
"#;

#[test]
fn v2_publish_is_what_squall_sends_and_the_ws_binding_is_the_connect_section() {
    let i = import_v2();
    let p = protocol(&i);
    assert_eq!(i.discriminator, "/event");
    assert!(p.contains("outbound:\n  \"sub\": outbound/sub.json"), "{p}");
    assert!(
        p.contains("\"tick\": inbound/tick.json") && p.contains("\"tock\": inbound/tock.json"),
        "{p}"
    );
    assert!(p.contains("servers: [\"wss://example.com/live\"]"), "{p}");
    assert!(p.contains("\"token\": { required: true }"), "{p}");
    assert!(
        p.contains("\"depth\": { required: false, example: 5 }"),
        "{p}"
    );
    assert!(!p.contains("replies:"), "{p}");
    let dir = Path::new("/asyncapi/live");
    crate::protocol::Profile::load_in(&i.source(dir), dir).unwrap();
}

#[test]
fn messages_no_property_tells_apart_are_refused_unless_named() {
    let d = tempfile::tempdir().unwrap();
    let text = V2
        .replace("const: tick", "type: string")
        .replace("const: sub", "type: string");
    let path = doc(d.path(), "x.yaml", &text);
    doc(
        d.path(),
        "more.yaml",
        "tock:\n  payload: { type: object }\n",
    );
    let e = import(&path, &Options::default()).unwrap_err().to_string();
    assert!(
        e.contains("x.yaml:1:1: no payload property tells the messages apart"),
        "{e}"
    );
    assert!(e.contains("--discriminator"), "{e}");
}

#[test]
fn a_schema_format_other_than_json_schema_is_refused_naming_the_message() {
    let d = tempfile::tempdir().unwrap();
    let text = V3.replace(
        "    hello: { payload:",
        "    hello: { schemaFormat: 'application/vnd.apache.avro;version=1.9.0', payload:",
    );
    // 3.x puts the format in a Multi Format Schema Object.
    let text = text.replace(
        "hello: { schemaFormat: 'application/vnd.apache.avro;version=1.9.0', payload: { type: object, properties: { op: { const: hello } } } }",
        "hello:\n      payload:\n        schemaFormat: 'application/vnd.apache.avro;version=1.9.0'\n        schema: { type: record, name: Hello, fields: [] }",
    );
    let e = import(&doc(d.path(), "a.yaml", &text), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("message hello: schemaFormat application/vnd.apache.avro"),
        "{e}"
    );
    assert!(e.contains("a.yaml:2"), "{e}");
}

#[test]
fn a_named_discriminator_is_used_and_messages_without_it_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let opts = Options {
        discriminator: Some("/rid".into()),
        ..Options::default()
    };
    let e = import(&doc(d.path(), "a.yaml", V3), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no message fixes /rid"), "{e}");
}

#[test]
fn the_smoke_scenario_asks_for_required_query_parameters_from_the_environment() {
    let i = import_v2();
    let dir = Path::new("/asyncapi/live");
    let profile = crate::protocol::Profile::load_in(&i.source(dir), dir).unwrap();
    let text = crate::smoke::scenario(&profile, "./live.yaml", "live.yaml");
    assert!(
        text.contains("target: \"wss://example.com/live/live\""),
        "{text}"
    );
    assert!(
        text.contains("\"token\": \"{{env.TOKEN}}\"   # required"),
        "{text}"
    );
    assert!(text.contains("# \"depth\": \"5\"   # optional"), "{text}");
    let mut opts = crate::scenario::LoadOptions::default();
    let plan = crate::scenario::load_str("s.yaml", &text, &opts);
    assert!(plan
        .unwrap_err()
        .to_string()
        .contains("undefined environment variable 'TOKEN'"));
    opts.env.insert("TOKEN".into(), "t".into());
    crate::scenario::load_str("s.yaml", &text, &opts).unwrap();
}
