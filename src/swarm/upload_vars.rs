//! An upload's values as its templates read them (`upload.*`, `chunk.*`), and the file they
//! come from: generated a chunk at a time from a seeded generator into reused buffers.

use std::fmt::Write as _;

use base64::Engine as _;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use sha2::{Digest, Sha256};

use crate::scenario::template::{ChunkVar, StepValue, StepVar, UploadVar};

/// The values of the upload a VU is running, read by its templates. Kept between uploads so
/// the buffers are reused.
#[derive(Debug, Default)]
pub struct UploadVars {
    pub(super) active: bool,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) chunks: u64,
    pub(super) chunk_size: u64,
    pub(super) sha256: String,
    pub(super) corrupt: Option<u64>,
    /// Whether a chunk's values are set.
    pub(super) in_chunk: bool,
    pub(super) index: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) base64: String,
    pub(super) chunk_sha256: String,
}

impl UploadVars {
    /// The value of `var`, while an upload runs.
    pub fn value(&self, var: StepVar) -> Option<StepValue<'_>> {
        if !self.active {
            return None;
        }
        Some(match var {
            StepVar::Upload(v) => match v {
                UploadVar::Id => StepValue::Str(&self.id),
                UploadVar::Name => StepValue::Str(&self.name),
                UploadVar::Size => StepValue::Num(self.size),
                UploadVar::Chunks => StepValue::Num(self.chunks),
                UploadVar::ChunkSize => StepValue::Num(self.chunk_size),
                UploadVar::Sha256 => StepValue::Str(&self.sha256),
                UploadVar::Corrupt => StepValue::Num(self.corrupt?),
            },
            StepVar::Chunk(_) if !self.in_chunk => return None,
            StepVar::Chunk(v) => match v {
                ChunkVar::Index => StepValue::Num(self.index),
                ChunkVar::Offset => StepValue::Num(self.index * self.chunk_size),
                ChunkVar::Size => StepValue::Num(self.bytes.len() as u64),
                ChunkVar::Base64 => StepValue::Str(&self.base64),
                ChunkVar::Sha256 => StepValue::Str(&self.chunk_sha256),
                ChunkVar::Last => StepValue::Bool(self.index + 1 == self.chunks),
            },
        })
    }

    /// Generates chunk `index` from `gen` (which must be at that chunk) and sets its values;
    /// `corrupt` gives it a wrong checksum.
    pub(super) fn next_chunk(&mut self, gen: &mut SmallRng, index: u64, corrupt: bool) {
        let len = self.chunk_len(index);
        self.bytes.resize(len, 0);
        gen.fill_bytes(&mut self.bytes);
        self.index = index;
        self.in_chunk = true;
        self.base64.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut self.base64);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&Sha256::digest(&self.bytes));
        if corrupt {
            digest[0] ^= 1;
        }
        write_hex(&digest, &mut self.chunk_sha256);
    }

    fn chunk_len(&self, index: u64) -> usize {
        let start = index * self.chunk_size;
        (self.size - start).min(self.chunk_size) as usize
    }

    /// The whole file's SHA-256, from a generator seeded like the one that will send it.
    pub(super) fn hash_file(&mut self, seed: u64) {
        let mut gen = SmallRng::seed_from_u64(seed);
        let mut h = Sha256::new();
        for i in 0..self.chunks {
            self.bytes.resize(self.chunk_len(i), 0);
            gen.fill_bytes(&mut self.bytes);
            h.update(&self.bytes);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&h.finalize());
        write_hex(&digest, &mut self.sha256);
    }
}

fn write_hex(bytes: &[u8], out: &mut String) {
    out.clear();
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}
