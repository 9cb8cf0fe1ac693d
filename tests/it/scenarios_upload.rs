//! The CovetPy upload scenario of the library, shortened, against squall-server; and its
//! report's uploads table.

use crate::support::*;
use std::time::Duration;

#[test]
fn covetpy_upload_passes_refuses_the_corrupt_chunk_and_is_reported() {
    let lib = Library {
        file: "scenarios/covetpy/upload.yaml",
        path: "/covetpy/ws?token=demo-token",
        duration: Some(Duration::from_secs(5)),
        vus: Some(1),
    };
    let (code, doc) = run_library(lib, |_| {});
    assert_eq!(code, 0, "{}", verdict(&doc));
    let uploads = &doc["uploads"];
    for metric in ["upload_64k", "upload_1m", "upload_8m"] {
        assert!(
            uploads[metric]["completed"].as_u64().unwrap_or(0) >= 1,
            "{metric}: {uploads}"
        );
    }
    assert!(uploads["upload_corrupt"]["rejected"].as_u64().unwrap_or(0) >= 1);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("report")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let at = html.find("id=\"uploads\"").expect("an Uploads section");
    assert!(
        html[at..].contains("upload_8m"),
        "the upload metric is listed"
    );
}
