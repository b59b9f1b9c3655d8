//! The run's description (`manifest.json`): tool and host versions, scenario, seed, call mix and flow
//! counts, target, wire-accounting settings, how and why the run ended, and the shards it came from.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::measure::WireOverhead;
use crate::plan::flow::{CallMix, Flows};
use crate::scenario::{PhaseTimes, Plan, Scenario};

/// Version of the results-directory format (manifest, series, summary, histograms).
pub const FORMAT_VERSION: u32 = 1;

/// What produced the results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `callsbench`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

impl Tool {
    /// This build.
    pub fn this() -> Tool {
        Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The machine the harness (or one shard of it) ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Host name.
    pub hostname: String,
    /// CPU model (`model name` in /proc/cpuinfo).
    pub cpu_model: String,
    /// Cores this process could use.
    pub cores: u32,
    /// Kernel release.
    pub kernel: String,
    /// Operating system and architecture.
    pub os: String,
}

impl Host {
    /// Reads this machine's description from procfs; unknown fields read "unknown".
    pub fn this_machine() -> Host {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Host {
            hostname: read("/proc/sys/kernel/hostname"),
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            kernel: read("/proc/sys/kernel/osrelease"),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The call mix of the benchmark table's first four columns (for the whole scenario, not a shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    /// Calls.
    pub calls: u32,
    /// Users per call (the largest group's, when groups differ).
    pub users_per_call: u32,
    /// Unmuted speakers per call.
    pub unmuted_per_call: u32,
    /// Calls with a screen sharer.
    pub screen_calls: u32,
    /// Camera senders per call.
    pub video_per_call: u32,
    /// False when the scenario mixes call shapes and the per-call figures are only indicative.
    pub uniform: bool,
}

impl From<CallMix> for Mix {
    fn from(m: CallMix) -> Mix {
        Mix {
            calls: m.calls(),
            users_per_call: m.users_per_call(),
            unmuted_per_call: m.unmuted_per_call(),
            screen_calls: m.screen_calls(),
            video_per_call: m.video_per_call(),
            uniform: true,
        }
    }
}

/// Media flows through the target for the sessions this result covers (calls-loadtest.md §2.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCounts {
    /// WebRTC sessions.
    pub sessions: u64,
    /// Inbound audio streams.
    pub audio_sources: u64,
    /// Inbound screen streams.
    pub screen_sharers: u64,
    /// Inbound camera streams.
    pub video_sources: u64,
    /// Audio streams the target forwards.
    pub forwarded_audio: u64,
    /// Screen streams the target forwards.
    pub screen_viewers: u64,
    /// Camera streams the target forwards.
    pub forwarded_video: u64,
}

impl From<Flows> for FlowCounts {
    fn from(f: Flows) -> FlowCounts {
        FlowCounts {
            sessions: f.sessions,
            audio_sources: f.audio_sources,
            screen_sharers: f.screen_sharers,
            video_sources: f.video_sources,
            forwarded_audio: f.forwarded_audio,
            screen_viewers: f.screen_viewers,
            forwarded_video: f.forwarded_video,
        }
    }
}

impl FlowCounts {
    /// Field-wise sum (shards of one run).
    pub fn plus(self, o: FlowCounts) -> FlowCounts {
        FlowCounts {
            sessions: self.sessions + o.sessions,
            audio_sources: self.audio_sources + o.audio_sources,
            screen_sharers: self.screen_sharers + o.screen_sharers,
            video_sources: self.video_sources + o.video_sources,
            forwarded_audio: self.forwarded_audio + o.forwarded_audio,
            screen_viewers: self.screen_viewers + o.screen_viewers,
            forwarded_video: self.forwarded_video + o.forwarded_video,
        }
    }
}

/// Plan phase boundaries in seconds from the run start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Last planned join.
    pub join_end_s: f64,
    /// Steady window start (last join + settle).
    pub steady_start_s: f64,
    /// Steady window end (first planned leave).
    pub steady_end_s: f64,
    /// Last planned leave.
    pub end_s: f64,
}

impl From<PhaseTimes> for PhaseSeconds {
    fn from(p: PhaseTimes) -> PhaseSeconds {
        PhaseSeconds {
            join_end_s: p.join_end.as_secs_f64(),
            steady_start_s: p.steady_start.as_secs_f64(),
            steady_end_s: p.steady_end.as_secs_f64(),
            end_s: p.end.as_secs_f64(),
        }
    }
}

impl PhaseSeconds {
    /// Back to durations (negative or non-finite values read as 0).
    pub fn times(&self) -> PhaseTimes {
        let d = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
        PhaseTimes {
            join_end: d(self.join_end_s),
            steady_start: d(self.steady_start_s),
            steady_end: d(self.steady_end_s),
            end: d(self.end_s),
        }
    }

    /// The settle time between the last join and the steady window.
    pub fn settle_s(&self) -> f64 {
        (self.steady_start_s - self.join_end_s).max(0.0)
    }
}

/// The scenario that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// File it was loaded from, if any.
    pub file: Option<String>,
    /// Master seed.
    pub seed: u64,
    /// Threshold expressions (`"join_time.p99 <= 3s"`), evaluated into the summary.
    pub thresholds: Vec<String>,
    /// The benchmark-table call mix.
    pub mix: Mix,
    /// Flow counts for the sessions in this result.
    pub flows: FlowCounts,
    /// Plan phase boundaries.
    pub phases: PhaseSeconds,
}

