//! Target CPU and memory from its Prometheus endpoint: `rtcd_process_cpu_seconds_total` and
//! `rtcd_process_resident_memory_bytes` (rtcd.md §5), which any rtcd-compatible target exposes.
//!
//! [`parse_process_metrics`] reads the text exposition format (sans-IO, tested on fixtures);
//! [`scrape`] is a minimal blocking HTTP/1.0 GET, enough for a metrics endpoint on a trusted network
//! (HTTP/1.0 makes Go's server answer without chunked encoding and close the connection).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::procfs::ProcSample;

/// The CPU counter rtcd exports.
pub const CPU_METRIC: &str = "rtcd_process_cpu_seconds_total";
/// The resident-memory gauge rtcd exports.
pub const RSS_METRIC: &str = "rtcd_process_resident_memory_bytes";

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading the metrics response failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("metrics endpoint answered \"{0}\"")]
    Status(String),
    #[error("metrics response is not an HTTP response")]
    NotHttp,
    #[error("metric {0} is missing from the exposition")]
    Missing(&'static str),
    #[error("metric {name} has a value that is not a number: \"{value}\"")]
    Value { name: String, value: String },
}

/// Reads the two process metrics from a Prometheus text exposition. Comments and other series are
/// skipped; a series with labels counts too (the first one wins).
pub fn parse_process_metrics(text: &str) -> Result<ProcSample, ScrapeError> {
    let mut cpu = None;
    let mut rss = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
        let name = &line[..name_end];
        let slot = match name {
            CPU_METRIC => &mut cpu,
            RSS_METRIC => &mut rss,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        let rest = &line[name_end..];
        // Skip a label set; label values may hold spaces, but not an unescaped '}'.
        let rest = match rest.strip_prefix('{') {
            Some(r) => r.rsplit_once('}').map_or("", |(_, after)| after),
            None => rest,
        };
        // Value, then an optional timestamp.
        let value = rest.split_ascii_whitespace().next().unwrap_or("");
        let parsed: f64 = value.parse().map_err(|_| ScrapeError::Value {
            name: name.to_owned(),
            value: value.to_owned(),
        })?;
        *slot = Some(parsed);
    }
    let cpu_seconds = cpu.ok_or(ScrapeError::Missing(CPU_METRIC))?;
    let rss = rss.ok_or(ScrapeError::Missing(RSS_METRIC))?;
    Ok(ProcSample {
        cpu_seconds,
        rss_bytes: rss.max(0.0) as u64,
    })
}

/// GETs `path` (usually `/metrics`) from `addr` and parses the process metrics.
pub fn scrape(addr: SocketAddr, path: &str, timeout: Duration) -> Result<ProcSample, ScrapeError> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| ScrapeError::Connect { addr, source })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write, so a server that answers after the first read never sees a half request.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    let (head, payload) = text.split_once("\r\n\r\n").ok_or(ScrapeError::NotHttp)?;
    let status = head.lines().next().unwrap_or("");
    let code = status
        .split_ascii_whitespace()
        .nth(1)
        .ok_or(ScrapeError::NotHttp)?;
    if code != "200" {
        return Err(ScrapeError::Status(status.to_owned()));
    }
    parse_process_metrics(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP rtcd_process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE rtcd_process_cpu_seconds_total counter
rtcd_process_cpu_seconds_total 1234.56
# HELP rtcd_process_resident_memory_bytes Resident memory size in bytes.
# TYPE rtcd_process_resident_memory_bytes gauge
rtcd_process_resident_memory_bytes 5.36870912e+08
rtcd_process_resident_memory_bytes_extra 1
rtcd_rtc_sessions_total{groupID=\"a b}c\"} 800
";

    #[test]
    fn process_metrics_are_found_among_others() {
        let s = parse_process_metrics(EXPOSITION).unwrap();
        assert!((s.cpu_seconds - 1234.56).abs() < 1e-9);
        assert_eq!(s.rss_bytes, 536_870_912);
    }

    #[test]
    fn labels_and_timestamps_are_skipped() {
        let text = "rtcd_process_cpu_seconds_total{instance=\"x y\"} 2.5 1700000000000\n\
                    rtcd_process_resident_memory_bytes 100\n";
        assert_eq!(parse_process_metrics(text).unwrap().cpu_seconds, 2.5);
    }

    #[test]
    fn missing_or_bad_values_are_typed_errors() {
        let err = parse_process_metrics("rtcd_process_cpu_seconds_total 1\n").unwrap_err();
        assert!(matches!(err, ScrapeError::Missing(RSS_METRIC)), "{err}");
        let err = parse_process_metrics(
            "rtcd_process_cpu_seconds_total abc\nrtcd_process_resident_memory_bytes 1\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric rtcd_process_cpu_seconds_total has a value that is not a number: \"abc\""
        );
    }

    #[test]
    fn scrape_reads_a_real_http_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut bytes = Vec::new();
            let mut byte = [0u8; 1];
            while !bytes.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).unwrap();
                bytes.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&bytes).into_owned();
            write!(
                conn,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{EXPOSITION}"
            )
            .unwrap();
            request
        });
        let s = scrape(addr, "/metrics", Duration::from_secs(5)).unwrap();
        assert_eq!(s.rss_bytes, 536_870_912);
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /metrics HTTP/1.0\r\n")
        );
    }
}
