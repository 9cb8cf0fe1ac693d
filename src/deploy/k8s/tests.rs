use super::*;

const SCENARIO: &str = "name: Kite soak\ntarget: ws://127.0.0.1:1/kite/ws\nprotocol: kite\n\
    load: { vus: 3, duration: 2s }\nbehaviours:\n  - steps:\n      - listen: 1s\n";

fn options(dir: &Path) -> Options {
    let scenario = dir.join("soak.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    Options {
        scenario,
        shards: 3,
        image: "registry.example.com/squall:1".into(),
        namespace: None,
        name: None,
        target: None,
        schemas: None,
        start_at: None,
        start_in: Duration::from_secs(120),
        storage: Storage::Claim { class: None },
        storage_size: "1Gi".into(),
        cpu: "2".into(),
        memory: "1Gi".into(),
        env: vec![],
        metrics_port: None,
        now: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_652_000_500),
    }
}

#[test]
fn the_start_defaults_to_a_whole_second_after_the_margin_and_names_the_run() {
    let d = tempfile::tempdir().unwrap();
    let m = manifests(&options(d.path())).unwrap();
    let t = humantime::format_rfc3339_seconds(m.start_at).to_string();
    assert_eq!(t, "2026-12-07T14:02:01Z");
    assert_eq!(m.run, "kite-soak-20261207-140201");
    assert!(m.yaml.contains("--start-at\n"), "{}", m.yaml);
    assert!(m.yaml.contains("2026-12-07T14:02:01Z"));
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let o = options(d.path());
    let cases: Vec<(Options, &str)> = vec![
        (
            Options {
                shards: 0,
                ..o.clone()
            },
            "at least one generator",
        ),
        (
            Options {
                image: "Squall:1".into(),
                ..o.clone()
            },
            "--image 'Squall:1'",
        ),
        (
            Options {
                namespace: Some("Load_Tests".into()),
                ..o.clone()
            },
            "--namespace",
        ),
        (
            Options {
                cpu: "two".into(),
                ..o.clone()
            },
            "--cpu 'two'",
        ),
        (
            Options {
                name: Some("-x".into()),
                ..o.clone()
            },
            "--name '-x'",
        ),
        (
            Options {
                start_at: Some(o.now),
                ..o.clone()
            },
            "already past",
        ),
        (
            Options {
                scenario: d.path().join("nosuch.yaml"),
                ..o.clone()
            },
            "nosuch.yaml",
        ),
    ];
    for (bad, says) in cases {
        let e = manifests(&bad).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains(says), "{says}: {e}");
    }
}

#[test]
fn storage_specs() {
    assert_eq!("pvc".parse(), Ok(Storage::Claim { class: None }));
    assert_eq!(
        "pvc:nfs-client".parse(),
        Ok(Storage::Claim {
            class: Some("nfs-client".into())
        })
    );
    assert_eq!(
        "claim:shared".parse(),
        Ok(Storage::Existing("shared".into()))
    );
    for bad in ["s3", "pvc:", "claim:", "claim:Bad_Name"] {
        assert!(
            bad.parse::<Storage>().unwrap_err().contains("pvc:CLASS"),
            "{bad}"
        );
    }
}
