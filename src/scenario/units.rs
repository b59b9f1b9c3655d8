//! Scalar units of a scenario file: durations (`"30s"`), percentages (`"1.5%"`) and rates (`"5/s"`).
//!
//! All three are parsed from strings into exact integers (nanoseconds, millionths of a whole, milli-events)
//! so that plan expansion is integer arithmetic and gives the same result on every machine. The parse
//! errors are plain strings; the caller attaches the file position.

use std::fmt;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Parses a duration such as `"30s"`, `"2m"`, `"500ms"`, `"1.5s"` or `"1m30s"`.
///
/// Units: `h`, `m`, `s`, `ms`, `us`. Each part is a non-negative decimal number followed by a unit;
/// parts may be concatenated. Sub-nanosecond digits are rejected rather than rounded.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = r#"expected a duration like "30s", "2m", "500ms" or "1m30s""#;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{EXPECTED}, found an empty string"));
    }
    if text.starts_with('-') {
        return Err(format!("{EXPECTED}, found the negative value \"{text}\""));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("{EXPECTED}, found \"{text}\""));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit = unit.trim();
        let nanos_per_unit: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "" => {
                return Err(format!(
                    "{EXPECTED}, found \"{text}\" (the number {number} has no unit)"
                ));
            }
            other => {
                return Err(format!(
                    "{EXPECTED}, found the unknown unit \"{other}\" in \"{text}\" (units: h, m, s, ms, us)"
                ));
            }
        };
        let nanos = scale_decimal(number, nanos_per_unit)
            .ok_or_else(|| format!("{EXPECTED}, found \"{text}\""))?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| format!("duration \"{text}\" is too long"))?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| format!("duration \"{text}\" is too long"))?;
    // The remainder of a division by 1e9 always fits in u32.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Multiplies the decimal `number` (digits with at most one dot) by `scale`, exactly.
///
/// Returns `None` when the text is not a decimal, or when it has more fractional digits than the
/// scale can represent exactly (so "0.0000000001s" is an error, not zero).
fn scale_decimal(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 38 {
        return None;
    }
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_value.checked_mul(scale)?;
    if !frac.is_empty() {
        let frac_value: u128 = frac.parse().ok()?;
        let denominator = 10u128.checked_pow(frac.len() as u32)?;
        let product = frac_value.checked_mul(scale)?;
        if product % denominator != 0 {
            return None;
        }
        value = value.checked_add(product / denominator)?;
    }
    Some(value)
}

/// Formats a duration the way scenario files write it (`"1m30s"`, `"500ms"`, `"0s"`).
pub fn format_duration(duration: Duration) -> String {
    let mut nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= size {
            out.push_str(&format!("{}{unit}", nanos / size));
            nanos %= size;
        }
    }
    out
}

/// A percentage held exactly as millionths of a whole: `"1%"` is 10 000, `"100%"` is 1 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Percent(u32);

impl Percent {
    /// 0 %.
    pub const ZERO: Percent = Percent(0);
    /// 100 %.
    pub const HUNDRED: Percent = Percent(Self::WHOLE);
    /// Millionths in a whole (100 %).
    pub const WHOLE: u32 = 1_000_000;

    /// Builds a percentage from millionths of a whole; `None` above 100 %.
    pub fn from_millionths(millionths: u32) -> Option<Percent> {
        (millionths <= Self::WHOLE).then_some(Percent(millionths))
    }

    /// The value in millionths of a whole (100 % = 1 000 000).
    pub fn millionths(self) -> u32 {
        self.0
    }

    /// The value as a fraction in `0.0..=1.0`, for consumers that compute in floating point.
    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / f64::from(Self::WHOLE)
    }

    /// `self × n`, rounded down.
    pub fn of(self, n: u64) -> u64 {
        // u64 × u32 fits in u128; the quotient is at most n.
        (u128::from(n) * u128::from(self.0) / u128::from(Self::WHOLE)) as u64
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{frac:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// Parses a percentage written as a string with a `%` sign: `"1%"`, `"0.5%"`, `"100%"`.
///
/// Up to four decimals; the value must lie in 0..=100 %.
pub fn parse_percent(text: &str) -> Result<Percent, String> {
    const EXPECTED: &str = r#"expected a percentage like "1%" or "0.5%" (0% to 100%)"#;
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!("{EXPECTED}, found the negative value \"{text}\""));
    }
    let Some(number) = trimmed.strip_suffix('%') else {
        return Err(format!("{EXPECTED}, found \"{text}\" (missing the % sign)"));
    };
    let millionths = scale_decimal(number.trim(), 10_000)
        .ok_or_else(|| format!("{EXPECTED}, found \"{text}\""))?;
    u32::try_from(millionths)
        .ok()
        .and_then(Percent::from_millionths)
        .ok_or_else(|| format!("{EXPECTED}, found \"{text}\" (above 100%)"))
}

