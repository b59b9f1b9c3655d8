//! One second of a run as the aggregator sees it: a row of `series.csv`.
//!
//! Every column is documented on its field (and in `reports/schema/README.md`). Counts and byte rates
//! are sums over the second, so rows from several shards add up; percentiles are of the second's own
//! histograms and are recomputed from `intervals.hlog` when shards are merged.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::PhaseTimes;

/// Which part of the run a second belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Sessions are joining.
    Ramp,
    /// Everyone has joined; waiting for the settle time before measuring.
    Settle,
    /// The steady-state window: averages are taken over these seconds.
    Steady,
    /// Sessions are leaving.
    Leave,
    /// After the last planned leave.
    After,
}

impl Phase {
    /// The phase of the second starting at `t` (offset from the run start).
    pub fn at(t: Duration, phases: &PhaseTimes) -> Phase {
        if t < phases.join_end {
            Phase::Ramp
        } else if t < phases.steady_start {
            Phase::Settle
        } else if t < phases.steady_end {
            Phase::Steady
        } else if t < phases.end {
            Phase::Leave
        } else {
            Phase::After
        }
    }

    /// Lower-case name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Settle => "settle",
            Phase::Steady => "steady",
            Phase::Leave => "leave",
            Phase::After => "after",
        }
    }
}

/// One row of `series.csv`: what happened in the second `[t_s, t_s + 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since the run start; the row covers `[t_s, t_s + 1)`.
    pub t_s: u64,
    /// UNIX time (s) of the row's start; merging aligns shards on it.
    pub unix_s: u64,
    /// Run phase of the second.
    pub phase: Phase,
    /// Sessions connected at the end of the second.
    pub sessions: u64,
    /// Sessions that completed their join (first media on every expected track) in the second.
    pub joins: u64,
    /// Sessions that gave up joining in the second.
    pub join_failures: u64,
    /// Recording/transcription jobs running at the end of the second.
    pub jobs_running: u64,
    /// Target CPU, cores used over the second (empty when no probe).
    pub server_cpu_cores: Option<f64>,
    /// Target resident memory, bytes (empty when no probe).
    pub server_rss_bytes: Option<u64>,
    /// Target ingress, wire bits/s (IP + UDP + payload + L2 overhead), all flows.
    pub bw_in_bps: f64,
    /// Target egress, wire bits/s, all flows.
    pub bw_out_bps: f64,
    /// Target ingress of audio RTP, wire bits/s.
    pub audio_in_bps: f64,
    /// Target ingress of screen RTP, wire bits/s.
    pub screen_in_bps: f64,
    /// Target ingress of camera RTP, wire bits/s.
    pub video_in_bps: f64,
    /// Target egress of audio RTP, wire bits/s.
    pub audio_out_bps: f64,
    /// Target egress of screen RTP, wire bits/s.
    pub screen_out_bps: f64,
    /// Target egress of camera RTP, wire bits/s.
    pub video_out_bps: f64,
    /// Datagrams to the target.
    pub packets_in: u64,
    /// Datagrams from the target.
    pub packets_out: u64,
    /// Media packets receivers expected in the second.
    pub expected: u64,
    /// Media packets lost (after retransmission) in the second.
    pub lost: u64,
    /// Median one-way media latency of the second, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th-percentile one-way media latency of the second, µs.
    pub latency_p99_us: Option<u64>,
    /// Median RFC 3550 jitter over received streams, µs.
    pub jitter_p50_us: Option<u64>,
    /// 99th-percentile RFC 3550 jitter over received streams, µs.
    pub jitter_p99_us: Option<u64>,
    /// Video/screen freezes (> 500 ms without a frame) that ended in the second.
    pub freezes: u64,
    /// Harness CPU, cores used over the second.
    pub harness_cpu_cores: Option<f64>,
    /// 99th-percentile event-loop lag of the second, µs.
    pub loop_lag_p99_us: Option<u64>,
    /// 99th-percentile pacing error of the second, µs.
    pub pacing_error_p99_us: Option<u64>,
    /// Broken self-health limits (`cpu|loop_lag|pacing|thread_cpu|udp_drops`), empty when healthy.
    pub saturation: String,
    /// Job loads: jobs the offloader accepted (create answered 200) in the second. Absent in
    /// files written before job loads had a series; read as 0.
    #[serde(default)]
    pub jobs_created: u64,
    /// Job loads: creates rejected with "max concurrent jobs reached" in the second.
    #[serde(default)]
    pub jobs_rejected: u64,
    /// Job loads: jobs whose record was removed (exit 0 settled) in the second.
    #[serde(default)]
    pub jobs_finished: u64,
    /// Job loads: most labelled job containers seen running in the second (Docker, sampled);
    /// empty when not sampled.
    #[serde(default)]
    pub containers_running: Option<u64>,
    /// The busiest engine event-loop thread's CPU over the second, cores (absent in older files).
    #[serde(default)]
    pub engine_thread_cpu_max_cores: Option<f64>,
    /// Datagrams dropped on receive at the harness's own sockets in the second.
    #[serde(default)]
    pub harness_udp_drops: Option<u64>,
    /// Datagrams dropped on receive at the embedded target's sockets in the second.
    #[serde(default)]
    pub target_udp_drops: Option<u64>,
    /// Host-wide UDP receive errors in the second (every process in the network namespace).
    #[serde(default)]
    pub udp_receive_errors: Option<u64>,
}

impl Snapshot {
    /// An all-zero row for second `t_s`.
    pub fn empty(t_s: u64, unix_s: u64, phase: Phase) -> Snapshot {
        Snapshot {
            t_s,
            unix_s,
            phase,
            sessions: 0,
            joins: 0,
            join_failures: 0,
            jobs_running: 0,
            server_cpu_cores: None,
            server_rss_bytes: None,
            bw_in_bps: 0.0,
            bw_out_bps: 0.0,
            audio_in_bps: 0.0,
            screen_in_bps: 0.0,
            video_in_bps: 0.0,
            audio_out_bps: 0.0,
            screen_out_bps: 0.0,
            video_out_bps: 0.0,
            packets_in: 0,
            packets_out: 0,
            expected: 0,
            lost: 0,
            latency_p50_us: None,
            latency_p99_us: None,
            jitter_p50_us: None,
            jitter_p99_us: None,
            freezes: 0,
            harness_cpu_cores: None,
            loop_lag_p99_us: None,
            pacing_error_p99_us: None,
            saturation: String::new(),
            jobs_created: 0,
            jobs_rejected: 0,
            jobs_finished: 0,
            containers_running: None,
            engine_thread_cpu_max_cores: None,
            harness_udp_drops: None,
            target_udp_drops: None,
            udp_receive_errors: None,
        }
    }

    /// Lost ÷ expected media packets in the second (0 when nothing was expected).
    pub fn loss(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_plan_boundaries() {
        let p = PhaseTimes {
            join_end: Duration::from_secs(10),
            steady_start: Duration::from_secs(15),
            steady_end: Duration::from_secs(75),
            end: Duration::from_secs(80),
        };
        let at = |s| Phase::at(Duration::from_secs(s), &p);
        assert_eq!(
            [at(0), at(10), at(15), at(74), at(75), at(80)],
            [
                Phase::Ramp,
                Phase::Settle,
                Phase::Steady,
                Phase::Steady,
                Phase::Leave,
                Phase::After
            ]
        );
    }
}
