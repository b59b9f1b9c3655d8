//! `callsbench compare BASELINE CURRENT`: every summary figure side by side, and a verdict.
//!
//! Each figure has a direction: for CPU, memory, latencies, loss, failures and freezes higher is
//! worse; bandwidth and per-flow rates are neutral (a different load, not a worse server) unless a
//! limit is given for them, in which case an *increase* beyond it counts (more bytes per flow costs
//! capacity). A regression is a relative worsening beyond the figure's limit; a figure that was 0 in
//! the baseline and is not 0 now is an unbounded worsening.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::summary::Summary;
use super::table::{Table, sig3};

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is worse.
    LowerIsBetter,
    /// Neither is worse unless a limit is set; then higher is worse.
    Neutral,
}

/// One comparable figure of a summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    /// Name used in `--max-regress`.
    pub name: &'static str,
    /// Unit for display.
    pub unit: &'static str,
    /// Value, if measured.
    pub value: Option<f64>,
    /// Direction.
    pub direction: Direction,
}

/// Every comparable figure of a summary, in report order.
pub fn figures(s: &Summary) -> Vec<Figure> {
    use Direction::*;
    let us = |v: Option<u64>| v.map(|v| v as f64 / 1000.0);
    let n = |v: u64| Some(v as f64);
    let f = |name, unit, value, direction| Figure {
        name,
        unit,
        value,
        direction,
    };
    let b = &s.benchmark;
    let q = &s.qoe;
    let p = &s.per_flow;
    vec![
        f("cpu", "cores", b.cpu_avg_cores, LowerIsBetter),
        f("cpu_percent", "%", b.cpu_avg_percent, LowerIsBetter),
        f(
            "memory",
            "MB",
            b.memory_avg_bytes.map(|m| m as f64 / 1e6),
            LowerIsBetter,
        ),
        f(
            "bw_in",
            "Mbit/s",
            b.bandwidth_in_bps.map(|v| v / 1e6),
            Neutral,
        ),
        f(
            "bw_out",
            "Mbit/s",
            b.bandwidth_out_bps.map(|v| v / 1e6),
            Neutral,
        ),
        f("join_p50", "ms", us(q.join_p50_us), LowerIsBetter),
        f("join_p99", "ms", us(q.join_p99_us), LowerIsBetter),
        f("connect_p50", "ms", us(q.connect_p50_us), LowerIsBetter),
        f("connect_p99", "ms", us(q.connect_p99_us), LowerIsBetter),
        f("join_failures", "", n(q.join_failures), LowerIsBetter),
        f("loss", "%", q.loss.map(|l| l * 100.0), LowerIsBetter),
        f("jitter_p50", "ms", us(q.jitter_p50_us), LowerIsBetter),
        f("jitter_p99", "ms", us(q.jitter_p99_us), LowerIsBetter),
        f("latency_p50", "ms", us(q.latency_p50_us), LowerIsBetter),
        f("latency_p99", "ms", us(q.latency_p99_us), LowerIsBetter),
        f("freezes", "", n(q.freezes), LowerIsBetter),
        f(
            "renegotiation_p50",
            "ms",
            us(q.renegotiation_p50_us),
            LowerIsBetter,
        ),
        f("vad_p50", "ms", us(q.vad_p50_us), LowerIsBetter),
        f("disconnects", "", n(q.disconnects), LowerIsBetter),
        f(
            "kbps_per_forwarded_audio",
            "kbps",
            p.kbps_per_forwarded_audio,
            Neutral,
        ),
        f(
            "mbps_per_screen_viewer",
            "Mbps",
            p.mbps_per_screen_viewer,
            Neutral,
        ),
        f(
            "kbps_per_audio_source",
            "kbps",
            p.kbps_per_audio_source,
            Neutral,
        ),
        f(
            "mbps_per_screen_sharer",
            "Mbps",
            p.mbps_per_screen_sharer,
            Neutral,
        ),
        f("jobs_failed", "", n(s.jobs.failed), LowerIsBetter),
        f(
            "job_start_p99",
            "ms",
            us(s.jobs.start_p99_us),
            LowerIsBetter,
        ),
        f(
            "job_total_p99",
            "ms",
            us(s.jobs.total_p99_us),
            LowerIsBetter,
        ),
        f(
            "saturated_seconds",
            "s",
            n(s.self_health.saturated_seconds),
            LowerIsBetter,
        ),
    ]
}

/// The names `--max-regress` accepts.
pub fn names() -> Vec<&'static str> {
    figures(&placeholder())
        .into_iter()
        .map(|f| f.name)
        .collect()
}

fn placeholder() -> Summary {
    // Any summary has the same figure names; an empty synthetic-free one avoids I/O.
    use super::model::*;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tool: Tool::this(),
        synthetic: true,
        host: Host {
            hostname: String::new(),
            cpu_model: String::new(),
            cores: 1,
            kernel: String::new(),
            os: String::new(),
        },
        scenario: ScenarioInfo {
            name: String::new(),
            file: None,
            seed: 0,
            thresholds: Vec::new(),
            mix: Mix {
                calls: 0,
                users_per_call: 0,
                unmuted_per_call: 0,
                screen_calls: 0,
                video_per_call: 0,
                uniform: true,
            },
            flows: FlowCounts::default(),
            phases: PhaseSeconds {
                join_end_s: 0.0,
                steady_start_s: 0.0,
                steady_end_s: 0.0,
                end_s: 0.0,
            },
        },
        target: TargetInfo {
            kind: String::new(),
            version: None,
            address: None,
            vcpus: None,
            probe: ProbeSource::None,
        },
        wire: Default::default(),
        started_unix_ms: 0,
        ended_unix_ms: 0,
        complete: true,
        end_reason: EndReason::Completed,
        end_detail: None,
        shards: Vec::new(),
    };
    Summary::compute(&manifest, &[], &Default::default(), &Default::default())
}

