//! Text exactly as Go's standard library writes it: `encoding/json` output (HTML-safe string escaping,
//! `float64` formatting, sorted map keys), `fmt` `%v` of decoded JSON values and `strconv.Quote` (`%q`).
//!
//! The offloader's clients can see all three: JSON bodies byte for byte, `%v` in container env vars
//! (offloader.md §4.2) and `%q` inside error messages (§2.2). Facts follow Go 1.23 (the version the
//! offloader pins); escaping of `\b`/`\f` as short escapes dates from Go 1.22.

use unicode_general_category::{GeneralCategory, get_general_category};

use super::any::{AnyValue, Step, ValueRef, walk};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string the way Go's encoder does with HTML escaping on (its default):
/// `<`, `>`, `&`, U+2028 and U+2029 become `\u` escapes; `\b \f \n \r \t` use short escapes;
/// other control bytes become `\u00XX`; DEL and all other characters are written as they are.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Shortest round-trip decimal digits of a finite, non-zero `|x|` and the decimal exponent of the
/// first digit (`x = 0.d1d2… × 10^(exp+1)`). Rust's and Go's shortest formatting pick the same digits.
fn shortest_digits(x: f64) -> (String, i32) {
    let s = format!("{:e}", x.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `%f` layout of shortest digits (`strconv` `'f'` with precision -1).
fn layout_f(out: &mut String, digits: &str, exp: i32) {
    let dp = exp + 1;
    let nd = digits.len() as i32;
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.push_str(digits);
    } else if dp >= nd {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (dp - nd) as usize));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
}

/// `%e` layout of shortest digits with Go's at-least-two-digit exponent (`1e+06`, `1.5e-07`).
fn layout_e(out: &mut String, digits: &str, exp: i32) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// A `float64` as Go's `encoding/json` writes it: plain decimal for `1e-6 <= |x| < 1e21`, otherwise
/// exponent form with a two-digit negative exponent shortened (`1e-7`, `1e+21`).
pub fn json_float(x: f64) -> String {
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    if x == 0.0 {
        out.push('0');
        return out;
    }
    let (digits, exp) = shortest_digits(x);
    let abs = x.abs();
    if !(1e-6..1e21).contains(&abs) {
        layout_e(&mut out, &digits, exp);
        // Go trims "e-07" to "e-7" but leaves positive exponents alone.
        let n = out.len();
        if out.as_bytes()[n - 4] == b'e'
            && out.as_bytes()[n - 3] == b'-'
            && out.as_bytes()[n - 2] == b'0'
        {
            out.remove(n - 2);
        }
    } else {
        layout_f(&mut out, &digits, exp);
    }
    out
}

/// A `float64` as `fmt` prints it for `%v`: shortest `%g` with exponent form below 1e-4 or from 1e6
/// (`1500`, `0.5`, `1e+06`, `1.234567e+06`, `1e-05`).
pub fn fmt_float(x: f64) -> String {
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    if x == 0.0 {
        out.push('0');
        return out;
    }
    let (digits, exp) = shortest_digits(x);
    if !(-4..6).contains(&exp) {
        layout_e(&mut out, &digits, exp);
    } else {
        layout_f(&mut out, &digits, exp);
    }
    out
}

/// `v` encoded by Go's `encoding/json` (no trailing newline).
pub fn encode_any(v: &AnyValue) -> String {
    let mut out = String::new();
    push_json_any(&mut out, v);
    out
}

/// Appends `v` encoded by Go's `encoding/json`. Iterative, so any depth is safe.
pub fn push_json_any(out: &mut String, v: &AnyValue) {
    walk(v, |step| match step {
        Step::Scalar(s) => push_json_scalar(out, s),
        Step::Key(k) => {
            push_json_string(out, k);
            out.push(':');
        }
        Step::BeginArray => out.push('['),
        Step::EndArray => out.push(']'),
        Step::BeginObject => out.push('{'),
        Step::EndObject => out.push('}'),
        Step::Separator => out.push(','),
    });
}

fn push_json_scalar(out: &mut String, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push_str("null"),
        ValueRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        ValueRef::Number(n) => out.push_str(&json_float(n)),
        ValueRef::String(s) => push_json_string(out, s),
        // walk() reports containers as Begin/End steps, never as scalars.
        ValueRef::Array(_) | ValueRef::Object(_) => {}
    }
}

