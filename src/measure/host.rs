//! Host-side self-health probes, read once a second: the CPU of each of the harness's event-loop
//! threads, and UDP datagrams dropped on receive — per process (the `drops` column of
//! `/proc/net/udp{,6}` for the sockets the process holds) and host-wide (`/proc/net/snmp`).
//!
//! Why per thread: the harness's process CPU can look fine (1 core of 2) while one event loop is
//! pegged and everything it drives runs late. Why per process: a datagram dropped at a harness
//! socket is the harness's fault (it did not read in time) and would otherwise be reported as the
//! server's loss; one dropped at the target's socket is the target's. The host-wide counter covers
//! every process in the network namespace, so it is reported but never blamed on either side.
//!
//! Sans-IO split as in [`super::procfs`]: the parsers take file text and are tested on fixtures;
//! the readers are thin.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::procfs::{CpuRate, parse_stat};

/// Name prefix of the engine's event-loop threads (`engine-0`, `engine-1`, …).
pub const ENGINE_THREAD_PREFIX: &str = "engine-";

/// Host-wide UDP receive error counters (`/proc/net/snmp`, `Udp:` rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpErrors {
    /// `InErrors`: datagrams not delivered for any reason other than no port (includes the next).
    pub in_errors: u64,
    /// `RcvbufErrors`: dropped because the socket's receive buffer was full.
    pub rcvbuf_errors: u64,
}

/// The `Udp:` counters from the text of `/proc/net/snmp` (a header row of names, then values).
pub fn parse_snmp_udp(text: &str) -> Option<UdpErrors> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let value = |name: &str| -> Option<u64> {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    Some(UdpErrors {
        in_errors: value("InErrors")?,
        rcvbuf_errors: value("RcvbufErrors")?,
    })
}

/// The host's (network namespace's) UDP error counters now.
pub fn host_udp_errors() -> Option<UdpErrors> {
    parse_snmp_udp(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// `(inode, drops)` of every socket in the text of `/proc/net/udp` or `/proc/net/udp6`: the inode
/// is the 10th column, the drop count the last.
pub fn parse_udp_table(text: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let inode = fields.get(9)?.parse().ok()?;
        let drops = fields.last()?.parse().ok()?;
        Some((inode, drops))
    })
}

