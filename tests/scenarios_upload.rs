//! The CovetPy upload scenario of the library, shortened, against squall-server.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn covetpy_upload_passes_and_names_the_corrupt_chunk() {
    let lib = Library {
        file: "scenarios/covetpy/upload.yaml",
        path: "/covetpy/ws?token=demo-token",
        duration: Some(Duration::from_secs(4)),
        vus: Some(4),
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
}
