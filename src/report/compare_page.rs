//! Renderers of a [`Comparison`]: compare.html (self-contained, like report.html) and the
//! text `squall compare` prints.

use std::fmt::Write as _;

use super::compare::{Cell, Change, Comparison, Table};
use super::html::{escape, figure, fmt_ratio, page, table, verdict, Figure};

fn mark(c: Option<Change>) -> (&'static str, &'static str) {
    match c {
        Some(Change::Worse) => ("worse", "▲ worse"),
        Some(Change::Better) => ("better", "▼ better"),
        _ => ("", ""),
    }
}

fn cell_html(c: &Cell) -> String {
    let mut s = format!("\u{1}{}", escape(&c.text));
    if let Some(r) = c.ratio {
        let _ = write!(s, " <small>{}</small>", fmt_ratio(r));
    }
    let (class, text) = mark(c.change);
    if !text.is_empty() {
        let _ = write!(s, " <span class=\"{class}\">{text}</span>");
    }
    s
}

fn table_html(o: &mut String, t: &Table) {
    let mut head = vec!["run"];
    head.extend(t.columns.iter().copied());
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|(label, cells)| {
            let mut row = vec![escape(label)];
            match cells {
                Some(cells) => row.extend(cells.iter().map(cell_html)),
                None => row.extend(t.columns.iter().map(|_| "—".to_string())),
            }
            row
        })
        .collect();
    table(o, &head, &rows);
}

/// compare.html.
pub fn compare_html(c: &Comparison, figs: &[Figure]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<h1>{}</h1>", escape(&c.labels.join(" vs ")));
    let _ = writeln!(
        o,
        "<p class=\"sub\">Ratios are to the first run, <b>{}</b>; changes beyond {}% are marked.</p>",
        escape(&c.labels[0]),
        c.band_pct
    );
    for w in &c.warnings {
        let _ = writeln!(o, "<div class=\"banner\">⚠ {}</div>", escape(w));
    }
    if !c.regressions.is_empty() {
        o.push_str("<div class=\"banner\">▲ Regressions beyond --fail-if-worse:<ul>\n");
        for r in &c.regressions {
            let _ = writeln!(o, "<li>{}</li>", escape(r));
        }
        o.push_str("</ul></div>\n");
    }
    let rows: Vec<Vec<String>> = c
        .runs
        .iter()
        .map(|r| r.iter().map(|v| escape(v)).collect())
        .collect();
    table(
        &mut o,
        &["run", "scenario", "target", "status", "duration"],
        &rows,
    );
    o.push_str("<h2 id=\"overview\">Throughput and errors</h2>\n");
    table_html(&mut o, &c.overview);
    thresholds_html(&mut o, c);
    o.push_str("<h2 id=\"latency\">Latency</h2>\n");
    // The charts come in the tables' order (each metric, then connect): each table is
    // followed by its chart.
    for (i, t) in c.metrics.iter().enumerate() {
        let _ = writeln!(o, "<h3>{}</h3>", escape(&t.name));
        table_html(&mut o, t);
        if let Some(f) = figs.get(i) {
            figure(&mut o, f);
        }
    }
    o.push_str(
        "<footer>Made by squall compare from the runs' results.json files alone.</footer>\n",
    );
    page(&format!("squall compare: {}", c.labels.join(" vs ")), &o)
}

/// Each threshold's outcome in each run.
fn thresholds_html(o: &mut String, c: &Comparison) {
    o.push_str("<h2 id=\"thresholds\">Thresholds</h2>\n");
    if c.thresholds.is_empty() {
        o.push_str("<p>No run sets thresholds.</p>\n");
        return;
    }
    let mut head = vec!["threshold"];
    head.extend(c.labels.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = c
        .thresholds
        .iter()
        .map(|t| {
            let mut row = vec![format!("<code>{}</code>", escape(&t.expr))];
            row.extend(t.outcomes.iter().map(|o| match o {
                Some((pass, msg)) => format!("{} {}", verdict(*pass), escape(msg)),
                None => "—".into(),
            }));
            row
        })
        .collect();
    table(o, &head, &rows);
}

fn table_text(o: &mut String, t: &Table) {
    let width = t
        .rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let cell_width = t
        .rows
        .iter()
        .filter_map(|r| r.1.as_ref())
        .flatten()
        .map(|c| c.text.chars().count() + c.ratio.map_or(0, |r| 1 + fmt_ratio(r).chars().count()))
        .chain(t.columns.iter().map(|h| h.chars().count()))
        .fold(15, usize::max);
    let _ = write!(o, "  {:<width$}", "run");
    for h in &t.columns {
        // Headings over the figures, not over the marks' column.
        let _ = write!(o, " {h:>cell_width$} ");
    }
    end_line(o);
    for (label, cells) in &t.rows {
        let _ = write!(o, "  {label:<width$}");
        match cells {
            None => o.push_str("  (not measured)"),
            Some(cells) => {
                for c in cells {
                    let mut s = c.text.clone();
                    if let Some(r) = c.ratio {
                        s.push(' ');
                        s.push_str(&fmt_ratio(r));
                    }
                    // The mark has a column of its own, so figures line up whether
                    // marked or not.
                    s.push_str(match c.change {
                        Some(Change::Worse) => "▲",
                        Some(Change::Better) => "▼",
                        _ => " ",
                    });
                    let _ = write!(o, " {s:>w$}", w = cell_width + 1);
                }
            }
        }
        end_line(o);
    }
}

/// Ends a line without the padding of its last column.
fn end_line(o: &mut String) {
    o.truncate(o.trim_end_matches(' ').len());
    o.push('\n');
}

/// The comparison as text: the same tables as compare.html (▲ worse, ▼ better than the
/// first run), then the regressions, if any.
pub fn compare_text(c: &Comparison) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "squall compare: {} (ratios to {})",
        c.labels.join(" vs "),
        c.labels[0]
    );
    for w in &c.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    let _ = writeln!(o, "overview");
    table_text(&mut o, &c.overview);
    for t in &c.metrics {
        let _ = writeln!(o, "{}", t.name);
        table_text(&mut o, t);
    }
    if !c.thresholds.is_empty() {
        let _ = writeln!(o, "thresholds ({})", c.labels.join(", "));
    }
    for t in &c.thresholds {
        let marks: Vec<&str> = t
            .outcomes
            .iter()
            .map(|o| match o {
                Some((true, _)) => "✓",
                Some((false, _)) => "✗",
                None => "-",
            })
            .collect();
        let _ = writeln!(o, "  {} {}", marks.join(" "), t.expr);
    }
    for r in &c.regressions {
        let _ = writeln!(o, "regression: {r}");
    }
    o
}
