//! A JSON reader that fails exactly where, and with the text that, Go's
//! `json.NewDecoder(http.MaxBytesReader(body, limit)).Decode(&v)` fails (offloader.md §1.1, §2.2).
//!
//! What a client can observe and this reproduces:
//! - only the first JSON value is read; bytes after it are never looked at, except that a top-level
//!   scalar needs one more byte (or the true end of the body) to be known complete;
//! - syntax errors carry Go's scanner text (`invalid character 'x' looking for beginning of value`),
//!   an empty or all-space body is `EOF`, a cut value is `unexpected EOF`;
//! - with a size limit, a value still incomplete after `limit` bytes is `http: request body too
//!   large`, but a syntax error inside the first `limit` bytes wins, as Go scans what it read first;
//! - type mismatches do not stop decoding: Go remembers the first one and reports it only if the
//!   whole value is syntactically valid, so a later syntax error wins over an earlier type error;
//! - strings are unescaped as Go does: invalid UTF-8 bytes and unpaired surrogates become U+FFFD;
//! - nesting deeper than 10 000 is a syntax error (`exceeded max depth`).
//!
//! The reader never recurses: containers are tracked on an explicit stack. (The file runs past 600
//! lines with its tests: scanner, unescaping and the skip/`any` readers share one cursor.)

use super::any::{AnyValue, Builder, Open};
use super::gowrite::go_quote_byte;

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// Why a body did not decode, displayed as the Go error text a server puts in its response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is empty or only whitespace.
    #[error("EOF")]
    Eof,
    /// The body ends inside the first value.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// The first value is still incomplete after the body size limit (1 MiB on `/jobs` and `/jobs/init`).
    #[error("http: request body too large")]
    TooLarge,
    /// Go's scanner message, e.g. `invalid character '}' looking for beginning of object key string`.
    #[error("{0}")]
    Syntax(String),
    #[error(transparent)]
    Type(#[from] TypeError),
}

/// Go's `*json.UnmarshalTypeError`: a JSON value of the wrong kind for its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// `string`, `number`, `number 1.5`, `bool`, `array` or `object`.
    pub value: String,
    /// The Go type, e.g. `int64`, `job.Type`, `map[string]string`.
    pub go_type: &'static str,
    /// `(struct, field)` when the value sits in a struct field, e.g. `("Config", "max_duration_sec")`.
    pub field: Option<(&'static str, &'static str)>,
}

impl std::fmt::Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some((st, field)) => write!(
                f,
                "json: cannot unmarshal {} into Go struct field {st}.{field} of type {}",
                self.value, self.go_type
            ),
            None => write!(
                f,
                "json: cannot unmarshal {} into Go value of type {}",
                self.value, self.go_type
            ),
        }
    }
}

impl std::error::Error for TypeError {}

/// The kind of the next JSON value, known from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    True,
    False,
    Null,
}

impl Kind {
    /// How Go names this kind in an `UnmarshalTypeError` (numbers get their literal appended where
    /// Go does that, see [`Reader::mismatch`]).
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::String => "string",
            Kind::Number => "number",
            Kind::True | Kind::False => "bool",
            Kind::Null => "null",
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Cursor over the visible part of a body. See the module docs for the contract.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The body is longer than the limit: running out of `buf` means "too large", not EOF.
    truncated: bool,
    depth: usize,
    saved: Option<TypeError>,
}

impl<'a> Reader<'a> {
    /// `limit`: Go's `MaxBytesReader` size, or `None` for handlers without one.
    pub(crate) fn new(body: &'a [u8], limit: Option<usize>) -> Self {
        let (buf, truncated) = match limit {
            Some(l) if body.len() > l => (&body[..l], true),
            _ => (body, false),
        };
        Reader {
            buf,
            pos: 0,
            truncated,
            depth: 0,
            saved: None,
        }
    }

