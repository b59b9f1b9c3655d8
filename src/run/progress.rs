//! The progress display on stderr while a call load runs: phase, participants connected of those
//! the plan has in the call by now, the target's current bandwidth in/out and its CPU.
//!
//! On a terminal the line is redrawn every second; when stderr is not a terminal (CI logs) a line
//! is printed every [`LOG_EVERY`]; `--quiet` prints nothing.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::sink::Shared;
use crate::measure::Snapshot;
use crate::scenario::Plan;

/// Interval between progress lines when stderr is not a terminal.
pub const LOG_EVERY: u64 = 5;

/// See the module docs.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    /// (join, leave) offsets of every session of the plan.
    spans: Vec<(Duration, Duration)>,
    end: Duration,
    shared: Arc<Shared>,
    drawn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Terminal,
    Log,
}

/// Connected of expected sessions. After a session's planned leave it stays connected until the
/// target closes it (the leave ramp), so more can be connected than the plan still has in the
/// call: those are shown as leaving, never as "3/1 connected".
pub fn participants(connected: u64, expected: u64) -> String {
    if connected > expected {
        format!(
            "{connected} connected ({} leaving, {expected} planned in)",
            connected - expected
        )
    } else {
        format!("{connected}/{expected} connected")
    }
}

/// Bits per second in a short human form.
pub fn rate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else {
        format!("{:.0} kbit/s", bps / 1e3)
    }
}

impl Progress {
    pub fn new(quiet: bool, plan: &Plan, shared: Arc<Shared>) -> Self {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Log
        };
        Progress {
            mode,
            spans: plan
                .sessions()
                .map(|s| (s.join_at(), s.leave_at()))
                .collect(),
            end: plan.phases().end,
            shared,
            drawn: false,
        }
    }

    /// Sessions the plan has joined and not yet left at `t`.
    pub fn expected_at(&self, t: Duration) -> usize {
        self.spans.iter().filter(|(j, l)| *j <= t && t < *l).count()
    }

    /// The line for one sealed second.
    pub fn line(&self, row: &Snapshot) -> String {
        let t = Duration::from_secs(row.t_s + 1);
        let cpu = row
            .server_cpu_cores
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.2} cores"));
        format!(
            "{:>4}/{} s {:<6} participants {}, joined {} | target in {} out {} | target CPU {}",
            row.t_s + 1,
            self.end.as_secs(),
            row.phase.name(),
            participants(
                self.shared.connected.load(Ordering::Relaxed),
                self.expected_at(t) as u64
            ),
            self.shared.joined.load(Ordering::Relaxed),
            rate(row.bw_in_bps),
            rate(row.bw_out_bps),
            cpu
        )
    }

    /// Shows one sealed second.
    pub fn update(&mut self, row: &Snapshot) {
        match self.mode {
            Mode::Off => {}
            Mode::Terminal => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{}", self.line(row));
                let _ = err.flush();
                self.drawn = true;
            }
            Mode::Log => {
                if (row.t_s + 1).is_multiple_of(LOG_EVERY) {
                    eprintln!("{}", self.line(row));
                }
            }
        }
    }

    /// Ends the display (a newline after a redrawn line).
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_past_their_leave_read_as_leaving() {
        assert_eq!(participants(3, 8), "3/8 connected");
        assert_eq!(participants(8, 8), "8/8 connected");
        assert_eq!(participants(1, 0), "1 connected (1 leaving, 0 planned in)");
    }

    #[test]
    fn rates_read_naturally() {
        assert_eq!(rate(1_234_567.0), "1.23 Mbit/s");
        assert_eq!(rate(89_200.0), "89 kbit/s");
    }
}
