//! Chunked uploads: order, sizes, checksums, caps, expiry and the upload rate.

use base64::Engine as _;
use serde_json::json;

use super::*;

/// A `file_chunk` frame for `bytes`.
fn chunk(upload: &str, index: u64, total: u64, bytes: &[u8]) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    let checksum = hex(&Sha256::digest(bytes));
    json!({"type": "file_chunk", "id": format!("c{index}"), "data": {"upload_id": upload,
        "chunk_index": index, "total_chunks": total, "data": data, "checksum": checksum}})
}

fn start(id: &str, size: u64, chunk_size: u64) -> Value {
    json!({"type": "file_upload_start", "id": id, "data": {"filename": "a.csv", "size": size,
        "mimetype": "text/csv", "chunk_size": chunk_size}})
}

#[test]
fn an_upload_in_order_completes_with_the_file_hash() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let file = b"0123456789";
    assert!(send(&mut h, &mut s, start("up", 10, 4)).is_empty());
    assert!(send(&mut h, &mut s, chunk("up", 0, 3, &file[..4])).is_empty());
    assert!(send(&mut h, &mut s, chunk("up", 1, 3, &file[4..8])).is_empty());
    let done = reply(&mut h, &mut s, chunk("up", 2, 3, &file[8..]));
    assert_eq!(done["type"], "file_upload_complete");
    assert_eq!(done["data"]["upload_id"], "up");
    let want = format!("file_{}", &hex(&Sha256::digest(file))[..16]);
    assert_eq!(done["data"]["file_id"], want.as_str());
    assert_eq!(done["data"]["processing_status"], "completed");
    let r = reply(&mut h, &mut s, chunk("up", 2, 3, &file[8..]));
    assert_eq!(
        code(&r),
        "UPLOAD_NOT_FOUND",
        "a finished upload takes no more chunks"
    );
    assert_eq!(
        reply(&mut h, &mut s, start("empty", 0, 4))["type"],
        "file_upload_complete"
    );
}

#[test]
fn strict_doc_refuses_bad_chunks_with_the_documents_code() {
    let mut h = harness();
    h.config.strict_doc = true;
    let (mut s, _) = opened(&mut h);
    send(&mut h, &mut s, start("up", 8, 4));
    let mut corrupt = chunk("up", 0, 2, b"abcd");
    corrupt["data"]["checksum"] = json!(hex(&Sha256::digest(b"abce")));
    assert_eq!(
        code(&reply(&mut h, &mut s, corrupt)),
        "INVALID_MESSAGE_FORMAT"
    );
    let stray = reply(&mut h, &mut s, chunk("nope", 0, 1, b"x"));
    assert_eq!(code(&stray), "INVALID_MESSAGE_FORMAT");
}

#[test]
fn bad_chunks_are_refused_and_can_be_resent() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    send(&mut h, &mut s, start("up", 8, 4));
    let mut corrupt = chunk("up", 0, 2, b"abcd");
    corrupt["data"]["checksum"] = json!(hex(&Sha256::digest(b"abce")));
    let r = reply(&mut h, &mut s, corrupt);
    assert_eq!(code(&r), "CHECKSUM_MISMATCH");
    assert_eq!(r["data"]["details"]["chunk_index"], 0);
    assert!(r["data"]["error_message"]
        .as_str()
        .unwrap()
        .contains("chunk 0"));
    let cases = [
        (
            chunk("up", 1, 2, b"efgh"),
            "chunk 1 out of order: chunk 0 is missing",
        ),
        (
            chunk("up", 2, 2, b"efgh"),
            "chunk index 2 out of range 0..2",
        ),
        (
            chunk("up", 0, 2, b"abcde"),
            "chunk 0 is oversize: 5 bytes, expected 4",
        ),
        (
            chunk("up", 0, 2, b"abcdefg"),
            "chunk 0 is oversize: more than 4 bytes",
        ),
        (
            chunk("up", 0, 2, b"abc"),
            "chunk 0 is short: 3 bytes, expected 4",
        ),
        (
            chunk("up", 0, 3, b"abcd"),
            "total_chunks is 3, but size/chunk_size gives 2",
        ),
    ];
    for (frame, message) in cases {
        let r = reply(&mut h, &mut s, frame);
        assert_eq!(code(&r), "INVALID_MESSAGE_FORMAT");
        assert_eq!(r["data"]["error_message"], message);
    }
    let mut garbled = chunk("up", 0, 2, b"abcd");
    garbled["data"]["data"] = json!("!!!!!!!!");
    assert!(reply(&mut h, &mut s, garbled)["data"]["error_message"]
        .as_str()
        .unwrap()
        .contains("base64"));
    assert!(
        send(&mut h, &mut s, chunk("up", 0, 2, b"abcd")).is_empty(),
        "resent correctly"
    );
    let r = reply(&mut h, &mut s, chunk("up", 0, 2, b"abcd"));
    assert_eq!(
        r["data"]["error_message"],
        "duplicate chunk 0: already received"
    );
    assert_eq!(
        reply(&mut h, &mut s, chunk("up", 1, 2, b"efgh"))["type"],
        "file_upload_complete"
    );
}

#[test]
fn upload_limits() {
    let mut h = harness();
    let (mut s, _) = opened(&mut h);
    let r = reply(
        &mut h,
        &mut s,
        start("big", upload::MAX_FILE_BYTES + 1, 1024),
    );
    assert_eq!(code(&r), "PERMISSION_DENIED");
    let r = reply(
        &mut h,
        &mut s,
        start("wide", 10, upload::MAX_CHUNK_BYTES + 1),
    );
    assert_eq!(r["data"]["details"]["field"], "data.chunk_size");
    for i in 0..upload::MAX_UPLOADS {
        assert!(send(&mut h, &mut s, start(&format!("u{i}"), 10, 5)).is_empty());
    }
    assert_eq!(
        code(&reply(&mut h, &mut s, start("u0", 10, 5))),
        "INVALID_MESSAGE_FORMAT"
    );
    assert_eq!(
        code(&reply(&mut h, &mut s, start("u9", 10, 5))),
        "PERMISSION_DENIED"
    );
    // Abandoned uploads expire with an error naming the missing chunk.
    h.now += upload::UPLOAD_IDLE;
    let out = tick(&mut h, &mut s);
    assert_eq!(
        out.iter().filter(|f| f["type"] == "error").count(),
        upload::MAX_UPLOADS
    );
    assert_eq!(out.last().unwrap()["data"]["details"]["chunk_index"], 0);
    // Six more starts reach the ten per hour (four were counted above).
    for i in 0..6 {
        let r = send(&mut h, &mut s, start(&format!("z{i}"), 0, 5));
        assert_eq!(r[0]["type"], "file_upload_complete");
    }
    let r = reply(&mut h, &mut s, start("z", 0, 5));
    assert_eq!(code(&r), "RATE_LIMITED");
    assert_eq!(r["rate_limit"]["limit"], limits::UPLOADS_PER_HOUR);
}
