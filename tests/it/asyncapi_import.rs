//! `squall schemas import asyncapi` on real AsyncAPI documents written by others
//! (`../shared/asyncapi/`, read from there): each imports, lints clean against its own
//! examples, and the discriminator, correlation and replies found are the ones it means.

use std::path::{Path, PathBuf};
use std::process::Command;

use squall::asyncapi::{import, Imported, Options};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/asyncapi")
        .join(name)
}

/// Imports a shared document and lints the profile in memory; returns it.
fn imported(name: &str) -> Imported {
    let doc = shared(name);
    assert!(
        doc.is_file(),
        "{} is missing (see shared/asyncapi/README.md)",
        doc.display()
    );
    let i = import(&doc, &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = Path::new("/asyncapi").join(&i.name);
    let report = squall::protocol::lint_in(&i.source(&dir), &dir).unwrap();
    assert!(report.problems.is_empty(), "{name}: {:#?}", report.problems);
    i
}

fn protocol(i: &Imported) -> &str {
    &i.files["protocol.yaml"]
}

#[test]
fn kraken_request_reply_pairs_by_reqid() {
    let i = imported("kraken-request-reply-3.1.yml");
    assert_eq!(i.discriminator, "/event");
    assert_eq!(i.correlation.as_deref(), Some("/reqid"));
    let pairs: Vec<(&str, &str)> = i
        .replies
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("ping", "pong"),
            ("subscribe", "subscriptionStatus"),
            ("subscribe", "currencyInfo"),
            ("unsubscribe", "subscriptionStatus"),
        ]
    );
    let p = protocol(&i);
    assert!(
        p.contains("outbound:\n  \"ping\": outbound/ping.json"),
        "{p}"
    );
    assert!(
        p.contains("\"subscriptionStatus\": inbound/subscriptionStatus.json"),
        "{p}"
    );
    // The document's examples write `pair` as a string where its schema says array: they
    // are kept as invalid examples, and lint proves the profile rejects them.
    assert!(i
        .files
        .contains_key("examples/invalid/in-subscriptionStatus-1.json"));
    assert!(i
        .warnings
        .iter()
        .any(|w| w.contains("kraken-request-reply-3.1.yml:145:11")));
}

#[test]
fn gemini_market_data_is_receive_only_with_a_ws_query() {
    let i = imported("gemini-market-data-3.1.yml");
    assert_eq!(i.discriminator, "/type");
    assert_eq!(i.correlation, None);
    assert!(i.replies.is_empty());
    let p = protocol(&i);
    assert!(p.contains("\"heartbeat\": inbound/heartbeat.json"), "{p}");
    assert!(p.contains("\"update\": inbound/update.json"), "{p}");
    assert!(p.contains("outbound: {}"), "{p}");
    assert!(p.contains("servers: [\"wss://api.gemini.com\"]"), "{p}");
    assert!(p.contains("address: \"/v1/marketdata/{symbol}\""), "{p}");
    assert!(
        p.contains("\"heartbeat\": { required: false, example: false }"),
        "{p}"
    );
    assert!(i
        .files
        .contains_key("examples/valid/in-marketData-updateMessage.json"));
    assert!(i
        .files
        .contains_key("examples/valid/in-marketData-heartbeatMessage.json"));
}

#[test]
fn slack_in_both_versions_reads_alike() {
    let v3 = imported("slack-rtm-3.1.yml");
    let v2 = imported("slack-rtm-2.6.yml");
    for i in [&v3, &v2] {
        assert_eq!(i.discriminator, "/type");
        assert_eq!(i.correlation, None);
        let p = protocol(i);
        assert!(
            p.contains("outbound:\n  \"message\": outbound/message.json"),
            "{p}"
        );
        assert!(p.contains("\"hello\": inbound/hello.json"), "{p}");
        // Two pairs of messages share a type value: reported, not guessed.
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("share the kind bot_added")),
            "{:?}",
            i.warnings
        );
    }
    let kinds = |i: &Imported| -> Vec<String> {
        let mut k: Vec<String> = i
            .files
            .keys()
            .filter(|f| f.ends_with(".json") && !f.starts_with("examples"))
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&v3), kinds(&v2));
}

#[test]
fn the_cli_writes_a_profile_that_lints_and_says_its_choices() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("schemas/kraken");
    let run = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["schemas", "import", "asyncapi"])
        .arg(shared("kraken-request-reply-3.1.yml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    succeeded(&run, &text);
    assert!(
        text.contains("discriminator /event, correlation /reqid, 4 reply rules"),
        "{text}"
    );
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        readme.contains("`#/operations/receivePing/reply`"),
        "{readme}"
    );
    let again = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["schemas", "import", "asyncapi"])
        .arg(shared("kraken-request-reply-3.1.yml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing profile is not overwritten"
    );
    let lint = Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(d.path())
        .args(["schemas", "lint", "kraken"])
        .output()
        .unwrap();
    succeeded(&lint, "squall");
}

#[test]
fn a_smoke_scenario_from_each_document_passes_check() {
    let d = tempfile::tempdir().unwrap();
    for name in [
        "kraken-request-reply-3.1.yml",
        "gemini-market-data-3.1.yml",
        "slack-rtm-3.1.yml",
        "slack-rtm-2.6.yml",
    ] {
        let out = d.path().join(format!("{name}.scenario.yaml"));
        let made = Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["scenario", "new", "--from"])
            .arg(shared(name))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        succeeded(&made, name);
        let checked = Command::new(env!("CARGO_BIN_EXE_squall"))
            .arg("check")
            .arg(&out)
            .output()
            .unwrap();
        succeeded(&checked, name);
    }
}

#[test]
fn a_smoke_scenario_from_a_profile_folder_names_it_by_a_relative_path() {
    let d = tempfile::tempdir().unwrap();
    let profile = d.path().join("schemas/gemini");
    let import = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["schemas", "import", "asyncapi"])
        .arg(shared("gemini-market-data-3.1.yml"))
        .arg("--out")
        .arg(&profile)
        .output()
        .unwrap();
    assert_eq!(import.status.code(), Some(0));
    std::fs::create_dir(d.path().join("scenarios")).unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(d.path())
        .args([
            "scenario",
            "new",
            "--from",
            "schemas/gemini",
            "--out",
            "scenarios/g.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0));
    let yaml = std::fs::read_to_string(d.path().join("scenarios/g.yaml")).unwrap();
    assert!(yaml.contains("protocol: \"../schemas/gemini\""), "{yaml}");
    assert!(
        yaml.contains("target: \"wss://api.gemini.com/v1/marketdata/btcusd\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("- \"violations == 0\"\n  - \"errors.count == 0\""),
        "{yaml}"
    );
    let checked = Command::new(env!("CARGO_BIN_EXE_squall"))
        .current_dir(d.path().join("scenarios"))
        .args(["check", "g.yaml"])
        .output()
        .unwrap();
    succeeded(&checked, "squall");
}

/// Asserts a squall command exited 0, showing what it printed when not.
fn succeeded(out: &std::process::Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
