use std::path::Path;

use super::*;
use serde_json::json;

/// Writes `text` to `root/rel`, making the folders on the way.
fn write_file(root: &std::path::Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A two-message profile with a shared definition, an envelope and asserted formats.
fn profile_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| write_file(d.path(), rel, text);
    w(
        "protocol.yaml",
        "name: tiny\ndiscriminator: [/type]\ncorrelation: /id\nenvelope: envelope.json\n\
         inbound:\n  pong: inbound/pong.json\noutbound:\n  ping: outbound/ping.json\n\
         limits:\n  max_message_bytes: 1024\n",
    );
    w(
        "defs.json",
        r#"{"$defs": {"ts": {"type": "string", "format": "date-time"}}}"#,
    );
    w(
        "envelope.json",
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "required": ["type"]}"#,
    );
    w(
        "inbound/pong.json",
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "additionalProperties": false,
            "required": ["type", "id", "timestamp"],
            "properties": {"type": {"const": "pong"}, "id": {"type": "integer", "minimum": 0},
                           "timestamp": {"$ref": "../defs.json#/$defs/ts"}}}"#,
    );
    w(
        "outbound/ping.json",
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "required": ["type", "id"],
            "properties": {"type": {"const": "ping"}, "id": {"type": "integer"}}}"#,
    );
    d
}

#[test]
fn classifies_and_validates_by_kind_and_direction() {
    let d = profile_dir();
    let p = Profile::load(d.path()).unwrap();
    assert_eq!(p.kinds(Direction::In), ["pong"]);
    assert_eq!(p.limits["max_message_bytes"], 1024);
    let good = json!({"type": "pong", "id": 1, "timestamp": "2026-11-22T10:00:00.5Z"});
    assert_eq!(p.check(Direction::In, &good), Ok(()));
    // A pong is not something a client sends.
    let v = p.check(Direction::Out, &good).unwrap_err();
    assert_eq!(
        (v[0].keyword.as_str(), v[0].pointer.as_str()),
        ("unknown_kind", "/type")
    );
}

#[test]
fn formats_are_asserted_and_errors_point_at_the_field() {
    let d = profile_dir();
    let p = Profile::load(d.path()).unwrap();
    let bad_ts = json!({"type": "pong", "id": 1, "timestamp": "yesterday"});
    let v = p.check(Direction::In, &bad_ts).unwrap_err();
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].keyword.as_str(), v[0].pointer.as_str()),
        ("format", "/timestamp")
    );
    assert_eq!(v[0].kind, "pong");
    let extra = json!({"type": "pong", "id": -1, "timestamp": "2026-11-22T10:00:00Z", "x": 1});
    let mut found: Vec<(String, String)> = p
        .check(Direction::In, &extra)
        .unwrap_err()
        .into_iter()
        .map(|v| (v.keyword, v.pointer))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("additionalProperties".into(), "".into()),
            ("minimum".into(), "/id".into())
        ]
    );
}

