//! rtcd's Prometheus metrics as the suite checks them (rtcd.md §5): the family table, and a reader
//! for the parts of the text exposition format the checks need (family kinds from `# TYPE`, sample
//! names, label values and values).
//!
//! The reader is deliberately small: it does not handle escaped quotes inside label values beyond
//! `\"`, `\\` and `\n`, nor timestamps, which no rtcd metric carries. A scrape the reader cannot
//! follow is reported by line number rather than guessed at.

use std::collections::BTreeMap;

/// A metric family's kind as `# TYPE` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "counter" => Some(Kind::Counter),
            "gauge" => Some(Kind::Gauge),
            "histogram" => Some(Kind::Histogram),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// rtcd's own metric families (rtcd.md §5 table), with kind and label names.
pub const RTCD_FAMILIES: &[(&str, Kind, &[&str])] = &[
    ("rtcd_rtc_sessions_total", Kind::Gauge, &["groupID"]),
    (
        "rtcd_rtc_rtp_tracks_total",
        Kind::Gauge,
        &["groupID", "direction", "type"],
    ),
    (
        "rtcd_rtc_rtp_tracks_writes_time",
        Kind::Histogram,
        &["groupID", "type"],
    ),
    ("rtcd_rtc_conn_states_total", Kind::Counter, &["type"]),
    ("rtcd_rtc_errors_total", Kind::Counter, &["groupID", "type"]),
    ("rtcd_rtc_connection_time", Kind::Histogram, &["groupID"]),
    ("rtcd_rtc_dc_open_time", Kind::Histogram, &["groupID"]),
    (
        "rtcd_rtc_signaling_lock_grab_time",
        Kind::Histogram,
        &["groupID"],
    ),
    (
        "rtcd_rtc_signaling_lock_locked_time",
        Kind::Histogram,
        &["groupID"],
    ),
    ("rtcd_rtc_client_loss_rate", Kind::Histogram, &["groupID"]),
    ("rtcd_rtc_client_rtt", Kind::Histogram, &["groupID"]),
    ("rtcd_rtc_client_jitter", Kind::Histogram, &["groupID"]),
    ("rtcd_ws_connections_total", Kind::Gauge, &["clientID"]),
    (
        "rtcd_ws_messages_total",
        Kind::Counter,
        &["clientID", "type", "direction"],
    ),
];

/// The process collector's families (rtcd registers it with the `rtcd` namespace), present from
/// start-up, before any traffic.
pub const PROCESS_FAMILIES: &[(&str, Kind)] = &[
    ("rtcd_process_cpu_seconds_total", Kind::Counter),
    ("rtcd_process_resident_memory_bytes", Kind::Gauge),
    ("rtcd_process_virtual_memory_bytes", Kind::Gauge),
    ("rtcd_process_virtual_memory_max_bytes", Kind::Gauge),
    ("rtcd_process_open_fds", Kind::Gauge),
    ("rtcd_process_max_fds", Kind::Gauge),
    ("rtcd_process_start_time_seconds", Kind::Gauge),
];

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Kinds declared by `# TYPE` lines (unknown kinds such as `untyped` are left out).
    pub kinds: BTreeMap<String, Option<Kind>>,
    pub samples: Vec<Sample>,
}

/// Why a scrape could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {reason}")]
pub struct ScrapeError {
    pub line: usize,
    pub reason: &'static str,
}