    /// Decodes one top-level value with `f`, then applies Go's end-of-value and error-priority rules.
    pub(crate) fn decode<T>(
        body: &'a [u8],
        limit: Option<usize>,
        f: impl FnOnce(&mut Reader<'a>, Kind) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let mut r = Reader::new(body, limit);
        let kind = r.begin()?;
        let value = f(&mut r, kind)?;
        // A top-level scalar is complete only once the byte after it (or the real end) is seen.
        if !matches!(kind, Kind::Object | Kind::Array) && r.pos == r.buf.len() && r.truncated {
            return Err(DecodeError::TooLarge);
        }
        match r.saved.take() {
            Some(e) => Err(DecodeError::Type(e)),
            None => Ok(value),
        }
    }

    /// The error for needing a byte past the visible data.
    fn need(&self) -> DecodeError {
        if self.truncated {
            DecodeError::TooLarge
        } else if self.buf[..self.pos].iter().any(|b| !is_space(*b)) {
            DecodeError::UnexpectedEof
        } else {
            DecodeError::Eof
        }
    }

    fn syntax(&self, c: u8, context: &str) -> DecodeError {
        DecodeError::Syntax(format!("invalid character {} {context}", go_quote_byte(c)))
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Records a type mismatch; Go reports only the first, after the whole value is read.
    pub(crate) fn save(&mut self, e: TypeError) {
        if self.saved.is_none() {
            self.saved = Some(e);
        }
    }

    /// Skips the value of `kind` (validating it) and records that it cannot go into `go_type`.
    pub(crate) fn mismatch(
        &mut self,
        kind: Kind,
        go_type: &'static str,
        field: Option<(&'static str, &'static str)>,
    ) -> Result<(), DecodeError> {
        let value = kind.go_name().to_owned();
        self.skip_value()?;
        self.save(TypeError {
            value,
            go_type,
            field,
        });
        Ok(())
    }

    /// Skips whitespace and classifies the next value without consuming it.
    pub(crate) fn begin(&mut self) -> Result<Kind, DecodeError> {
        self.skip_ws();
        let c = self.peek().ok_or_else(|| self.need())?;
        Ok(match c {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'-' | b'0'..=b'9' => Kind::Number,
            b't' => Kind::True,
            b'f' => Kind::False,
            b'n' => Kind::Null,
            _ => return Err(self.syntax(c, "looking for beginning of value")),
        })
    }

    /// Consumes the `{` or `[` that [`Reader::begin`] saw.
    pub(crate) fn enter(&mut self) -> Result<(), DecodeError> {
        let c = self.buf[self.pos];
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax(c, "exceeded max depth"));
        }
        Ok(())
    }

    /// Inside an object: the next key (consuming the `:` after it), or `None` at the closing `}`.
    pub(crate) fn next_key(&mut self, first: bool) -> Result<Option<String>, DecodeError> {
        self.skip_ws();
        let c = self.peek().ok_or_else(|| self.need())?;
        if c == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        if !first {
            if c != b',' {
                return Err(self.syntax(c, "after object key:value pair"));
            }
            self.pos += 1;
            self.skip_ws();
        }
        let c = self.peek().ok_or_else(|| self.need())?;
        if c != b'"' {
            return Err(self.syntax(c, "looking for beginning of object key string"));
        }
        let key = self.read_string()?;
        self.skip_ws();
        let c = self.peek().ok_or_else(|| self.need())?;
        if c != b':' {
            return Err(self.syntax(c, "after object key"));
        }
        self.pos += 1;
        Ok(Some(key))
    }

