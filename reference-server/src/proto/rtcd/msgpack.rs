//! A bounds-checked msgpack reader over a byte slice, and thin writers over `rmp::encode`.
//!
//! rtcd's frames are not self-describing documents but sequences of values whose types depend on the
//! previous ones, so the decoders read value by value. The reader never allocates from a length prefix
//! (a prefix longer than the remaining input is [`MsgpackError::Truncated`] at once) and skips nested
//! values iteratively, so hostile input can neither exhaust memory nor the stack.

use rmp::Marker;

use super::error::MsgpackError;

/// Cursor over untrusted msgpack bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The msgpack family of a marker, for error messages.
pub(crate) fn family(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "int",
        Marker::F32 | Marker::F64 => "float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "str",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "bin",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "ext",
        Marker::Reserved => "reserved byte 0xc1",
    }
}

fn wrong(expected: &'static str, found: Marker) -> MsgpackError {
    MsgpackError::WrongType {
        expected,
        found: family(found),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        if n > self.remaining() {
            return Err(MsgpackError::Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// The next marker without consuming it.
    pub(crate) fn peek(&self) -> Result<Marker, MsgpackError> {
        self.buf
            .get(self.pos)
            .map(|&b| Marker::from_u8(b))
            .ok_or(MsgpackError::Truncated)
    }

    fn marker(&mut self) -> Result<Marker, MsgpackError> {
        let m = self.peek()?;
        self.pos += 1;
        Ok(m)
    }

    /// Length of a str/bin body after its marker, checked against the remaining input.
    fn body_len(&mut self, marker: Marker) -> Result<usize, MsgpackError> {
        let len = match marker {
            Marker::FixStr(n) => u64::from(n),
            Marker::Str8 | Marker::Bin8 => self.be(1)?,
            Marker::Str16 | Marker::Bin16 => self.be(2)?,
            Marker::Str32 | Marker::Bin32 => self.be(4)?,
            other => return Err(wrong("str or bin", other)),
        };
        usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or(MsgpackError::Truncated)
    }

    /// A msgpack `str` (only), as UTF-8.
    pub(crate) fn str(&mut self) -> Result<&'a str, MsgpackError> {
        std::str::from_utf8(self.str_bytes()?).map_err(|_| MsgpackError::InvalidUtf8)
    }

    /// The raw bytes of a msgpack `str` (only). Go strings may hold any bytes, so keys are matched on
    /// these and an unknown non-UTF-8 key is skipped like any other unknown key.
    pub(crate) fn str_bytes(&mut self) -> Result<&'a [u8], MsgpackError> {
        let m = self.peek()?;
        if !matches!(
            m,
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
        ) {
            return Err(wrong("str", m));
        }
        self.pos += 1;
        let len = self.body_len(m)?;
        self.take(len)
    }

    /// Byte content of a `bin` (only).
    pub(crate) fn bin(&mut self) -> Result<&'a [u8], MsgpackError> {
        let m = self.peek()?;
        if !matches!(m, Marker::Bin8 | Marker::Bin16 | Marker::Bin32) {
            return Err(wrong("bin", m));
        }
        self.pos += 1;
        let len = self.body_len(m)?;
        self.take(len)
    }

    /// Byte content of a `bin`, `str` or `nil` (empty), which is what Go's msgpack accepts for `[]byte`.
    pub(crate) fn bytes_lenient(&mut self) -> Result<&'a [u8], MsgpackError> {
        let m = self.peek()?;
        if m == Marker::Null {
            self.pos += 1;
            return Ok(&[]);
        }
        if !matches!(
            m,
            Marker::FixStr(_)
                | Marker::Str8
                | Marker::Str16
                | Marker::Str32
                | Marker::Bin8
                | Marker::Bin16
                | Marker::Bin32
        ) {
            return Err(wrong("bin", m));
        }
        self.pos += 1;
        let len = self.body_len(m)?;
        self.take(len)
    }

    /// An integer in any msgpack encoding (fixint, uint8–64, int8–64).
    pub(crate) fn int(&mut self) -> Result<i128, MsgpackError> {
        let m = self.peek()?;
        let value = match m {
            Marker::FixPos(n) => {
                self.pos += 1;
                return Ok(i128::from(n));
            }
            Marker::FixNeg(n) => {
                self.pos += 1;
                return Ok(i128::from(n));
            }
            Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
                self.pos += 1;
                let width = match m {
                    Marker::U8 => 1,
                    Marker::U16 => 2,
                    Marker::U32 => 4,
                    _ => 8,
                };
                i128::from(self.be(width)?)
            }
            Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
                self.pos += 1;
                let width = match m {
                    Marker::I8 => 1,
                    Marker::I16 => 2,
                    Marker::I32 => 4,
                    _ => 8,
                };
                let raw = self.be(width)?;
                // Sign-extend from `width` bytes.
                let shift = 64 - 8 * width as u32;
                i128::from(((raw << shift) as i64) >> shift)
            }
            other => return Err(wrong("int", other)),
        };
        Ok(value)
    }

    /// A number as `f64`: float32, float64 or any integer (browsers encode whole numbers as ints).
    pub(crate) fn f64_lenient(&mut self) -> Result<f64, MsgpackError> {
        match self.peek()? {
            Marker::F32 => {
                self.pos += 1;
                let bits = self.be(4)? as u32;
                Ok(f64::from(f32::from_bits(bits)))
            }
            Marker::F64 => {
                self.pos += 1;
                Ok(f64::from_bits(self.be(8)?))
            }
            _ => self.int().map(|i| i as f64).map_err(|e| match e {
                MsgpackError::WrongType { found, .. } => MsgpackError::WrongType {
                    expected: "float",
                    found,
                },
                other => other,
            }),
        }
    }

    pub(crate) fn bool(&mut self) -> Result<bool, MsgpackError> {
        match self.peek()? {
            Marker::True => {
                self.pos += 1;
                Ok(true)
            }
            Marker::False => {
                self.pos += 1;
                Ok(false)
            }
            other => Err(wrong("bool", other)),
        }
    }

    /// Number of entries of a map, checked so that the entries can fit in the remaining input.
    pub(crate) fn map_len(&mut self) -> Result<usize, MsgpackError> {
        let m = self.peek()?;
        let n = match m {
            Marker::FixMap(n) => {
                self.pos += 1;
                u64::from(n)
            }
            Marker::Map16 => {
                self.pos += 1;
                self.be(2)?
            }
            Marker::Map32 => {
                self.pos += 1;
                self.be(4)?
            }
            other => return Err(wrong("map", other)),
        };
        // Each entry takes at least two bytes.
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(2) <= self.remaining())
            .ok_or(MsgpackError::Truncated)
    }

    /// Skips one complete value of any type, iteratively.
    pub(crate) fn skip_value(&mut self) -> Result<(), MsgpackError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.marker()?;
            let (body, children): (u64, u64) = match m {
                Marker::Null
                | Marker::True
                | Marker::False
                | Marker::FixPos(_)
                | Marker::FixNeg(_) => (0, 0),
                Marker::U8 | Marker::I8 => (1, 0),
                Marker::U16 | Marker::I16 => (2, 0),
                Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
                Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
                Marker::FixStr(n) => (u64::from(n), 0),
                Marker::Str8 | Marker::Bin8 => (self.be(1)?, 0),
                Marker::Str16 | Marker::Bin16 => (self.be(2)?, 0),
                Marker::Str32 | Marker::Bin32 => (self.be(4)?, 0),
                Marker::FixArray(n) => (0, u64::from(n)),
                Marker::Array16 => (0, self.be(2)?),
                Marker::Array32 => (0, self.be(4)?),
                Marker::FixMap(n) => (0, 2 * u64::from(n)),
                Marker::Map16 => (0, 2 * self.be(2)?),
                Marker::Map32 => (0, 2 * self.be(4)?),
                Marker::FixExt1 => (2, 0),
                Marker::FixExt2 => (3, 0),
                Marker::FixExt4 => (5, 0),
                Marker::FixExt8 => (9, 0),
                Marker::FixExt16 => (17, 0),
                Marker::Ext8 => (self.be(1)? + 1, 0),
                Marker::Ext16 => (self.be(2)? + 1, 0),
                Marker::Ext32 => (self.be(4)? + 1, 0),
                Marker::Reserved => return Err(wrong("msgpack value", m)),
            };
            let body = usize::try_from(body).map_err(|_| MsgpackError::Truncated)?;
            self.take(body)?;
            pending += children;
            // Every pending value needs at least one byte; fail early on absurd counts.
            if pending > self.remaining() as u64 {
                return Err(MsgpackError::Truncated);
            }
        }
        Ok(())
    }
}

