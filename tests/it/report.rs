//! Reports and comparisons of real runs against squall-server on 127.0.0.1: report.html is
//! sound HTML, self-contained, shows every metric and threshold with the terminal
//! summary's numbers; every chart PNG decodes at its size with text on it; `squall report`
//! rejects bad input with exit 2; `squall compare --fail-if-worse` fails a run made slower
//! by the server's `--delay` and passes a repeat of the same run.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use crate::report_support::*;
use crate::support::{reference_server, squall_cmd};
use squall::report::model::RowKind;
use squall::report::{read_results, render_model, write_report, Model, Status};

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The HTML row of a latency table for `metric` measured from `kind`.
fn html_row<'a>(page: &'a Page, metric: &str, kind: RowKind) -> &'a [String] {
    let kind = match kind {
        RowKind::Latency => "latency",
        RowKind::Service => "service",
        RowKind::Connect => "connect",
    };
    page.rows
        .iter()
        .find(|r| r.len() == 8 && r[0] == metric && r[1] == kind)
        .unwrap_or_else(|| panic!("no {kind} row for {metric}"))
}

/// The terminal summary and the HTML show the model's figures, cell for cell.
fn assert_same_numbers(page: &Page, model: &Model) {
    let summary = render_model(model);
    for r in &model.latency {
        let cells: Vec<String> = match &r.cells {
            Some(c) => c.to_vec(),
            None => vec!["no samples".into(); 5],
        };
        let row = html_row(page, &r.metric, r.kind);
        assert_eq!(row[2], r.count.to_string(), "{}", r.label);
        assert_eq!(&row[3..], &cells[..], "{}", r.label);
        if r.same_as_latency {
            continue;
        }
        let mut want = vec![r.count.to_string()];
        want.extend(cells);
        let found = summary.lines().any(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            l.contains(&r.label)
                && toks.ends_with(&want.iter().map(String::as_str).collect::<Vec<_>>())
        });
        assert!(found, "summary lacks {} {want:?}:\n{summary}", r.label);
    }
    let e = &model.errors;
    assert!(summary.contains(&format!("({})", e.rate)), "{summary}");
    assert!(
        page.rows.iter().any(|r| r.get(2) == Some(&e.rate)),
        "error rate {}",
        e.rate
    );
    for t in &model.traffic {
        assert!(page
            .rows
            .iter()
            .any(|r| r[0] == t.dir && r[1] == t.frames.to_string() && r[2] == t.frame_rate));
        assert!(
            summary.contains(&format!("{} ({})", t.frames, t.frame_rate)),
            "{summary}"
        );
    }
}