impl Scrape {
    /// Parses the text exposition format.
    pub fn parse(text: &str) -> Result<Scrape, ScrapeError> {
        let mut scrape = Scrape::default();
        for (index, line) in text.lines().enumerate() {
            let err = |reason| ScrapeError {
                line: index + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().ok_or_else(|| err("TYPE without a name"))?;
                let kind = parts.next().ok_or_else(|| err("TYPE without a kind"))?;
                scrape.kinds.insert(name.to_owned(), Kind::parse(kind));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            scrape.samples.push(parse_sample(line).map_err(err)?);
        }
        Ok(scrape)
    }

    /// Every family name: declared by `# TYPE`, or, for undeclared samples, the sample name.
    pub fn families(&self) -> Vec<String> {
        let mut names: Vec<String> = self.kinds.keys().cloned().collect();
        for sample in &self.samples {
            let declared = self.kinds.contains_key(&sample.name)
                || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                    sample
                        .name
                        .strip_suffix(suffix)
                        .is_some_and(|base| self.kinds.contains_key(base))
                });
            if !declared {
                names.push(sample.name.clone());
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// The value of the sample `name` whose labels include every pair in `labels`, summed over the
    /// matching samples; `None` when none matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    /// Whether the family is declared or has samples.
    pub fn has_family(&self, name: &str) -> bool {
        self.kinds.contains_key(name) || self.samples.iter().any(|s| s.name == name)
    }
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(['{', ' ', '\t'])
        .ok_or("sample without a value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("sample without a name");
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or("sample without a value")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other.parse().map_err(|_| "sample value is not a number")?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `k="v",...}` and returns the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), &'static str> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value is not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("label value ends inside an escape"),
                },
                Some((_, c)) => value.push(c),
                None => return Err("label value is not terminated"),
            }
        };
        labels.insert(key, value);
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "\
# HELP rtcd_process_open_fds Number of open file descriptors.
# TYPE rtcd_process_open_fds gauge
rtcd_process_open_fds 17
# TYPE rtcd_ws_connections_total gauge
rtcd_ws_connections_total{clientID=\"a\"} 2
rtcd_ws_connections_total{clientID=\"b\\\"q\"} 1
# TYPE rtcd_rtc_connection_time histogram
rtcd_rtc_connection_time_bucket{groupID=\"a\",le=\"+Inf\"} 3
rtcd_rtc_connection_time_sum{groupID=\"a\"} 0.5
rtcd_rtc_connection_time_count{groupID=\"a\"} 3
go_goroutines 12
";

    #[test]
    fn families_kinds_and_values() {
        let scrape = Scrape::parse(SCRAPE).unwrap();
        assert_eq!(
            scrape.families(),
            [
                "go_goroutines",
                "rtcd_process_open_fds",
                "rtcd_rtc_connection_time",
                "rtcd_ws_connections_total"
            ]
        );
        assert_eq!(
            scrape.kinds["rtcd_rtc_connection_time"],
            Some(Kind::Histogram)
        );
        assert_eq!(
            scrape.value("rtcd_ws_connections_total", &[("clientID", "a")]),
            Some(2.0)
        );
        assert_eq!(
            scrape.value("rtcd_ws_connections_total", &[("clientID", "b\"q")]),
            Some(1.0)
        );
        assert_eq!(scrape.value("rtcd_ws_connections_total", &[]), Some(3.0));
        assert_eq!(
            scrape.value("rtcd_ws_connections_total", &[("clientID", "c")]),
            None
        );
        assert_eq!(
            scrape.value("rtcd_rtc_connection_time_bucket", &[("le", "+Inf")]),
            Some(3.0)
        );
        assert!(scrape.has_family("go_goroutines"));
        assert!(!scrape.has_family("rtcd_rtc_errors_total"));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        assert_eq!(
            Scrape::parse("a 1\nb{x=\"1 2\n").unwrap_err(),
            ScrapeError {
                line: 2,
                reason: "label value is not terminated"
            }
            .clone()
        );
        assert_eq!(
            Scrape::parse("a\n").unwrap_err().reason,
            "sample without a value"
        );
        assert_eq!(
            Scrape::parse("a x\n").unwrap_err().reason,
            "sample value is not a number"
        );
        assert_eq!(
            Scrape::parse("a{x=1} 2\n").unwrap_err().reason,
            "label value is not quoted"
        );
    }

    #[test]
    fn tables_name_rtcd_families_once() {
        let mut names: Vec<&str> = RTCD_FAMILIES.iter().map(|(n, _, _)| *n).collect();
        names.extend(PROCESS_FAMILIES.iter().map(|(n, _)| *n));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names.iter().all(|n| n.starts_with("rtcd_")));
    }
}
