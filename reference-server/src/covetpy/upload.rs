//! Chunked uploads ("File Operations"): `file_upload_start`, then `file_chunk`s in order,
//! each checked (index, length, base64, SHA-256) before it counts; after the last one the
//! session sends `file_upload_complete`. The bytes are hashed and dropped, never stored.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::time::{Duration, Instant};

use super::limits::Window;
use super::wire::{hex, Code, Data, Details, Failure};

/// Uploads one connection may have in progress.
pub const MAX_UPLOADS: usize = 4;
/// Largest file, bytes (64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Declared bytes of one connection's uploads in progress together (128 MiB).
pub const MAX_INFLIGHT_BYTES: u64 = 128 * 1024 * 1024;
/// Largest `chunk_size`, bytes, when the message limit allows it (512 KiB).
pub const MAX_CHUNK_BYTES: u64 = 512 * 1024;
/// An upload with no accepted chunk for this long is dropped with an error naming the
/// missing chunk.
pub const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// One upload in progress.
pub struct Upload {
    /// The `file_upload_start` frame's id, carried by chunks as `upload_id`.
    pub id: String,
    size: u64,
    chunk_size: u64,
    /// `ceil(size / chunk_size)`.
    pub total: u64,
    /// The next chunk index expected.
    pub next: u64,
    hasher: Sha256,
    touched: Instant,
}

/// A finished upload: what `file_upload_complete` reports.
#[derive(Debug)]
pub struct Complete {
    pub upload_id: String,
    /// `file_` and the first 16 hex digits of the whole file's SHA-256.
    pub file_id: String,
}

/// A chunk accepted: its decoded bytes, and the completion when it was the last.
pub struct Accepted {
    pub bytes: u64,
    pub complete: Option<Complete>,
}

/// The uploads of one connection.
pub struct Uploads {
    list: Vec<Upload>,
    max_chunk: u64,
}

fn invalid<'a>(message: String, original: &'a str, field: &'a str) -> Failure<'a> {
    Failure::new(Code::InvalidMessageFormat, message, Some(original)).with(Details::field(field))
}

fn denied<'a>(message: String, original: &'a str, limit: u64) -> Failure<'a> {
    let details = Details {
        limit: Some(limit),
        ..Details::default()
    };
    Failure::new(Code::PermissionDenied, message, Some(original)).with(details)
}

impl Uploads {
    /// Uploads whose chunks fit a message of `message_limit` bytes once base64-encoded.
    pub fn new(message_limit: usize) -> Self {
        // base64 grows 3 bytes to 4; leave 1 KiB for the envelope.
        let fits = (message_limit.saturating_sub(1024) as u64 / 4) * 3;
        Uploads {
            list: Vec::new(),
            max_chunk: MAX_CHUNK_BYTES.min(fits).max(1),
        }
    }

    /// Starts upload `id`; a zero-byte file completes at once. `rate` is the uploads window.
    pub fn start<'a>(
        &mut self,
        id: &'a str,
        data: &Data<'_>,
        now: Instant,
        rate: Option<&mut Window>,
    ) -> Result<Option<Complete>, Failure<'a>> {
        let (size, chunk_size) = self.sizes(id, data)?;
        self.room_for(id, size)?;
        if let Some(Err(limit)) = rate.map(|w| w.admit(now)) {
            let mut f = Failure::new(Code::RateLimited, "upload rate limit exceeded", Some(id));
            f.rate_limit = Some(Box::new(limit));
            return Err(f);
        }
        let upload = Upload {
            id: id.to_owned(),
            size,
            chunk_size,
            total: size.div_ceil(chunk_size),
            next: 0,
            hasher: Sha256::new(),
            touched: now,
        };
        if size == 0 {
            return Ok(Some(upload.finish()));
        }
        self.list.push(upload);
        Ok(None)
    }

    /// A start frame's size and chunk size, its filename and mimetype present.
    fn sizes<'a>(&self, id: &'a str, data: &Data<'_>) -> Result<(u64, u64), Failure<'a>> {
        if data.filename.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "file_upload_start needs a filename".into(),
                id,
                "data.filename",
            ));
        }
        if data.mimetype.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "file_upload_start needs a mimetype".into(),
                id,
                "data.mimetype",
            ));
        }
        let Some(size) = data.size else {
            return Err(invalid(
                "file_upload_start needs a size".into(),
                id,
                "data.size",
            ));
        };
        match data.chunk_size {
            Some(c) if (1..=self.max_chunk).contains(&c) => Ok((size, c)),
            _ => {
                let text = format!("chunk_size must be 1 to {} bytes", self.max_chunk);
                Err(invalid(text, id, "data.chunk_size"))
            }
        }
    }

    /// Whether upload `id` of `size` bytes may start: not already in progress, and within
    /// the file, upload count and in-flight byte limits.
    fn room_for<'a>(&self, id: &'a str, size: u64) -> Result<(), Failure<'a>> {
        if self.list.iter().any(|u| u.id == id) {
            let text = format!("upload '{id}' is already in progress");
            return Err(invalid(text, id, "id"));
        }
        if size > MAX_FILE_BYTES {
            let text = format!("file too large: at most {MAX_FILE_BYTES} bytes");
            return Err(denied(text, id, MAX_FILE_BYTES));
        }
        if self.list.len() >= MAX_UPLOADS {
            let text = format!("at most {MAX_UPLOADS} uploads at once per connection");
            return Err(denied(text, id, MAX_UPLOADS as u64));
        }
        let inflight: u64 = self.list.iter().map(|u| u.size).sum();
        if inflight + size > MAX_INFLIGHT_BYTES {
            let text = format!("at most {MAX_INFLIGHT_BYTES} bytes of uploads in progress at once");
            return Err(denied(text, id, MAX_INFLIGHT_BYTES));
        }
        Ok(())
    }

    /// Checks and takes one chunk; `id` is the chunk frame's id.
    pub fn chunk<'a>(
        &mut self,
        id: &'a str,
        data: &'a Data<'a>,
        now: Instant,
    ) -> Result<Accepted, Failure<'a>> {
        let Some(upload_id) = data.upload_id.as_deref() else {
            return Err(invalid(
                "file_chunk needs an upload_id".into(),
                id,
                "data.upload_id",
            ));
        };
        let Some(i) = self.list.iter().position(|u| u.id == upload_id) else {
            let text = format!("no upload '{upload_id}' in progress on this connection");
            let f = Failure::new(Code::UploadNotFound, text, Some(id));
            return Err(f.with(Details::field("data.upload_id")));
        };
        let upload = &mut self.list[i];
        let chunk = upload.check(id, upload_id, data)?;
        upload.hasher.update(&chunk);
        upload.next += 1;
        upload.touched = now;
        let bytes = chunk.len() as u64;
        let complete = (upload.next == upload.total).then(|| self.list.swap_remove(i).finish());
        Ok(Accepted { bytes, complete })
    }

    /// When the oldest idle upload expires.
    pub fn deadline(&self) -> Option<Instant> {
        self.list.iter().map(|u| u.touched + UPLOAD_IDLE).min()
    }

    /// Removes and returns the uploads idle for [`UPLOAD_IDLE`] by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Upload> {
        let (gone, kept) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|u| now >= u.touched + UPLOAD_IDLE);
        self.list = kept;
        gone
    }
}