#[test]
fn a_real_run_gets_a_sound_self_contained_report_with_every_metric_and_threshold() {
    let srv = reference_server(|c| c.events_per_sec = 20.0);
    let dir = tempfile::tempdir().unwrap();
    let done = run(dir.path(), "run", &format!("ws://{}/ws", srv.addr()), true);
    srv.shutdown();
    let r = &done.results;
    assert_eq!(r.status, Status::Complete);
    assert!(r.metrics.len() >= 4, "{:?}", r.metrics.keys());
    assert!(r.thresholds.iter().any(|t| !t.pass) && r.thresholds.iter().any(|t| t.pass));
    assert!(
        r.violations.total > 0,
        "the scenario's bad ping was not seen"
    );

    let out = dir.path().join("run");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let page = parse_html(&html);
    assert!(
        page.errors.is_empty(),
        "HTML parse errors: {:?}",
        page.errors
    );
    assert_self_contained(&page);
    for name in r.metrics.keys() {
        html_row(&page, name, RowKind::Latency);
        html_row(&page, name, RowKind::Service);
        assert!(page
            .texts
            .iter()
            .any(|t| t == &format!("{name}: latency by percentile")));
    }
    for t in &r.thresholds {
        let row = page.rows.iter().find(|row| row.get(1) == Some(&t.expr));
        let row = row.unwrap_or_else(|| panic!("threshold {} missing", t.expr));
        let want = if t.pass { "✓ pass" } else { "✗ fail" };
        assert_eq!(row[0], want, "{}", t.expr);
        assert_eq!(row[2], t.message);
    }
    // The verdict opens the page, before the first table: FAIL (a threshold failed).
    let at = |text: &str| page.texts.iter().position(|t| t == text);
    assert!(at("FAIL").expect("no verdict") < at("Thresholds").unwrap());
    assert!(!done.passed());
    // Frames by kind, from kinds_in and kinds_out, every kind with its count.
    for (dir, kinds) in [("in", &r.counters.kinds_in), ("out", &r.counters.kinds_out)] {
        assert!(!kinds.is_empty());
        for (kind, k) in kinds {
            assert!(
                page.rows.iter().any(|row| row.len() == 6
                    && row[0] == dir
                    && row[1] == *kind
                    && row[2] == k.frames.to_string()),
                "{dir} {kind} missing from the frames-by-kind table"
            );
        }
    }
    // Close codes read as what they mean.
    assert!(
        page.rows
            .iter()
            .any(|row| row[0] == "closed" && row[2].contains("1000 normal ×")),
        "{:?}",
        page.rows.iter().find(|row| row[0] == "closed")
    );
    // What became of the requests, and what the stop left, as results.json says.
    let q = &r.counters.requests;
    let want = [q.sent, q.replies, q.timeouts, q.unanswered].map(|n| n.to_string());
    assert!(
        page.rows.iter().any(|row| row[..] == want[..]),
        "requests row {want:?}"
    );
    for (label, n) in [
        ("open at the stop", r.counters.connections.open_at_stop),
        ("iterations cut at the stop", r.load.iterations_cut),
    ] {
        let row = page
            .rows
            .iter()
            .find(|row| row.first().map(String::as_str) == Some(label));
        assert_eq!(
            row.map(|row| row[1].clone()),
            Some(n.to_string()),
            "{label}"
        );
    }
    // The violating frame shows as the text it was, markup and quotes included.
    assert!(
        page.texts
            .iter()
            .any(|t| t.contains(r#""note":"<b>&\"odd\"</b>""#)),
        "sample frame"
    );
    assert!(
        page.rows
            .iter()
            .any(|row| row.get(4).is_some_and(|p| p.starts_with('/'))),
        "pointer"
    );
    assert_same_numbers(&page, &Model::new(r));

    // One PNG per chart, each linked from the page; each decodes, is the right size,
    // is not blank and carries text.
    let pngs = pngs_in(&out);
    let mut expected: Vec<String> = r
        .metrics
        .keys()
        .map(|m| format!("latency-{m}.png"))
        .collect();
    expected.extend(
        [
            "time-latency",
            "time-throughput",
            "time-connections",
            "time-errors",
            "connect-time",
            "connections-closes",
        ]
        .map(|s| format!("{s}.png")),
    );
    for e in &expected {
        assert!(
            pngs.iter().any(|p| p.ends_with(e)),
            "{e} not written: {pngs:?}"
        );
    }
    for p in &pngs {
        assert_chart_png(p);
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            page.attrs.iter().any(|(a, v)| a == "href" && *v == name),
            "{name} not linked"
        );
    }

    // `squall report` regenerates the same page from results.json alone.
    let again = dir.path().join("again");
    let o = squall_cmd()
        .arg("report")
        .arg(out.join("results.json"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(again.join("report.html")).unwrap(),
        html
    );
    assert_eq!(pngs_in(&again).len(), pngs.len());

    // An interrupted run on a saturated generator says so at the top, in both renderers.
    let mut worse = read_results(&out.join("results.json")).unwrap();
    worse.status = Status::Interrupted;
    worse.status_reason = Some("SIGINT".into());
    worse.health.generator_saturated = true;
    let w = write_report(&worse, &dir.path().join("worse")).unwrap();
    let page = parse_html(&std::fs::read_to_string(&w.html).unwrap());
    let model = Model::new(&worse);
    assert_eq!(model.banners.len(), 2);
    let summary = render_model(&model);
    for b in &model.banners {
        assert!(
            page.texts.iter().any(|t| t.contains(b.as_str())),
            "banner {b}"
        );
        assert!(summary.contains(b.as_str()), "{summary}");
    }
    assert!(page.texts.iter().any(|t| t == "interrupted"));
}

#[test]
fn report_rejects_bad_input_with_exit_two_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, body: Option<&str>, needle: &str| {
        let path = dir.path().join(name);
        if let Some(b) = body {
            std::fs::write(&path, b).unwrap();
        }
        let o = squall_cmd().arg("report").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            err.contains(&path.display().to_string()) && err.contains(needle),
            "{err}"
        );
        assert!(!dir.path().join("report.html").exists());
    };
    check("missing.json", None, "No such file");
    check(
        "truncated.json",
        Some("{\"version\": 1,\n  \"status\": "),
        ":2:",
    );
    check(
        "truncated.json",
        Some("{\"version\": 1,\n  \"status\": "),
        "not valid JSON",
    );
    check(
        "other.json",
        Some("{\"hello\": []}"),
        "not a squall results file",
    );
    check(
        "future.json",
        Some("{\"version\": 99}"),
        "results version 99",
    );
    let o = squall_cmd().args(["compare", "a.json"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "one file is no comparison: {}",
        text(&o)
    );
}

/// Starts `squall run` against `addr`, writing `dir/name`.
fn cli_run(dir: &Path, name: &str, addr: std::net::SocketAddr, extra: &[&str]) -> Child {
    let sc = dir.join(format!("{name}.yaml"));
    std::fs::write(&sc, SCENARIO).unwrap();
    squall_cmd()
        .arg("run")
        .arg(&sc)
        .args([
            "--quiet",
            "--threads",
            "1",
            "--target",
            &format!("ws://{addr}/ws"),
        ])
        .arg("--out")
        .arg(dir.join(name))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn fail_if_worse_fails_a_slower_server_and_passes_a_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fast = reference_server(|_| {});
    let slow = reference_server(|c| c.reply_delay = Duration::from_millis(300));
    // Three runs at once: a, its repeat b, and c against the server that waits 300 ms
    // before each write of replies. The scenario fails a threshold on purpose: each run
    // exits 1, and still writes its results (and its report, unless --no-report).
    let runs = [
        cli_run(d, "a", fast.addr(), &[]),
        cli_run(d, "b", fast.addr(), &["--no-report"]),
        cli_run(d, "c", slow.addr(), &["--no-report"]),
    ];
    for child in runs {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    }
    fast.shutdown();
    slow.shutdown();
    assert!(
        d.join("a/report.html").is_file(),
        "squall run writes the report by default"
    );
    assert!(
        d.join("b/results.json").is_file() && !d.join("b/report.html").exists(),
        "--no-report"
    );
    assert!(
        read_results(&d.join("c/results.json")).unwrap().metrics["rtt"]
            .latency
            .p50
            >= 300_000
    );

    // The gate: more than 100 % worse, and by more than 150 ms (scheduling noise on a
    // shared machine stays far below; the delay is far above).
    let compare = |runs: &[&str], out: &str| {
        let mut cmd = squall_cmd();
        cmd.arg("compare");
        for r in runs {
            cmd.arg(d.join(r).join("results.json"));
        }
        cmd.args(["--fail-if-worse", "100", "--min-delta", "150ms", "--out"])
            .arg(d.join(out));
        cmd.output().unwrap()
    };
    let same = compare(&["a", "b"], "ab");
    assert_eq!(
        same.status.code(),
        Some(0),
        "a repeat of the same run: {}",
        text(&same)
    );
    assert!(!String::from_utf8_lossy(&same.stdout).contains("regression"));
    let slower = compare(&["a", "b", "c"], "abc");
    let out = String::from_utf8_lossy(&slower.stdout);
    assert_eq!(slower.status.code(), Some(1), "{}", text(&slower));
    assert!(out.contains("regression: c: latency rtt p50"), "{out}");
    assert!(!out.contains("regression: b:"), "{out}");

    // compare.html: sound, self-contained, every run and metric, marked worse; its PNGs.
    let html = std::fs::read_to_string(d.join("abc/compare.html")).unwrap();
    let page = parse_html(&html);
    assert!(page.errors.is_empty(), "{:?}", page.errors);
    assert_self_contained(&page);
    for label in ["a", "b", "c"] {
        assert!(page.rows.iter().any(|r| r[0] == label), "run {label}");
    }
    assert!(page.texts.iter().any(|t| t.contains("worse")));
    assert!(page
        .rows
        .iter()
        .any(|r| r.first().is_some_and(|c| c == "latency.welcome.p50 < 1us")));
    let pngs = pngs_in(&d.join("abc"));
    assert!(
        pngs.iter().any(|p| p.ends_with("compare-rtt.png")),
        "{pngs:?}"
    );
    for p in &pngs {
        assert_chart_png(p);
    }
    // Labels must match the files one to one.
    let o = squall_cmd()
        .arg("compare")
        .arg(d.join("a/results.json"))
        .arg(d.join("b/results.json"))
        .args(["--label", "only-one", "--out"])
        .arg(d.join("bad"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
