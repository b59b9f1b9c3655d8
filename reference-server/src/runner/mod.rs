//! `callsref runner`: the entrypoint of the job image (offloader.md §8), and the program the
//! process backend runs.
//!
//! It reads its environment as the real images do (input_data keys arrive upper-cased:
//! `RECORDING_ID` or `TRANSCRIPTION_ID` name the job's directory under `DATA_DIR`, default `/data`)
//! and takes its test behaviour from `RUNNER_*` keys, so one image serves every lifecycle case:
//!
//! | env (input_data key, lower-case) | effect | default |
//! |---|---|---|
//! | `RUNNER_EXIT_CODE` | exit code at the end of the run | 0 |
//! | `RUNNER_RUN_MS` | how long to run | 0 |
//! | `RUNNER_SIGTERM` | `honour` (exit on SIGTERM) or `ignore` | honour |
//! | `RUNNER_SIGTERM_EXIT_CODE` | exit code when SIGTERM ends the run | `RUNNER_EXIT_CODE` |
//! | `RUNNER_SIGTERM_DELAY_MS` | time taken to shut down after SIGTERM | 0 |
//! | `RUNNER_STDOUT` / `RUNNER_STDERR` | text written to stdout / stderr (`\n` separates lines) | none |
//! | `RUNNER_FILES` | comma-separated file names written under `DATA_DIR/<job id>/` | none |
//! | `RUNNER_DUMP_ENV` | `true`: write every `KEY=value` of the environment to stderr, sorted | false |
//!
//! Like the real images, stderr carries the operational trace (the offloader serves only stderr as
//! job logs) and exit 0 means "clean up", non-zero "keep for inspection".
//!
//! With `RTCD_URL` in its environment the runner is a recorder instead: it joins the call on an
//! rtcd-compatible SFU as a receive-only participant and writes what it receives ([`record`]).
//! Without `RUNNER_*` keys or `RTCD_URL` (the real recorder's Mattermost-side env only) it reports
//! on stderr that it cannot join through Mattermost and exits 0, as the real recorder does when it
//! fails to start (no data was lost, so the offloader may clean up).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::offloader::backend::process::{DATA_DIR_ENV, EXIT_FILE_ENV};

pub mod record;
pub mod tracks;

/// What the runner does, parsed from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    pub exit_code: i32,
    pub run: Duration,
    pub honour_sigterm: bool,
    pub sigterm_exit_code: i32,
    pub sigterm_delay: Duration,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub files: Vec<String>,
    pub dump_env: bool,
    pub data_dir: PathBuf,
    pub job_id: String,
    pub exit_file: Option<PathBuf>,
    /// No `RUNNER_*` key at all: the caller wanted the real recorder/transcriber.
    pub real_mode: bool,
}

