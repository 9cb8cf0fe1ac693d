//! Helpers of the report tests: a short real run against squall-server, HTML parsed as a
//! browser would (html5ever), PNG checks, and headless Chromium over the DevTools protocol.
#![allow(dead_code)]

pub mod browser;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

use squall::run::{execute, Finished, RunArgs};

/// A short Kite run with four metrics, a threshold that fails on purpose, and one
/// outbound frame that breaks its schema (so the report has a violation group whose
/// sample needs HTML escaping).
pub const SCENARIO: &str = r#"
name: report-test
protocol: kite
target: ws://127.0.0.1:1/ws
seed: 7
graceful_stop: 3s
load:
  phases:
    - { ramp: 300ms, vus: 4 }
    - { hold: 900ms }
behaviours:
  - name: pinger
    steps:
      - expect: { kind: welcome, within: 2s, metric: welcome }
      - send: { type: subscribe, room: "scrape:all" }
      - expect: { kind: subscribe, match: { /data/room: "{{sent./room}}" }, within: 2s, metric: subscribe_ack }
      - pace: { send: { type: ping, id: "{{seq}}" }, rate: 40/s, duration: 500ms, in_flight: 2, reply: { kind: pong }, metric: rtt }
      - send: { type: ping, note: "<b>&\"odd\"</b>" }
      - send: { type: unsubscribe, room: "scrape:all" }
      - expect: { kind: unsubscribe, within: 2s, metric: unsubscribe_ack }
thresholds:
  - "latency.rtt.p99 < 5s"
  - "errors.count == 0"
  - "latency.welcome.p50 < 1us"
"#;

/// Runs [`SCENARIO`] in-process against `url`, writing into `dir/<name>`.
pub fn run(dir: &Path, name: &str, url: &str, report: bool) -> Finished {
    let scenario = dir.join(format!("{name}.yaml"));
    std::fs::write(&scenario, SCENARIO).unwrap();
    let args = RunArgs {
        scenario,
        out: Some(dir.join(name)),
        target: Some(url.to_string()),
        quiet: true,
        threads: Some(1),
        report,
        ..RunArgs::default()
    };
    execute(args).expect("the run takes place")
}

/// What the tests read from an HTML page.
#[derive(Debug, Default)]
pub struct Page {
    /// Parse errors the HTML5 parser reported (a sound page has none).
    pub errors: Vec<String>,
    /// Every text node, trimmed, in document order.
    pub texts: Vec<String>,
    /// Table rows, as the text of their cells.
    pub rows: Vec<Vec<String>>,
    /// Element names, in document order.
    pub elements: Vec<String>,
    /// (attribute, value) of every attribute but `xmlns*` (namespace names, not fetched).
    pub attrs: Vec<(String, String)>,
    /// The text of `<style>` elements.
    pub css: String,
}

/// Parses `html` as a browser would and collects what the tests look at.
pub fn parse_html(html: &str) -> Page {
    let dom = html5ever::parse_document(RcDom::default(), Default::default())
        .from_utf8()
        .read_from(&mut html.as_bytes())
        .unwrap();
    let page = RefCell::new(Page {
        errors: dom.errors.borrow().iter().map(|e| e.to_string()).collect(),
        ..Page::default()
    });
    walk(&dom.document, &page, false);
    page.into_inner()
}

fn text_of(node: &Handle) -> String {
    let mut out = String::new();
    if let NodeData::Text { contents } = &node.data {
        out.push_str(&contents.borrow());
    }
    for c in node.children.borrow().iter() {
        out.push_str(&text_of(c));
    }
    out
}

