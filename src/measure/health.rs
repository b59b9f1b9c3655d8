//! Self-health: is the harness itself keeping up? A saturated load generator under-sends and
//! over-reports latency, so its figures must not be blamed on the server (design.md, "Measure, then
//! claim").
//!
//! Inputs each second: the harness's own CPU (from `/proc/self`, see
//! [`ProcProbe::this_process`](super::procfs::ProcProbe::this_process)), and the p99 of event-loop lag
//! and pacing error that the engine feeds as [`Record::LoopLag`](super::Record::LoopLag) and
//! [`Record::PacingError`](super::Record::PacingError). [`HealthLimits::judge`] turns them into a
//! per-second [`Saturation`] set; a run whose steady window has any saturated second says so, marks
//! the affected figures and exits non-zero.
//!
//! With the embedded target on the same host, the target's CPU counts against the CPU limit with
//! the harness's ([`HealthLimits::target_shares_host`]).
//!
//! Two more inputs come from [`super::host`] ([`HealthLimits::judge_host`]): the busiest engine
//! event-loop thread's CPU (a pegged loop runs everything it drives late even when the process as
//! a whole looks idle enough), and datagrams dropped at the harness's own sockets (loss the harness
//! caused by reading too late, which would otherwise be reported as the target's).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits beyond which the harness counts as saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthLimits {
    /// Most CPU the harness may use, in cores (default: 90 % of the cores it can run on).
    pub max_cpu_cores: f64,
    /// Highest tolerated p99 event-loop lag in a second (default 20 ms: one audio packet interval).
    pub max_loop_lag_p99: Duration,
    /// Highest tolerated p99 pacing error in a second (default 40 ms: two audio packet
    /// intervals, by when a late voice packet is behind the one scheduled after it). Pacing error
    /// is each sender's own lateness, including the wait behind the other participants of its
    /// event loop, so it runs above the loop lag: a debug build on a busy 2-core host shows
    /// 15–35 ms at p99 while its loop lag stays under 15 ms.
    pub max_pacing_error_p99: Duration,
    /// Most CPU one engine event-loop thread may use, in cores (default 0.9).
    pub max_thread_cpu_cores: f64,
    /// Most datagrams the harness's sockets may drop in a second: this many, or a thousandth of
    /// the datagrams it received in the second if that is more (default 10).
    pub max_udp_drops: u64,
    /// The target runs on this host (the embedded SFU): its CPU counts against `max_cpu_cores`
    /// with the harness's, since two processes that together fill the host's cores starve each
    /// other and neither's figures hold (default false).
    #[serde(default)]
    pub target_shares_host: bool,
}

impl HealthLimits {
    /// Defaults for a harness allowed to use `cores` cores.
    pub fn for_cores(cores: usize) -> Self {
        Self {
            max_cpu_cores: 0.9 * cores.max(1) as f64,
            max_loop_lag_p99: Duration::from_millis(20),
            max_pacing_error_p99: Duration::from_millis(40),
            max_thread_cpu_cores: 0.9,
            max_udp_drops: 10,
            target_shares_host: false,
        }
    }

    /// The CPU judged against `max_cpu_cores` in a second: the harness's, plus the target's when
    /// it shares the host.
    pub fn judged_cpu(&self, harness: Option<f64>, target: Option<f64>) -> Option<f64> {
        if self.target_shares_host {
            harness.map(|h| h + target.unwrap_or(0.0))
        } else {
            harness
        }
    }

    /// Defaults for the cores this process may run on.
    pub fn for_this_host() -> Self {
        Self::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Which limits one second broke. Missing inputs break nothing.
    pub fn judge(
        &self,
        cpu_cores: Option<f64>,
        loop_lag_p99: Option<Duration>,
        pacing_error_p99: Option<Duration>,
    ) -> Saturation {
        Saturation {
            cpu: cpu_cores.is_some_and(|c| c > self.max_cpu_cores),
            loop_lag: loop_lag_p99.is_some_and(|l| l > self.max_loop_lag_p99),
            pacing: pacing_error_p99.is_some_and(|p| p > self.max_pacing_error_p99),
            ..Saturation::default()
        }
    }

    /// Which host-side limits one second broke: the busiest engine thread's CPU, and drops at
    /// the harness's own sockets against the datagrams it `received` in the second.
    pub fn judge_host(
        &self,
        engine_thread_cpu_cores: Option<f64>,
        harness_udp_drops: Option<u64>,
        received: u64,
    ) -> Saturation {
        let allowed = self.max_udp_drops.max(received / 1000);
        Saturation {
            thread_cpu: engine_thread_cpu_cores.is_some_and(|c| c > self.max_thread_cpu_cores),
            udp_drops: harness_udp_drops.is_some_and(|d| d > allowed),
            ..Saturation::default()
        }
    }
}

/// The limits a second (or a run) broke.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saturation {
    /// Harness CPU (with an embedded target's, which shares the host) above its limit.
    pub cpu: bool,
    /// Event-loop lag above its limit.
    pub loop_lag: bool,
    /// Pacing error above its limit.
    pub pacing: bool,
    /// An engine event-loop thread used nearly a whole core.
    #[serde(default)]
    pub thread_cpu: bool,
    /// The harness's own sockets dropped datagrams (it read too late).
    #[serde(default)]
    pub udp_drops: bool,
}