/// A `RUNNER_*` value that doesn't parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name} value {value:?}: expected {expected}")]
pub struct BehaviourError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Behaviour {
    /// Parses the behaviour from `KEY=value` pairs.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, BehaviourError> {
        let get = |k: &str| env.get(k).cloned();
        fn num<T: std::str::FromStr>(
            name: &'static str,
            v: Option<String>,
            default: T,
        ) -> Result<T, BehaviourError> {
            match v {
                None => Ok(default),
                // input_data numbers are Go-formatted floats: "1500", "1e+06", "0.5".
                Some(s) => s
                    .parse::<T>()
                    .or_else(|_| {
                        s.parse::<f64>()
                            .ok()
                            .and_then(|f| format!("{}", f.trunc()).parse().ok())
                            .ok_or(())
                    })
                    .map_err(|_| BehaviourError {
                        name,
                        value: s,
                        expected: "a number",
                    }),
            }
        }
        let exit_code = num("RUNNER_EXIT_CODE", get("RUNNER_EXIT_CODE"), 0i32)?;
        let sigterm = get("RUNNER_SIGTERM").unwrap_or_else(|| "honour".into());
        let honour_sigterm = match sigterm.as_str() {
            "honour" | "honor" => true,
            "ignore" => false,
            _ => {
                return Err(BehaviourError {
                    name: "RUNNER_SIGTERM",
                    value: sigterm,
                    expected: "honour or ignore",
                });
            }
        };
        Ok(Behaviour {
            exit_code,
            run: Duration::from_millis(num("RUNNER_RUN_MS", get("RUNNER_RUN_MS"), 0u64)?),
            honour_sigterm,
            sigterm_exit_code: num(
                "RUNNER_SIGTERM_EXIT_CODE",
                get("RUNNER_SIGTERM_EXIT_CODE"),
                exit_code,
            )?,
            sigterm_delay: Duration::from_millis(num(
                "RUNNER_SIGTERM_DELAY_MS",
                get("RUNNER_SIGTERM_DELAY_MS"),
                0u64,
            )?),
            stdout: get("RUNNER_STDOUT"),
            stderr: get("RUNNER_STDERR"),
            files: get("RUNNER_FILES")
                .map(|f| {
                    f.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            dump_env: get("RUNNER_DUMP_ENV").is_some_and(|v| v == "true"),
            data_dir: PathBuf::from(get(DATA_DIR_ENV).unwrap_or_else(|| "/data".into())),
            job_id: get("RECORDING_ID")
                .or(get("TRANSCRIPTION_ID"))
                .unwrap_or_else(|| "job".into()),
            exit_file: get(EXIT_FILE_ENV).map(PathBuf::from),
            real_mode: !env.keys().any(|k| k.starts_with("RUNNER_")),
        })
    }
}

/// Runs the runner with the process environment; returns the exit code.
pub fn run() -> i32 {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let behaviour = match Behaviour::from_env(&env) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("runner: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runner: failed to start runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(execute(&behaviour, &env));
    if let Some(path) = &behaviour.exit_file {
        let _ = std::fs::write(path, code.to_string());
    }
    code
}

async fn execute(b: &Behaviour, env: &BTreeMap<String, String>) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    // Listen for SIGTERM before anything else: as PID 1 in a container, a signal without a
    // handler would be ignored and the job could only be killed.
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runner: failed to listen for SIGTERM: {e}");
            return 1;
        }
    };
    eprintln!("runner: starting job {}", b.job_id);
    match record::RecordConfig::from_env(env, b.data_dir.clone(), &b.job_id, b.run, b.exit_code) {
        Ok(Some(cfg)) => return recording(cfg, term).await,
        Ok(None) => {}
        Err(e) => {
            // As the real recorder: a start failure is reported and exits 0 (nothing to keep).
            eprintln!("runner: failed to start: {e}");
            return 0;
        }
    }
    if b.real_mode {
        eprintln!(
            "runner: joining through Mattermost (SITE_URL) is not supported; give RTCD_URL, \
             RTCD_CLIENT_ID, RTCD_AUTH_KEY and CALL_ID to record from rtcd; exiting"
        );
        return 0;
    }
    if let Some(text) = &b.stdout {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
    if let Some(text) = &b.stderr {
        eprintln!("{text}");
    }
    if b.dump_env {
        for (k, v) in env {
            eprintln!("{k}={v}");
        }
    }
    if !b.files.is_empty() {
        let dir = b.data_dir.join(&b.job_id);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("runner: failed to create {}: {e}", dir.display());
            return 1;
        }
        for name in &b.files {
            if let Err(e) = std::fs::write(
                dir.join(name),
                format!("{name} written by job {}\n", b.job_id),
            ) {
                eprintln!("runner: failed to write {name}: {e}");
                return 1;
            }
        }
    }
    let run = tokio::time::sleep(b.run);
    tokio::pin!(run);
    loop {
        tokio::select! {
            _ = &mut run => {
                eprintln!("runner: done, exiting with {}", b.exit_code);
                return b.exit_code;
            }
            _ = term.recv() => {
                if b.honour_sigterm {
                    eprintln!("runner: received SIGTERM, stopping");
                    tokio::time::sleep(b.sigterm_delay).await;
                    return b.sigterm_exit_code;
                }
                eprintln!("runner: received SIGTERM, ignoring it");
            }
        }
    }
}

/// Recording mode: exit codes as the real recorder's (see [`record`]).
async fn recording(cfg: record::RecordConfig, mut term: tokio::signal::unix::Signal) -> i32 {
    let success = cfg.exit_code;
    let stop = async move {
        term.recv().await;
        eprintln!("runner: received SIGTERM, stopping the recording");
    };
    match record::record(cfg, stop).await {
        Ok(r) => {
            for (name, n) in &r.files {
                eprintln!("runner: {name}: {n} packets/frames");
            }
            eprintln!("runner: recording done, exiting with {success}");
            success
        }
        Err(e @ record::RecordError::Start(_)) => {
            eprintln!("runner: {e}");
            0
        }
        Err(e) => {
            eprintln!("runner: {e}; keeping the files");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_knobs_and_go_formatted_numbers() {
        let b = Behaviour::from_env(&env(&[
            ("RUNNER_EXIT_CODE", "3"),
            ("RUNNER_RUN_MS", "1.5e+06"),
            ("RUNNER_SIGTERM", "ignore"),
            ("RUNNER_FILES", "a.mp4, b.log"),
            ("RECORDING_ID", "r1"),
            ("DATA_DIR", "/tmp/x"),
        ]))
        .unwrap();
        assert_eq!(b.exit_code, 3);
        assert_eq!(b.sigterm_exit_code, 3);
        assert_eq!(b.run, Duration::from_millis(1_500_000));
        assert!(!b.honour_sigterm && !b.real_mode);
        assert_eq!(b.files, ["a.mp4", "b.log"]);
        assert_eq!(b.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(b.job_id, "r1");
    }

    #[test]
    fn bad_values_are_typed_errors_and_no_knobs_means_real_mode() {
        let err = Behaviour::from_env(&env(&[("RUNNER_SIGTERM", "maybe")])).unwrap_err();
        assert_eq!(err.name, "RUNNER_SIGTERM");
        assert!(Behaviour::from_env(&env(&[("RUNNER_EXIT_CODE", "x")])).is_err());
        let b = Behaviour::from_env(&env(&[("SITE_URL", "http://x")])).unwrap();
        assert!(b.real_mode);
        assert_eq!(b.data_dir, PathBuf::from("/data"));
    }
}