impl Upload {
    /// The decoded chunk when it is the next one, of the right length and checksum.
    fn check<'a>(
        &self,
        id: &'a str,
        upload_id: &'a str,
        d: &'a Data<'a>,
    ) -> Result<Vec<u8>, Failure<'a>> {
        let (Some(index), Some(total)) = (d.chunk_index, d.total_chunks) else {
            let text = "file_chunk needs chunk_index and total_chunks".into();
            return Err(invalid(text, id, "data.chunk_index"));
        };
        self.in_order(id, upload_id, index, total)?;
        let chunk_err = |code, text: String| {
            Err(Failure::new(code, text, Some(id)).with(Details::chunk(upload_id, index)))
        };
        let bad = Code::InvalidMessageFormat;
        let (Some(b64), Some(checksum)) = (d.data.as_deref(), d.checksum.as_deref()) else {
            return Err(invalid(
                "file_chunk needs data and checksum".into(),
                id,
                "data.data",
            ));
        };
        let want = if index + 1 < self.total {
            self.chunk_size
        } else {
            self.size - self.chunk_size * (self.total - 1)
        };
        // Refuse an oversize chunk from its encoded length, before allocating for it.
        if b64.len() as u64 > want.div_ceil(3) * 4 {
            return chunk_err(
                bad,
                format!("chunk {index} is oversize: more than {want} bytes"),
            );
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return chunk_err(bad, format!("chunk {index}: data is not valid base64"));
        };
        if bytes.len() as u64 > want {
            let text = format!(
                "chunk {index} is oversize: {} bytes, expected {want}",
                bytes.len()
            );
            return chunk_err(bad, text);
        }
        if (bytes.len() as u64) < want {
            let text = format!(
                "chunk {index} is short: {} bytes, expected {want}",
                bytes.len()
            );
            return chunk_err(bad, text);
        }
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(checksum) {
            let text = format!("checksum mismatch in chunk {index} of upload '{upload_id}'");
            return chunk_err(Code::ChecksumMismatch, text);
        }
        Ok(bytes)
    }

    /// Whether chunk `index` of `total` is the next one this upload expects.
    fn in_order<'a>(
        &self,
        id: &'a str,
        upload_id: &'a str,
        index: u64,
        total: u64,
    ) -> Result<(), Failure<'a>> {
        let chunk_err = |code, text: String| {
            Err(Failure::new(code, text, Some(id)).with(Details::chunk(upload_id, index)))
        };
        let bad = Code::InvalidMessageFormat;
        if total != self.total {
            let text = format!(
                "total_chunks is {total}, but size/chunk_size gives {}",
                self.total
            );
            return Err(invalid(text, id, "data.total_chunks"));
        }
        if index >= self.total {
            return chunk_err(
                bad,
                format!("chunk index {index} out of range 0..{}", self.total),
            );
        }
        if index < self.next {
            return chunk_err(bad, format!("duplicate chunk {index}: already received"));
        }
        if index > self.next {
            let text = format!("chunk {index} out of order: chunk {} is missing", self.next);
            return chunk_err(bad, text);
        }
        Ok(())
    }

    fn finish(self) -> Complete {
        let digest = hex(&self.hasher.finalize());
        Complete {
            upload_id: self.id,
            file_id: format!("file_{}", &digest[..16]),
        }
    }
}