/// `fmt.Sprintf("%v", v)` for a value decoded from JSON: strings bare, `<nil>`, `[a b]`,
/// `map[k:v k2:v2]` with sorted keys. Iterative, so any depth is safe.
pub fn fmt_any(v: &AnyValue) -> String {
    let mut out = String::new();
    walk(v, |step| match step {
        Step::Scalar(ValueRef::Null) => out.push_str("<nil>"),
        Step::Scalar(ValueRef::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
        Step::Scalar(ValueRef::Number(n)) => out.push_str(&fmt_float(n)),
        Step::Scalar(ValueRef::String(s)) => out.push_str(s),
        Step::Scalar(ValueRef::Array(_) | ValueRef::Object(_)) => {}
        Step::Key(k) => {
            out.push_str(k);
            out.push(':');
        }
        Step::BeginArray => out.push('['),
        Step::BeginObject => out.push_str("map["),
        Step::EndArray | Step::EndObject => out.push(']'),
        Step::Separator => out.push(' '),
    });
    out
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Unicode 15.0 tables, as in Go 1.23.
pub fn go_is_print(c: char) -> bool {
    use GeneralCategory as G;
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
    )
}

/// Go's `strconv.Quote` (what `%q` prints for a string).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped_rune(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn push_escaped_rune(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if go_is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str("\\x");
            out.push(HEX[(c as usize) >> 4] as char);
            out.push(HEX[(c as usize) & 0xf] as char);
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// How Go's JSON scanner names an offending byte in a syntax error (`quoteChar`): the byte taken as a
/// Latin-1 character and quoted like `%q` but with single quotes; `'` and `"` are special-cased.
pub fn go_quote_byte(b: u8) -> String {
    match b {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        _ => {
            let mut out = String::from("'");
            push_escaped_rune(&mut out, char::from(b), '"');
            out.push('\'');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_floats_match_go() {
        let cases = [
            (1500.0, "1500"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (-0.0, "-0"),
            (1.2345678901234569e23, "1.2345678901234569e+23"),
            (1e-100, "1e-100"),
            (3.0, "3"),
        ];
        for (x, want) in cases {
            assert_eq!(json_float(x), want, "{x:e}");
        }
    }

    #[test]
    fn fmt_v_floats_match_go() {
        let cases = [
            (1500.0, "1500"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (3.0, "3"),
        ];
        for (x, want) in cases {
            assert_eq!(fmt_float(x), want, "{x:e}");
        }
    }

    #[test]
    fn quote_matches_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{7}\u{0}\u{7f}\n"), r#""\a\x00\x7f\n""#);
        assert_eq!(go_quote("é日本"), "\"é日本\"");
        assert_eq!(go_quote("\u{a0}\u{ad}\u{2028}"), r#""\u00a0\u00ad\u2028""#);
        assert_eq!(go_quote("\u{e0000}\u{1F600}"), "\"\\U000e0000\u{1F600}\"");
        assert_eq!(go_quote("\u{fffd}"), "\"\u{fffd}\"");
    }

    #[test]
    fn quote_byte_matches_quote_char() {
        assert_eq!(go_quote_byte(b'x'), "'x'");
        assert_eq!(go_quote_byte(b'\''), r"'\''");
        assert_eq!(go_quote_byte(b'"'), "'\"'");
        assert_eq!(go_quote_byte(0), r"'\x00'");
        assert_eq!(go_quote_byte(0xef), "'ï'");
        assert_eq!(go_quote_byte(0xa0), r"'\u00a0'");
        assert_eq!(go_quote_byte(0x85), r"'\u0085'");
    }

    #[test]
    fn json_string_escapes_html_and_separators() {
        let mut s = String::new();
        push_json_string(&mut s, "<a&b>\u{2028}\u{8}\u{c}\u{1}\u{7f}é\"\\");
        assert_eq!(
            s,
            r#""\u003ca\u0026b\u003e\u2028\b\f\u0001"#.to_owned() + "\u{7f}é\\\"\\\\\""
        );
    }
}
