//! The drawing routines behind [`super::plots`]: one per chart shape, generic over the
//! plotters backend so that SVG and PNG are the same picture.

use std::error::Error;
use std::ops::Range;

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{palette, Bar, Body, Chart, Line, FONT};
use crate::results::Phase;

type Res = Result<(), Box<dyn Error>>;

/// A linear axis ticked exactly at `keys` (plotters would pick round numbers, and its
/// own key-point wrapper does not take a label formatter).
struct KeyAxis {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for KeyAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let frac = (v - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Grid lines at the keys only: no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for KeyAxis {
    fn format(v: &f64) -> String {
        format!("{v}")
    }
}

/// Draws `c` on `root` and presents it.
pub(super) fn draw<DB: DrawingBackend>(c: &Chart, root: &DrawingArea<DB, Shift>) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match &c.body {
        Body::Percentiles(lines) => percentiles(root, &c.title, lines, false)?,
        Body::PercentilesLog(lines) => percentiles(root, &c.title, lines, true)?,
        Body::OverTime {
            lines,
            y_desc,
            phases,
        } => over_time(root, &c.title, lines, y_desc, phases)?,
        Body::Bars {
            bars,
            x_desc,
            y_desc,
        } => bar_chart(root, &c.title, bars, x_desc, y_desc)?,
        Body::Xy {
            lines,
            x_desc,
            y_desc,
        } => xy(root, &c.title, lines, x_desc, y_desc)?,
    }
    root.present()?;
    Ok(())
}

/// Draws the caption and, for line charts, a legend row under it (outside the plot, so
/// it never hides data); returns the area left for the plot.
fn framed<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
) -> Result<DrawingArea<DB, Shift>, Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let w = root.dim_in_pixel().0 as i32;
    let caption = TextStyle::from((FONT, 22).into_font())
        .color(&palette::INK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(title.to_string(), (w / 2, 8), caption))?;
    if lines.is_empty() {
        return Ok(root.margin(40, 6, 6, 30));
    }
    let label = TextStyle::from((FONT, 14).into_font())
        .color(&palette::INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    const SWATCH: i32 = 26;
    let widths: Vec<i32> = lines
        .iter()
        .map(|l| {
            let text = root
                .estimate_text_size(&l.label, &label)
                .map_or(100, |s| s.0);
            SWATCH + 6 + text as i32 + 24
        })
        .collect();
    let mut x = ((w - widths.iter().sum::<i32>()) / 2).max(4);
    let y = 46;
    for (l, width) in lines.iter().zip(widths) {
        let style = ShapeStyle::from(&l.color).stroke_width(3);
        if l.dashed {
            for dx in [0, 10, 20] {
                root.draw(&PathElement::new(vec![(x + dx, y), (x + dx + 6, y)], style))?;
            }
        } else {
            root.draw(&PathElement::new(vec![(x, y), (x + SWATCH, y)], style))?;
        }
        root.draw(&Text::new(
            l.label.clone(),
            (x + SWATCH + 6, y),
            label.clone(),
        ))?;
        x += width;
    }
    Ok(root.margin(62, 6, 6, 30))
}

/// A chart with nothing to draw still says so, rather than showing empty axes.
fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, what: &str) -> Res
where
    DB::ErrorType: 'static,
{
    let area = framed(root, title, &[])?;
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 18).into_font())
        .color(&palette::INK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        what.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))?;
    Ok(())
}

/// Every chart's axes: readable numbers, one font, a faint grid.
fn house_style<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB>
where
    X: Ranged,
    Y: Ranged<ValueType = f64>,
    DB: DrawingBackend,
{
    mesh.y_label_formatter(&axis_num)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .bold_line_style(palette::INK.mix(0.18))
        .light_line_style(palette::INK.mix(0.05))
}

/// Largest y over the lines, at least `floor`.
fn y_max(lines: &[Line], floor: f64) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(floor, f64::max)
}

