//! Published quantities: the text exactly as a benchmark table prints it ("60%", "0.5GB", "2.2Gbps",
//! "2m20s") together with its parsed value in base units.
//!
//! The tables keep the published text so a reader can diff them against the source document; the models
//! use the parsed value. Decimal prefixes throughout (1 GB = 10⁹ bytes, 1 Mbps = 10⁶ bit/s), as the
//! benchmark docs use them (calls-loadtest.md §2.5: "Mbps is taken as 10⁶ bit/s").

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a published quantity did not parse. The message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {text:?}: expected {expected}")]
pub struct QuantityError {
    kind: &'static str,
    text: String,
    expected: &'static str,
}

impl QuantityError {
    fn new(kind: &'static str, text: &str, expected: &'static str) -> Self {
        Self {
            kind,
            text: text.to_owned(),
            expected,
        }
    }
}

/// A quantity as published: the original text and its parsed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Published<Q> {
    text: String,
    value: Q,
}

impl<Q: Copy> Published<Q> {
    /// The text exactly as the source document prints it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed value.
    pub fn value(&self) -> Q {
        self.value
    }
}

impl<Q: FromStr<Err = QuantityError>> FromStr for Published<Q> {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            text: text.to_owned(),
            value: text.parse()?,
        })
    }
}

impl<'de, Q: FromStr<Err = QuantityError>> Deserialize<'de> for Published<Q> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PublishedVisitor<Q>(PhantomData<Q>);

        impl<Q: FromStr<Err = QuantityError>> Visitor<'_> for PublishedVisitor<Q> {
            type Value = Published<Q>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string with its unit, as published")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(PublishedVisitor(PhantomData))
    }
}

impl<Q> Serialize for Published<Q> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Splits "12.5Mbps" or "1.46 GB" into its number and unit. A leading "~" (approximate) is allowed.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let t = text.trim().trim_start_matches('~');
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..end].parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    Some((number, t[end..].trim()))
}

/// A percentage as published ("60%"), stored as the number before the sign.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match split_number(text) {
            Some((n, "%")) => Ok(Self(n)),
            _ => Err(QuantityError::new(
                "percentage",
                text,
                "a number followed by %, like \"60%\"",
            )),
        }
    }
}

/// A size in bytes, from "0.5GB", "4GB", "75MB" or "~273MB".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Bytes(pub f64);

impl Bytes {
    /// The size in decimal gigabytes, the unit the tables publish.
    pub fn gb(self) -> f64 {
        self.0 / 1e9
    }
}

impl FromStr for Bytes {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let scale = match split_number(text) {
            Some((n, "KB")) => n * 1e3,
            Some((n, "MB")) => n * 1e6,
            Some((n, "GB")) => n * 1e9,
            Some((n, "TB")) => n * 1e12,
            _ => {
                return Err(QuantityError::new(
                    "size",
                    text,
                    "a number followed by KB, MB, GB or TB, like \"0.5GB\"",
                ));
            }
        };
        Ok(Self(scale))
    }
}

/// A bit rate in bit/s, from "22Mbps", "2.2Gbps" or "64Kbps".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Bitrate(pub f64);

impl Bitrate {
    /// The rate in Mbit/s.
    pub fn mbps(self) -> f64 {
        self.0 / 1e6
    }
}

impl FromStr for Bitrate {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bps = match split_number(text) {
            Some((n, "bps")) => n,
            Some((n, "Kbps" | "kbps")) => n * 1e3,
            Some((n, "Mbps")) => n * 1e6,
            Some((n, "Gbps")) => n * 1e9,
            _ => {
                return Err(QuantityError::new(
                    "bit rate",
                    text,
                    "a number followed by bps, Kbps, Mbps or Gbps, like \"22Mbps\"",
                ));
            }
        };
        Ok(Self(bps))
    }
}

/// A storage rate in bytes per hour, from "0.5GB/hour".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct BytesPerHour(pub f64);

impl FromStr for BytesPerHour {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QuantityError::new(
                "storage rate",
                text,
                "a size followed by /hour, like \"0.5GB/hour\"",
            )
        };
        let size = text.trim().strip_suffix("/hour").ok_or_else(bad)?;
        let bytes: Bytes = size.parse().map_err(|_| bad())?;
        Ok(Self(bytes.0))
    }
}

