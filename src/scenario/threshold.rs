//! Pass/fail thresholds: `"join_time.p99 <= 3s"` parsed into metric, comparator and typed value.
//!
//! The metric decides the unit of its value (duration, percentage or count), so a threshold that
//! compares a latency with a percentage cannot be written down.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use super::units::{Percent, format_duration, parse_duration, parse_percent};

/// A statistic of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest sample.
    Max,
    /// Arithmetic mean.
    Mean,
}

impl Stat {
    const ALL: [Stat; 7] = [
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::Max,
        Stat::Mean,
    ];

    /// The suffix used in metric names (`p99`, `max`, …).
    pub fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
            Stat::Mean => "mean",
        }
    }

    /// The quantile in `0.0..=1.0` for percentile statistics; `None` for the mean.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::P50 => Some(0.5),
            Stat::P90 => Some(0.9),
            Stat::P95 => Some(0.95),
            Stat::P99 => Some(0.99),
            Stat::P999 => Some(0.999),
            Stat::Max => Some(1.0),
            Stat::Mean => None,
        }
    }
}

/// What a threshold measures. Latency metrics take a statistic suffix (`join_time.p99`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "metric", content = "stat")]
pub enum Metric {
    /// Scheduled join time → session connected (ICE and DTLS up), per session.
    JoinTime(Stat),
    /// Scheduled join time → first media packet received, per session.
    FirstMedia(Stat),
    /// One-way media latency, sender → SFU → receiver, per received packet.
    Latency(Stat),
    /// RFC 3550 interarrival jitter, per received stream.
    Jitter(Stat),
    /// Lost packets ÷ expected packets over every received stream, after retransmission.
    Loss,
    /// Sessions that never connected ÷ sessions scheduled to join.
    JoinFailures,
    /// Sessions that dropped out of a call without a planned leave (a count).
    Disconnects,
}

/// The unit a metric's threshold value is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A duration such as `"3s"`.
    Duration,
    /// A percentage such as `"1%"`.
    Percent,
    /// A whole number.
    Count,
}

impl Metric {
    /// The metric names a threshold can use, for error messages and docs.
    pub fn names() -> Vec<String> {
        let mut names = Vec::new();
        for family in ["join_time", "first_media", "latency", "jitter"] {
            for stat in Stat::ALL {
                names.push(format!("{family}.{}", stat.name()));
            }
        }
        names.extend(["loss", "join_failures", "disconnects"].map(String::from));
        names
    }

    /// The unit of this metric's values.
    pub fn unit(self) -> Unit {
        match self {
            Metric::JoinTime(_)
            | Metric::FirstMedia(_)
            | Metric::Latency(_)
            | Metric::Jitter(_) => Unit::Duration,
            Metric::Loss | Metric::JoinFailures => Unit::Percent,
            Metric::Disconnects => Unit::Count,
        }
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(name: &str) -> Result<Metric, String> {
        let unknown = || {
            format!(
                "unknown metric \"{name}\", expected one of: {}",
                "join_time.<stat>, first_media.<stat>, latency.<stat>, jitter.<stat> \
                 (stat: p50, p90, p95, p99, p999, max, mean), loss, join_failures, disconnects"
            )
        };
        match name {
            "loss" => return Ok(Metric::Loss),
            "join_failures" => return Ok(Metric::JoinFailures),
            "disconnects" => return Ok(Metric::Disconnects),
            _ => {}
        }
        let (family, stat) = name.split_once('.').ok_or_else(unknown)?;
        let stat = Stat::ALL
            .into_iter()
            .find(|s| s.name() == stat)
            .ok_or_else(unknown)?;
        match family {
            "join_time" => Ok(Metric::JoinTime(stat)),
            "first_media" => Ok(Metric::FirstMedia(stat)),
            "latency" => Ok(Metric::Latency(stat)),
            "jitter" => Ok(Metric::Jitter(stat)),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::JoinTime(s) => write!(f, "join_time.{}", s.name()),
            Metric::FirstMedia(s) => write!(f, "first_media.{}", s.name()),
            Metric::Latency(s) => write!(f, "latency.{}", s.name()),
            Metric::Jitter(s) => write!(f, "jitter.{}", s.name()),
            Metric::Loss => f.write_str("loss"),
            Metric::JoinFailures => f.write_str("join_failures"),
            Metric::Disconnects => f.write_str("disconnects"),
        }
    }
}

/// How the measured value must compare with the threshold value for the run to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Comparator {
    /// `<`
    #[serde(rename = "<")]
    Less,
    /// `<=`
    #[serde(rename = "<=")]
    LessOrEqual,
    /// `>`
    #[serde(rename = ">")]
    Greater,
    /// `>=`
    #[serde(rename = ">=")]
    GreaterOrEqual,
}

impl Comparator {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Less => "<",
            Comparator::LessOrEqual => "<=",
            Comparator::Greater => ">",
            Comparator::GreaterOrEqual => ">=",
        }
    }

    /// Whether `measured <op> limit` holds.
    pub fn holds<T: PartialOrd>(self, measured: T, limit: T) -> bool {
        match self {
            Comparator::Less => measured < limit,
            Comparator::LessOrEqual => measured <= limit,
            Comparator::Greater => measured > limit,
            Comparator::GreaterOrEqual => measured >= limit,
        }
    }
}