#[test]
fn several_keywords_failing_at_one_pointer_are_one_finding() {
    let d = profile_dir();
    let ts = r#"{"type": "string", "format": "date-time", "pattern": "^[0-9]{4}-"}"#;
    std::fs::write(
        d.path().join("envelope.json"),
        format!(
            r#"{{"type": "object", "required": ["type"], "properties": {{"timestamp": {ts}}}}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        d.path().join("defs.json"),
        format!(r#"{{"$defs": {{"ts": {ts}}}}}"#),
    )
    .unwrap();
    let p = Profile::load(d.path()).unwrap();
    let bad = json!({"type": "pong", "id": -1, "timestamp": "yesterday"});
    let v = p.check(Direction::In, &bad).unwrap_err();
    let found: Vec<(&str, &str)> = v
        .iter()
        .map(|v| (v.pointer.as_str(), v.keyword.as_str()))
        .collect();
    assert_eq!(
        found,
        [("/timestamp", "format+pattern"), ("/id", "minimum")]
    );
    // Each distinct message once: format's and pattern's, not the envelope's again.
    assert_eq!(v[0].message.split("; ").count(), 2, "{}", v[0].message);
}

#[test]
fn frames_of_their_own_read_as_sentences() {
    let d = profile_dir();
    let p = Profile::load(d.path()).unwrap();
    let v = Profile::binary_violation(Direction::In, 3);
    assert_eq!(
        v.message,
        "a binary message (3 bytes) where the protocol sends JSON text"
    );
    let v = p.check_text(Direction::In, "{not json").unwrap_err();
    assert!(
        v[0].message.starts_with("not JSON: key must be a string"),
        "{}",
        v[0].message
    );
    let v = p.check(Direction::In, &json!({"id": 3})).unwrap_err();
    // The envelope's missing `type` and the missing kind are one fault at one pointer.
    let kindless = v.iter().find(|v| v.pointer == "/type").unwrap();
    assert_eq!(kindless.keyword, "required+unknown_kind");
    assert_eq!(
        kindless.message,
        "\"type\" is missing (required); no kind: the frame has no string at /type"
    );
}

#[test]
fn an_unknown_kind_reads_as_a_sentence() {
    let d = profile_dir();
    let p = Profile::load(d.path()).unwrap();
    let v = p
        .check(Direction::In, &json!({"type": "scrape.paused"}))
        .unwrap_err();
    assert_eq!(
        v[0].message,
        "tiny defines no inbound message of kind 'scrape.paused'"
    );
    let v = p
        .check(Direction::Out, &json!({"type": "pong"}))
        .unwrap_err();
    assert_eq!(
        v[0].message,
        "tiny defines no outbound message of kind 'pong'"
    );
}

#[test]
fn non_json_and_kindless_frames_are_violations() {
    let d = profile_dir();
    let p = Profile::load(d.path()).unwrap();
    let v = p.check_text(Direction::In, "{not json").unwrap_err();
    assert_eq!(
        (v[0].kind.as_str(), v[0].keyword.as_str()),
        ("(non-json)", "json")
    );
    let v = p.check(Direction::In, &json!({"id": 3})).unwrap_err();
    let keywords: Vec<&str> = v.iter().map(|v| v.keyword.as_str()).collect();
    assert_eq!(keywords, ["required+unknown_kind"]);
}

#[test]
fn a_broken_profile_lists_every_problem() {
    let d = profile_dir();
    std::fs::write(d.path().join("inbound/pong.json"), "{oops").unwrap();
    std::fs::remove_file(d.path().join("outbound/ping.json")).unwrap();
    let e = Profile::load(d.path()).err().unwrap();
    assert_eq!(e.problems.len(), 2, "{e}");
    assert!(e.problems[0].contains("pong.json") && e.problems[0].contains("not JSON"));
    assert!(e.problems[1].contains("ping.json"));
}

#[test]
fn subscriptions_name_listed_kinds_and_a_confirmation_names_its_room() {
    let d = profile_dir();
    let yaml = d.path().join("protocol.yaml");
    let base = std::fs::read_to_string(&yaml).unwrap();
    let with = |rules: &str| {
        std::fs::write(&yaml, format!("{base}subscriptions:\n{rules}")).unwrap();
        Profile::load(d.path())
    };
    // No confirmation at all is allowed; a second holding kind must be outbound.
    let ok =
        "  subscribe: ping\n  room: /id\n  holds: { ping: [/x] }\n  rooms: { pong: [\"{/id}\"] }\n";
    let p = with(ok).unwrap();
    let r = p.subscriptions.unwrap();
    assert_eq!((r.unsubscribed, r.holds.len()), (None, 1));
    let e = with(&ok.replace("holds: { ping", "holds: { join"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("\"join\""), "{e}");
    let e = with(&format!("{ok}  unsubscribed: pong\n")).err().unwrap();
    assert!(e.to_string().contains("unsubscribed_room"), "{e}");
}

#[test]
fn refs_outside_the_profile_are_refused() {
    let d = profile_dir();
    std::fs::write(
        d.path().join("outbound/ping.json"),
        r#"{"$ref": "../../../../../etc/hostname"}"#,
    )
    .unwrap();
    let e = Profile::load(d.path()).err().unwrap();
    assert!(e.to_string().contains("ping.json"), "{e}");
}

#[test]
fn lint_checks_examples_both_ways() {
    let d = profile_dir();
    let w = |rel: &str, text: &str| {
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("examples/valid/out-ping.json", r#"{"type":"ping","id":1}"#);
    w(
        "examples/valid/in-pong.json",
        r#"{"type":"pong","id":1,"timestamp":"2026-11-22T10:00:00Z"}"#,
    );
    w("examples/invalid/no-id.json", r#"{"type":"ping"}"#);
    w(
        "examples/invalid/bad-ts.json",
        r#"{"type":"pong","id":1,"timestamp":"x"}"#,
    );
    w(
        "examples/invalid/expected.yaml",
        "- { file: no-id.json, dir: out, kind: ping, keyword: required, pointer: /id }\n\
         - { file: bad-ts.json, dir: in, kind: pong, keyword: format, pointer: /timestamp }\n",
    );
    let r = lint(d.path()).unwrap();
    assert_eq!(r.checked, 4);
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    // A valid example that is not, and an invalid one that fails differently, are caught.
    w("examples/valid/in-pong.json", r#"{"type":"pong"}"#);
    w(
        "examples/invalid/bad-ts.json",
        r#"{"type":"pong","id":"1","timestamp":"2026-11-22T10:00:00Z"}"#,
    );
    w("examples/invalid/stray.json", "{}");
    let r = lint(d.path()).unwrap();
    // The pong missing both members: one finding at each member's own pointer.
    assert_eq!(r.problems.len(), 4, "{:#?}", r.problems);
    let pong: Vec<&String> = r
        .problems
        .iter()
        .filter(|p| p.contains("in-pong.json"))
        .collect();
    assert_eq!(pong.len(), 2, "{pong:#?}");
    assert!(
        pong[0].contains("required at /id: \"id\" is missing"),
        "{}",
        pong[0]
    );
    assert!(pong[1].contains("required at /timestamp"), "{}", pong[1]);
}

#[test]
fn timestamps_from_the_future_are_caught_beyond_the_skew() {
    let d = profile_dir();
    let yaml = std::fs::read_to_string(d.path().join("protocol.yaml")).unwrap();
    std::fs::write(
        d.path().join("protocol.yaml"),
        format!("{yaml}clock: /timestamp\n"),
    )
    .unwrap();
    let p = Profile::load(d.path()).unwrap();
    use super::horizon::Horizon;
    let now = humantime::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let skew = std::time::Duration::from_secs(1);
    let at = |ts: &str| json!({"type": "pong", "id": 1, "timestamp": ts});
    let check = |v: &Value| p.check_clock(Some("pong"), v, now, skew, &mut Horizon::default());
    assert_eq!(check(&at("2026-11-22T10:00:00.900Z")), None);
    assert_eq!(check(&at("2026-11-22T09:00:00Z")), None);
    let v = check(&at("2026-11-22T10:00:02.5Z")).unwrap();
    assert_eq!(
        (v.keyword.as_str(), v.pointer.as_str()),
        ("clock_skew", "/timestamp")
    );
    assert!(v.message.contains("2.500 s in the future"), "{}", v.message);
    assert_eq!(check(&json!({"type": "pong"})), None);
}

/// The tape validators (the plain checks and the jsonschema crate's) answer as the `Value`
/// validators do, on every fixture of every shipped
/// profile against every one of its schemas (most pairs are a frame of one kind against
/// another kind's schema: plenty of failures to agree on), and on each fixture's frames with
/// a field dropped or retyped.
#[test]
fn tape_and_value_validators_agree_on_every_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut tape = tape::Tape::default();
    // One connection's pattern walks across every frame: each resumes from the one before.
    let mut recent = engine::Recent::default();
    let (mut compared, mut valid) = (0, 0);
    for name in ["kite", "kecs", "newloom", "hexabase", "covetpy"] {
        let p = Profile::load(&root.join(name)).unwrap();
        let kinds: Vec<&Schema> = p.inbound.values().chain(p.outbound.values()).collect();
        let schemas: Vec<&Schema> = kinds.iter().copied().chain(p.envelope.iter()).collect();
        for texts in fixture_variants(&root.join(name).join("examples")) {
            let doc = tape.parse(&texts).expect("fixtures parse onto a tape");
            let v: Value = serde_json::from_str(&texts).unwrap();
            for s in &schemas {
                let on_value = s.on_value.is_valid(&v);
                assert_eq!(s.on_tape.is_valid(doc.root()), on_value, "{name}: {texts}");
                let compiled = s
                    .compiled
                    .as_ref()
                    .expect("every shipped schema compiles to checks");
                assert_eq!(
                    compiled.is_valid(doc.root()),
                    on_value,
                    "{name} (checks): {texts}"
                );
                let resumed = compiled.is_valid_recent(doc.root(), &mut recent);
                assert_eq!(resumed, on_value, "{name} (checks, resumed walks): {texts}");
                compared += 1;
                valid += usize::from(on_value);
            }
        }
    }
    assert!(compared > 10_000 && valid > 300, "{compared} {valid}");
}

/// A frame with the structure of its kind's last valid frame is decided by the checks on
/// the scalars it changed: on every fixture of every shipped profile, each scalar in turn
/// replaced by values of other types and sizes, that verdict is the full validator's.
#[test]
fn frames_decided_by_their_changed_scalars_agree_with_full_validation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut tape = tape::Tape::default();
    let (mut compared, mut repeated, mut invalid) = (0, 0, 0);
    for name in ["kite", "kecs", "newloom", "hexabase", "covetpy"] {
        let p = Profile::load(&root.join(name)).unwrap();
        let schemas: Vec<&Schema> = p.inbound.values().chain(p.outbound.values()).collect();
        for text in fixture_variants(&root.join(name).join("examples")) {
            let v: Value = serde_json::from_str(&text).unwrap();
            let variants = scalar_variants(&v);
            // Only a valid frame is kept: the schemas this one meets.
            for s in schemas.iter().filter(|s| s.on_value.is_valid(&v)) {
                let compiled = s.compiled.as_ref().unwrap();
                let mut recent = engine::Recent::default();
                // The first frame of a kind is only noted; the second is kept.
                for _ in 0..2 {
                    let doc = tape.parse(&text).unwrap();
                    assert!(
                        compiled.is_valid_recent(doc.root(), &mut recent),
                        "{name}: {text}"
                    );
                }
                for w in &variants {
                    let doc = tape.parse(w).unwrap();
                    let on_value = s.on_value.is_valid(&serde_json::from_str(w).unwrap());
                    let before = recent.repeated;
                    let got = compiled.is_valid_recent(doc.root(), &mut recent);
                    assert_eq!(got, on_value, "{name}: {text} then {w}");
                    compared += 1;
                    if recent.repeated > before {
                        repeated += 1;
                        invalid += usize::from(!on_value);
                    }
                }
            }
        }
    }
    // Most variants are decided by their changed scalars (the rest are kinds whose
    // schemas look deeper than structure at an object); most of those break a check.
    assert!(repeated * 2 > compared, "{compared} {repeated}");
    assert!(
        invalid > 10_000 && repeated - invalid > 2_500,
        "{repeated} {invalid}"
    );
}

/// A combinator at a scalar is re-run whole on a new value (not its branches on their own:
/// a branch may fail where the combinator passes); one at an object keeps the frame from
/// being decided by its scalars at all.
#[test]
fn combinators_are_re_run_whole() {
    let d = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| std::fs::write(d.path().join(rel), text).unwrap();
    w(
        "protocol.yaml",
        "name: t\ndiscriminator: [/type]\ninbound:\n  a: a.json\n  b: b.json\noutbound: {}\n",
    );
    w(
        "a.json",
        r#"{"type": "object", "properties": {"v": {"anyOf": [
            {"type": "string", "pattern": "^a"}, {"type": "integer"}]},
            "w": {"oneOf": [{"minimum": 5}, {"multipleOf": 2}]},
            "x": {"not": {"const": 3}}}}"#,
    );
    w(
        "b.json",
        r#"{"type": "object", "oneOf": [{"required": ["v"]}, {"required": ["w"]}]}"#,
    );
    let p = Profile::load(d.path()).unwrap();
    let mut tape = tape::Tape::default();
    let mut verdicts = |kind: &str, texts: &[&str]| {
        let compiled = p.inbound[kind].compiled.as_ref().unwrap();
        let mut recent = engine::Recent::default();
        let got: Vec<bool> = texts
            .iter()
            .map(|t| compiled.is_valid_recent(tape.parse(t).unwrap().root(), &mut recent))
            .collect();
        (got, recent.repeated)
    };
    let a = [
        r#"{"type":"a","v":1,"w":7,"x":1}"#,
        r#"{"type":"a","v":1,"w":7,"x":1}"#,
        r#"{"type":"a","v":2,"w":9,"x":2}"#,
        r#"{"type":"a","v":"ab","w":4,"x":4}"#,
        r#"{"type":"a","v":"b","w":7,"x":1}"#,
        r#"{"type":"a","v":1,"w":6,"x":1}"#,
        r#"{"type":"a","v":1,"w":7,"x":3}"#,
    ];
    assert_eq!(
        verdicts("a", &a),
        (vec![true, true, true, true, false, false, false], 5)
    );
    // Which member the object has decides `b`, so its frames are always checked in full.
    let b = [
        r#"{"type":"b","v":1}"#,
        r#"{"type":"b","v":1}"#,
        r#"{"type":"b","v":2}"#,
    ];
    assert_eq!(verdicts("b", &b), (vec![true, true, true], 0));
}

/// The JSON pointers of every scalar in `v`, in document order (shared by the checker's tests).
pub(crate) fn scalar_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let esc = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| scalar_pointers(x, format!("{at}/{}", esc(k)), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| scalar_pointers(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

/// `v` (one line) with each scalar in turn replaced by others of every type, short and long.
fn scalar_variants(v: &Value) -> Vec<String> {
    let others = [
        json!(0),
        json!(-3),
        json!(2.5),
        json!(1e300),
        json!(""),
        json!("x"),
        json!("2026-11-22T10:00:00Z"),
        json!("0b5c8f3a-6f8e-4f43-9d5e-2b1b9a2c7d11"),
        json!("x".repeat(300)),
        json!(true),
        Value::Null,
    ];
    each_scalar_replaced(v, &others)
        .iter()
        .map(Value::to_string)
        .collect()
}

/// `v` with each of its scalars in turn replaced by each of `others`.
pub(crate) fn each_scalar_replaced(v: &Value, others: &[Value]) -> Vec<Value> {
    let mut at = Vec::new();
    scalar_pointers(v, String::new(), &mut at);
    let mut out = Vec::new();
    for p in &at {
        for o in others {
            let mut c = v.clone();
            *c.pointer_mut(p).unwrap() = o.clone();
            out.push(c);
        }
    }
    out
}

/// Each fixture as one line, and as variants with one top-level field removed or made a
/// number, a string or null.
fn fixture_variants(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["valid", "invalid"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for f in files {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            out.push(v.to_string());
            let Value::Object(map) = &v else { continue };
            for key in map.keys() {
                for replace in [None, Some(json!(7)), Some(json!("x")), Some(Value::Null)] {
                    let mut m = map.clone();
                    match replace {
                        None => drop(m.remove(key)),
                        Some(r) => drop(m.insert(key.clone(), r)),
                    }
                    out.push(Value::Object(m).to_string());
                }
            }
        }
    }
    out
}

#[test]
fn lint_names_the_events_a_room_rule_cannot_judge() {
    let kite = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/kite");
    let r = lint(&kite).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    // case.updated need not carry a jurisdiction; scrape events must carry their job id.
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("case.updated: the room cases:{/data/jurisdiction}")),
        "{:#?}",
        r.notes
    );
    assert!(
        !r.notes.iter().any(|n| n.starts_with("scrape.")),
        "{:#?}",
        r.notes
    );
}

/// A profile marking squall's decisions (closed objects, one `minimum`, a whole error frame)
/// and squall-server's extensions (`seq`, the `error` kind).
fn marked_profile_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| write_file(d.path(), rel, text);
    w(
        "protocol.yaml",
        "name: marked\ndiscriminator: [/type]\ndecisions:\n  closed: the document never forbids fields\n\
         inbound:\n  pong: inbound/pong.json\n  error: inbound/error.json\n\
         outbound:\n  ping: outbound/ping.json\n",
    );
    w(
        "inbound/pong.json",
        r#"{"type": "object", "additionalProperties": false, "required": ["type", "id"],
            "properties": {"type": {"const": "pong"},
              "id": {"type": "integer", "minimum": 1, "x-squall-decision": {"minimum": "no range given"}},
              "seq": {"type": "integer", "x-squall-extension": "squall-server numbers frames"}}}"#,
    );
    w(
        "inbound/error.json",
        r#"{"x-squall-extension": "the document has no error frame",
            "x-squall-decision": "its shape is squall-server's",
            "type": "object", "additionalProperties": false, "required": ["type", "message"],
            "properties": {"type": {"const": "error"}, "message": {"type": "string"}}}"#,
    );
    w(
        "outbound/ping.json",
        r#"{"type": "object", "additionalProperties": false, "required": ["type"],
            "properties": {"type": {"const": "ping"}}}"#,
    );
    d
}