impl Saturation {
    /// Whether any limit broke.
    pub fn any(&self) -> bool {
        self.cpu || self.loop_lag || self.pacing || self.thread_cpu || self.udp_drops
    }

    /// Every limit broken (what an unreadable flag is taken to mean).
    pub fn all() -> Saturation {
        Saturation {
            cpu: true,
            loop_lag: true,
            pacing: true,
            thread_cpu: true,
            udp_drops: true,
        }
    }

    /// Union of two verdicts.
    pub fn or(self, other: Saturation) -> Saturation {
        Saturation {
            cpu: self.cpu || other.cpu,
            loop_lag: self.loop_lag || other.loop_lag,
            pacing: self.pacing || other.pacing,
            thread_cpu: self.thread_cpu || other.thread_cpu,
            udp_drops: self.udp_drops || other.udp_drops,
        }
    }

    /// The broken limits by name.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut r = Vec::new();
        if self.cpu {
            r.push("cpu");
        }
        if self.loop_lag {
            r.push("loop_lag");
        }
        if self.pacing {
            r.push("pacing");
        }
        if self.thread_cpu {
            r.push("thread_cpu");
        }
        if self.udp_drops {
            r.push("udp_drops");
        }
        r
    }

    /// Parses the `|`-joined form used in `series.csv` (empty = healthy).
    pub fn parse(text: &str) -> Option<Saturation> {
        let mut s = Saturation::default();
        for part in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "cpu" => s.cpu = true,
                "loop_lag" => s.loop_lag = true,
                "pacing" => s.pacing = true,
                "thread_cpu" => s.thread_cpu = true,
                "udp_drops" => s.udp_drops = true,
                _ => return None,
            }
        }
        Some(s)
    }
}

impl fmt::Display for Saturation {
    /// `cpu|loop_lag|pacing|thread_cpu|udp_drops`, empty when healthy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reasons().join("|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_judged_on_its_own() {
        let l = HealthLimits::for_cores(2);
        assert!((l.max_cpu_cores - 1.8).abs() < 1e-12);
        assert!(!l.judge(Some(1.7), None, None).any());
        let s = l.judge(Some(1.9), Some(Duration::from_millis(25)), None);
        assert_eq!(s.reasons(), ["cpu", "loop_lag"]);
        assert!(!l.judge(None, None, Some(Duration::from_millis(39))).any());
        let s = l.judge(None, None, Some(Duration::from_millis(41)));
        assert_eq!(s.to_string(), "pacing");
    }

    #[test]
    fn an_embedded_target_counts_against_the_host() {
        let mut l = HealthLimits::for_cores(2);
        // Harness 0.95 + target 0.95 cores of 2: the pair fills the host.
        assert_eq!(l.judged_cpu(Some(0.95), Some(0.95)), Some(0.95));
        l.target_shares_host = true;
        let cpu = l.judged_cpu(Some(0.95), Some(0.95));
        assert_eq!(l.judge(cpu, None, None).reasons(), ["cpu"]);
        assert!(
            !l.judge(l.judged_cpu(Some(0.3), Some(0.2)), None, None)
                .any()
        );
        assert_eq!(l.judged_cpu(None, Some(1.0)), None);
    }

    #[test]
    fn pegged_threads_and_own_drops_saturate() {
        let l = HealthLimits::for_cores(2);
        assert!(!l.judge_host(Some(0.85), Some(10), 5_000).any());
        assert_eq!(l.judge_host(Some(0.97), None, 0).reasons(), ["thread_cpu"]);
        // 10 drops or a thousandth of what was received, whichever is more.
        assert!(!l.judge_host(None, Some(50), 50_000).any());
        assert_eq!(
            l.judge_host(None, Some(51), 50_000).to_string(),
            "udp_drops"
        );
        assert!(l.judge_host(None, Some(11), 100).udp_drops);
    }

    #[test]
    fn text_form_round_trips() {
        let s = Saturation {
            cpu: true,
            pacing: true,
            udp_drops: true,
            ..Saturation::default()
        };
        assert_eq!(
            Saturation::parse(&Saturation::all().to_string()),
            Some(Saturation::all())
        );
        assert_eq!(Saturation::parse(&s.to_string()), Some(s));
        assert_eq!(Saturation::parse(""), Some(Saturation::default()));
        assert_eq!(Saturation::parse("disk"), None);
    }
}