/// µs, ms or s for values up to `max_us`, with the divisor.
fn time_unit(max_us: f64) -> (&'static str, f64) {
    if max_us < 2_000.0 {
        ("µs", 1.0)
    } else if max_us < 2_000_000.0 {
        ("ms", 1e3)
    } else {
        ("s", 1e6)
    }
}

/// `50%`, `99.9%` for a percentile axis position.
fn percentile_label(x: f64) -> String {
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{pct:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Scales line points' y by `1/div`.
fn scaled(lines: &[Line], div: f64) -> Vec<Line> {
    lines
        .iter()
        .map(|l| Line {
            points: l.points.iter().map(|&(x, y)| (x, y / div)).collect(),
            ..l.clone()
        })
        .collect()
}

/// Latency by percentile, on a linear latency axis from 0, or (`log`) a log one from just
/// under the fastest figure to just over the slowest.
fn percentiles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
    log: bool,
) -> Res
where
    DB::ErrorType: 'static,
{
    if lines.iter().all(|l| l.points.is_empty()) {
        return no_data(root, title, "no samples");
    }
    let fastest = |lines: &[Line]| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .filter(|y| *y > 0.0)
            .fold(f64::INFINITY, f64::min)
    };
    // On a log axis, the fastest figure's unit, so that every label is at least 1.
    let (unit, div) = match fastest(lines) {
        f if log && f.is_finite() => time_unit(f),
        _ => time_unit(y_max(lines, 1.0)),
    };
    let mut lines = scaled(lines, div);
    let keys = KeyAxis {
        range: 0.0..4.0,
        keys: vec![0.0, 2f64.log10(), 1.0, 2.0, 3.0, 4.0],
    };
    let area = framed(root, title, &lines)?;
    let mut builder = ChartBuilder::on(&area);
    builder.x_label_area_size(48).y_label_area_size(72);
    if !log {
        let top = y_max(&lines, 0.0) * 1.08;
        let mut chart = builder.build_cartesian_2d(keys, 0f64..top.max(1e-9))?;
        return percentile_mesh(&mut chart, &lines, format!("latency ({unit})"));
    }
    let top = y_max(&lines, 0.0).max(1e-6) * 1.5;
    let bottom = (fastest(&lines).min(top) / 1.5).max(top / 1e6);
    // A zero (a sub-microsecond sample) sits on the axis's floor.
    for p in lines.iter_mut().flat_map(|l| l.points.iter_mut()) {
        p.1 = p.1.max(bottom);
    }
    let mut chart = builder.build_cartesian_2d(keys, (bottom..top).log_scale())?;
    percentile_mesh(&mut chart, &lines, format!("latency ({unit}, log scale)"))
}

/// The percentile chart's axes and lines, whatever its latency axis.
fn percentile_mesh<'a, DB: DrawingBackend + 'a, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<KeyAxis, Y>>,
    lines: &[Line],
    y_desc: String,
) -> Res
where
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    house_style(&mut chart.configure_mesh())
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc(y_desc)
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()?;
    draw_lines(chart, lines)
}

fn draw_lines<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[Line],
) -> Res
where
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for l in lines {
        let style = ShapeStyle::from(&l.color).stroke_width(2);
        let points = l.points.iter().copied();
        if l.dashed {
            chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?;
        } else {
            chart.draw_series(LineSeries::new(points, style))?;
        }
    }
    Ok(())
}