/// Relative limits per figure name, as fractions (`cpu=10%` → 0.10).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits(pub BTreeMap<String, f64>);

impl Limits {
    /// Used when `--max-regress` is not given: CPU and memory 10 %, p99 join and latency 25 %,
    /// join failures and disconnects 0 % (any new one fails).
    pub fn defaults() -> Limits {
        Limits(
            [
                ("cpu", 0.10),
                ("memory", 0.10),
                ("join_p99", 0.25),
                ("latency_p99", 0.25),
                ("join_failures", 0.0),
                ("disconnects", 0.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        )
    }
}

impl FromStr for Limits {
    type Err = String;

    /// `cpu=10%,join_p99=20%` (the `%` is optional; values are percentages).
    fn from_str(text: &str) -> Result<Limits, String> {
        let known = names();
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected name=percent, found \"{part}\""))?;
            let name = name.trim();
            if !known.contains(&name) {
                return Err(format!(
                    "unknown figure \"{name}\", expected one of: {}",
                    known.join(", ")
                ));
            }
            let pct: f64 = value
                .trim()
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("{name}: expected a percentage like 10%, found \"{value}\"")
                })?;
            map.insert(name.to_owned(), pct / 100.0);
        }
        Ok(Limits(map))
    }
}

/// How one figure moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The figure.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// Current value.
    pub current: Option<f64>,
    /// Relative change (current − baseline) / baseline; infinite from a zero baseline.
    pub change: Option<f64>,
    /// The limit that applies, if any.
    pub limit: Option<f64>,
    /// Whether this is a regression beyond the limit.
    pub regressed: bool,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One row per figure.
    pub rows: Vec<Row>,
    /// Notes (partial runs, saturated harness).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether any figure regressed.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }
}

/// Compares two summaries.
pub fn compare(baseline: &Summary, current: &Summary, limits: &Limits) -> Comparison {
    let rows = figures(baseline)
        .into_iter()
        .zip(figures(current))
        .map(|(b, c)| {
            let change = match (b.value, c.value) {
                (Some(b), Some(c)) if b == c => Some(0.0),
                (Some(0.0), Some(c)) => Some(f64::INFINITY.copysign(c)),
                (Some(b), Some(c)) => Some((c - b) / b.abs()),
                _ => None,
            };
            let limit = limits.0.get(b.name).copied();
            let regressed = matches!((change, limit), (Some(ch), Some(l)) if ch > l + 1e-12);
            Row {
                name: b.name,
                unit: b.unit,
                baseline: b.value,
                current: c.value,
                change,
                limit,
                regressed,
            }
        })
        .collect();
    let mut notes = Vec::new();
    for (which, s) in [("baseline", baseline), ("current", current)] {
        if !s.complete {
            notes.push(format!("the {which} run is partial ({:?})", s.end_reason));
        }
        if s.self_health.saturated {
            notes.push(format!(
                "the {which} run's harness was saturated; its figures are unreliable"
            ));
        }
        if s.synthetic {
            notes.push(format!("the {which} results are synthetic"));
        }
    }
    Comparison { rows, notes }
}

fn value(v: Option<f64>) -> String {
    v.map_or("–".into(), sig3)
}

impl Comparison {
    /// The diff table.
    pub fn table(&self) -> Table {
        let mut t = Table::new([
            "Figure", "Unit", "Baseline", "Current", "Change", "Limit", "Verdict",
        ]);
        for r in &self.rows {
            let change = match r.change {
                None => "–".to_owned(),
                Some(c) if c.is_infinite() => "new".to_owned(),
                Some(c) => format!("{:+.1}%", c * 100.0),
            };
            t.row([
                r.name.to_owned(),
                r.unit.to_owned(),
                value(r.baseline),
                value(r.current),
                change,
                r.limit
                    .map_or(String::new(), |l| format!("+{}%", sig3(l * 100.0))),
                if r.regressed {
                    "REGRESSED"
                } else if r.limit.is_some() {
                    "ok"
                } else {
                    ""
                }
                .to_owned(),
            ]);
        }
        t
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.table().to_text())?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        let regressed: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.regressed)
            .map(|r| r.name)
            .collect();
        if regressed.is_empty() {
            writeln!(f, "no regression beyond the limits")
        } else {
            writeln!(f, "REGRESSION: {}", regressed.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_or_without_percent() {
        let l: Limits = "cpu=10%, join_p99=20".parse().unwrap();
        assert_eq!(l.0["cpu"], 0.10);
        assert_eq!(l.0["join_p99"], 0.20);
        let err = "cpu_avg=10%".parse::<Limits>().unwrap_err();
        assert!(
            err.starts_with("unknown figure \"cpu_avg\", expected one of: cpu,"),
            "{err}"
        );
        assert!("cpu=-3%".parse::<Limits>().is_err());
        assert!("cpu".parse::<Limits>().is_err());
    }

    #[test]
    fn every_default_limit_names_a_figure() {
        let known = names();
        for k in Limits::defaults().0.keys() {
            assert!(known.contains(&k.as_str()), "{k}");
        }
    }
}
