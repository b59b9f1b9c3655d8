//! The `rtcd_*` Prometheus metrics (rtcd §5): fed by core events and the WS layer, rendered as
//! Prometheus text on `/metrics`. Updates are rare (signalling-rate), so one mutex suffices; the
//! forwarding hot path reports nothing per packet.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::event::{HistMetric, SfuEvent, TrackDirection};
use super::track::TrackType;

const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0,
];
const LOSS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    buckets: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(buckets: &'static [f64]) -> Self {
        Histogram {
            buckets,
            counts: vec![0; buckets.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        for (i, b) in self.buckets.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

fn hist_name(m: HistMetric) -> (&'static str, &'static [f64], &'static str) {
    match m {
        HistMetric::ConnectionTime => (
            "rtcd_rtc_connection_time",
            DEFAULT_BUCKETS,
            "Time to connect",
        ),
        HistMetric::DcOpenTime => (
            "rtcd_rtc_dc_open_time",
            DEFAULT_BUCKETS,
            "Time to open the data channel",
        ),
        HistMetric::LockGrabTime => (
            "rtcd_rtc_signaling_lock_grab_time",
            DEFAULT_BUCKETS,
            "Time to grab the signaling lock",
        ),
        HistMetric::LockLockedTime => (
            "rtcd_rtc_signaling_lock_locked_time",
            DEFAULT_BUCKETS,
            "Time the signaling lock was held",
        ),
        HistMetric::ClientLossRate => (
            "rtcd_rtc_client_loss_rate",
            LOSS_BUCKETS,
            "Client loss rate",
        ),
        HistMetric::ClientRtt => (
            "rtcd_rtc_client_rtt",
            LATENCY_BUCKETS,
            "Client round trip time",
        ),
        HistMetric::ClientJitter => ("rtcd_rtc_client_jitter", LATENCY_BUCKETS, "Client jitter"),
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: BTreeMap<String, i64>,
    tracks: BTreeMap<(String, &'static str, &'static str), i64>,
    conn_states: BTreeMap<&'static str, u64>,
    errors: BTreeMap<(String, &'static str), u64>,
    hists: BTreeMap<(&'static str, String), Histogram>,
    ws_conns: BTreeMap<String, i64>,
    ws_msgs: BTreeMap<(String, String, &'static str), u64>,
    /// `rtcd_rtc_rtp_tracks_writes_time` by group, then type.
    writes: BTreeMap<String, BTreeMap<&'static str, Histogram>>,
}

/// The SFU's metric registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps half-updated in a way that matters for counters.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one core event.
    pub fn apply(&self, e: &SfuEvent) {
        let mut m = self.lock();
        match e {
            SfuEvent::SessionOpened { group } => *m.sessions.entry(group.clone()).or_default() += 1,
            SfuEvent::SessionClosed { group } => *m.sessions.entry(group.clone()).or_default() -= 1,
            SfuEvent::ConnState(t) => *m.conn_states.entry(t).or_default() += 1,
            SfuEvent::Error { group, kind } => {
                *m.errors.entry((group.clone(), kind.as_str())).or_default() += 1
            }
            SfuEvent::Observe {
                group,
                metric,
                value,
            } => {
                let (name, buckets, _) = hist_name(*metric);
                m.hists
                    .entry((name, group.clone()))
                    .or_insert_with(|| Histogram::new(buckets))
                    .observe(*value);
            }
            SfuEvent::Tracks {
                group,
                direction,
                mime,
                delta,
            } => {
                let d = match direction {
                    TrackDirection::In => "in",
                    TrackDirection::Out => "out",
                };
                *m.tracks.entry((group.clone(), d, mime)).or_default() += delta;
            }
        }
    }

    /// Counts an error outside the core (e.g. a malformed WS frame).
    pub fn error(&self, group: &str, kind: &'static str) {
        *self
            .lock()
            .errors
            .entry((group.to_string(), kind))
            .or_default() += 1;
    }

    pub fn ws_connection(&self, client: &str, delta: i64) {
        *self.lock().ws_conns.entry(client.to_string()).or_default() += delta;
    }

    pub fn ws_message(&self, client: &str, kind: &str, direction: &'static str) {
        *self
            .lock()
            .ws_msgs
            .entry((client.to_string(), kind.to_string(), direction))
            .or_default() += 1;
    }

    /// One forwarded packet's write time (seconds). rtcd times camera video as `screen`.
    pub fn observe_write(&self, group: &str, kind: TrackType, secs: f64) {
        let t = match kind {
            TrackType::Video => "screen",
            other => other.as_str(),
        };
        let mut m = self.lock();
        // Look up by `&str` first: no allocation per packet once the group is known.
        if !m.writes.contains_key(group) {
            m.writes.insert(group.to_string(), BTreeMap::new());
        }
        if let Some(by_type) = m.writes.get_mut(group) {
            by_type
                .entry(t)
                .or_insert_with(|| Histogram::new(LATENCY_BUCKETS))
                .observe(secs);
        }
    }

    /// Active sessions summed over groups.
    pub fn sessions_total(&self) -> i64 {
        self.lock().sessions.values().sum()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut o = String::with_capacity(4096);
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        header(
            &mut o,
            "rtcd_rtc_sessions_total",
            "gauge",
            "Total number of active RTC sessions",
        );
        for (g, v) in &m.sessions {
            let _ = writeln!(o, "rtcd_rtc_sessions_total{{groupID=\"{}\"}} {v}", esc(g));
        }
        header(
            &mut o,
            "rtcd_rtc_rtp_tracks_total",
            "gauge",
            "Total number of active RTP tracks",
        );
        for ((g, d, t), v) in &m.tracks {
            let _ = writeln!(
                o,
                "rtcd_rtc_rtp_tracks_total{{direction=\"{d}\",groupID=\"{}\",type=\"{t}\"}} {v}",
                esc(g)
            );
        }
        header(
            &mut o,
            "rtcd_rtc_conn_states_total",
            "counter",
            "Total number of RTC connection state changes",
        );
        for (t, v) in &m.conn_states {
            let _ = writeln!(o, "rtcd_rtc_conn_states_total{{type=\"{t}\"}} {v}");
        }
        header(
            &mut o,
            "rtcd_rtc_errors_total",
            "counter",
            "Total number of RTC errors",
        );
        for ((g, t), v) in &m.errors {
            let _ = writeln!(
                o,
                "rtcd_rtc_errors_total{{groupID=\"{}\",type=\"{t}\"}} {v}",
                esc(g)
            );
        }
        let mut last = "";
        for ((name, g), h) in &m.hists {
            if *name != last {
                let help = [
                    HistMetric::ConnectionTime,
                    HistMetric::DcOpenTime,
                    HistMetric::LockGrabTime,
                    HistMetric::LockLockedTime,
                    HistMetric::ClientLossRate,
                    HistMetric::ClientRtt,
                    HistMetric::ClientJitter,
                ]
                .into_iter()
                .map(hist_name)
                .find(|(n, _, _)| n == name)
                .map_or("", |(_, _, h)| h);
                header(&mut o, name, "histogram", help);
                last = name;
            }
            let g = esc(g);
            for (b, c) in h.buckets.iter().zip(&h.counts) {
                let _ = writeln!(o, "{name}_bucket{{groupID=\"{g}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(
                o,
                "{name}_bucket{{groupID=\"{g}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(o, "{name}_sum{{groupID=\"{g}\"}} {}", h.sum);
            let _ = writeln!(o, "{name}_count{{groupID=\"{g}\"}} {}", h.count);
        }
        let name = "rtcd_rtc_rtp_tracks_writes_time";
        if !m.writes.is_empty() {
            header(&mut o, name, "histogram", "Time taken to write RTP packets");
        }
        for (g, by_type) in &m.writes {
            let g = esc(g);
            for (t, h) in by_type {
                for (b, c) in h.buckets.iter().zip(&h.counts) {
                    let _ = writeln!(
                        o,
                        "{name}_bucket{{groupID=\"{g}\",type=\"{t}\",le=\"{b}\"}} {c}"
                    );
                }
                let _ = writeln!(
                    o,
                    "{name}_bucket{{groupID=\"{g}\",type=\"{t}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(o, "{name}_sum{{groupID=\"{g}\",type=\"{t}\"}} {}", h.sum);
                let _ = writeln!(
                    o,
                    "{name}_count{{groupID=\"{g}\",type=\"{t}\"}} {}",
                    h.count
                );
            }
        }
        header(
            &mut o,
            "rtcd_ws_connections_total",
            "gauge",
            "Total number of active WebSocket connections",
        );
        for (c, v) in &m.ws_conns {
            let _ = writeln!(
                o,
                "rtcd_ws_connections_total{{clientID=\"{}\"}} {v}",
                esc(c)
            );
        }
        header(
            &mut o,
            "rtcd_ws_messages_total",
            "counter",
            "Total number of WebSocket messages",
        );
        for ((c, t, d), v) in &m.ws_msgs {
            let _ = writeln!(
                o,
                "rtcd_ws_messages_total{{clientID=\"{}\",direction=\"{d}\",type=\"{}\"}} {v}",
                esc(c),
                esc(t)
            );
        }
        drop(m);
        process_metrics(&mut o);
        o
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// `rtcd_process_*` from /proc, as Prometheus' process collector reports them.
fn process_metrics(o: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name; the name may contain spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports times in clock ticks; USER_HZ is 100 on every supported architecture.
    let ticks = 100.0;
    let cpu = (num(11) + num(12)) / ticks;
    let vsize = num(20);
    let rss_pages = num(21);
    let start_ticks = num(19);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let max_vm = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map_or(-1.0, |v| v.parse::<f64>().unwrap_or(-1.0));
    let page = 4096.0;
    for (name, kind, help, v) in [
        (
            "rtcd_process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            cpu,
        ),
        (
            "rtcd_process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds as f64,
        ),
        (
            "rtcd_process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max_fds,
        ),
        (
            "rtcd_process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            vsize,
        ),
        (
            "rtcd_process_virtual_memory_max_bytes",
            "gauge",
            "Maximum amount of virtual memory available in bytes.",
            max_vm,
        ),
        (
            "rtcd_process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss_pages * page,
        ),
        (
            "rtcd_process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            boot + start_ticks / ticks,
        ),
    ] {
        header(o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::event::ErrorKind;

    #[test]
    fn renders_rtcd_names_labels_and_buckets() {
        let m = Metrics::default();
        m.apply(&SfuEvent::SessionOpened { group: "g".into() });
        m.apply(&SfuEvent::Error {
            group: "g".into(),
            kind: ErrorKind::SignalingLockTimeout,
        });
        m.apply(&SfuEvent::Observe {
            group: "g".into(),
            metric: HistMetric::ClientRtt,
            value: 0.02,
        });
        let text = m.render();
        assert!(text.contains("rtcd_rtc_sessions_total{groupID=\"g\"} 1\n"));
        assert!(
            text.contains(
                "rtcd_rtc_errors_total{groupID=\"g\",type=\"signaling_lock_timeout\"} 1\n"
            )
        );
        assert!(text.contains("rtcd_rtc_client_rtt_bucket{groupID=\"g\",le=\"0.01\"} 0\n"));
        assert!(text.contains("rtcd_rtc_client_rtt_bucket{groupID=\"g\",le=\"0.025\"} 1\n"));
        assert!(text.contains("rtcd_process_resident_memory_bytes "));
        m.apply(&SfuEvent::SessionClosed { group: "g".into() });
        m.observe_write("g", TrackType::Voice, 0.0004);
        m.observe_write("g", TrackType::Video, 0.02);
        let text = m.render();
        assert!(text.contains(
            "rtcd_rtc_rtp_tracks_writes_time_bucket{groupID=\"g\",type=\"voice\",le=\"0.001\"} 1\n"
        ));
        assert!(text.contains(
            "rtcd_rtc_rtp_tracks_writes_time_bucket{groupID=\"g\",type=\"screen\",le=\"0.01\"} 0\n"
        ));
        assert!(text.contains(
            "rtcd_rtc_rtp_tracks_writes_time_bucket{groupID=\"g\",type=\"screen\",le=\"0.025\"} 1\n"
        ));
        assert!(
            text.contains(
                "rtcd_rtc_rtp_tracks_writes_time_count{groupID=\"g\",type=\"voice\"} 1\n"
            )
        );
        assert_eq!(m.sessions_total(), 0);
    }
}
