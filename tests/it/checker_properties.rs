//! Property test of the checking path's parser: the tape reads every JSON text as
//! serde_json does, or leaves it to serde_json. (The tape engine against the reference
//! engine, frame by frame: `protocol::checker`'s tests.)

use proptest::prelude::*;
use serde_json::Value;
use squall::protocol::tape::Tape;

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[a-z\\\\\"\\u{0}-\\u{1f}é€😀]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text the tape must read as serde_json does: generated JSON, spaced out or not, and the
/// same text cut short or with a byte changed.
fn json_text() -> impl Strategy<Value = String> {
    (json_value(), any::<bool>(), any::<u16>(), any::<u8>()).prop_map(|(v, pretty, at, b)| {
        let text = match pretty {
            true => serde_json::to_string_pretty(&v).unwrap(),
            false => v.to_string(),
        };
        match at % 3 {
            0 => text,
            1 => {
                let mut cut = at as usize % (text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text[..cut].to_string()
            }
            _ => {
                let mut bytes = text.into_bytes();
                let i = at as usize % bytes.len().max(1);
                if let Some(x) = bytes.get_mut(i) {
                    *x = b % 128;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_tape_reads_json_as_serde_json_does(text in json_text()) {
        let mut tape = Tape::default();
        let serde = serde_json::from_str::<Value>(&text).ok();
        // `None`: not JSON, or JSON the tape leaves to serde_json.
        if let Some(doc) = tape.parse(&text) {
            prop_assert_eq!(Some(doc.root().to_json()), serde, "{}", text);
        }
    }
}
