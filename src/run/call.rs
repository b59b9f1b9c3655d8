//! A call load, end to end: scenario → plan (shard, start time) → target (embedded SFU child or
//! rtcd hosts) → engine (one event loop per core, the plan's timed commands) → measure (sinks,
//! aggregator thread, probes, progress) → results directory, terminal summary, report → exit code.
//!
//! Exit codes: 0 passed; 1 a threshold failed, the harness was saturated or the target kept
//! sessions; 2 bad input, could not run, or the target died (partial results written); 130 on
//! Ctrl-C (partial results written).

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::Notify;

use super::RunArgs;
use super::media::RunMedia;
use super::progress::Progress;
use super::sink::{RunSink, Shared};
use super::target::TargetSetup;
use super::ticker::Ticker;
use super::timeline::Live;
use crate::engine::driver::{Driver, DriverConfig};
use crate::engine::participant::{Command, LEAVE_TIMEOUT};
use crate::measure::{
    Aggregator, HealthLimits, HotCounters, Interval, Sampler, ServerSource, WireOverhead,
};
use crate::report::{
    EndReason, FORMAT_VERSION, Host, Manifest, RunResult, ScenarioInfo, SeriesWriter, ShardEntry,
    Tool,
};
use crate::scenario::{DEFAULT_MAX_CALL_SIZE, Plan, PlanConfig, Scenario, ShardSpec};
use crate::target::embedded::EmbeddedSfu;

/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long to wait for the target to report a call's sessions gone after the last leave.
const SESSIONS_GONE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a call scenario.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    let start_at = args.start_at.as_deref().map(parse_time).transpose()?;
    let full = Plan::expand(&scenario, &PlanConfig { start_at });
    let plan = match &args.shard {
        Some(text) => {
            let spec: ShardSpec = text
                .parse()
                .map_err(|e| anyhow::anyhow!("--shard {text}: {e}"))?;
            full.shard(
                spec,
                std::num::NonZeroU32::new(DEFAULT_MAX_CALL_SIZE)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )?
        }
        None => full.clone(),
    };
    let out = args.out_dir();
    prepare_out(&out)?;
    let media = RunMedia::load(&plan).context("loading the scenario's media")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = runtime.block_on(async {
        let run = CallRun {
            args,
            scenario: &scenario,
            full: &full,
            plan: &plan,
            media: &media,
            out: &out,
        };
        run.execute().await
    })?;
    // Background tasks (the plugin connections) end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(code)
}

/// `--start-at`: RFC 3339 or Unix seconds.
fn parse_time(text: &str) -> anyhow::Result<SystemTime> {
    // `@<unix seconds>` and RFC 3339, as `scenario::units` documents start times.
    if let Ok(t) = crate::scenario::units::parse_wall_clock(text) {
        return Ok(t);
    }
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        anyhow::anyhow!("--start-at {text:?}: expected RFC 3339 or Unix seconds ({e})")
    })
}

/// The results directory must be absent or empty, so results of two runs never mix.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        anyhow::bail!(
            "results directory {} is not empty (give a new --out)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

pub(super) struct CallRun<'a> {
    pub(super) args: &'a RunArgs,
    pub(super) scenario: &'a Scenario,
    pub(super) full: &'a Plan,
    pub(super) plan: &'a Plan,
    pub(super) media: &'a RunMedia,
    pub(super) out: &'a Path,
}

/// How the timeline ended.
enum Ending {
    Completed,
    Interrupted,
    TargetDied,
    Failed(anyhow::Error),
}

