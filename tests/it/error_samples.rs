//! Errors keep their first few occurrences — when, which VU, what happened — in results.json
//! (bounded), the terminal summary and report.html.

use crate::report_support;

use crate::support::*;
use futures_util::StreamExt;

#[test]
fn timeouts_keep_their_first_occurrences_with_time_vu_and_detail() {
    // Reads everything, answers nothing: every expect times out.
    let srv =
        TestServer::start(|mut ws, _| async move { while let Some(Ok(_)) = ws.next().await {} });
    let yaml = r#"
name: error-samples
load: { duration: 2s, vus: 3 }
target: ws://127.0.0.1:1/unused   # run_yaml aims it at the test server
behaviours:
  - steps:
      - repeat: 4
        steps:
          - send: { type: ping, id: "{{seq}}" }
          - expect: { kind: pong, within: 100ms, metric: rtt }
"#;
    let (done, doc) = run_yaml(&format!("ws://{}/ws", srv.addr), yaml);
    let timeouts = doc["counters"]["errors_by_kind"]["timeout"]
        .as_u64()
        .unwrap();
    assert!(
        timeouts > 5,
        "{timeouts} timeouts: too few to see the bound"
    );
    let samples = doc["counters"]["error_samples"]["timeout"]
        .as_array()
        .unwrap();
    assert_eq!(samples.len(), 5, "bounded to 5: {samples:?}");
    let mut last = 0.0;
    for s in samples {
        let t = s["t"].as_f64().unwrap();
        assert!(t >= last && t < 10.0, "in time order: {samples:?}");
        last = t;
        assert!(s["vu"].as_u64().is_some());
        assert_eq!(
            s["detail"],
            "expect: no matching frame within 100ms (metric rtt)"
        );
    }
    let summary = squall::report::render_summary(&done.results);
    assert!(
        summary.contains("✗ timeout first at ")
            && summary.contains("expect: no matching frame within 100ms (metric rtt)"),
        "{summary}"
    );
    let dir = tempfile::tempdir().unwrap();
    let w = squall::report::write_report(&done.results, dir.path()).unwrap();
    let page = report_support::parse_html(&std::fs::read_to_string(&w.html).unwrap());
    let rows: Vec<_> = page
        .rows
        .iter()
        .filter(|r| r.len() == 4 && r[0] == "timeout" && r[3].starts_with("expect: no matching"))
        .collect();
    assert_eq!(rows.len(), 5, "{:?}", page.rows);
}
