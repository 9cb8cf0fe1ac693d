//! report.html and compare.html in a real browser: Debian's headless Chromium, driven
//! over the DevTools protocol on 127.0.0.1, renders each page without a console error,
//! exception or failed load, and its screenshot is not blank. A control page proves the
//! check sees errors and blank pages. Chromium missing is a failure, not a skip.

use crate::report_support::browser::{Browser, Rendered};
use crate::report_support::*;
use crate::support::reference_server;
use squall::report::{load_runs, write_comparison, CompareOptions};

fn screenshot(r: &Rendered) -> Image {
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), &r.screenshot).unwrap();
    decode_png(path.path())
}

#[test]
fn report_and_compare_render_in_chromium_without_errors() {
    let srv = reference_server(|c| c.events_per_sec = 20.0);
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), "run", &format!("ws://{}/ws", srv.addr()), true);
    srv.shutdown();
    let results = dir.path().join("run/results.json");
    let runs = load_runs(
        &[results.clone(), results],
        &["before".into(), "after".into()],
    )
    .unwrap();
    let (_, compare) =
        write_comparison(&runs, &CompareOptions::default(), &dir.path().join("cmp")).unwrap();
    let mut browser = Browser::start();
    for page in [dir.path().join("run/report.html"), compare.html] {
        let r = browser.render(&page);
        assert!(
            r.problems.is_empty(),
            "{}: {:#?}",
            page.display(),
            r.problems
        );
        let img = screenshot(&r);
        assert!(
            img.width >= 500 && img.height > 750,
            "{}: {}x{}",
            page.display(),
            img.width,
            img.height
        );
        img.assert_drawn(&page.display().to_string(), 64);
    }
}

#[test]
fn the_browser_check_sees_console_errors_and_blank_pages() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = dir.path().join("noisy.html");
    std::fs::write(
        &noisy,
        "<!DOCTYPE html><html><body><p>text</p><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();

    let mut browser = Browser::start();
    let r = browser.render(&noisy);
    assert!(
        r.problems.iter().any(|p| p.contains("boom")),
        "{:?}",
        r.problems
    );
    let r = browser.render(&blank);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(
        screenshot(&r).inked() < 0.001,
        "a blank page must look blank"
    );
}
