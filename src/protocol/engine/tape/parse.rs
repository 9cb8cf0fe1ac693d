//! The tape's parser: one pass over a frame's bytes, writing fixed-size entries (see the
//! module above for what it accepts and what it leaves to serde_json).

use super::{same, skip, Entry, Kind, DEPTH_LIMIT};

/// One parse: the text, where it is, and the tape being written.
pub(super) struct Parser<'p> {
    pub(super) text: &'p str,
    pub(super) b: &'p [u8],
    pub(super) i: usize,
    pub(super) entries: &'p mut Vec<Entry>,
    pub(super) scratch: &'p mut String,
}

impl Parser<'_> {
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(super) fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string(),
            b't' => self.literal(b"true", Kind::True),
            b'f' => self.literal(b"false", Kind::False),
            b'n' => self.literal(b"null", Kind::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Option<()> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        self.entries.push(Entry::new(kind, 0, 0, 0));
        Some(())
    }

    fn object(&mut self, depth: usize) -> Option<()> {
        let at = self.entries.len();
        // One bit per key hash: a second key is compared with the earlier ones only when its
        // bit is already set, so telling duplicates costs next to nothing on ordinary frames.
        let mut seen = 0u64;
        self.container(Kind::Object, b'}', depth, |p| {
            if p.peek()? != b'"' {
                return None;
            }
            let key = p.entries.len();
            p.string()?;
            let bit = 1u64 << (key_hash(p.bytes_of(key)) & 63);
            if seen & bit != 0 && p.repeats(at + 1, key) {
                return None;
            }
            seen |= bit;
            p.ws();
            if p.peek()? != b':' {
                return None;
            }
            p.i += 1;
            p.ws();
            p.value(depth)
        })
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.container(Kind::Array, b']', depth, |p| p.value(depth))
    }

    /// An object or array: the opening byte is at `self.i`; `item` reads one member or
    /// element; commas, spacing, the closing byte and the entry's counts are done here.
    fn container(
        &mut self,
        kind: Kind,
        close: u8,
        depth: usize,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        // serde_json refuses a 128th level of nesting: so does the tape, or a live run
        // (tape) and `squall validate` (serde_json) would judge the same frame apart.
        if depth >= DEPTH_LIMIT {
            return None;
        }
        let at = self.entries.len();
        self.entries.push(Entry::new(kind, 0, 0, 0));
        self.i += 1;
        self.ws();
        let mut count = 0usize;
        if self.peek()? == close {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                count += 1;
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    c if c == close => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let end = self.entries.len();
        self.entries[at].a = end as u32;
        self.entries[at].b = count as u32;
        Some(())
    }

    /// Whether the key at `key` equals an earlier key of the object whose first member's key
    /// is at `first`.
    fn repeats(&self, first: usize, key: usize) -> bool {
        let name = self.str_of(key);
        let mut j = first;
        while j < key {
            if same(self.str_of(j), name) {
                return true;
            }
            j = skip(self.entries, j + 1);
        }
        false
    }

    fn bytes_of(&self, j: usize) -> &[u8] {
        let e = self.entries[j];
        let from = match e.kind {
            Kind::Esc => self.scratch.as_bytes(),
            _ => self.b,
        };
        &from[e.a as usize..e.b as usize]
    }

    fn str_of(&self, j: usize) -> &str {
        let e = self.entries[j];
        match e.kind {
            Kind::Esc => &self.scratch[e.a as usize..e.b as usize],
            _ => &self.text[e.a as usize..e.b as usize],
        }
    }

    #[inline]
    fn string(&mut self) -> Option<()> {
        let start = self.i + 1;
        let mut i = start;
        // Eight bytes at a time to the first that ends the plain run (a quote, a backslash
        // or a control byte); the loop below decides on it (and reads the last few bytes).
        while let Some(chunk) = self.b.get(i..i + 8) {
            let stops = stops(u64::from_le_bytes(chunk.try_into().ok()?));
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.entries.push(Entry::new(Kind::Str, start, i, 0));
                    self.i = i + 1;
                    return Some(());
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
        self.escaped(start, i)
    }

    /// The rest of a string with escapes (the first backslash at `i`): decoded whole into the
    /// scratch buffer. Apart, so the common plain string's code stays small.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize, mut i: usize) -> Option<()> {
        let from = self.scratch.len();
        let mut seg = start;
        loop {
            match *self.b.get(i)? {
                b'"' => {
                    self.scratch.push_str(&self.text[seg..i]);
                    self.entries
                        .push(Entry::new(Kind::Esc, from, self.scratch.len(), 0));
                    self.i = i + 1;
                    return Some(());
                }
                b'\\' => {
                    self.scratch.push_str(&self.text[seg..i]);
                    i = self.escape(i + 1)?;
                    seg = i;
                }
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }

    /// Decodes the escape whose letter is at `i`; returns the index after it.
    fn escape(&mut self, i: usize) -> Option<usize> {
        let c = match *self.b.get(i)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(i + 1)?;
                let (code, next) = match hi {
                    0xD800..=0xDBFF => {
                        if self.b.get(i + 5..i + 7)? != b"\\u" {
                            return None;
                        }
                        let lo = self.hex4(i + 7)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), i + 11)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => (hi, i + 5),
                };
                self.scratch.push(char::from_u32(code)?);
                return Some(next);
            }
            _ => return None,
        };
        self.scratch.push(c);
        Some(i + 1)
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let digits = self.b.get(i..i + 4)?;
        digits.iter().try_fold(0u32, |acc, d| {
            let v = (*d as char).to_digit(16)?;
            Some(acc * 16 + v)
        })
    }

    /// The index after the run of ASCII digits starting at `i`. Forced inline: left to the
    /// compiler it stayed a call, which cost ~9 % of a Kite pong's parse (`benches/check.rs`).
    #[inline(always)]
    fn digits(&self, mut i: usize) -> usize {
        while self.b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    }

    /// [`Parser::digits`] for a run that must not be empty (a fraction, an exponent).
    #[inline(always)]
    fn some_digits(&self, i: usize) -> Option<usize> {
        let end = self.digits(i);
        (end > i).then_some(end)
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        let mut i = start;
        let neg = self.b[i] == b'-';
        if neg {
            i += 1;
        }
        let int_start = i;
        match self.b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = self.digits(i),
            _ => return None,
        }
        let int_end = i;
        let mut float = false;
        if self.b.get(i) == Some(&b'.') {
            float = true;
            i = self.some_digits(i + 1)?;
        }
        if let Some(b'e' | b'E') = self.b.get(i) {
            float = true;
            i += 1;
            if let Some(b'+' | b'-') = self.b.get(i) {
                i += 1;
            }
            i = self.some_digits(i)?;
        }
        self.i = i;
        let entry = if float {
            // serde_json's own float parsing, so the value is the one `Value` would hold.
            let f: f64 = serde_json::from_str(&self.text[start..i]).ok()?;
            Entry::new(Kind::Float, start, i, f.to_bits())
        } else {
            let mut v = 0u64;
            for d in &self.b[int_start..int_end] {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            match (neg, v) {
                (false, v) => Entry::new(Kind::Uint, start, i, v),
                // serde_json reads -0 as a float; leave it to serde_json.
                (true, 0) => return None,
                (true, v) if v <= 1 << 63 => {
                    Entry::new(Kind::Int, start, i, (v as i64).wrapping_neg() as u64)
                }
                _ => return None,
            }
        };
        self.entries.push(entry);
        Some(())
    }
}

/// The high bit of each byte of `w` (little-endian) that may be `"`, `\\` or below 0x20.
/// The lowest set bit is exact: a false positive only ever follows a true one (a borrow
/// carried up from it).
#[inline(always)]
pub(super) fn stops(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    zero(w ^ (ONES * b'"' as u64)) | zero(w ^ (ONES * b'\\' as u64)) | below_space
}

fn key_hash(b: &[u8]) -> usize {
    match b {
        [] => 0,
        [first, .., last] => b.len() * 7 + usize::from(*first) * 3 + usize::from(*last),
        [only] => b.len() * 7 + usize::from(*only) * 4,
    }
}