#[test]
fn each_violation_says_whether_the_document_or_a_decision_broke() {
    let d = marked_profile_dir();
    let p = Profile::load(d.path()).unwrap();
    let source = |v: Value| -> Vec<(String, String, RuleSource)> {
        let mut found: Vec<_> = p
            .check(Direction::In, &v)
            .unwrap_err()
            .into_iter()
            .map(|v| (v.keyword, v.pointer, v.source))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1));
        found
    };
    let extra = json!({"type": "pong", "id": 1, "note": "x"});
    assert_eq!(
        source(extra),
        [("additionalProperties".into(), "".into(), RuleSource::Squall)]
    );
    assert_eq!(
        source(json!({"type": "pong", "id": 0})),
        [("minimum".into(), "/id".into(), RuleSource::Squall)]
    );
    assert_eq!(
        source(json!({"type": "pong", "id": "one"})),
        [("type".into(), "/id".into(), RuleSource::Document)]
    );
    // Each place says whose rule it broke; one place breaking both counts as the document's
    // (one finding per pointer).
    assert_eq!(
        source(json!({"type": "pong", "id": "one", "note": "x"})),
        [
            ("additionalProperties".into(), "".into(), RuleSource::Squall),
            ("type".into(), "/id".into(), RuleSource::Document)
        ]
    );
    assert_eq!(
        source(json!({"type": "pong", "id": 0.5})),
        [("minimum+type".into(), "/id".into(), RuleSource::Document)]
    );
    assert_eq!(
        source(json!({"type": "error", "data": {"code": 3}})),
        [
            ("additionalProperties".into(), "".into(), RuleSource::Squall),
            ("required".into(), "/message".into(), RuleSource::Squall)
        ]
    );
}