/// An event rate: `count` events per `per`, e.g. `"5/s"`, `"0.5/s"`, `"30/m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rate {
    milli_events: u64,
    per: Duration,
}

impl Rate {
    /// Events per [`Rate::per`], in thousandths (so `"0.5/s"` is 500); never zero.
    pub fn milli_events(self) -> u64 {
        self.milli_events
    }

    /// The time unit the count refers to (1 s, 1 min or 1 h).
    pub fn per(self) -> Duration {
        self.per
    }

    /// Number of events in `window`, rounded to the nearest integer (halves round up).
    pub fn events_in(self, window: Duration) -> u64 {
        let numerator = u128::from(self.milli_events) * window.as_nanos();
        let denominator = 1000 * self.per.as_nanos();
        ((numerator + denominator / 2) / denominator).min(u128::from(u64::MAX)) as u64
    }

    /// How long `events` events take at this rate, rounded up to the nanosecond.
    pub fn time_for(self, events: u64) -> Duration {
        let numerator = u128::from(events) * 1000 * self.per.as_nanos();
        let denominator = u128::from(self.milli_events);
        let nanos = numerator.div_ceil(denominator);
        duration_from_nanos(nanos)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.milli_events / 1000;
        let frac = self.milli_events % 1000;
        let unit = format_duration(self.per);
        let unit = unit.strip_prefix('1').unwrap_or(&unit);
        if frac == 0 {
            write!(f, "{whole}/{unit}")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{}/{unit}", digits.trim_end_matches('0'))
        }
    }
}

/// Parses a rate such as `"5/s"`, `"0.5/s"`, `"30/m"` or `"100/h"`. The rate must be positive.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    const EXPECTED: &str = r#"expected a rate like "5/s", "0.5/s" or "30/m""#;
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!("{EXPECTED}, found the negative value \"{text}\""));
    }
    let Some((count, unit)) = trimmed.split_once('/') else {
        return Err(format!("{EXPECTED}, found \"{text}\""));
    };
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => {
            return Err(format!(
                "{EXPECTED}, found the unknown unit \"{other}\" (units: s, m, h)"
            ));
        }
    };
    let milli = scale_decimal(count.trim(), 1000)
        .and_then(|m| u64::try_from(m).ok())
        .ok_or_else(|| format!("{EXPECTED}, found \"{text}\""))?;
    if milli == 0 {
        return Err(format!("{EXPECTED}, found the zero rate \"{text}\""));
    }
    Ok(Rate {
        milli_events: milli,
        per,
    })
}

/// Parses a wall-clock time for `--start-at`: RFC 3339 (`2026-11-22T12:00:00Z`,
/// `2026-11-22T13:00:00.5+01:00`) or `@<unix seconds>` (`@1795000000`).
pub fn parse_wall_clock(text: &str) -> Result<SystemTime, String> {
    let expected = || {
        format!(
            "expected a wall-clock time like \"2026-11-22T12:00:00Z\" (RFC 3339) or \"@1795000000\" (unix seconds), found \"{text}\""
        )
    };
    let text = text.trim();
    if let Some(secs) = text.strip_prefix('@') {
        let nanos = scale_decimal(secs, 1_000_000_000).ok_or_else(expected)?;
        return Ok(UNIX_EPOCH + duration_from_nanos(nanos));
    }
    let b = text.as_bytes();
    let digits = |range: Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(expected());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(expected());
    }
    let (year, month, day) = (
        digits(0..4).ok_or_else(expected)?,
        digits(5..7).ok_or_else(expected)?,
        digits(8..10).ok_or_else(expected)?,
    );
    let (hour, minute, second) = (
        digits(11..13).ok_or_else(expected)?,
        digits(14..16).ok_or_else(expected)?,
        digits(17..19).ok_or_else(expected)?,
    );
    let mut rest = &text[19..];
    let mut nanos: u128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        nanos =
            scale_decimal(&format!("0.{}", &frac[..len]), 1_000_000_000).ok_or_else(expected)?;
        rest = &frac[len..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(expected()),
            };
            let (h, m) = rest[1..].split_once(':').ok_or_else(expected)?;
            if h.len() != 2 || m.len() != 2 {
                return Err(expected());
            }
            let (h, m): (i64, i64) = (
                h.parse().map_err(|_| expected())?,
                m.parse().map_err(|_| expected())?,
            );
            if h > 23 || m > 59 {
                return Err(expected());
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(expected());
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (civil-from-days inverted).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).map_err(|_| expected())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs) + duration_from_nanos(nanos))
}

