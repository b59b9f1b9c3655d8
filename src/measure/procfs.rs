//! Process CPU and memory from Linux procfs: for the embedded target (a child pid) and for the harness
//! itself (`/proc/self`).
//!
//! Sans-IO split: [`parse_stat`] and [`parse_status_rss`] turn file text into numbers and are tested on
//! fixtures; [`CpuRate`] turns successive cumulative CPU readings into cores used; [`ProcProbe`] is the
//! thin part that reads the two files.

use std::path::PathBuf;
use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat`. Linux fixes `USER_HZ` at 100 in
/// its user-space ABI on every architecture this tool targets (x86-64, arm64), whatever `CONFIG_HZ`
/// the kernel runs with, so reading it via `sysconf` would not change the answer.
pub const USER_HZ: f64 = 100.0;

/// Why a procfs reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed /proc stat line: {0}")]
    Stat(&'static str),
    #[error("no VmRSS line in /proc status (is the process a zombie?)")]
    NoRss,
}

/// One reading of a process: cumulative CPU time and resident memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time since the process started, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// CPU seconds (utime + stime) from the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so
/// fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Result<f64, ProcError> {
    let close = text
        .rfind(')')
        .ok_or(ProcError::Stat("no ')' after the command"))?;
    // After ") " come fields 3 (state), 4 (ppid), …; utime and stime are fields 14 and 15.
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let mut nth = |n: usize| {
        fields
            .nth(n)
            .ok_or(ProcError::Stat("fewer than 15 fields"))?
            .parse::<u64>()
            .map_err(|_| ProcError::Stat("utime/stime is not a number"))
    };
    let utime = nth(11)?; // field 14 = index 11 after field 3
    let stime = nth(0)?; // field 15
    Ok((utime + stime) as f64 / USER_HZ)
}

/// Resident set size in bytes from the text of `/proc/<pid>/status` (`VmRSS:   1234 kB`).
pub fn parse_status_rss(text: &str) -> Result<u64, ProcError> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or(ProcError::NoRss)?;
    let kb: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|_| ProcError::NoRss)?;
    Ok(kb * 1024)
}

/// Turns cumulative CPU-seconds readings into cores used over each interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuRate {
    last: Option<(Duration, f64)>,
}

impl CpuRate {
    /// Feeds a reading taken at run-clock time `at`; returns the cores used since the previous
    /// reading (CPU seconds ÷ wall seconds), or `None` for the first reading or a non-increasing clock.
    pub fn update(&mut self, at: Duration, cpu_seconds: f64) -> Option<f64> {
        let previous = self.last.replace((at, cpu_seconds));
        let (then, cpu_then) = previous?;
        let wall = at.checked_sub(then)?.as_secs_f64();
        (wall > 0.0).then(|| ((cpu_seconds - cpu_then) / wall).max(0.0))
    }
}

/// Reads `/proc/<pid>/{stat,status}` for one process.
#[derive(Debug, Clone)]
pub struct ProcProbe {
    dir: PathBuf,
}

impl ProcProbe {
    /// Probe for a child process id.
    pub fn pid(pid: u32) -> Self {
        Self {
            dir: PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// Probe for the calling process.
    pub fn this_process() -> Self {
        Self {
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// The procfs directory read (`/proc/<pid>`, `/proc/self`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Probe rooted at another procfs-like directory (fixtures in tests).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Takes one reading.
    pub fn sample(&self) -> Result<ProcSample, ProcError> {
        let read = |name: &str| {
            let path = self.dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| ProcError::Read { path, source })
        };
        Ok(ProcSample {
            cpu_seconds: parse_stat(&read("stat")?)?,
            rss_bytes: parse_status_rss(&read("status")?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (callsref (sfu) x) S 1 4242 4242 0 -1 4194560 2130 0 0 0 \
                        1234 566 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615 0 0 0";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let cpu = parse_stat(STAT).unwrap();
        assert!((cpu - 18.0).abs() < 1e-9, "{cpu}");
    }

    #[test]
    fn malformed_stat_is_a_typed_error() {
        assert!(matches!(parse_stat("42 nope"), Err(ProcError::Stat(_))));
        assert!(matches!(
            parse_stat("42 (x) S 1 2"),
            Err(ProcError::Stat(_))
        ));
    }

    #[test]
    fn rss_is_read_in_kib() {
        let status = "Name:\tcallsref\nVmPeak:\t  9999 kB\nVmRSS:\t  524288 kB\nThreads:\t9\n";
        assert_eq!(parse_status_rss(status).unwrap(), 512 * 1024 * 1024);
        assert!(matches!(
            parse_status_rss("Name: x\n"),
            Err(ProcError::NoRss)
        ));
    }

    #[test]
    fn cpu_rate_is_cores_per_wall_second() {
        let mut r = CpuRate::default();
        assert_eq!(r.update(Duration::from_secs(1), 10.0), None);
        let cores = r.update(Duration::from_millis(1500), 11.0).unwrap();
        assert!((cores - 2.0).abs() < 1e-9);
        assert_eq!(r.update(Duration::from_millis(1500), 12.0), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = ProcProbe::this_process().sample().unwrap();
        assert!(s.rss_bytes > 1024 * 1024, "{s:?}");
        assert!(s.cpu_seconds >= 0.0);
    }
}
