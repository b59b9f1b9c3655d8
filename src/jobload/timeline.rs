//! What a job load saw, as timestamps from the run start, and its conversion into the measurements
//! of every results directory (1 s series rows, run-wide histograms and counts; see
//! [`crate::report`]). Pure, so the conversion is tested without an offloader.

use std::time::Duration;

use crate::measure::procfs::{CpuRate, ProcSample};
use crate::measure::{Counts, Histograms, LatencyHistogram, Measurements, Phase, Snapshot};
use crate::report::jobload::{AUTH_MODES, CREATE, REMOVED, START, TOTAL};

/// How one create ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// 200 with a job. `start_at` is the job's `start_at` as an offset from the run start (when it
    /// fell inside the run); `removed` is when the harness first saw its record gone (404).
    Created {
        start_at: Option<Duration>,
        removed: Option<Duration>,
    },
    /// 500 "max concurrent jobs reached".
    Rejected,
    /// Anything else (another status, a transport error).
    Error,
}

/// One create request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// Request sent.
    pub sent: Duration,
    /// Response received.
    pub answered: Duration,
    /// What came of it.
    pub outcome: Outcome,
}

/// One auth-throughput measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuthRate {
    /// `basic_cached`, `bearer` or `basic_bcrypt` ([`AUTH_MODES`]).
    pub mode: &'static str,
    /// Requests answered.
    pub requests: u64,
    /// Wall time they took.
    pub elapsed: Duration,
}

/// Everything a job load recorded.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// UNIX time of the run start, seconds.
    pub start_unix_s: u64,
    /// How long each runner runs (its exit is estimated as `start_at` + this).
    pub runner_run: Duration,
    /// Every create, in send order.
    pub attempts: Vec<Attempt>,
    /// (when, labelled containers running) samples; empty when not sampled.
    pub containers: Vec<(Duration, u64)>,
    /// (when, offloader process reading) samples; empty for a remote target.
    pub offloader: Vec<(Duration, ProcSample)>,
    /// (when, harness process reading) samples.
    pub harness: Vec<(Duration, ProcSample)>,
    /// Auth throughput figures.
    pub auth: Vec<AuthRate>,
    /// The target's `max_concurrent_jobs`, when known.
    pub limit: Option<u64>,
    /// When the run ended.
    pub end: Duration,
}

/// Cores per second row from cumulative CPU readings: the rate up to the last reading in each
/// second.
fn cpu_by_second(samples: &[(Duration, ProcSample)], seconds: u64) -> Vec<Option<f64>> {
    let mut out = vec![None; seconds as usize];
    let mut rate = CpuRate::default();
    for (at, s) in samples {
        if let (Some(cores), Some(slot)) = (
            rate.update(*at, s.cpu_seconds),
            out.get_mut(at.as_secs() as usize),
        ) {
            *slot = Some(cores);
        }
    }
    out
}

impl Timeline {
    /// When a created job's runner exited, estimated: its `start_at` (else the create response) plus
    /// the runner's run time.
    fn exit_of(&self, a: &Attempt, start_at: Option<Duration>) -> Duration {
        start_at.unwrap_or(a.answered) + self.runner_run
    }