/// Builds a `Duration` from nanoseconds held in a u128, saturating at `Duration::MAX`.
pub(crate) fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = nanos / 1_000_000_000;
    match u64::try_from(secs) {
        // The remainder of a division by 1e9 always fits in u32.
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_exactly() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_what_was_expected() {
        for bad in [
            "",
            "30",
            "-1s",
            "3 parsecs",
            "1.2.3s",
            "s",
            "0.0000000001s",
            "1d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.starts_with("expected a duration like"),
                "{bad:?}: {err}"
            );
        }
        assert!(parse_duration("30").unwrap_err().contains("has no unit"));
        assert!(
            parse_duration("1d")
                .unwrap_err()
                .contains("unknown unit \"d\"")
        );
    }

    #[test]
    fn durations_format_back() {
        for text in ["0s", "30s", "2m", "500ms", "1m30s", "1h", "250us"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn percentages_parse_exactly() {
        assert_eq!(parse_percent("1%").unwrap().millionths(), 10_000);
        assert_eq!(parse_percent("0.5%").unwrap().millionths(), 5_000);
        assert_eq!(parse_percent("100%").unwrap(), Percent::HUNDRED);
        assert_eq!(parse_percent("0%").unwrap(), Percent::ZERO);
        assert_eq!(parse_percent("12.3456%").unwrap().to_string(), "12.3456%");
        assert!(parse_percent("-1%").unwrap_err().contains("negative"));
        assert!(
            parse_percent("1")
                .unwrap_err()
                .contains("missing the % sign")
        );
        assert!(parse_percent("101%").unwrap_err().contains("above 100%"));
        assert!(parse_percent("0.00001%").is_err());
        assert_eq!(Percent::from_millionths(250_000).unwrap().of(10), 2);
    }

    #[test]
    fn wall_clock_times_parse() {
        let t = parse_wall_clock("2026-11-22T12:00:00Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_348_800
        );
        let same = parse_wall_clock("2026-11-22T13:00:00+01:00").unwrap();
        assert_eq!(t, same);
        let frac = parse_wall_clock("1970-01-01T00:00:01.25Z").unwrap();
        assert_eq!(
            frac.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1250)
        );
        assert_eq!(parse_wall_clock("@1795348800").unwrap(), t);
        let leap = parse_wall_clock("2024-02-29T00:00:00Z").unwrap();
        assert_eq!(
            leap.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_709_164_800
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-22 12:00",
            "tomorrow",
            "2026-11-22T12:00:00",
            "@x",
        ] {
            assert!(
                parse_wall_clock(bad)
                    .unwrap_err()
                    .starts_with("expected a wall-clock time"),
                "{bad}"
            );
        }
    }

    #[test]
    fn rates_parse_and_count() {
        let rate = parse_rate("0.5/s").unwrap();
        assert_eq!(rate.milli_events(), 500);
        assert_eq!(rate.events_in(Duration::from_secs(10)), 5);
        assert_eq!(rate.time_for(5), Duration::from_secs(10));
        assert_eq!(rate.to_string(), "0.5/s");
        assert_eq!(
            parse_rate("30/m")
                .unwrap()
                .events_in(Duration::from_secs(60)),
            30
        );
        assert!(parse_rate("0/s").unwrap_err().contains("zero rate"));
        assert!(parse_rate("5/d").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("5").is_err());
        assert!(parse_rate("-5/s").unwrap_err().contains("negative"));
    }
}