fn over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
    y_desc: &str,
    phases: &[Phase],
) -> Res
where
    DB::ErrorType: 'static,
{
    let t_end = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(phases.iter().map(|p| p.end_s))
        .fold(0.0, f64::max);
    if t_end <= 0.0 {
        return no_data(root, title, "no points in the series");
    }
    let top = y_max(lines, 1.0) * 1.12;
    let area = framed(root, title, lines)?;
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..t_end, 0f64..top)?;
    house_style(&mut chart.configure_mesh())
        .x_desc("time since start (s)")
        .y_desc(y_desc)
        .x_label_formatter(&axis_num)
        .draw()?;
    // Alternate two faint tints so neighbouring phases stay apart; label each at its top.
    let tints = [palette::BLUE.mix(0.07), palette::ORANGE.mix(0.10)];
    chart.draw_series(
        phases.iter().enumerate().map(|(i, p)| {
            Rectangle::new([(p.start_s, 0.0), (p.end_s, top)], tints[i % 2].filled())
        }),
    )?;
    // A phase too narrow for its label goes without (the shading still shows it).
    let label_style = TextStyle::from((FONT, 13).into_font()).color(&palette::INK);
    let mut labels = Vec::new();
    for p in phases {
        let what = if (p.to - p.from).abs() < 1e-9 {
            format!("hold {}", trim(p.to))
        } else {
            format!("ramp {}→{}", trim(p.from), trim(p.to))
        };
        let room =
            chart.backend_coord(&(p.end_s, top)).0 - chart.backend_coord(&(p.start_s, top)).0;
        let width = area.estimate_text_size(&what, &label_style)?.0 as i32;
        if width + 8 < room {
            labels.push(Text::new(what, (p.start_s, top), label_style.clone()));
        }
    }
    chart.draw_series(labels)?;
    draw_lines(&mut chart, lines)
}

fn xy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
    x_desc: &str,
    y_desc: &str,
) -> Res
where
    DB::ErrorType: 'static,
{
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let x_end = xs.fold(0.0, f64::max);
    if x_end <= 0.0 {
        return no_data(root, title, "no steps");
    }
    let top = y_max(lines, 1e-9) * 1.12;
    let area = framed(root, title, lines)?;
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_end * 1.05, 0f64..top)?;
    house_style(&mut chart.configure_mesh())
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&axis_num)
        .draw()?;
    draw_lines(&mut chart, lines)?;
    for l in lines.iter().filter(|l| !l.dashed) {
        let dots = l
            .points
            .iter()
            .map(|&p| Circle::new(p, 4, l.color.filled()));
        chart.draw_series(dots)?;
    }
    Ok(())
}

/// An axis number for people: `0.25`, `2.5`, `40`, `25k`, `1.5M`.
fn axis_num(v: &f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        trim(*v)
    }
}

/// `10`, `2.5`: a level without needless decimals.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn bar_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    bars: &[Bar],
    x_desc: &str,
    y_desc: &str,
) -> Res
where
    DB::ErrorType: 'static,
{
    if bars.is_empty() {
        return no_data(root, title, "nothing counted");
    }
    let n = bars.len() as f64;
    let top = bars.iter().map(|b| b.value).fold(1.0, f64::max) * 1.15;
    let keys: Vec<f64> = (0..bars.len()).map(|i| i as f64 + 0.5).collect();
    let area = framed(root, title, &[])?;
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            KeyAxis {
                range: 0.0..n,
                keys,
            },
            0f64..top,
        )?;
    let label = |x: &f64| {
        bars.get(x.floor().max(0.0) as usize)
            .map_or(String::new(), |b| b.label.clone())
    };
    house_style(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&label)
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let x = i as f64;
        Rectangle::new([(x + 0.15, 0.0), (x + 0.85, b.value)], b.color.filled())
    }))?;
    let above = TextStyle::from((FONT, 13).into_font())
        .color(&palette::INK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(
        bars.iter()
            .enumerate()
            .filter(|(_, b)| b.value > 0.0)
            .map(|(i, b)| Text::new(trim(b.value), (i as f64 + 0.5, b.value), above.clone())),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        let labels: Vec<String> = [0.0, 2f64.log10(), 1.0, 2.0, 3.0, 4.0]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn axis_numbers_read_at_a_glance() {
        let labels: Vec<String> = [0.25, 2.5, 40.0, 500.0, 25_000.0, 1_500_000.0]
            .iter()
            .map(axis_num)
            .collect();
        assert_eq!(labels, ["0.25", "2.5", "40", "500", "25k", "1.5M"]);
    }

    #[test]
    fn units_follow_the_largest_value() {
        assert_eq!(time_unit(900.0).0, "µs");
        assert_eq!(time_unit(45_000.0).0, "ms");
        assert_eq!(time_unit(3_000_000.0).0, "s");
    }
}