/// The socket inodes a process holds (`/proc/<pid>/fd/*` links of the form `socket:[N]`).
pub fn socket_inodes(proc_dir: &Path) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(proc_dir.join("fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| {
        let link = std::fs::read_link(e.ok()?.path()).ok()?;
        let text = link.to_str()?;
        text.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Receive drops at one process's UDP sockets, per interval. Counts are kept per socket, so a
/// socket that closes (a participant leaving) takes only its own count with it.
#[derive(Debug, Clone)]
pub struct SocketDrops {
    proc_dir: PathBuf,
    last: HashMap<u64, u64>,
    primed: bool,
}

impl SocketDrops {
    /// Drops of the process whose procfs directory is `proc_dir` (`/proc/self`, `/proc/<pid>`).
    pub fn new(proc_dir: impl Into<PathBuf>) -> Self {
        SocketDrops {
            proc_dir: proc_dir.into(),
            last: HashMap::new(),
            primed: false,
        }
    }

    /// Datagrams dropped at the process's sockets since the previous call (`None` on the first
    /// call, or when the tables cannot be read).
    pub fn sample(&mut self) -> Option<u64> {
        let inodes = socket_inodes(&self.proc_dir);
        let mut now = HashMap::with_capacity(inodes.len());
        let mut read_any = false;
        for table in ["net/udp", "net/udp6"] {
            let Ok(text) = std::fs::read_to_string(self.proc_dir.join(table)) else {
                continue;
            };
            read_any = true;
            now.extend(parse_udp_table(&text).filter(|(i, _)| inodes.contains(i)));
        }
        if !read_any {
            return None;
        }
        let delta = self.delta(now);
        std::mem::replace(&mut self.primed, true).then_some(delta)
    }

    /// Sum over sockets of the growth of their drop count; a new socket counts in full.
    fn delta(&mut self, now: HashMap<u64, u64>) -> u64 {
        let d = now
            .iter()
            .map(|(inode, drops)| drops.saturating_sub(self.last.get(inode).copied().unwrap_or(0)))
            .sum();
        self.last = now;
        d
    }
}

/// CPU of each of this process's threads whose name starts with a prefix (the engine's
/// `engine-N` event loops), per interval.
#[derive(Debug, Clone)]
pub struct ThreadCpu {
    prefix: String,
    rates: HashMap<u32, CpuRate>,
}

impl ThreadCpu {
    pub fn new(prefix: &str) -> Self {
        ThreadCpu {
            prefix: prefix.to_owned(),
            rates: HashMap::new(),
        }
    }

    /// The busiest matching thread's CPU in cores since the previous call at run-clock `at`
    /// (`None` on the first call or with no matching thread).
    pub fn sample(&mut self, at: Duration) -> Option<f64> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        let mut max: Option<f64> = None;
        let mut seen = HashSet::new();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            let path = task.path();
            let named = std::fs::read_to_string(path.join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with(&self.prefix));
            if !named {
                continue;
            }
            let Ok(cpu) = std::fs::read_to_string(path.join("stat"))
                .map_err(|_| ())
                .and_then(|t| parse_stat(&t).map_err(|_| ()))
            else {
                continue;
            };
            seen.insert(tid);
            if let Some(c) = self.rates.entry(tid).or_default().update(at, cpu) {
                max = Some(max.map_or(c, |m| m.max(c)));
            }
        }
        self.rates.retain(|tid, _| seen.contains(tid));
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_udp_counters_are_found_by_name() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
            Udp: 100 2 157300 90 157001 0\n\
            UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
            UdpLite: 0 0 0 0 0 0\n";
        assert_eq!(
            parse_snmp_udp(text),
            Some(UdpErrors {
                in_errors: 157_300,
                rcvbuf_errors: 157_001
            })
        );
        assert_eq!(parse_snmp_udp("Ip: a\nIp: 1\n"), None);
        // The live file parses on every Linux host.
        assert!(host_udp_errors().is_some());
    }

    #[test]
    fn udp_table_rows_give_inode_and_drops() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            \x20 12: 0100007F:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
            \x20 13: 0100007F:A1B3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
        let rows: Vec<_> = parse_udp_table(text).collect();
        assert_eq!(rows, [(4242, 17), (4243, 0)]);
    }

    #[test]
    fn socket_drops_count_growth_per_socket() {
        let mut d = SocketDrops::new("/nonexistent");
        assert_eq!(d.delta(HashMap::from([(1, 5), (2, 0)])), 5);
        // Socket 1 grew by 3, socket 2 closed, socket 3 is new with 4 drops.
        assert_eq!(d.delta(HashMap::from([(1, 8), (3, 4)])), 7);
        assert_eq!(d.delta(HashMap::from([(1, 8), (3, 4)])), 0);
        assert_eq!(d.sample(), None, "unreadable tables are no reading");
    }

    #[test]
    fn own_sockets_and_busy_threads_are_measured() {
        // A socket of this process shows up in its own table with no drops yet.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut drops = SocketDrops::new("/proc/self");
        assert_eq!(drops.sample(), None);
        assert_eq!(drops.sample(), Some(0));
        assert!(!socket_inodes(Path::new("/proc/self")).is_empty());
        // A thread named with the prefix that spins is seen near one core; the probe reads
        // cumulative CPU, so the spin only has to outlast two readings.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spin = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::Builder::new()
                .name("hosttest-spin".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap()
        };
        let mut cpu = ThreadCpu::new("hosttest-");
        let start = std::time::Instant::now();
        assert_eq!(cpu.sample(Duration::ZERO), None);
        // Cumulative CPU ticks at 100 Hz: wait for enough of them to see the rate.
        let mut seen = None;
        while start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(500));
            seen = cpu.sample(start.elapsed());
            if seen.is_some_and(|c| c > 0.05) {
                break;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spin.join().unwrap();
        // On a loaded 2-core host the spinner may get far less than a core; it is still seen.
        assert!(seen.is_some_and(|c| c > 0.05 && c < 1.5), "{seen:?}");
        drop(socket);
    }
}