    /// The series, histograms and counts of the run.
    pub fn measurements(&self) -> Measurements {
        let seconds = self.end.as_secs() + 1;
        let last_send = self
            .attempts
            .iter()
            .map(|a| a.sent)
            .max()
            .unwrap_or_default();
        let second = |d: Duration| d.as_secs();
        let mut series: Vec<Snapshot> = (0..seconds)
            .map(|t| {
                let phase = if Duration::from_secs(t) <= last_send {
                    Phase::Ramp
                } else {
                    Phase::Steady
                };
                Snapshot::empty(t, self.start_unix_s + t, phase)
            })
            .collect();
        let row = |series: &mut Vec<Snapshot>, d: Duration| -> Option<usize> {
            let i = second(d) as usize;
            (i < series.len()).then_some(i)
        };

        let mut create = LatencyHistogram::new();
        let mut start = LatencyHistogram::new();
        let mut removed_h = LatencyHistogram::new();
        let mut total = LatencyHistogram::new();
        let (mut created, mut rejected, mut errors, mut removed) = (0u64, 0u64, 0u64, 0u64);
        // +1 at creation, -1 at removal, per second; summed into jobs_running below.
        let mut delta = vec![0i64; seconds as usize];
        for a in &self.attempts {
            match a.outcome {
                Outcome::Created {
                    start_at,
                    removed: gone,
                } => {
                    created += 1;
                    create.record(a.answered.saturating_sub(a.sent));
                    if let Some(s) = start_at {
                        start.record(s.saturating_sub(a.sent));
                    }
                    if let Some(i) = row(&mut series, a.answered) {
                        series[i].jobs_created += 1;
                        delta[i] += 1;
                    }
                    if let Some(g) = gone {
                        removed += 1;
                        removed_h.record(g.saturating_sub(self.exit_of(a, start_at)));
                        total.record(g.saturating_sub(a.sent));
                        if let Some(i) = row(&mut series, g) {
                            series[i].jobs_finished += 1;
                            delta[i] -= 1;
                        }
                    }
                }
                Outcome::Rejected => {
                    rejected += 1;
                    if let Some(i) = row(&mut series, a.answered) {
                        series[i].jobs_rejected += 1;
                    }
                }
                Outcome::Error => errors += 1,
            }
        }
        let mut running = 0i64;
        for (r, d) in series.iter_mut().zip(&delta) {
            running += d;
            r.jobs_running = running.max(0) as u64;
        }
        for (at, n) in &self.containers {
            if let Some(i) = row(&mut series, *at) {
                let slot = &mut series[i].containers_running;
                *slot = Some(slot.map_or(*n, |m| m.max(*n)));
            }
        }
        for (r, cores) in series
            .iter_mut()
            .zip(cpu_by_second(&self.offloader, seconds))
        {
            r.server_cpu_cores = cores;
        }
        for (at, s) in &self.offloader {
            if let Some(i) = row(&mut series, *at) {
                series[i].server_rss_bytes = Some(s.rss_bytes);
            }
        }
        for (r, cores) in series.iter_mut().zip(cpu_by_second(&self.harness, seconds)) {
            r.harness_cpu_cores = cores;
        }

        let mut counts = Counts::new();
        for (k, v) in [
            ("jobload.requested", self.attempts.len() as u64),
            ("jobload.created", created),
            ("jobload.rejected", rejected),
            ("jobload.errors", errors),
            ("jobload.removed", removed),
            ("jobs.started", created),
            // A job whose record never went away did not end cleanly: it counts as failed.
            ("jobs.ended", created),
            ("jobs.failed", created - removed),
        ] {
            counts.insert(k.to_owned(), v);
        }
        if let Some(l) = self.limit {
            counts.insert("jobload.limit".into(), l);
        }
        if let Some(m) = self.containers.iter().map(|(_, n)| *n).max() {
            counts.insert("jobload.containers_max".into(), m);
        }
        for a in &self.auth {
            debug_assert!(AUTH_MODES.contains(&a.mode));
            counts.insert(format!("auth.{}.requests", a.mode), a.requests);
            counts.insert(
                format!("auth.{}.elapsed_us", a.mode),
                a.elapsed.as_micros() as u64,
            );
        }
        let histograms: Histograms = [
            (CREATE, create),
            (START, start),
            (REMOVED, removed_h),
            (TOTAL, total),
        ]
        .into_iter()
        .map(|(k, h)| (k.to_owned(), h))
        .collect();
        Measurements {
            series,
            histograms,
            counts,
            intervals: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rows_count_creates_rejections_removals_and_running_jobs() {
        let t = Timeline {
            start_unix_s: 1_000,
            runner_run: ms(1_500),
            attempts: vec![
                Attempt {
                    sent: ms(100),
                    answered: ms(300),
                    outcome: Outcome::Created {
                        start_at: Some(ms(250)),
                        removed: Some(ms(1_900)),
                    },
                },
                Attempt {
                    sent: ms(600),
                    answered: ms(700),
                    outcome: Outcome::Rejected,
                },
                Attempt {
                    sent: ms(1_100),
                    answered: ms(1_200),
                    outcome: Outcome::Created {
                        start_at: Some(ms(1_150)),
                        removed: None,
                    },
                },
            ],
            containers: vec![(ms(400), 1), (ms(1_300), 2), (ms(1_800), 1)],
            limit: Some(1),
            end: ms(2_500),
            ..Timeline::default()
        };
        let m = t.measurements();
        let col = |f: fn(&Snapshot) -> u64| m.series.iter().map(f).collect::<Vec<_>>();
        assert_eq!(m.series.len(), 3);
        assert_eq!(m.series[2].unix_s, 1_002);
        assert_eq!(col(|r| r.jobs_created), [1, 1, 0]);
        assert_eq!(col(|r| r.jobs_rejected), [1, 0, 0]);
        assert_eq!(col(|r| r.jobs_finished), [0, 1, 0]);
        assert_eq!(col(|r| r.jobs_running), [1, 1, 1]);
        assert_eq!(m.series[1].containers_running, Some(2));
        assert_eq!(m.series[2].containers_running, None);
        assert_eq!(m.counts["jobs.failed"], 1);
        assert_eq!(m.counts["jobload.containers_max"], 2);
        // Exit = start_at 250 ms + 1.5 s = 1750 ms; removed seen at 1900 ms → 150 ms.
        let removed = m.histograms[REMOVED].quantile_us(0.5).unwrap();
        assert!((149_000..=151_000).contains(&removed), "{removed}");
        let start = m.histograms[START].quantile_us(0.5).unwrap();
        assert!((49_000..=51_000).contains(&start), "{start}");
        // The summary reads them back: 2 created, 1 record stayed, 2 containers over a limit of 1.
        let s =
            crate::report::jobload::JobLoadSummary::compute(&m.series, &m.histograms, &m.counts)
                .unwrap();
        assert_eq!((s.requested, s.created, s.removed), (3, 2, 1));
        assert!(s.overshoot && !s.passed);
    }

    #[test]
    fn cpu_rate_per_second() {
        let sample = |cpu_seconds| ProcSample {
            cpu_seconds,
            rss_bytes: 1,
        };
        let cpu = cpu_by_second(&[(ms(0), sample(0.0)), (ms(1_000), sample(0.5))], 2);
        assert_eq!(cpu, [None, Some(0.5)]);
    }
}
