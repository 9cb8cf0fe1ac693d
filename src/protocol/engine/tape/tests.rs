use super::parse::stops;
use super::*;
use rand::{RngExt, SeedableRng};

fn tape_value(text: &str) -> Option<Value> {
    let mut tape = Tape::default();
    tape.parse(text).map(|d| d.root().to_json())
}

/// Whatever the tape accepts, serde_json parses into the same value.
fn agrees(text: &str) {
    let serde = serde_json::from_str::<Value>(text).ok();
    if let Some(v) = tape_value(text) {
        assert_eq!(Some(&v), serde.as_ref(), "{text:?}");
    }
}

#[test]
fn ordinary_frames_parse_as_serde_json_does() {
    let texts = [
        r#"{"type":"pong","data":{"client_id":"0b5f0e5c-0000-4000-8000-000000000000"},"timestamp":"2026-01-01T00:00:00Z","id":42}"#,
        r#" { "a" : [ 1 , -2 , 3.5 , 1e3 , -0.25E-2 , true , false , null ] , "b" : { } , "c" : [ ] } "#,
        r#""esc\"aped\\ \/ \b\f\n\r\t \u0041 \u00e9 \ud83e\udd80 é""#,
        r#"{"\u0074ype":"x","k\n":"v"}"#,
        "18446744073709551615",
        "-9223372036854775808",
        "0",
        "[[[[]]]]",
        r#"{"n":1.0,"m":100000000000000000000.0,"e":5e-324}"#,
    ];
    for t in texts {
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(tape_value(t).as_ref(), Some(&v), "{t}");
    }
}

#[test]
fn what_serde_json_refuses_the_tape_refuses() {
    for t in [
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "01",
        "1.",
        ".5",
        "1e",
        "-",
        "+1",
        "tru",
        "nul",
        "\"\u{1}\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "[1 2]",
        "{\"a\":1}x",
        "1e400",
        "\"abc",
        "NaN",
        "[\"a\",]",
    ] {
        assert!(tape_value(t).is_none(), "{t:?}");
        agrees(t);
    }
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    for depth in [126usize, 127, 128, 129] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let serde = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(
                serde,
                depth < 128,
                "serde_json's limit moved ({depth} {open})"
            );
            assert_eq!(tape_value(&text).is_some(), serde, "depth {depth} {open}");
        }
    }
}

#[test]
fn unsure_cases_are_left_to_serde_json() {
    // Parsed by serde_json, but in ways the tape does not model: the caller falls back.
    let deep = "[".repeat(200) + &"]".repeat(200);
    for t in [
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"b":{"a":1},"a":3}"#,
        "-0",
        "18446744073709551616",
        "-9223372036854775809",
        deep.as_str(),
    ] {
        assert!(tape_value(t).is_none(), "{t:?}");
    }
    // Same hash bit, different keys: not duplicates.
    assert!(tape_value(r#"{"ab":1,"ba":2,"ab2":3}"#).is_some());
}

#[test]
fn pointers_find_what_serde_json_finds() {
    let t = r#"{"a":{"b~c":[10,{"d/e":"x"}],"":1},"s":"t\u0041"}"#;
    let mut tape = Tape::default();
    let pointers = [
        "",
        "/a",
        "/a/b~0c",
        "/a/b~0c/1/d~1e",
        "/a/b~0c/0",
        "/a/",
        "/s",
        "/x",
        "/a/b~0c/9",
        "/a/b~0c/1/d~1e/and/then/much/deeper",
        "/",
        "//",
        "x",
        "/x/0",
        "/x/00",
        "/x/+0",
        "/x/-1",
        "/a/b~0c/01",
        "/~",
        "/~2",
    ];
    // Each text against serde_json, the tape reused for the second.
    for t in [t, r#"{"s":"other","x":[1],"a":2}"#] {
        let v: Value = serde_json::from_str(t).unwrap();
        let doc = tape.parse(t).unwrap();
        for p in pointers {
            let found = doc.lookup(p).map(|n| n.to_json());
            assert_eq!(found, v.pointer(p).cloned(), "{p} in {t}");
        }
    }
    let doc = tape.parse(t).unwrap();
    assert_eq!(doc.lookup("/s").and_then(|n| n.str()), Some("tA"));
    assert_eq!(doc.lookup("/s").and_then(|n| n.text_span()), None);
    let span = doc
        .lookup("/a/b~0c/1/d~1e")
        .and_then(|n| n.text_span())
        .unwrap();
    assert_eq!(&t[span], "x");
    assert_eq!(doc.lookup("/a/b~0c/0").and_then(|n| n.as_u64()), Some(10));
}

/// A random JSON value, written with random spacing and escapes.
fn random_json(rng: &mut rand::rngs::SmallRng, depth: usize, out: &mut String) {
    let pick = if depth > 4 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..8)
    };
    match pick {
        0 => out.push_str("null"),
        1 => out.push_str(if rng.random() { "true" } else { "false" }),
        2 => out.push_str(&rng.random::<i64>().to_string()),
        3 => out.push_str(&format!("{:e}", rng.random::<f64>() * 1e6 - 5e5)),
        4 | 5 => random_string(rng, out),
        6 => {
            out.push('[');
            for i in 0..rng.random_range(0..5) {
                if i > 0 {
                    out.push(',');
                }
                space(rng, out);
                random_json(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.random_range(0..5) {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("\"k{i}\""));
                space(rng, out);
                out.push(':');
                random_json(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

fn space(rng: &mut rand::rngs::SmallRng, out: &mut String) {
    for _ in 0..rng.random_range(0..2) {
        out.push([' ', '\n', '\t', '\r'][rng.random_range(0..4)]);
    }
}

fn random_string(rng: &mut rand::rngs::SmallRng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.random_range(0..8) {
        match rng.random_range(0..6) {
            0 => out.push_str("\\n"),
            1 => out.push_str(&format!("\\u{:04x}", rng.random_range(0x20..0xd7ffu32))),
            2 => out.push('é'),
            3 => out.push_str("\\\""),
            _ => out.push(char::from(rng.random_range(b'a'..=b'z'))),
        }
    }
    out.push('"');
}

#[test]
fn random_documents_and_their_mutations_agree_with_serde_json() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut text = String::new();
        random_json(&mut rng, 0, &mut text);
        let v: Value = serde_json::from_str(&text).expect("generated JSON parses");
        assert_eq!(tape_value(&text).as_ref(), Some(&v), "{text}");
        // Break it at random: one byte replaced, dropped or doubled.
        let mut bytes = text.clone().into_bytes();
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..3) {
            0 => {
                let swaps = b"{}[],:\"\\0-e.a ";
                bytes[at] = swaps[rng.random_range(0..swaps.len())];
            }
            1 => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, bytes[at]),
        }
        if let Ok(m) = String::from_utf8(bytes) {
            agrees(&m);
            accepted += usize::from(tape_value(&m).is_some());
        }
    }
    // The mutations are not all refused: the comparison above had something to compare.
    assert!(accepted > 100, "{accepted}");
}

#[test]
fn the_word_scan_finds_the_first_byte_that_ends_a_plain_run() {
    let ends = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    // Byte `b` at `pos`, every byte `c` before it and after it: the lowest flagged byte is
    // the first that ends the run, whatever the bytes around it (borrows, high bits).
    for b in 0..=255u8 {
        for c in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [c; 8];
                bytes[pos] = b;
                let first = bytes.iter().position(|&x| ends(x));
                let m = stops(u64::from_le_bytes(bytes));
                let found = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
                assert_eq!(found, first, "{b:#x} at {pos} among {c:#x}");
            }
        }
    }
}
