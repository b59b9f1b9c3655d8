//! `callsbench run SCENARIO`: the command line of a load run and its dispatch.
//!
//! A scenario with an `[offloader]` table is a job load against a calls-offloader ([`crate::jobload`]);
//! any other scenario is a call load against rtcd (the embedded reference SFU when no `--rtcd` is
//! given). Both write a results directory (`manifest.json`, `series.csv`, `summary.json`, ...; see
//! [`crate::report`]) and print a terminal summary.
//!
//! # A call load ([`call`])
//!
//! ```text
//! scenario ─▶ Plan (--shard, --start-at) ─▶ target ([`target`]: embedded SFU child | rtcd hosts)
//!   ─▶ engine Driver, one event loop per core, wire metering on ─▶ the plan's timeline:
//!        join: place the call (first join), add the participant, impair it (its group), Join,
//!              then Unmute(mic) / ScreenOn(l[, h]) / VideoOn(camera) from the scenario's files
//!        churn: Mute / Unmute / ScreenOff / ScreenOn / VideoOff / VideoOn / Leave + rejoin
//!   ─▶ [`sink::RunSink`] per engine thread ─▶ [`ticker::Ticker`] (1 s rows, probes, progress)
//!   ─▶ RunResult ─▶ files, terminal summary, report.md/html ─▶ exit code
//! ```
//!
//! What is measured, and how:
//! - **Join phases** from the session's *scheduled* join: `sent` (join out), `offer` (our first
//!   offer out right after it: rtcd never offers first), `answer` (rtcd's answer applied),
//!   `ice_connected`, `dc_open`, `first_media` — the first packet of
//!   every track whose sender was in the call when the session joined (a session with nothing to
//!   expect completes at `dc_open`). A session that never completes counts as a failure at the
//!   first phase it missed.
//! - **Loss** per received stream from its extended sequence numbers (RFC 3550: expected =
//!   highest − first + 1), reported once a second; late packets never make it negative.
//!   **Jitter**: RFC 3550 interarrival jitter per stream, sampled each second. **One-way latency**
//!   of voice from the engine's send log (the publisher is in the same harness, on the same
//!   clock). **Freezes**: a gap > 500 ms between two frames of a received video or screen stream.
//! - **Signalling**: own renegotiation round trips (our offer → rtcd's answer), the harness's
//!   share of server offers (offer arrived → answer out), and **VAD event latency**: each
//!   speaker replays rtcd's VAD rule on the levels it sends, so the packet that turned voice on is
//!   known by its send instant; rtcd's `vad` on for that speaker arriving on our plugin
//!   connection ends the measurement.
//! - **Self-health**: harness CPU, event-loop lag, pacing error (per engine input that wrote
//!   media), the busiest engine thread's CPU and drops at the harness's own sockets; drops at the
//!   embedded target's sockets and host-wide UDP errors are reported beside them.
//! - **Bandwidth** where the bytes leave and arrive: every datagram in the engine's socket path,
//!   per flow, plus IPv4, UDP and Ethernet headers (see [`crate::measure::counters`]).
//! - **Tracks**: the remote tracks the plan says each connection should receive while in the call
//!   (`tracks.expected`) and those that delivered a packet (`tracks.received`).
//! - **After the run**: `GET /calls/{id}/sessions` for every call until each answers 404 (5 s
//!   at most); sessions left over make an otherwise passing run exit 1.
//! - **Impairment groups**: loss and one-way latency of the streams each group's sessions
//!   received (`summary.json` `impairment_groups`).
//!
//! Exit codes: 0 passed; 1 a threshold failed, the harness saturated or the target kept sessions;
//! 2 bad input, could not run, or the target died (partial results written); 130 Ctrl-C (partial
//! results written).

use std::path::PathBuf;
use std::process::ExitCode;

pub mod call;
pub mod media;
pub mod progress;
pub mod sink;
pub mod target;
pub mod ticker;
pub mod timeline;

/// `callsbench run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML; see scenarios/README.md).
    pub scenario: PathBuf,
    /// Results directory (created; must be empty or absent). Default: results/<scenario>-<UTC time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// rtcd base URL (repeatable; a host name with several addresses counts as several hosts).
    /// Without it, the embedded reference SFU is spawned as a child process on loopback.
    #[arg(long = "rtcd", value_name = "URL")]
    pub rtcd: Vec<String>,
    /// Client id to log in to rtcd with (generated and self-registered when absent).
    #[arg(long, env = "CALLSBENCH_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Auth key for --client-id (or the key to self-register with).
    #[arg(long, env = "CALLSBENCH_AUTH_KEY", hide_env_values = true)]
    pub auth_key: Option<String>,
    /// Run only this shard of the plan, `I/N` with 1 <= I <= N (every shard derives the same plan).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Wall-clock start of the run's timeline (RFC 3339 or Unix seconds), so shards start together.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// Do not render report.md / report.html at the end.
    #[arg(long)]
    pub no_report: bool,
    /// No progress display (the summary is still printed).
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The results directory: `--out`, or `results/<scenario stem>-<UTC yyyymmddThhmmss>`.
    pub fn out_dir(&self) -> PathBuf {
        if let Some(out) = &self.out {
            return out.clone();
        }
        let stem = self
            .scenario
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".to_owned());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        PathBuf::from("results").join(format!("{stem}-{}", utc_stamp(now)))
    }
}

/// Runs `callsbench run`.
pub fn command(args: RunArgs) -> anyhow::Result<ExitCode> {
    if crate::jobload::is_job_load(&args.scenario)? {
        return crate::jobload::command(&args.scenario, &args.out_dir());
    }
    call::run(&args)
}

/// `yyyymmddThhmmssZ` for Unix seconds (proleptic Gregorian, UTC).
fn utc_stamp(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_357_425), "20261122T142345Z");
    }
}
