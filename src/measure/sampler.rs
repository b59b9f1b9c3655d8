//! The thin once-a-second probe loop body: reads the target's and the harness's CPU and memory and
//! turns them into the probe half of a [`Tick`].
//!
//! The target is read from `/proc/<pid>` for the embedded child, or from `rtcd_process_*` on its
//! Prometheus endpoint for any rtcd; a shard that leaves server probes to another reads nothing. A
//! child whose `/proc` entry is gone is reported as [`ProbeError::TargetGone`] so the run can end
//! cleanly with partial results.

use std::net::SocketAddr;
use std::time::Duration;

use super::host::{ENGINE_THREAD_PREFIX, SocketDrops, ThreadCpu, host_udp_errors};
use super::procfs::{CpuRate, ProcError, ProcProbe, ProcSample};
use super::prometheus::{ScrapeError, scrape};
use super::recorder::Tick;

/// Where the target's CPU and memory come from.
#[derive(Debug, Clone)]
pub enum ServerSource {
    /// `/proc/<pid>` of the embedded target.
    Proc(ProcProbe),
    /// `GET http://addr{path}` on an rtcd-compatible target.
    Prometheus {
        addr: SocketAddr,
        path: String,
        timeout: Duration,
    },
    /// Not probed by this harness (another shard does it).
    None,
}

/// Why a probe reading failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the target process is gone ({0})")]
    TargetGone(ProcError),
    #[error("target probe failed: {0}")]
    Proc(ProcError),
    #[error("target metrics scrape failed: {0}")]
    Scrape(#[from] ScrapeError),
}

/// Samples the target and the harness each second.
#[derive(Debug)]
pub struct Sampler {
    server: ServerSource,
    server_rate: CpuRate,
    harness: ProcProbe,
    harness_rate: CpuRate,
    engine_threads: ThreadCpu,
    harness_drops: SocketDrops,
    /// The embedded target's sockets (a child process on this host); none for a remote target.
    target_drops: Option<SocketDrops>,
    host_errors: Option<u64>,
}

/// One second's probe readings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Readings {
    /// Target CPU cores over the last interval (none on the first reading).
    pub server_cpu_cores: Option<f64>,
    /// Target RSS.
    pub server_rss_bytes: Option<u64>,
    /// Harness CPU cores over the last interval.
    pub harness_cpu_cores: Option<f64>,
    /// The busiest engine event-loop thread's CPU, cores.
    pub engine_thread_cpu_max_cores: Option<f64>,
    /// Datagrams dropped at the harness's own sockets.
    pub harness_udp_drops: Option<u64>,
    /// Datagrams dropped at the embedded target's sockets.
    pub target_udp_drops: Option<u64>,
    /// Host-wide UDP receive errors (`/proc/net/snmp` `Udp: InErrors`).
    pub udp_receive_errors: Option<u64>,
}

impl Readings {
    /// The tick for second `t_s` starting at UNIX second `unix_s`.
    pub fn tick(self, t_s: u64, unix_s: u64) -> Tick {
        Tick {
            t_s,
            unix_s,
            server_cpu_cores: self.server_cpu_cores,
            server_rss_bytes: self.server_rss_bytes,
            harness_cpu_cores: self.harness_cpu_cores,
            engine_thread_cpu_max_cores: self.engine_thread_cpu_max_cores,
            harness_udp_drops: self.harness_udp_drops,
            target_udp_drops: self.target_udp_drops,
            udp_receive_errors: self.udp_receive_errors,
        }
    }
}

impl Sampler {
    /// A sampler for `server`, judging the harness from `/proc/self`.
    pub fn new(server: ServerSource) -> Self {
        let target_drops = match &server {
            ServerSource::Proc(p) => Some(SocketDrops::new(p.dir())),
            _ => None,
        };
        Self {
            server,
            server_rate: CpuRate::default(),
            harness: ProcProbe::this_process(),
            harness_rate: CpuRate::default(),
            engine_threads: ThreadCpu::new(ENGINE_THREAD_PREFIX),
            harness_drops: SocketDrops::new("/proc/self"),
            target_drops,
            host_errors: None,
        }
    }

    fn read_server(&self) -> Result<Option<ProcSample>, ProbeError> {
        match &self.server {
            ServerSource::Proc(p) => p.sample().map(Some).map_err(|e| match e {
                ProcError::Read { ref source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ProbeError::TargetGone(e)
                }
                e => ProbeError::Proc(e),
            }),
            ServerSource::Prometheus {
                addr,
                path,
                timeout,
            } => Ok(Some(scrape(*addr, path, *timeout)?)),
            ServerSource::None => Ok(None),
        }
    }

    /// Takes the readings at run-clock time `at`. A failed target reading is returned as the error
    /// with the harness reading still taken (so self-health never has a gap because of the target).
    pub fn sample(&mut self, at: Duration) -> (Readings, Option<ProbeError>) {
        let mut r = Readings::default();
        if let Ok(own) = self.harness.sample() {
            r.harness_cpu_cores = self.harness_rate.update(at, own.cpu_seconds);
        }
        r.engine_thread_cpu_max_cores = self.engine_threads.sample(at);
        r.harness_udp_drops = self.harness_drops.sample();
        r.target_udp_drops = self.target_drops.as_mut().and_then(SocketDrops::sample);
        let host = host_udp_errors().map(|e| e.in_errors);
        r.udp_receive_errors = self.host_errors.zip(host).map(|(a, b)| b.saturating_sub(a));
        self.host_errors = host.or(self.host_errors);
        match self.read_server() {
            Ok(Some(s)) => {
                r.server_cpu_cores = self.server_rate.update(at, s.cpu_seconds);
                r.server_rss_bytes = Some(s.rss_bytes);
                (r, None)
            }
            Ok(None) => (r, None),
            Err(e) => (r, Some(e)),
        }
    }
}
