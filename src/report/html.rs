//! report.html: the report [`Model`] and its charts as one self-contained page (inline
//! CSS and SVG; no script, no font or image fetched from anywhere).

use std::fmt::Write as _;

use super::fmt::close_label;
pub use super::fmt::escape_markup as escape;
use super::model::{GroupView, Model, RowKind, CLOSED_LOOP_NOTE, LATENCY_COLUMNS};
use super::plots::{Chart, Section};

/// A chart drawn for the page: the inline SVG, and the PNG file written beside it.
pub struct Figure<'a> {
    /// What was drawn.
    pub chart: &'a Chart,
    /// The `<svg>` element.
    pub svg: String,
}

/// Colours match the plots' palette (see `plots::palette`).
const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#282828;background:#f6f6f4}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{margin:8px 0 4px;font-size:1.6em}h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}
.sub{color:#555;margin:0 0 12px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;font-size:.9em}
.status.complete{background:#009e73}.status.interrupted,.status.running{background:#e69f00}.status.aborted{background:#d55e00}
.verdict{font-size:1.5em;font-weight:800;padding:6px 16px;border-radius:6px;color:#fff;display:inline-block;margin:4px 12px 4px 0}
.verdict.PASS{background:#009e73}.verdict.FAIL,.verdict.ABORTED{background:#d55e00}.verdict.INTERRUPTED,.verdict.RUNNING{background:#e69f00}
.banner{background:#fde9dc;border-left:6px solid #d55e00;padding:10px 14px;margin:10px 0;font-weight:600}
table{border-collapse:collapse;margin:8px 0;background:#fff;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eee}
.pass{color:#00734f;font-weight:700}.fail{color:#b34700;font-weight:700}
.better{color:#00734f}.worse{color:#b34700;font-weight:700}
figure{margin:16px 0;background:#fff;border:1px solid #ddd;padding:8px}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:.85em;color:#555}
pre{white-space:pre-wrap;word-break:break-all;background:#f0f0f0;padding:6px;margin:4px 0;font-size:.85em}
footer{color:#777;font-size:.85em;margin-top:32px}
";

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// A table: headings, then rows of cells that are already HTML. A cell starting with
/// `\u{1}` is right-aligned (a number).
pub fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table>\n<tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            match c.strip_prefix('\u{1}') {
                Some(n) => {
                    let _ = write!(out, "<td class=\"n\">{n}</td>");
                }
                None => {
                    let _ = write!(out, "<td>{c}</td>");
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// A number cell for [`table`].
pub fn num(v: impl std::fmt::Display) -> String {
    format!("\u{1}{}", escape(&v.to_string()))
}

/// `✓ pass` / `✗ fail`, coloured.
pub fn verdict(pass: bool) -> String {
    if pass {
        "<span class=\"pass\">✓ pass</span>".into()
    } else {
        "<span class=\"fail\">✗ fail</span>".into()
    }
}

/// One figure: the inline SVG, its caption and a link to its PNG.
pub fn figure(out: &mut String, f: &Figure) {
    let _ = write!(
        out,
        "<figure id=\"{0}\">\n{1}\n<figcaption>{2} · <a href=\"{0}.png\">{0}.png</a></figcaption>\n</figure>\n",
        escape(&f.chart.file),
        f.svg,
        escape(&f.chart.title)
    );
}

/// The figures of one section, in order.
pub fn figures(out: &mut String, figs: &[Figure], section: Section) {
    for f in figs.iter().filter(|f| f.chart.section == section) {
        figure(out, f);
    }
}

/// `×1.05`, `×12.3`, `×2450`: a ratio to the baseline with three significant digits at most.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("×{r:.0}")
    } else if r >= 10.0 {
        format!("×{r:.1}")
    } else {
        format!("×{r:.2}")
    }
}

/// The report page of one run.
pub fn report(m: &Model, figs: &[Figure]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>{}</h1>\n<p class=\"sub\"><span class=\"status {1}\">{1}</span> {2} → {3}</p>\n",
        escape(&m.scenario),
        m.status,
        m.duration,
        escape(&m.target)
    );
    let _ = writeln!(
        o,
        "<p id=\"verdict\"><span class=\"verdict {0}\">{0}</span> {1}</p>",
        m.verdict.word,
        escape(&m.verdict.detail)
    );
    for b in &m.banners {
        let _ = writeln!(o, "<div class=\"banner\">⚠ {}</div>", escape(b));
    }
    thresholds(&mut o, m);
    o.push_str("<h2 id=\"latency\">Latency</h2>\n<p>Latency counts from the intended send time (no coordinated omission); service time from the actual send.</p>\n");
    latency_table(&mut o, m);
    if !m.closed_loop.is_empty() {
        let names = escape(&m.closed_loop.join(", "));
        let note = escape(CLOSED_LOOP_NOTE);
        let _ = writeln!(
            o,
            "<p class=\"note\"><b>Closed loop</b> ({names}): {note}.</p>"
        );
    }
    figures(&mut o, figs, Section::Latency);
    o.push_str("<h2 id=\"over-time\">Over time</h2>\n");
    figures(&mut o, figs, Section::OverTime);
    connections(&mut o, m);
    figures(&mut o, figs, Section::Connections);
    traffic(&mut o, m);
    flows(&mut o, m);
    violations(&mut o, m);
    health(&mut o, m);
    figures(&mut o, figs, Section::Generator);
    o.push_str("<h2 id=\"run\">Run</h2>\n");
    let rows: Vec<Vec<String>> = m
        .meta
        .iter()
        .map(|(k, v)| vec![escape(k), escape(v)])
        .collect();
    table(&mut o, &["", ""], &rows);
    let _ = writeln!(
        o,
        "<footer>Made by squall from results.json alone; PNG copies of every chart are beside this file.</footer>"
    );
    page(&format!("squall report: {}", m.scenario), &o)
}

fn thresholds(o: &mut String, m: &Model) {
    o.push_str("<h2 id=\"thresholds\">Thresholds</h2>\n");
    if m.thresholds.is_empty() {
        o.push_str("<p>The scenario sets no thresholds.</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = m
        .thresholds
        .iter()
        .map(|t| {
            vec![
                if t.not_measured {
                    "– not measured".into()
                } else {
                    verdict(t.pass)
                },
                format!("<code>{}</code>", escape(&t.expr)),
                escape(&t.message),
            ]
        })
        .collect();
    table(o, &["outcome", "threshold", "measured"], &rows);
}

fn latency_table(o: &mut String, m: &Model) {
    let rows: Vec<Vec<String>> = m
        .latency
        .iter()
        .map(|r| {
            let what = match r.kind {
                RowKind::Latency => "latency",
                RowKind::Service => "service",
                RowKind::Connect => "connect",
            };
            let mut row = vec![escape(&r.metric), what.to_string(), num(r.count)];
            match &r.cells {
                Some(c) => row.extend(c.iter().map(num)),
                None => row.extend(std::iter::repeat_n(num("no samples"), 5)),
            }
            row
        })
        .collect();
    let mut head = vec!["metric", "measured from"];
    head.extend(LATENCY_COLUMNS);
    table(o, &head, &rows);
}

fn pairs(v: &[(String, u64)]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = v
        .iter()
        .map(|(k, n)| format!("{} {n}", escape(k)))
        .collect();
    parts.join(", ")
}

/// `1000 normal ×36, no close frame ×2`.
fn closes(v: &[(String, u64)]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = v
        .iter()
        .map(|(k, n)| format!("{} ×{n}", escape(&close_label(k))))
        .collect();
    parts.join(", ")
}

fn connections(o: &mut String, m: &Model) {
    o.push_str("<h2 id=\"connections\">Connections</h2>\n");
    let c = &m.connections;
    let rows = vec![
        vec!["peak open".into(), num(m.peak_connections), String::new()],
        vec!["peak VUs".into(), num(m.peak_vus), String::new()],
        vec!["opened".into(), num(c.opened), String::new()],
        vec!["failed".into(), num(c.failed), pairs(&c.failed_by_cause)],
        vec!["closed".into(), num(c.closed), closes(&c.closed_by_code)],
        vec![
            "open at the stop".into(),
            num(c.open_at_stop),
            String::new(),
        ],
        vec!["iterations ok".into(), num(m.iterations_ok), String::new()],
        vec![
            "iterations failed".into(),
            num(m.iterations_failed),
            String::new(),
        ],
        vec![
            "iterations cut at the stop".into(),
            num(m.iterations_cut),
            String::new(),
        ],
    ];
    table(o, &["", "count", "by code / cause"], &rows);
}

fn traffic(o: &mut String, m: &Model) {
    o.push_str("<h2 id=\"traffic\">Traffic and errors</h2>\n");
    let rows: Vec<Vec<String>> = m
        .traffic
        .iter()
        .map(|t| {
            vec![
                t.dir.to_string(),
                num(t.frames),
                num(&t.frame_rate),
                num(&t.bytes),
                num(&t.byte_rate),
            ]
        })
        .collect();
    table(
        o,
        &["direction", "frames", "frames/s", "bytes", "bytes/s"],
        &rows,
    );
    errors(o, m);
    kinds_table(o, m);
    let q = &m.requests;
    let rows = vec![vec![
        num(q.sent),
        num(q.replies),
        num(q.timeouts),
        num(q.unanswered),
    ]];
    table(
        o,
        &["requests sent", "answered", "timed out", "unanswered"],
        &rows,
    );
}

/// Errors by kind, with the first occurrence of each.
fn errors(o: &mut String, m: &Model) {
    let e = &m.errors;
    let rows = vec![vec![
        num(e.count),
        num(e.ops),
        num(&e.rate),
        pairs(&e.by_kind),
        num(e.missed),
    ]];
    table(
        o,
        &[
            "errors",
            "operations",
            "error rate",
            "by kind",
            "missed sends",
        ],
        &rows,
    );
    if !e.samples.is_empty() {
        o.push_str("<h3 id=\"error-samples\">First occurrences of each error</h3>\n");
        let rows: Vec<Vec<String>> = e
            .samples
            .iter()
            .map(|(kind, t, vu, detail)| vec![escape(kind), num(t), num(vu), escape(detail)])
            .collect();
        table(o, &["error", "at", "VU", "what happened"], &rows);
    }
}

/// Frames by direction and kind, from results' `kinds_in` and `kinds_out`.
fn kinds_table(o: &mut String, m: &Model) {
    if m.kinds.is_empty() {
        return;
    }
    o.push_str("<h3 id=\"kinds\">Frames by kind</h3>\n");
    let rows: Vec<Vec<String>> = m
        .kinds
        .iter()
        .map(|k| {
            vec![
                k.dir.to_string(),
                format!("<code>{}</code>", escape(&k.kind)),
                num(k.frames),
                num(&k.frame_rate),
                num(&k.bytes),
                num(&k.share),
            ]
        })
        .collect();
    table(
        o,
        &[
            "direction",
            "kind",
            "frames",
            "frames/s",
            "bytes",
            "share of direction",
        ],
        &rows,
    );
}

/// Fan-out delivery and uploads, when the run had them (their latencies are charted with
/// the other metrics above).
fn flows(o: &mut String, m: &Model) {
    if let Some(d) = &m.delivery {
        o.push_str("<h2 id=\"delivery\">Fan-out delivery</h2>\n");
        let rows = vec![vec![
            num(d.received),
            num(&d.received_rate),
            num(d.streams),
            num(d.gaps),
            num(d.reordered),
            num(d.duplicates),
            num(d.untracked),
            num(&d.completeness),
        ]];
        let head = [
            "received",
            "per second",
            "streams",
            "gaps",
            "reordered",
            "duplicates",
            "untracked",
            "completeness",
        ];
        table(o, &head, &rows);
    }
    if !m.uploads.is_empty() {
        o.push_str("<h2 id=\"uploads\">Uploads</h2>\n");
        let rows: Vec<Vec<String>> = m
            .uploads
            .iter()
            .map(|u| {
                vec![
                    escape(&u.metric),
                    num(u.started),
                    num(u.completed),
                    num(u.rejected),
                    num(u.failed),
                    num(&u.bytes),
                    num(&u.mbps),
                ]
            })
            .collect();
        let head = [
            "metric",
            "started",
            "completed",
            "rejected",
            "failed",
            "bytes",
            "throughput",
        ];
        table(o, &head, &rows);
    }
}

fn violations(o: &mut String, m: &Model) {
    let v = &m.violations;
    o.push_str("<h2 id=\"violations\">Protocol violations</h2>\n");
    if v.checked == 0 {
        o.push_str(
            "<p>No frame was checked (no protocol profile, or <code>--no-check</code>).</p>\n",
        );
        return;
    }
    let _ = writeln!(
        o,
        "<p>{} frames checked; {} violations in {} frames.</p>",
        v.checked, v.total, v.frames
    );
    if v.folded > 0 {
        let _ = writeln!(
            o,
            "<p>{} violations of further kinds were folded: only {} groups are kept.</p>",
            v.folded,
            v.groups.len()
        );
    }
    let rows: Vec<Vec<String>> = v.groups.iter().map(violation_row).collect();
    table(
        o,
        &[
            "count",
            "dir",
            "kind",
            "keyword",
            "JSON pointer",
            "rule broken",
            "samples",
        ],
        &rows,
    );
}

/// One group of violations: where, what rule, and its samples.
fn violation_row(g: &GroupView) -> Vec<String> {
    let samples: String = g
        .samples
        .iter()
        .map(|(msg, frame, t, vu)| {
            format!(
                "{} <small>(VU {vu}, t={t:.1}s)</small><pre>{}</pre>",
                escape(msg),
                escape(frame)
            )
        })
        .collect();
    vec![
        num(g.count),
        g.dir.to_string(),
        escape(&g.kind),
        escape(&g.keyword),
        format!("<code>{}</code>", escape(&g.pointer)),
        escape(g.rule),
        samples,
    ]
}

fn health(o: &mut String, m: &Model) {
    let h = &m.health;
    o.push_str("<h2 id=\"generator\">Generator health</h2>\n");
    let verdict = if h.saturated {
        "<span class=\"fail\">SATURATED</span>"
    } else {
        "<span class=\"pass\">ok</span>"
    };
    let _ = writeln!(
        o,
        "<p>generator {verdict}: {}, scheduling lag p99 {} max {}; {}</p>",
        escape(&h.cpu),
        escape(&h.lag_p99),
        escape(&h.lag_max),
        escape(&h.measured)
    );
    for r in &h.reasons {
        let _ = writeln!(o, "<div class=\"banner\">saturated: {}</div>", escape(r));
    }
    for w in &h.warnings {
        let _ = writeln!(o, "<div class=\"banner\">⚠ {}</div>", escape(w));
    }
}