    /// Inside an array: whether another element follows (consuming the `,`), `false` at the `]`.
    pub(crate) fn next_elem(&mut self, first: bool) -> Result<bool, DecodeError> {
        self.skip_ws();
        let c = self.peek().ok_or_else(|| self.need())?;
        match c {
            b']' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ if first => Ok(true),
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.syntax(c, "after array element")),
        }
    }

    fn take(&mut self) -> Result<u8, DecodeError> {
        let c = self.peek().ok_or_else(|| self.need())?;
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let mut v = 0;
        for _ in 0..4 {
            let c = self.peek().ok_or_else(|| self.need())?;
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.syntax(c, "in \\u hexadecimal character escape"))?;
            self.pos += 1;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// A following `\uXXXX` escape, if the visible bytes hold one, without consuming it.
    fn peek_u4(&self) -> Option<u32> {
        let s = self.buf.get(self.pos..self.pos + 6)?;
        if s[0] != b'\\' || s[1] != b'u' {
            return None;
        }
        let hex = std::str::from_utf8(&s[2..]).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    }

    /// Reads a string literal starting at its opening quote and unescapes it as Go does.
    pub(crate) fn read_string(&mut self) -> Result<String, DecodeError> {
        self.pos += 1;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            let c = self.take()?;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.take()?;
                    match e {
                        b'"' | b'\\' | b'/' => raw.push(e),
                        b'b' => raw.push(8),
                        b'f' => raw.push(12),
                        b'n' => raw.push(b'\n'),
                        b'r' => raw.push(b'\r'),
                        b't' => raw.push(b'\t'),
                        b'u' => {
                            let mut r = self.hex4()?;
                            if (0xD800..0xE000).contains(&r) {
                                let pair = self
                                    .peek_u4()
                                    .filter(|_| r < 0xDC00)
                                    .filter(|lo| (0xDC00..0xE000).contains(lo));
                                match pair {
                                    Some(lo) => {
                                        self.pos += 6;
                                        r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
                                    }
                                    None => r = 0xFFFD,
                                }
                            }
                            let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
                            let mut tmp = [0u8; 4];
                            raw.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.syntax(e, "in string escape code"));
                        }
                    }
                }
                c if c < 0x20 => {
                    self.pos -= 1;
                    return Err(self.syntax(c, "in string literal"));
                }
                c => raw.push(c),
            }
        }
        Ok(go_lossy_utf8(raw))
    }

    /// Reads a number literal; returns its text.
    pub(crate) fn read_number(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.take()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            c => {
                self.pos -= 1;
                return Err(self.syntax(c, "in numeric literal"));
            }
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            match self.peek() {
                None => return Err(self.need()),
                Some(b'0'..=b'9') => self.digits(),
                Some(c) => return Err(self.syntax(c, "after decimal point in numeric literal")),
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            match self.peek() {
                None => return Err(self.need()),
                Some(b'0'..=b'9') => self.digits(),
                Some(c) => return Err(self.syntax(c, "in exponent of numeric literal")),
            }
        }
        // Only ASCII digits, signs, '.', 'e' were consumed.
        Ok(std::str::from_utf8(&self.buf[start..self.pos]).unwrap_or("0"))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Reads `true`, `false` or `null`.
    pub(crate) fn read_literal(&mut self) -> Result<Kind, DecodeError> {
        let (word, kind): (&[u8], Kind) = match self.peek() {
            Some(b't') => (b"true", Kind::True),
            Some(b'f') => (b"false", Kind::False),
            _ => (b"null", Kind::Null),
        };
        let name = std::str::from_utf8(word).unwrap_or("null");
        self.pos += 1;
        for &want in &word[1..] {
            let c = self.peek().ok_or_else(|| self.need())?;
            if c != want {
                let ctx = format!("in literal {name} (expecting {})", go_quote_byte(want));
                return Err(self.syntax(c, &ctx));
            }
            self.pos += 1;
        }
        Ok(kind)
    }

    /// Skips one value of any shape, validating its syntax.
    pub(crate) fn skip_value(&mut self) -> Result<(), DecodeError> {
        // (is_object, first) per open container.
        let mut stack: Vec<(bool, bool)> = Vec::new();
        loop {
            match self.begin()? {
                k @ (Kind::Object | Kind::Array) => {
                    self.enter()?;
                    stack.push((k == Kind::Object, true));
                }
                Kind::String => {
                    self.read_string()?;
                }
                Kind::Number => {
                    self.read_number()?;
                }
                _ => {
                    self.read_literal()?;
                }
            }
            loop {
                let Some((is_object, first)) = stack.last_mut() else {
                    return Ok(());
                };
                let more = if *is_object {
                    self.next_key(*first)?.is_some()
                } else {
                    self.next_elem(*first)?
                };
                *first = false;
                if more {
                    break;
                }
                stack.pop();
            }
        }
    }

    /// Reads one value as Go decodes it into `any`. A number that overflows `float64` is a type
    /// error attributed to `field`, as Go does.
    pub(crate) fn read_any(
        &mut self,
        field: Option<(&'static str, &'static str)>,
    ) -> Result<AnyValue, DecodeError> {
        struct Frame {
            open: Open,
            /// The key whose value is being read (objects only).
            key: Option<String>,
            first: bool,
        }
        let mut b = Builder::default();
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let mut done = match self.begin()? {
                k @ (Kind::Object | Kind::Array) => {
                    self.enter()?;
                    let id = b.reserve();
                    let open = if k == Kind::Object {
                        Open::Object(id, Default::default())
                    } else {
                        Open::Array(id, Vec::new())
                    };
                    stack.push(Frame {
                        open,
                        key: None,
                        first: true,
                    });
                    None
                }
                Kind::String => {
                    let s = self.read_string()?;
                    Some(b.string(s))
                }
                Kind::Number => {
                    let lit = self.read_number()?;
                    let n: f64 = lit.parse().unwrap_or(f64::INFINITY);
                    if n.is_infinite() {
                        self.save(TypeError {
                            value: format!("number {lit}"),
                            go_type: "float64",
                            field,
                        });
                        Some(b.null())
                    } else {
                        Some(b.number(n))
                    }
                }
                _ => Some(match self.read_literal()? {
                    Kind::True => b.bool(true),
                    Kind::False => b.bool(false),
                    _ => b.null(),
                }),
            };
            loop {
                // Attach a finished value to its parent, or return it if it is the root.
                if let Some(child) = done.take() {
                    match stack.last_mut() {
                        None => return Ok(b.finish()),
                        Some(Frame {
                            open: Open::Array(_, items),
                            ..
                        }) => items.push(child),
                        Some(Frame {
                            open: Open::Object(_, map),
                            key,
                            ..
                        }) => {
                            map.insert(key.take().unwrap_or_default(), child);
                        }
                    }
                }
                let Some(top) = stack.last_mut() else {
                    return Ok(b.finish());
                };
                let first = std::mem::replace(&mut top.first, false);
                let more = match top.open {
                    Open::Array(..) => self.next_elem(first)?,
                    Open::Object(..) => match self.next_key(first)? {
                        Some(k) => {
                            top.key = Some(k);
                            true
                        }
                        None => false,
                    },
                };
                if more {
                    break;
                }
                if let Some(frame) = stack.pop() {
                    done = Some(b.close(frame.open));
                }
            }
        }
    }
}