fn walk(node: &Handle, page: &RefCell<Page>, in_style: bool) {
    let mut style = in_style;
    match &node.data {
        NodeData::Text { contents } => {
            let t = contents.borrow().trim().to_string();
            let mut p = page.borrow_mut();
            if in_style {
                p.css.push_str(&t);
            } else if !t.is_empty() {
                p.texts.push(t);
            }
        }
        NodeData::Element { name, attrs, .. } => {
            let tag = name.local.to_string();
            let mut p = page.borrow_mut();
            for a in attrs.borrow().iter() {
                let n = a.name.local.to_string();
                if !n.starts_with("xmlns") {
                    p.attrs.push((n, a.value.to_string()));
                }
            }
            if tag == "tr" {
                let cells = node
                    .children
                    .borrow()
                    .iter()
                    .filter(|c| matches!(&c.data, NodeData::Element { name, .. } if &*name.local == "td" || &*name.local == "th"))
                    .map(|c| text_of(c).trim().to_string())
                    .collect();
                p.rows.push(cells);
            }
            style = tag == "style";
            p.elements.push(tag);
        }
        _ => {}
    }
    for c in node.children.borrow().iter() {
        walk(c, page, style);
    }
}

/// Asserts the page references nothing outside itself: no script, no external stylesheet,
/// frame or embed, no URL with a scheme or `//` in an attribute, no `url(` or `@import` in
/// its CSS. Links to files beside it (the PNGs) are allowed.
pub fn assert_self_contained(page: &Page) {
    for tag in ["script", "link", "iframe", "object", "embed", "img", "base"] {
        assert!(!page.elements.iter().any(|e| e == tag), "a <{tag}> element");
    }
    for (name, value) in &page.attrs {
        let v = value.trim().to_ascii_lowercase();
        let external = v.contains("://") || v.starts_with("//");
        assert!(!external, "{name}=\"{value}\" reaches outside the file");
        if ["href", "src", "xlink:href", "action", "poster"].contains(&name.as_str()) {
            assert!(!v.contains(':'), "{name}=\"{value}\" has a scheme");
        }
    }
    let css = page.css.to_ascii_lowercase();
    assert!(
        !css.contains("url(") && !css.contains("@import"),
        "CSS fetches: {css}"
    );
}

/// A decoded PNG.
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// RGB or RGBA samples.
    pub pixels: Vec<[u8; 3]>,
}

/// Decodes a PNG file (8-bit RGB or RGBA).
pub fn decode_png(path: &Path) -> Image {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: colour type {other:?}", path.display()),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        pixels,
    }
}

impl Image {
    /// Distinct colours, counted up to `cap` (enough to tell a drawing from a blank).
    pub fn colours(&self, cap: usize) -> usize {
        let mut set = std::collections::HashSet::new();
        for p in &self.pixels {
            if set.insert(*p) && set.len() >= cap {
                break;
            }
        }
        set.len()
    }

    /// Share of pixels that are not (near) white.
    pub fn inked(&self) -> f64 {
        let n = self
            .pixels
            .iter()
            .filter(|p| p.iter().any(|&c| c < 235))
            .count();
        n as f64 / self.pixels.len() as f64
    }

    /// Asserts the image is a drawing, not a blank: more than `colours` distinct colours
    /// and over 1 % of the pixels inked.
    pub fn assert_drawn(&self, what: &str, colours: usize) {
        let n = self.colours(colours + 1);
        assert!(n > colours, "{what}: only {n} colours");
        let inked = self.inked();
        assert!(inked > 0.01, "{what}: blank ({inked:.4} inked)");
    }

    /// Dark pixels (luma < 100) in rows `y0..y1`, columns `x0..x1`.
    pub fn dark_in(&self, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let [r, g, b] = self.pixels[(y * self.width + x) as usize];
                let luma = (299 * r as u32 + 587 * g as u32 + 114 * b as u32) / 1000;
                n += usize::from(luma < 100);
            }
        }
        n
    }
}

/// Asserts a chart PNG has the expected size, is not blank, and carries text: its caption
/// band (where nothing but the title is drawn) holds dark glyph pixels.
pub fn assert_chart_png(path: &Path) {
    let img = decode_png(path);
    let (w, h) = squall::report::plots::SIZE;
    assert_eq!((img.width, img.height), (w, h), "{}", path.display());
    img.assert_drawn(&path.display().to_string(), 16);
    let glyphs = img.dark_in((w / 4, 3 * w / 4), (8, 34));
    assert!(
        glyphs > 60,
        "{}: caption band has {glyphs} dark pixels: no text drawn?",
        path.display()
    );
}

/// Every file in `dir` ending in `.png`.
pub fn pngs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    v
}
