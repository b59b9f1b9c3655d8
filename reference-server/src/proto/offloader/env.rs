//! `input_data` → container environment (offloader.md §4.2): `UPPER(key)=<fmt %v of value>`.
//!
//! Upstream builds the list from a Go map, so its order is random; here it is sorted by key, which
//! is one of the orders Go can produce. Keys are upper-cased with Go's `strings.ToUpper`, which maps
//! each character to its single-character upper case (`ß` stays `ß`, where Rust's full mapping
//! would give `SS`). No key or value is sanitised, exactly as upstream.

use super::gowrite::fmt_any;
use super::job::InputData;

/// The env entries (`KEY=value`) a job container gets from `input_data`.
pub fn input_data_to_env(data: &InputData) -> Vec<String> {
    data.iter()
        .map(|(k, v)| format!("{}={}", go_to_upper(k), fmt_any(v)))
        .collect()
}

/// Go's `strings.ToUpper`: per-character simple upper-case mapping.
pub fn go_to_upper(s: &str) -> String {
    s.chars().map(simple_upper).collect()
}

/// Unicode simple upper case. Rust exposes the full mapping; where that is one character it is the
/// simple one. Where it expands (`ß`, ligatures, Greek with iota subscript…), the simple mapping is
/// the character itself except for the Greek iota-subscript lower-case letters, which map to their
/// title-case forms.
fn simple_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => match c as u32 {
            cp @ (0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7) => {
                char::from_u32(cp + 8).unwrap_or(c)
            }
            0x1FB3 => '\u{1FBC}',
            0x1FC3 => '\u{1FCC}',
            0x1FF3 => '\u{1FFC}',
            _ => c,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_upper_uses_simple_mapping() {
        assert_eq!(go_to_upper("site_url"), "SITE_URL");
        assert_eq!(go_to_upper("straße"), "STRAßE");
        assert_eq!(go_to_upper("ﬁle"), "ﬁLE");
        assert_eq!(go_to_upper("ᾀ"), "ᾈ");
        assert_eq!(go_to_upper("ǆ"), "Ǆ");
        // Expected text printed by Go 1.23.6 strings.ToUpper.
        assert_eq!(go_to_upper("ᾲᾳᾴᾷῂῃῄῇῲῳῴῷᾈ"), "ᾲᾼᾴᾷῂῌῄῇῲῼῴῷᾈ");
    }
}