impl CallRun<'_> {
    async fn execute(self) -> anyhow::Result<ExitCode> {
        let started_wall = SystemTime::now();
        let drops_before = super::ticker::udp_rcvbuf_errors();
        let mut setup = super::target::connect(self.args, self.plan.seed()).await?;
        // `[[drain]]`: hosts that stop taking new calls during the run (names resolved now).
        setup.target.set_drains(self.scenario.drains())?;
        let counters = Arc::new(HotCounters::new(WireOverhead::default()));
        // The run clock starts at --start-at (all shards together) or now.
        if let Some(late) = self
            .plan
            .start_at()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .filter(|late| *late > Duration::from_secs(1))
        {
            eprintln!(
                "callsbench: --start-at passed {:.1} s ago; the timeline starts now",
                late.as_secs_f64()
            );
        }
        let wait = self
            .plan
            .start_at()
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .unwrap_or_default();
        let epoch = Instant::now() + wait;
        let epoch_unix = crate::report::model::unix_ms(SystemTime::now() + wait) / 1000;
        let shared = Arc::new(Shared::new(epoch, Arc::clone(&counters)));
        let (itx, irx) = mpsc::channel::<Interval>();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut driver = Driver::start_metered(
            DriverConfig {
                threads,
                local_ip: setup.local_ip,
            },
            Some(Arc::clone(&counters)),
            |_| RunSink::new(Arc::clone(&shared), itx.clone()),
        )?;
        drop(itx);

        let series = SeriesWriter::create(self.out)?;
        let agg = Aggregator::new(
            Arc::clone(&counters),
            self.plan.phases(),
            HealthLimits {
                // The embedded SFU shares this host's cores with the harness.
                target_shares_host: setup.embedded.is_some(),
                ..HealthLimits::for_this_host()
            },
        );
        let died = Arc::new(Notify::new());
        let target_gone = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let progress = Progress::new(self.args.quiet, self.plan, Arc::clone(&shared));
        let aggregator = {
            let ctx = Ticker {
                agg,
                intervals: irx,
                sampler: Sampler::new(setup.probe.clone()),
                series,
                stop: stop_rx,
                epoch,
                epoch_unix,
                died: Arc::clone(&died),
                target_gone: Arc::clone(&target_gone),
                progress,
                target_pid: setup.embedded.as_ref().map(EmbeddedSfu::pid),
            };
            std::thread::Builder::new()
                .name("aggregator".into())
                .spawn(move || ctx.run())?
        };

        let mut state: HashMap<(usize, usize), Live> = HashMap::new();
        let mut call_host: HashMap<usize, usize> = HashMap::new();
        let ending = {
            let timeline = self.play(
                &mut setup,
                &mut driver,
                &shared,
                &mut state,
                &mut call_host,
                epoch,
            );
            tokio::select! {
                r = timeline => match r {
                    Ok(()) => Ending::Completed,
                    Err(e) => Ending::Failed(e),
                },
                _ = tokio::signal::ctrl_c() => Ending::Interrupted,
                _ = died.notified() => Ending::TargetDied,
            }
        };
        if !matches!(ending, Ending::Completed | Ending::TargetDied) {
            // Leave cleanly so the target is not left with sessions of an aborted run.
            for live in state.values() {
                if let Some(id) = &live.session_id {
                    let _ = driver.command(id, Command::Leave);
                }
            }
        }
        if !matches!(ending, Ending::TargetDied) {
            let limit = if matches!(ending, Ending::Completed) {
                LEAVE_TIMEOUT
            } else {
                Duration::from_secs(2)
            };
            let deadline = Instant::now() + limit;
            while shared.connected.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let sessions_after = if matches!(ending, Ending::TargetDied) {
            None
        } else {
            self.sessions_left(&setup, &call_host).await
        };

        // Stop measuring: the aggregator seals its last second, the engine hands back its sinks.
        let _ = stop_tx.send(());
        let ticker = aggregator
            .join()
            .map_err(|_| anyhow::anyhow!("the aggregator thread panicked"))?;
        let mut agg = ticker.agg;
        let shards = driver.stop();
        let mut engine = crate::engine::driver::ShardCounters::default();
        let mut groups = super::sink::Groups::new();
        let (mut voice_matched, mut voice_unmatched) = (0, 0);
        for (sink, c) in shards {
            let placement = setup.target.placement_mut();
            for o in sink.outcomes() {
                if o.joined {
                    placement.session_joined(&o.call_id);
                } else {
                    placement.session_failed(&o.call_id, o.scheduled);
                }
                if let Some(at) = o.dropped_at {
                    placement.session_dropped(&o.call_id, at);
                }
            }
            let (matched, unmatched) = sink.latency_coverage();
            voice_matched += matched;
            voice_unmatched += unmatched;
            let (last, g) = sink.finish();
            agg.absorb(last);
            for (k, v) in g {
                groups.entry(k).or_default().add(&v);
            }
            engine.send_errors += c.send_errors;
            engine.input_errors += c.input_errors;
            engine.max_timer_lag = engine.max_timer_lag.max(c.max_timer_lag);
        }
        while let Ok(i) = ticker.intervals.try_recv() {
            agg.absorb(i);
        }
        let mut measured = agg.finish();
        let c = &mut measured.counts;
        c.insert(
            "tracks.expected".into(),
            shared.tracks_expected.load(Ordering::Relaxed),
        );
        c.insert(
            "tracks.received".into(),
            shared.tracks_received.load(Ordering::Relaxed),
        );
        c.insert("latency.voice_matched".into(), voice_matched);
        c.insert("latency.voice_unmatched".into(), voice_unmatched);
        c.insert("engine.send_errors".into(), engine.send_errors);
        c.insert("engine.input_errors".into(), engine.input_errors);
        c.insert(
            "engine.max_timer_lag_us".into(),
            engine.max_timer_lag.as_micros() as u64,
        );
        if let Some(n) = sessions_after {
            c.insert("target.sessions_after_run".into(), n);
        }
        for (g, figures) in &groups {
            let name = self.group_name(*g);
            c.insert(format!("group.{name}.expected"), figures.expected);
            c.insert(format!("group.{name}.lost"), figures.lost);
            measured
                .histograms
                .insert(format!("group.{name}.latency"), figures.latency.clone());
        }
        let drops = drops_before
            .zip(super::ticker::udp_rcvbuf_errors())
            .map(|(a, b)| b.saturating_sub(a));
        if let Some(d) = drops {
            c.insert("host.udp_rcvbuf_errors".into(), d);
        }
        // Per-rtcd-host rows (`summary.hosts`): calls, sessions, outcomes, drains. Not for the
        // embedded target, which is one host by construction.
        if setup.embedded.is_none() {
            c.extend(setup.target.placement().counts());
        }

        let (end_reason, end_detail, complete) = match &ending {
            Ending::Completed => (EndReason::Completed, None, true),
            Ending::Interrupted => (
                EndReason::Interrupted,
                Some("interrupted (Ctrl-C); the figures cover the run up to then".to_owned()),
                false,
            ),
            Ending::TargetDied => (
                EndReason::TargetDied,
                Some("the target process exited during the run".to_owned()),
                false,
            ),
            Ending::Failed(e) => (EndReason::Error, Some(format!("{e:#}")), false),
        };
        let host = Host::this_machine();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            tool: Tool::this(),
            synthetic: false,
            scenario: ScenarioInfo::of_plan(self.scenario, self.plan, Some(&self.args.scenario)),
            target: setup.info.clone(),
            wire: counters.overhead(),
            started_unix_ms: crate::report::model::unix_ms(started_wall),
            ended_unix_ms: crate::report::model::unix_ms(SystemTime::now()),
            complete,
            end_reason,
            end_detail,
            shards: self
                .plan
                .shard_info()
                .map(|s| {
                    vec![ShardEntry {
                        index: s.spec.index(),
                        count: s.spec.count().get(),
                        hostname: host.hostname.clone(),
                        server_probes: !matches!(setup.probe, ServerSource::None),
                        source: None,
                    }]
                })
                .unwrap_or_default(),
            host,
        };
        // Stops the embedded child (if any) and removes its config and credential store.
        let scratch = setup.embedded.as_ref().map(|s| s.dir().to_path_buf());
        drop(setup);
        if let Some(dir) = scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
        let result = RunResult::new(manifest, measured);
        result.write(self.out)?;
        print!("{}", crate::report::text::render(&result));
        let expected = result.counts.get("tracks.expected").copied().unwrap_or(0);
        let received = result.counts.get("tracks.received").copied().unwrap_or(0);
        println!("Expected tracks received: {received} of {expected}");
        if !self.plan.impairments().is_empty() {
            print!("{}", self.group_lines(&groups));
        }
        if let Some(d) = drops.filter(|d| *d > 0) {
            // Host-wide (the network namespace's counter): other processes' drops count too.
            println!(
                "UDP receive-buffer drops on this host during the run (all processes): {d}; \
                 if the loss above is not 0, the target or the harness may not have kept up"
            );
        }
        match sessions_after {
            Some(0) => println!("Target sessions after the run: 0"),
            Some(n) => println!("Target sessions after the run: {n} (expected 0)"),
            None => println!("Target sessions after the run: not checked"),
        }
        if !self.args.no_report
            && let Err(e) = crate::report::render::write_report(&result, self.out)
        {
            eprintln!("callsbench: report not rendered: {e}");
        }
        println!("Results: {}", self.out.display());
        match &ending {
            Ending::Interrupted => eprintln!("callsbench: interrupted; partial results written"),
            Ending::TargetDied => {
                eprintln!("callsbench: the target process died; partial results written")
            }
            Ending::Failed(e) => {
                eprintln!("callsbench: run failed: {e:#}; partial results written")
            }
            Ending::Completed => {}
        }
        let code = match ending {
            Ending::Interrupted => EXIT_INTERRUPTED,
            _ if sessions_after.is_some_and(|n| n > 0) && result.exit_code() == 0 => {
                crate::cli::EXIT_FAILED
            }
            _ => result.exit_code(),
        };
        Ok(ExitCode::from(code))
    }

    /// The name of impairment group `g` in files (`unimpaired` for sessions in none).
    fn group_name(&self, g: Option<u32>) -> String {
        g.and_then(|g| self.plan.impairments().get(g as usize))
            .map_or_else(|| "unimpaired".to_owned(), |i| i.name().to_owned())
    }

    /// Per impairment group: what was injected, and the loss and one-way latency its sessions saw
    /// on the streams they received.
    fn group_lines(&self, groups: &super::sink::Groups) -> String {
        let mut text = String::from(
            "\nImpairment groups (figures of the streams each group's sessions received)\n",
        );
        let mut keys: Vec<Option<u32>> = groups.keys().copied().collect();
        keys.sort();
        for g in keys {
            let f = &groups[&g];
            let injected = g
                .and_then(|g| self.plan.impairments().get(g as usize))
                .map_or_else(
                    || "none".to_owned(),
                    |i| {
                        format!(
                            "loss {}, delay {:?}, jitter {:?}, {}",
                            i.loss(),
                            i.delay(),
                            i.jitter(),
                            format!("{:?}", i.direction()).to_lowercase()
                        )
                    },
                );
            let ms = |q: f64| {
                f.latency
                    .quantile_us(q)
                    .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3))
            };
            text += &format!(
                "  {:<14} injected {injected}: loss {}, latency p50 {} p99 {}\n",
                self.group_name(g),
                f.loss()
                    .map_or_else(|| "-".to_owned(), |l| format!("{:.2}%", l * 100.0)),
                ms(0.5),
                ms(0.99)
            );
        }
        text
    }

    /// Sessions the target still holds for this run's calls (0 when every call has ended).
    async fn sessions_left(
        &self,
        setup: &TargetSetup,
        call_host: &HashMap<usize, usize>,
    ) -> Option<u64> {
        let deadline = Instant::now() + SESSIONS_GONE_TIMEOUT;
        loop {
            let mut left = 0u64;
            for (&c, &h) in call_host {
                let id = self.plan.calls()[c].id().to_string();
                match setup.target.hosts()[h].api.sessions(&id).await {
                    Ok(None) => {}
                    Ok(Some(s)) => left += s.len() as u64,
                    Err(_) => return None,
                }
            }
            if left == 0 || Instant::now() >= deadline {
                return Some(left);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_parse() {
        let t = parse_time("2026-11-22T15:00:00Z").unwrap();
        assert_eq!(crate::report::model::unix_ms(t), 1_795_359_600_000);
        let t = parse_time("1795359600.5").unwrap();
        assert_eq!(crate::report::model::unix_ms(t), 1_795_359_600_500);
        assert!(parse_time("tomorrow").is_err());
        assert_eq!(
            crate::report::model::unix_ms(parse_time("@1795359600").unwrap()),
            1_795_359_600_000
        );
    }
}