// Writing into a `Vec<u8>` cannot fail, so the writers below discard rmp's `io::Error` results; the
// `expect`s state that invariant.
const VEC_WRITE: &str = "writing msgpack into a Vec cannot fail";

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).expect(VEC_WRITE);
}

pub(crate) fn put_bin(out: &mut Vec<u8>, b: &[u8]) {
    rmp::encode::write_bin(out, b).expect(VEC_WRITE);
}

/// The most compact unsigned encoding (positive fixint for < 128), as Go writes an `int` field.
pub(crate) fn put_uint(out: &mut Vec<u8>, n: u64) {
    rmp::encode::write_uint(out, n).expect(VEC_WRITE);
}

/// Always `cc NN`, as Go writes a `uint8`-typed value.
pub(crate) fn put_u8(out: &mut Vec<u8>, n: u8) {
    rmp::encode::write_u8(out, n).expect(VEC_WRITE);
}

pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    rmp::encode::write_f64(out, v).expect(VEC_WRITE);
}

pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    rmp::encode::write_bool(out, v).expect(VEC_WRITE);
}

pub(crate) fn put_map_len(out: &mut Vec<u8>, n: usize) {
    // Invariant: no message here has more than u32::MAX entries (frames are capped at 1 MiB).
    let n = u32::try_from(n).expect("map length fits u32");
    rmp::encode::write_map_len(out, n).expect(VEC_WRITE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_of_every_width_read_back() {
        let cases: &[(&[u8], i128)] = &[
            (&[0x05], 5),
            (&[0xff], -1),
            (&[0xcc, 0x07], 7),
            (&[0xcd, 0x01, 0x00], 256),
            (&[0xce, 0, 0, 0, 9], 9),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                u64::MAX as i128,
            ),
            (&[0xd0, 0x80], -128),
            (&[0xd1, 0xff, 0xfe], -2),
            (&[0xd2, 0, 0, 0, 3], 3),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], i64::MIN as i128),
        ];
        for (bytes, want) in cases {
            let mut r = Reader::new(bytes);
            assert_eq!(r.int().unwrap(), *want, "{bytes:02x?}");
            assert!(r.is_at_end());
        }
    }

    #[test]
    fn length_prefixes_beyond_input_are_truncated_not_allocated() {
        // str32 claiming 4 GiB, map32 claiming 4 G entries, array32 inside skip.
        assert_eq!(
            Reader::new(&[0xdb, 0xff, 0xff, 0xff, 0xff]).str(),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0xdf, 0xff, 0xff, 0xff, 0xff]).map_len(),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]).skip_value(),
            Err(MsgpackError::Truncated)
        );
    }

    #[test]
    fn skip_handles_deep_nesting_without_recursion() {
        let mut deep = vec![0x91; 100_000];
        deep.push(0xc0);
        let mut r = Reader::new(&deep);
        r.skip_value().unwrap();
        assert!(r.is_at_end());
    }
}
