//! The aggregator thread of a call load: once a second it absorbs the engine threads' intervals,
//! reads the probes (target and harness), seals a row, appends it to `series.csv`, updates the
//! progress display, and notices when the embedded target has died.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::progress::Progress;
use crate::measure::{Aggregator, Interval, ProbeError, Sampler};
use crate::report::SeriesWriter;

/// The aggregator thread: once a second, absorb the sinks' intervals, read the probes, seal a row,
/// append it to `series.csv` and update the progress display.
#[derive(Debug)]
pub struct Ticker {
    pub agg: Aggregator,
    pub intervals: mpsc::Receiver<Interval>,
    pub sampler: Sampler,
    pub series: SeriesWriter,
    pub stop: mpsc::Receiver<()>,
    pub epoch: Instant,
    pub epoch_unix: u64,
    pub died: Arc<Notify>,
    pub target_gone: Arc<AtomicBool>,
    pub progress: Progress,
    /// The embedded child, watched for its exit.
    pub target_pid: Option<u32>,
}

/// Whether process `pid` has exited: gone from `/proc`, or a zombie its parent has not reaped yet
/// (the harness holds the child's handle until the end, so a dead child stays a zombie).
pub fn process_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

impl Ticker {
    pub fn run(mut self) -> Self {
        let mut t = 0u64;
        loop {
            let due = self.epoch + Duration::from_secs(t + 1);
            let wait = due.saturating_duration_since(Instant::now());
            match self.stop.recv_timeout(wait) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
            self.second(t);
            t += 1;
        }
        // The last, partial second: still a row, so nothing measured is lost from the series.
        if Instant::now() > self.epoch {
            self.second(t);
        }
        self.progress.finish();
        self
    }

    fn second(&mut self, t: u64) {
        while let Ok(i) = self.intervals.try_recv() {
            self.agg.absorb(i);
        }
        let (readings, err) = self.sampler.sample(Duration::from_secs(t + 1));
        let gone = matches!(err, Some(ProbeError::TargetGone(_)))
            || self.target_pid.is_some_and(process_exited);
        if gone && !self.target_gone.swap(true, Ordering::Relaxed) {
            self.died.notify_one();
        }
        let row = self.agg.seal(readings.tick(t, self.epoch_unix + t));
        // A full disk must not stop the run; the whole series is written again at the end.
        let _ = self.series.append(row);
        self.progress.update(row);
    }
}

/// The host's count of UDP datagrams dropped for a full receive buffer (`/proc/net/snmp`,
/// `Udp: RcvbufErrors`), for this network namespace: drops at the target's or the harness's
/// sockets show up here and nowhere else.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exited_processes_are_told_from_live_ones() {
        assert!(!process_exited(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Unreaped: a zombie once it exits; poll for that with a deadline.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !process_exited(pid) {
            assert!(Instant::now() < deadline, "child {pid} never exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(process_exited(pid));
    }

    #[test]
    fn udp_drop_counter_is_read() {
        // Every Linux network namespace has the counter; its value only grows.
        let a = udp_rcvbuf_errors().expect("Udp: RcvbufErrors in /proc/net/snmp");
        assert!(udp_rcvbuf_errors().unwrap() >= a);
    }
}
