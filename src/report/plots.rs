//! Drawing charts with plotters: one drawing routine per chart shape, generic over the
//! backend, so the SVG inlined in the HTML and the PNG beside it are the same picture.

use std::sync::Once;

use plotters::prelude::*;

use super::chart::FONT;
pub use super::chart::{palette, Bar, Body, Chart, Line, Section};
use super::draw::draw;

/// Width and height of every chart, pixels.
pub const SIZE: (u32, u32) = (960, 480);

/// The one font (DejaVu Sans, see `font/README.md`), compiled in so that drawing needs no
/// system font or fontconfig.
static FONT_BYTES: &[u8] = include_bytes!("font/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled in; a failure would show as
        // "font unavailable" when drawing, which the caller reports.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// The chart as a standalone SVG document (`<svg ...>...</svg>`).
pub fn svg(c: &Chart) -> Result<String, String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(c, &root).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The chart as a PNG file's bytes (8-bit RGB, [`SIZE`]).
pub fn png(c: &Chart) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(c, &root).map_err(|e| e.to_string())?;
    }
    let mut out = Vec::with_capacity(64 * 1024);
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
