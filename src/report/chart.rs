//! What a chart is: its data, section and caption, and the palette and font every chart
//! uses. [`super::plots`] draws one as SVG or PNG.

use plotters::style::RGBColor;

use crate::results::Phase;

/// The family charts ask for; SVG text names it too, so a browser uses its own sans-serif.
pub(super) const FONT: &str = "sans-serif";

/// One palette for every chart (Okabe–Ito: tells colours apart under colour blindness).
pub mod palette {
    use plotters::style::RGBColor;
    /// Latency from the intended send time; p50; the first run of a comparison.
    pub const BLUE: RGBColor = RGBColor(0, 114, 178);
    /// Service time from the actual send; active VUs; the second run.
    pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
    /// Inbound traffic; the third run.
    pub const GREEN: RGBColor = RGBColor(0, 158, 115);
    /// Errors; failed connections; p99.
    pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
    /// Violations; the fourth run.
    pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
    /// Outbound traffic; the fifth run.
    pub const SKY: RGBColor = RGBColor(86, 180, 233);
    /// Axes and text.
    pub const INK: RGBColor = RGBColor(40, 40, 40);
    /// Run colours of a comparison, in order.
    pub const RUNS: [RGBColor; 6] = [BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION];
}

/// A polyline with its legend entry.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Points in the chart's units.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (a secondary measure beside a solid one).
    pub dashed: bool,
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Category label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Colour.
    pub color: RGBColor,
}

/// What a chart shows.
#[derive(Debug, Clone)]
pub enum Body {
    /// Latency by percentile: x is `log10(1 / (1 - q))` (0 = 0 %, 2 = 99 %, 4 = 99.99 %),
    /// y is µs (drawn in µs, ms or s, whichever reads best).
    Percentiles(Vec<Line>),
    /// As [`Body::Percentiles`], with latency on a log scale: one slow outlier no longer
    /// flattens the rest of the curve.
    PercentilesLog(Vec<Line>),
    /// Values over the run: x is seconds since the start; `phases` are shaded behind.
    OverTime {
        /// The lines.
        lines: Vec<Line>,
        /// Y axis title with its unit.
        y_desc: String,
        /// Load phases to shade.
        phases: Vec<Phase>,
    },
    /// One measure against another (a capacity search's knee: y against the offered
    /// rate); each point is also marked, as the points are the steps run.
    Xy {
        /// The lines.
        lines: Vec<Line>,
        /// X axis title with its unit.
        x_desc: String,
        /// Y axis title with its unit.
        y_desc: String,
    },
    /// Categories.
    Bars {
        /// The bars, left to right.
        bars: Vec<Bar>,
        /// X axis title.
        x_desc: String,
        /// Y axis title with its unit.
        y_desc: String,
    },
}

/// Where a chart belongs in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Latency by percentile, per metric.
    Latency,
    /// Series over the run.
    OverTime,
    /// Connect times and connection ends.
    Connections,
    /// The generator's own health.
    Generator,
    /// A capacity search's knee plots and steps.
    Capacity,
}

/// A chart: a file stem (`latency-rtt` → `latency-rtt.png`), a caption and what it shows.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Where the report shows it.
    pub section: Section,
    /// File name without `.png`.
    pub file: String,
    /// Caption drawn on top.
    pub title: String,
    /// The data.
    pub body: Body,
}