/// A threshold value in the unit its metric requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// For latency metrics.
    Duration(Duration),
    /// For ratio metrics.
    Percent(Percent),
    /// For count metrics.
    Count(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Duration(d) => f.write_str(&format_duration(*d)),
            Limit::Percent(p) => p.fmt(f),
            Limit::Count(n) => n.fmt(f),
        }
    }
}

/// One pass/fail condition: the run fails (exit code 1) when a measured value breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Threshold {
    metric: Metric,
    comparator: Comparator,
    limit: Limit,
}

impl Threshold {
    /// A threshold, if `limit` is in the unit `metric` is measured in.
    pub fn new(metric: Metric, comparator: Comparator, limit: Limit) -> Option<Threshold> {
        let unit_matches = matches!(
            (metric.unit(), limit),
            (Unit::Duration, Limit::Duration(_))
                | (Unit::Percent, Limit::Percent(_))
                | (Unit::Count, Limit::Count(_))
        );
        unit_matches.then_some(Threshold {
            metric,
            comparator,
            limit,
        })
    }

    /// What is measured.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// How the measured value must compare with the limit.
    pub fn comparator(&self) -> Comparator {
        self.comparator
    }

    /// The limit, in the metric's unit.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Whether a measured value of the same unit passes. A value of another unit never passes.
    pub fn passes(&self, measured: Limit) -> bool {
        match (measured, self.limit) {
            (Limit::Duration(m), Limit::Duration(l)) => self.comparator.holds(m, l),
            (Limit::Percent(m), Limit::Percent(l)) => self.comparator.holds(m, l),
            (Limit::Count(m), Limit::Count(l)) => self.comparator.holds(m, l),
            _ => false,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.metric,
            self.comparator.symbol(),
            self.limit
        )
    }
}

impl FromStr for Threshold {
    type Err = String;

    /// Parses `"<metric> <op> <value>"`; spaces around the operator are optional.
    fn from_str(text: &str) -> Result<Threshold, String> {
        let op_start = text.find(['<', '>', '=', '!']).ok_or_else(|| {
            format!(
                "expected a threshold like \"join_time.p99 <= 3s\" (metric, one of < <= > >=, value), found \"{text}\""
            )
        })?;
        let metric: Metric = text[..op_start].trim().parse()?;
        let rest = &text[op_start..];
        let (comparator, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Comparator::LessOrEqual, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Comparator::GreaterOrEqual, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Comparator::Less, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Comparator::Greater, v)
        } else {
            let op: String = rest.chars().take_while(|c| "<>=!".contains(*c)).collect();
            return Err(format!(
                "unknown comparator \"{op}\" in \"{text}\", expected one of: < <= > >="
            ));
        };
        let value = value.trim();
        let limit = match metric.unit() {
            Unit::Duration => Limit::Duration(
                parse_duration(value).map_err(|e| format!("{metric} is a duration: {e}"))?,
            ),
            Unit::Percent => Limit::Percent(
                parse_percent(value).map_err(|e| format!("{metric} is a percentage: {e}"))?,
            ),
            Unit::Count => Limit::Count(value.parse().map_err(|_| {
                format!("{metric} is a count: expected a whole number, found \"{value}\"")
            })?),
        };
        Ok(Threshold {
            metric,
            comparator,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_into_typed_parts() {
        let t: Threshold = "join_time.p99 <= 3s".parse().unwrap();
        assert_eq!(t.metric(), Metric::JoinTime(Stat::P99));
        assert_eq!(t.comparator(), Comparator::LessOrEqual);
        assert_eq!(t.limit(), Limit::Duration(Duration::from_secs(3)));
        let t: Threshold = "loss<1%".parse().unwrap();
        assert_eq!(t.limit(), Limit::Percent(parse_percent("1%").unwrap()));
        assert_eq!(t.to_string(), "loss < 1%");
        let t: Threshold = "disconnects <= 0".parse().unwrap();
        assert_eq!(t.limit(), Limit::Count(0));
        assert!(Threshold::new(Metric::Loss, Comparator::Less, Limit::Count(1)).is_none());
    }

    #[test]
    fn bad_thresholds_name_the_problem() {
        let err = "join_latency <= 3s".parse::<Threshold>().unwrap_err();
        assert!(err.starts_with("unknown metric \"join_latency\""), "{err}");
        let err = "loss <= 3s".parse::<Threshold>().unwrap_err();
        assert!(
            err.starts_with("loss is a percentage: expected a percentage"),
            "{err}"
        );
        let err = "join_time.p99 == 3s".parse::<Threshold>().unwrap_err();
        assert!(err.starts_with("unknown comparator \"==\""), "{err}");
        let err = "loss".parse::<Threshold>().unwrap_err();
        assert!(err.starts_with("expected a threshold like"), "{err}");
    }

    #[test]
    fn comparison_follows_the_operator() {
        let t: Threshold = "join_time.p99 <= 3s".parse().unwrap();
        assert!(t.passes(Limit::Duration(Duration::from_secs(3))));
        assert!(!t.passes(Limit::Duration(Duration::from_millis(3001))));
        assert!(!t.passes(Limit::Count(0)));
        let t: Threshold = "disconnects > 2".parse().unwrap();
        assert!(t.passes(Limit::Count(3)) && !t.passes(Limit::Count(2)));
    }

    #[test]
    fn every_listed_name_parses() {
        for name in Metric::names() {
            let metric: Metric = name.parse().unwrap();
            assert_eq!(metric.to_string(), name);
        }
    }
}