#[test]
fn document_conformance_lets_decisions_pass_on_both_paths() {
    let d = marked_profile_dir();
    let strict = Profile::load(d.path()).unwrap();
    let loose = Profile::load_with(d.path(), Conformance::Document).unwrap();
    assert_eq!(loose.conformance, Conformance::Document);
    let mut tape = tape::Tape::default();
    for (text, kind) in [
        (r#"{"type": "pong", "id": 0, "note": "x"}"#, "pong"),
        (r#"{"type": "error", "data": {"code": 3}}"#, "error"),
    ] {
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(strict.check(Direction::In, &v).is_err(), "{text}");
        assert_eq!(loose.check(Direction::In, &v), Ok(()), "{text}");
        let doc = tape.parse(text).unwrap();
        assert!(!strict.is_clean(Direction::In, Some(kind), &doc));
        assert!(loose.is_clean(Direction::In, Some(kind), &doc), "{text}");
    }
    // The document's own rules still hold.
    let v = json!({"type": "pong", "id": "one"});
    let found = loose.check(Direction::In, &v).unwrap_err();
    assert_eq!(found[0].source, RuleSource::Document);
}

#[test]
fn the_portable_view_leaves_out_squall_servers_extensions() {
    let d = marked_profile_dir();
    let p = Profile::load_portable(&Source::Disk, d.path()).unwrap();
    assert_eq!(
        p.kinds(Direction::In),
        ["pong"],
        "the error kind is an extension"
    );
    let with_seq = json!({"type": "pong", "id": 1, "seq": 4});
    assert!(p.check(Direction::In, &with_seq).is_err());
    assert_eq!(
        Profile::load(d.path())
            .unwrap()
            .check(Direction::In, &with_seq),
        Ok(())
    );
}

#[test]
fn lint_holds_each_invalid_example_to_whose_rule_it_breaks() {
    let d = marked_profile_dir();
    let w = |rel: &str, text: &str| write_file(d.path(), rel, text);
    w(
        "examples/valid/in-pong.json",
        r#"{"type": "pong", "id": 1}"#,
    );
    w("examples/invalid/zero.json", r#"{"type": "pong", "id": 0}"#);
    w(
        "examples/invalid/text.json",
        r#"{"type": "pong", "id": "a"}"#,
    );
    let table = |zero: &str| {
        format!(
            "- {{ file: zero.json, dir: in, kind: pong, keyword: minimum, pointer: /id{zero} }}\n\
             - {{ file: text.json, dir: in, kind: pong, keyword: type, pointer: /id }}\n"
        )
    };
    w("examples/invalid/expected.yaml", &table(", source: squall"));
    let r = lint(d.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("minimum: no range given")),
        "{:?}",
        r.notes
    );
    // Labelled as the document's, the decision's example is a problem.
    w("examples/invalid/expected.yaml", &table(""));
    let r = lint(d.path()).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("zero.json")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_marker_that_names_nothing_fails_the_load() {
    let d = marked_profile_dir();
    std::fs::write(
        d.path().join("outbound/ping.json"),
        r#"{"type": "object", "x-squall-decision": {"maximum": "why"}}"#,
    )
    .unwrap();
    let e = Profile::load(d.path()).unwrap_err();
    assert!(e.to_string().contains("'maximum'"), "{e}");
}

#[test]
fn pointers_name_the_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let kecs = Profile::load(&root.join("kecs")).unwrap();
    let at = |p: &Profile, dir: Direction, v: Value| -> Vec<(String, String, String)> {
        let mut found: Vec<_> = p
            .check(dir, &v)
            .unwrap_err()
            .into_iter()
            .map(|v| (v.keyword, v.pointer, v.message))
            .collect();
        found.sort();
        found
    };
    // A missing member is reported at its own pointer, once (the envelope and the kind's
    // schema both require it), and the message says it is missing.
    let ack = json!({"id": "sub-001", "type": "subscribe_ack",
        "payload": {"subscriptionId": "sub-001", "status": "active"}});
    let found = at(&kecs, Direction::In, ack);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("required", "/timestamp")
    );
    assert!(found[0].2.contains("missing"), "{}", found[0].2);
    // An unknown kind is reported at the discriminator part that is unknown.
    let event = |t: &str| {
        json!({"id": "evt-1", "type": "event", "timestamp": "2024-01-01T00:00:00.000Z",
            "payload": {"eventType": t, "action": "CREATE"}})
    };
    let found = at(&kecs, Direction::In, event("billing"));
    assert_eq!(found[0].0, "unknown_kind");
    assert_eq!(found[0].1, "/payload/eventType");
    let mut wrong_type = event("task");
    wrong_type["type"] = json!("evnt");
    assert_eq!(kecs.unknown_part(Direction::In, &wrong_type), "/type");
    let cmd = json!({"id": "c", "type": "command", "action": "reboot", "payload": {}});
    assert_eq!(kecs.unknown_part(Direction::Out, &cmd), "/action");
    // Known inbound, not outbound: the first part already begins no outbound kind.
    assert_eq!(kecs.unknown_part(Direction::Out, &event("task")), "/type");
}