/// Go's unquote rule for raw bytes: each byte that does not start a valid UTF-8 sequence becomes
/// one U+FFFD (Rust's `from_utf8_lossy` would merge a broken sequence into one replacement).
fn go_lossy_utf8(raw: Vec<u8>) -> String {
    match String::from_utf8(raw) {
        Ok(s) => s,
        Err(e) => {
            let raw = e.into_bytes();
            let mut out = String::with_capacity(raw.len() + 8);
            let mut rest: &[u8] = &raw;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        return out;
                    }
                    Err(e) => {
                        let ok = e.valid_up_to();
                        // The prefix up to `valid_up_to` is valid UTF-8 by definition.
                        out.push_str(std::str::from_utf8(&rest[..ok]).unwrap_or(""));
                        out.push('\u{FFFD}');
                        rest = &rest[ok + 1..];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(s: &str) -> Result<AnyValue, DecodeError> {
        Reader::decode(s.as_bytes(), None, |r, _| r.read_any(None))
    }

    #[test]
    fn lossy_utf8_replaces_each_bad_byte() {
        assert_eq!(
            go_lossy_utf8(vec![b'a', 0xE2, 0x82, b'b']),
            "a\u{FFFD}\u{FFFD}b"
        );
        assert_eq!(
            go_lossy_utf8(vec![0xED, 0xA0, 0x80]),
            "\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn surrogates_pair_or_replace() {
        let v = any(r#""\ud83d\ude00 \ud800x \udc00\ud800\udc00""#).unwrap();
        assert_eq!(v.as_str(), Some("\u{1F600} \u{FFFD}x \u{FFFD}\u{10000}"));
    }

    #[test]
    fn objects_and_arrays_nest() {
        let v = any(r#" {"b":[1,{"c":null}],"a":true,"b":[]} "#).unwrap();
        assert_eq!(format!("{v:?}"), r#"{"a":true,"b":[]}"#);
        let v = any(r#"[[],{},[{}]]"#).unwrap();
        assert_eq!(format!("{v:?}"), r#"[[],{},[{}]]"#);
    }

    #[test]
    fn deep_nesting_is_fine_until_go_limit() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        let v = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let v = any(&ok).unwrap();
                let s = super::super::gowrite::encode_any(&v);
                drop(v);
                s.len()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(v, 2 * MAX_DEPTH);
        let too_deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            any(&too_deep),
            Err(DecodeError::Syntax(
                "invalid character '[' exceeded max depth".into()
            ))
        );
    }
}