/// A frame rate in frames per second, from "15fps".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fps(pub f64);

impl FromStr for Fps {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match split_number(text) {
            Some((n, "fps")) => Ok(Self(n)),
            _ => Err(QuantityError::new(
                "frame rate",
                text,
                "a number followed by fps, like \"15fps\"",
            )),
        }
    }
}

/// A speed factor (call duration over processing time), from "4.28x".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Factor(pub f64);

impl FromStr for Factor {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match split_number(text) {
            Some((n, "x")) if n > 0.0 => Ok(Self(n)),
            _ => Err(QuantityError::new(
                "speed factor",
                text,
                "a positive number followed by x, like \"4.28x\"",
            )),
        }
    }
}

/// A duration written as hours, minutes and seconds: "10m", "2m20s", "45s", "1h".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            QuantityError::new(
                "duration",
                text,
                "whole hours, minutes and seconds like \"2m20s\", \"45s\" or \"10m\"",
            )
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut seconds: u64 = 0;
        // Units must appear in order h, m, s, each at most once.
        let mut allowed = "hms";
        while !rest.is_empty() {
            let end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..end].parse().map_err(|_| bad())?;
            let unit = rest[end..].chars().next().ok_or_else(bad)?;
            let pos = allowed.find(unit).ok_or_else(bad)?;
            allowed = &allowed[pos + 1..];
            let mult = match unit {
                'h' => 3600,
                'm' => 60,
                _ => 1,
            };
            seconds = n
                .checked_mul(mult)
                .and_then(|s| s.checked_add(seconds))
                .ok_or_else(bad)?;
            rest = &rest[end + 1..];
        }
        Ok(Self(Duration::from_secs(seconds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_published_forms() {
        assert_eq!("60%".parse::<Percent>().unwrap(), Percent(60.0));
        assert_eq!("13.5%".parse::<Percent>().unwrap(), Percent(13.5));
        assert_eq!("0.5GB".parse::<Bytes>().unwrap(), Bytes(0.5e9));
        assert_eq!("1.46 GB".parse::<Bytes>().unwrap(), Bytes(1.46e9));
        assert_eq!("~273MB".parse::<Bytes>().unwrap(), Bytes(273e6));
        assert_eq!("2.2Gbps".parse::<Bitrate>().unwrap(), Bitrate(2.2e9));
        assert_eq!("5.25Mbps".parse::<Bitrate>().unwrap(), Bitrate(5.25e6));
        assert_eq!("64Kbps".parse::<Bitrate>().unwrap(), Bitrate(64e3));
        assert_eq!(
            "0.5GB/hour".parse::<BytesPerHour>().unwrap(),
            BytesPerHour(0.5e9)
        );
        assert_eq!("15fps".parse::<Fps>().unwrap(), Fps(15.0));
        assert_eq!("4.28x".parse::<Factor>().unwrap(), Factor(4.28));
        assert_eq!(
            "2m20s".parse::<Span>().unwrap(),
            Span(Duration::from_secs(140))
        );
        assert_eq!(
            "45s".parse::<Span>().unwrap(),
            Span(Duration::from_secs(45))
        );
        assert_eq!(
            "10m".parse::<Span>().unwrap(),
            Span(Duration::from_secs(600))
        );
    }

    #[test]
    fn rejects_malformed_text_with_what_was_expected() {
        let err = "60".parse::<Percent>().unwrap_err().to_string();
        assert!(err.contains("expected a number followed by %"), "{err}");
        assert!("22 Mb/s".parse::<Bitrate>().is_err());
        assert!("0.5GiB".parse::<Bytes>().is_err());
        assert!("-1%".parse::<Percent>().is_err());
        assert!("20s2m".parse::<Span>().is_err());
        assert!("0x".parse::<Factor>().is_err());
        assert!("".parse::<Span>().is_err());
    }

    #[test]
    fn published_keeps_the_text() {
        let p: Published<Bitrate> = "1.36Gbps".parse().unwrap();
        assert_eq!(p.text(), "1.36Gbps");
        assert_eq!(p.value(), Bitrate(1.36e9));
    }
}
