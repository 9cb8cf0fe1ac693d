//! Unit tests for compiling and rendering templates.

use super::*;
use crate::scenario::template::Fixed;

fn fake() -> Fixed {
    let mut f = Fixed::new(7, 3, 1);
    f.vars
        .insert("cid".to_string(), serde_json::json!({"a": "b\"c"}));
    f.vars
        .insert("name".to_string(), Value::String("x\"y".into()));
    f.sent = serde_json::json!({"room": "lobby"});
    f
}

fn env() -> HashMap<String, String> {
    HashMap::from([("TOKEN".to_string(), "s3cr\"t".to_string())])
}

fn render(src: &str) -> String {
    let env = env();
    let vars = ["cid".to_string(), "name".to_string()];
    let t = compile(
        src,
        &Scope {
            env: &env,
            vars: &vars,
            step: StepScope::None,
        },
    )
    .unwrap();
    let mut out = String::new();
    t.render(&mut fake(), &mut out);
    out
}

fn error(src: &str) -> TplError {
    compile_in(src, StepScope::None).unwrap_err()
}

#[test]
fn literals_and_builtins() {
    assert_eq!(render("plain"), "plain");
    assert_eq!(
        compile(
            "a",
            &Scope {
                env: &env(),
                vars: &[],
                step: StepScope::None,
            }
        )
        .unwrap()
        .as_literal(),
        Some("a")
    );
    assert_eq!(
        render("vu={{vu}} it={{ iter }} s={{seq}},{{seq}}"),
        "vu=7 it=3 s=1,2"
    );
    assert_eq!(render("{{env.TOKEN}}"), "s3cr\"t");
    assert_eq!(render("{{sent./room}}!"), "lobby!");
    assert_eq!(render("{{name}}"), "x\"y");
    let id = render("{{uuid}}");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let now = render("{{now}}");
    assert!(now.ends_with('Z') && now.len() == 24, "{now}");
    humantime::parse_rfc3339(&now).unwrap();
}

#[test]
fn rand_and_pick_stay_in_range() {
    for _ in 0..20 {
        let n: i64 = render("{{rand 5 7}}").parse().unwrap();
        assert!((5..=7).contains(&n));
        assert!(["AU", "NZ"].contains(&render("{{pick [\"AU\",\"NZ\"]}}").as_str()));
        assert!(["a", "b"].contains(&render("{{pick a b}}").as_str()));
    }
}

#[test]
fn errors_point_at_the_expression() {
    let e = error("ab {{ sqe }}");
    assert_eq!(
        (e.offset, e.message.as_str()),
        (6, "undefined variable 'sqe' (did you mean 'seq'?)")
    );
    assert_eq!(error("x {{seq").offset, 2);
    assert_eq!(error("x {{seq").message, "unclosed '{{'");
    assert_eq!(
        error("{{env.NOPE}}").message,
        "undefined environment variable 'NOPE'"
    );
    assert_eq!(
        error("{{rand 9 1}}").message,
        "rand bounds are reversed: 9 > 1"
    );
    assert_eq!(error("{{rand x}}").message, "rand needs two integers");
    assert_eq!(error("{{pick}}").message, "pick needs at least one choice");
    assert!(error("{{foo bar}}")
        .message
        .starts_with("unknown template expression"));
    assert_eq!(error("{{seq 1}}").message, "'seq' takes no arguments");
}

fn json(yaml_body: Node) -> String {
    let env = env();
    let vars = ["cid".to_string(), "name".to_string()];
    let t = compile_json(
        &yaml_body,
        &Scope {
            env: &env,
            vars: &vars,
            step: StepScope::None,
        },
    )
    .unwrap();
    let mut out = String::new();
    t.render(&mut fake(), &mut out);
    out
}

fn s(v: &str) -> Node {
    Node {
        pos: Pos::default(),
        kind: Kind::Str {
            value: v.into(),
            content: Pos::default(),
        },
    }
}

#[test]
fn json_bodies_are_typed_and_escaped() {
    use crate::scenario::node::Key;
    let key = |k: &str| Key {
        name: k.into(),
        pos: Pos::default(),
    };
    let body = Node {
        pos: Pos::default(),
        kind: Kind::Map(vec![
            (key("id"), s("{{seq}}")),
            (key("tag"), s("n-{{seq}}")),
            (key("cid"), s("{{cid}}")),
            (key("in"), s("say \"{{name}}\" {{cid}}")),
            (key("tok"), s("{{env.TOKEN}}")),
            (
                key("list"),
                Node {
                    pos: Pos::default(),
                    kind: Kind::Seq(vec![
                        Node {
                            pos: Pos::default(),
                            kind: Kind::Int(1),
                        },
                        Node {
                            pos: Pos::default(),
                            kind: Kind::Null,
                        },
                    ]),
                },
            ),
        ]),
    };
    let out = json(body);
    assert_eq!(
        out,
        r#"{"id":1,"tag":"n-2","cid":{"a":"b\"c"},"in":"say \"x\"y\" {\"a\":\"b\\\"c\"}","tok":"s3cr\"t","list":[1,null]}"#
    );
    serde_json::from_str::<Value>(&out).unwrap();
}

fn compile_in(src: &str, step: StepScope) -> Result<Template, TplError> {
    let env = env();
    compile(
        src,
        &Scope {
            env: &env,
            vars: &[],
            step,
        },
    )
}

#[test]
fn now_us_has_microseconds_and_blob_has_its_size() {
    let now = render("{{now_us}}");
    assert!(now.ends_with('Z') && now.len() == 27, "{now}");
    humantime::parse_rfc3339(&now).unwrap();
    let blob = render("<{{blob 1000}}>");
    assert_eq!(blob.len(), 1002);
    assert!(blob[1..1001]
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    assert_eq!(render("{{blob 1KiB}}").len(), 1024);
    assert_eq!(render("{{blob 0}}"), "");
    let body = Node {
        pos: Pos::default(),
        kind: Kind::Seq(vec![s("{{blob 5}}"), s("{{now_us}}")]),
    };
    let v: Value = serde_json::from_str(&json(body)).unwrap();
    assert_eq!(v[0].as_str().map(str::len), Some(5));
    assert!(v[1].is_string());
}

#[test]
fn upload_values_exist_only_inside_upload_steps() {
    let e = compile_in("a {{upload.id}}", StepScope::None).unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (4, "'upload.id' is only defined inside an upload step")
    );
    assert!(compile_in("{{upload.id}}", StepScope::Upload).is_ok());
    let e = compile_in("{{chunk.base64}}", StepScope::Upload).unwrap_err();
    assert!(e.message.contains("chunk: and chunk_ack:"), "{}", e.message);
    assert!(compile_in("{{chunk.base64}} {{upload.size}}", StepScope::Chunk).is_ok());
    let e = compile_in("{{chunk.indx}}", StepScope::Chunk).unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (8, "unknown field 'indx' of chunk (did you mean 'index'?)")
    );
    assert_eq!(
        compile_in("{{upload.id x}}", StepScope::Upload)
            .unwrap_err()
            .message,
        "'upload.id' takes no arguments"
    );
    // A context without an upload renders nothing (text) or null (JSON).
    let t = compile_in("[{{upload.size}}]", StepScope::Upload).unwrap();
    let mut out = String::new();
    t.render(&mut fake(), &mut out);
    assert_eq!(out, "[]");
}
