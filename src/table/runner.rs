//! The step that turns a scenario file into a results directory, behind a trait so `table` can be
//! tested without a target: [`ChildRunner`] runs `callsbench run SCENARIO --out DIR --no-report
//! --quiet` as a child process (one process per row, so a crashed or leaking row cannot spoil the
//! next); tests plug in a runner that writes a synthetic results directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How a row's run ended, from `callsbench run`'s documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Exit 0: complete, healthy, thresholds met.
    Passed,
    /// Exit 1: complete, but a threshold failed or the harness saturated (results are written).
    Failed,
}

/// Why a row produced no usable results.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`callsbench run` exited with {code} (see {log})")]
    Exit { code: String, log: String },
    #[error("interrupted (Ctrl-C); the row's partial results are in its directory")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

/// Runs one scenario into a results directory.
pub trait RowRunner {
    /// Runs `scenario` writing results into `out` (absent before the call); `log` receives the
    /// run's own output.
    fn run(&self, scenario: &Path, out: &Path, log: &Path) -> Result<RunStatus, RunnerError>;
}

/// `callsbench run` in a child process.
#[derive(Debug, Clone)]
pub struct ChildRunner {
    /// The callsbench binary (normally `std::env::current_exe()`).
    pub program: PathBuf,
    /// Arguments added after the fixed ones (e.g. `--rtcd URL`).
    pub extra_args: Vec<String>,
}

impl ChildRunner {
    /// The command line of one row, without the program.
    pub fn args(&self, scenario: &Path, out: &Path) -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            scenario.display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
            "--no-report".to_owned(),
            "--quiet".to_owned(),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

impl RowRunner for ChildRunner {
    fn run(&self, scenario: &Path, out: &Path, log: &Path) -> Result<RunStatus, RunnerError> {
        let log_err = |source| RunnerError::Log {
            path: log.display().to_string(),
            source,
        };
        let stdout = File::create(log).map_err(log_err)?;
        let stderr = stdout.try_clone().map_err(log_err)?;
        let status = Command::new(&self.program)
            .args(self.args(scenario, out))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .map_err(|source| RunnerError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        match status.code() {
            Some(0) => Ok(RunStatus::Passed),
            Some(1) => Ok(RunStatus::Failed),
            Some(130) => Err(RunnerError::Interrupted),
            code => Err(RunnerError::Exit {
                code: code.map_or_else(|| "a signal".to_owned(), |c| c.to_string()),
                log: log.display().to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_command_line_is_the_agreed_run_interface() {
        let r = ChildRunner {
            program: PathBuf::from("callsbench"),
            extra_args: vec!["--rtcd".into(), "http://h:8045".into()],
        };
        assert_eq!(
            r.args(Path::new("s/row-01.toml"), Path::new("o/rows/row-01")),
            [
                "run",
                "s/row-01.toml",
                "--out",
                "o/rows/row-01",
                "--no-report",
                "--quiet",
                "--rtcd",
                "http://h:8045"
            ]
        );
    }

    #[test]
    fn exit_codes_map_to_statuses() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("callsbench-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let with_code = |code: u8| {
            // A stand-in program that echoes its arguments and exits with `code`.
            let program = dir.join(format!("exit-{code}"));
            std::fs::write(&program, format!("#!/bin/sh\necho \"$@\"\nexit {code}\n")).unwrap();
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
            let r = ChildRunner {
                program,
                extra_args: Vec::new(),
            };
            r.run(Path::new("x.toml"), &dir.join("out"), &log)
        };
        assert_eq!(with_code(0).unwrap(), RunStatus::Passed);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().trim(),
            format!(
                "run x.toml --out {} --no-report --quiet",
                dir.join("out").display()
            )
        );
        assert_eq!(with_code(1).unwrap(), RunStatus::Failed);
        let err = with_code(2).unwrap_err();
        assert!(
            matches!(err, RunnerError::Exit { ref code, .. } if code == "2"),
            "{err}"
        );
        assert!(matches!(with_code(130), Err(RunnerError::Interrupted)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