impl Mix {
    /// The benchmark-table mix of a whole scenario. With several call groups the per-call columns
    /// are the largest group's and `uniform` is false.
    pub fn of_scenario(scenario: &Scenario) -> Mix {
        let groups = scenario.groups();
        let largest = groups.iter().max_by_key(|g| g.participants().get());
        Mix {
            calls: groups.iter().map(|g| g.count().get()).sum(),
            users_per_call: largest.map_or(0, |g| g.participants().get()),
            unmuted_per_call: largest.map_or(0, |g| g.unmuted()),
            screen_calls: groups.iter().map(|g| g.screen_sharing()).sum(),
            video_per_call: largest.map_or(0, |g| g.video()),
            uniform: groups.len() <= 1,
        }
    }
}

impl FlowCounts {
    /// The flows of the sessions in `plan` (a whole plan or one shard's slice): each sent stream
    /// is forwarded to the other participants of its call.
    pub fn of_plan(plan: &Plan) -> FlowCounts {
        let mut f = FlowCounts::default();
        for call in plan.calls() {
            let others = u64::from(call.participants().saturating_sub(1));
            for session in call.sessions() {
                let r = session.roles();
                f.sessions += 1;
                f.audio_sources += u64::from(r.speaker);
                f.screen_sharers += u64::from(r.screen);
                f.video_sources += u64::from(r.camera);
                f.forwarded_audio += u64::from(r.speaker) * others;
                f.screen_viewers += u64::from(r.screen) * others;
                f.forwarded_video += u64::from(r.camera) * others;
            }
        }
        f
    }
}

impl ScenarioInfo {
    /// Everything the manifest says about the scenario, from the loaded scenario and the plan (or
    /// shard slice) this harness runs.
    pub fn of_plan(scenario: &Scenario, plan: &Plan, file: Option<&Path>) -> ScenarioInfo {
        ScenarioInfo {
            name: scenario.name().to_owned(),
            file: file.map(|p| p.display().to_string()),
            seed: plan.seed(),
            thresholds: scenario
                .thresholds()
                .iter()
                .map(|t| t.to_string())
                .collect(),
            mix: Mix::of_scenario(scenario),
            flows: FlowCounts::of_plan(plan),
            phases: PhaseSeconds::from(plan.phases()),
        }
    }
}

/// Where server CPU and memory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeSource {
    /// `/proc/<pid>` of the embedded child.
    Proc,
    /// `rtcd_process_*` from the target's Prometheus endpoint.
    Prometheus,
    /// Not measured (e.g. this shard left server probes to another).
    None,
}

/// What was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `embedded` (reference SFU as a child), `rtcd`, or another name.
    pub kind: String,
    /// Target version, if it said.
    pub version: Option<String>,
    /// Address(es) used.
    pub address: Option<String>,
    /// vCPUs of the target host, to express CPU as a percentage like the published tables.
    pub vcpus: Option<u32>,
    /// Where server CPU and memory came from.
    pub probe: ProbeSource,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The plan ran to its end.
    Completed,
    /// Ctrl-C or a signal.
    Interrupted,
    /// The target process exited or stopped answering.
    TargetDied,
    /// The harness hit an error it could not continue after.
    Error,
}

/// One shard that contributed to this result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Shard index (0-based).
    pub index: u32,
    /// Number of shards.
    pub count: u32,
    /// Host the shard ran on.
    pub hostname: String,
    /// Whether this shard's server probes are the ones in the result.
    pub server_probes: bool,
    /// Results directory the shard was merged from, if merged.
    pub source: Option<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// What produced the results.
    pub tool: Tool,
    /// True for results made by a generator instead of a real run (fixtures).
    pub synthetic: bool,
    /// The harness host (the first shard's, when merged).
    pub host: Host,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The target.
    pub target: TargetInfo,
    /// Per-packet overhead used for wire bandwidth.
    pub wire: WireOverhead,
    /// Run start, UNIX milliseconds.
    pub started_unix_ms: u64,
    /// Run end, UNIX milliseconds.
    pub ended_unix_ms: u64,
    /// False when the run stopped before its plan ended; results are partial.
    pub complete: bool,
    /// Why it ended.
    pub end_reason: EndReason,
    /// A sentence for a person when the run did not complete.
    pub end_detail: Option<String>,
    /// Shards this result covers; empty for an unsharded run.
    pub shards: Vec<ShardEntry>,
}

/// UNIX milliseconds of a wall-clock time (0 before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_and_flows_come_from_the_plan_model() {
        let mix = CallMix::new(100, 8, 2, 0, 0).unwrap();
        let flows = FlowCounts::from(mix.flows());
        assert_eq!(flows.forwarded_audio, 1_400);
        assert_eq!(Mix::from(mix).users_per_call, 8);
        assert_eq!(flows.plus(flows).sessions, 1_600);
    }

    #[test]
    fn phase_seconds_round_trip() {
        let p = PhaseSeconds {
            join_end_s: 10.0,
            steady_start_s: 15.5,
            steady_end_s: 75.0,
            end_s: 80.0,
        };
        assert_eq!(PhaseSeconds::from(p.times()), p);
        assert_eq!(p.settle_s(), 5.5);
    }

    #[test]
    fn this_machine_is_described() {
        let h = Host::this_machine();
        assert!(h.cores >= 1);
        assert_ne!(h.kernel, "");
    }
}
