//! Which rtcd host each new call goes to, hosts drained during the run, and the per-host record the
//! results carry (calls, sessions, joins, failures, and what happened on a drained host).
//!
//! The rule is the plugin's (calls-loadtest.md §3.1): the host with the lowest `/system` cpu_load
//! among the hosts that answer and are not drained, a random one when none answers, and a call
//! never spans hosts. One refinement: loads within [`LOAD_TIE`] of the lowest count as equal, as do
//! hosts whose idle CPUs (the load's reciprocal) are within [`IDLE_TIE_CPUS`] of the most idle
//! one's, and among equal hosts the one this harness gave the fewest calls wins. rtcd samples its
//! load once a second from the whole machine's idle time, so equally idle hosts (or several hosts
//! sharing one machine, as in tests) differ only by sampling noise, and the strict minimum would
//! pile a burst of new calls onto whichever host happened to read lowest. Near saturation the
//! reciprocal magnifies that noise: 0.01 and 0.02 idle CPUs (one 10 ms tick of /proc/stat) read
//! as loads of 100 and 50, which no relative tolerance absorbs, hence the absolute one.
//!
//! A drain is the plugin's "flagged" host: from the drain time no new call is placed there, calls
//! already there keep running. The record says how many calls were live on it at that time, how many
//! of those ran to their end, the disconnects and failed joins on it afterwards, how many calls the
//! load rule would have put there but went elsewhere (diverted), and that none was placed on it.
//!
//! Per-host figures go into the run's counts as `host[ADDR].NAME` (summed exactly by `merge`, each
//! shard placing its own calls) and come back out as the summary's `hosts` rows
//! ([`crate::report::summary::HostRow`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;

use crate::scenario::{Drain, DrainHost};

/// Loads within this fraction of the lowest load count as equal (see the module docs).
pub const LOAD_TIE: f64 = 0.20;

/// Hosts with at most this many idle CPUs fewer than the most idle host count as equal (see the
/// module docs).
pub const IDLE_TIE_CPUS: f64 = 0.25;

/// Why a call could not be placed or a drain could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("[[drain]] names host index {index}, but the run has {hosts} rtcd host(s)")]
    NoSuchIndex { index: u32, hosts: usize },
    #[error("[[drain]] names {address}, which is not one of the run's rtcd hosts ({hosts})")]
    NoSuchAddress { address: String, hosts: String },
    #[error("every rtcd host is drained; nowhere to place call {call}")]
    AllDrained { call: String },
    #[error("no rtcd host to place call {call} on")]
    NoHosts { call: String },
}

/// The counts key of a per-host figure: `host[ADDR].NAME`.
pub fn count_key(addr: &str, name: &str) -> String {
    format!("host[{addr}].{name}")
}

#[derive(Debug, Clone)]
struct HostState {
    addr: SocketAddr,
    drain_at: Option<Duration>,
    calls: u64,
    diverted: u64,
}

#[derive(Debug, Clone, Default)]
struct CallState {
    host: usize,
    placed_at: Duration,
    sessions: u64,
    live: u64,
    /// When the last live session left or dropped.
    ended_at: Option<Duration>,
    joins: u64,
    failures: Vec<Duration>,
    disconnects: Vec<Duration>,
}

/// The placement state of one run (or shard): hosts, drains and every call placed so far.
#[derive(Debug, Clone)]
pub struct Placement {
    hosts: Vec<HostState>,
    calls: HashMap<String, CallState>,
}

fn resolve(drain: &Drain, hosts: &[SocketAddr]) -> Result<usize, PlacementError> {
    match drain.host() {
        DrainHost::Index(i) => {
            let i = *i as usize;
            (i < hosts.len())
                .then_some(i)
                .ok_or(PlacementError::NoSuchIndex {
                    index: i as u32,
                    hosts: hosts.len(),
                })
        }
        DrainHost::Address(a) => hosts
            .iter()
            .position(|h| {
                a.parse::<SocketAddr>().map_or_else(
                    |_| a.parse::<std::net::IpAddr>().is_ok_and(|ip| ip == h.ip()),
                    |sa| sa == *h,
                )
            })
            .ok_or_else(|| PlacementError::NoSuchAddress {
                address: a.clone(),
                hosts: hosts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
    }
}

/// The pick among `candidates` (host indices): lowest load, loads within [`LOAD_TIE`] or idle CPUs
/// within [`IDLE_TIE_CPUS`] equal, ties
/// to the fewest calls so far then the lowest index; `None` when no candidate answered.
fn lowest(candidates: &[usize], loads: &[Option<f64>], calls: &[u64]) -> Option<usize> {
    let answered: Vec<(usize, f64)> = candidates
        .iter()
        .filter_map(|&i| {
            loads
                .get(i)
                .copied()
                .flatten()
                .filter(|l| l.is_finite())
                .map(|l| (i, l))
        })
        .collect();
    let min = answered.iter().map(|(_, l)| *l).reduce(f64::min)?;
    answered
        .into_iter()
        .filter(|(_, l)| {
            *l <= min + min.abs() * LOAD_TIE || idle_cpus(min) - idle_cpus(*l) <= IDLE_TIE_CPUS
        })
        .min_by_key(|(i, _)| (calls[*i], *i))
        .map(|(i, _)| i)
}

/// Idle CPUs behind a `/system` cpu_load (its reciprocal); a zero load is a fully idle, very large
/// host.
fn idle_cpus(load: f64) -> f64 {
    if load > 0.0 { 1.0 / load } else { f64::MAX }
}

impl Placement {
    /// Placement over `hosts` (in `--rtcd` order) with the scenario's drains.
    pub fn new(hosts: &[SocketAddr], drains: &[Drain]) -> Result<Placement, PlacementError> {
        let mut state: Vec<HostState> = hosts
            .iter()
            .map(|&addr| HostState {
                addr,
                drain_at: None,
                calls: 0,
                diverted: 0,
            })
            .collect();
        for d in drains {
            state[resolve(d, hosts)?].drain_at = Some(d.at());
        }
        Ok(Placement {
            hosts: state,
            calls: HashMap::new(),
        })
    }

    /// Whether `host` takes no new calls at `at` (time since the run start).
    pub fn is_drained(&self, host: usize, at: Duration) -> bool {
        self.hosts
            .get(host)
            .and_then(|h| h.drain_at)
            .is_some_and(|d| at >= d)
    }

    /// The host of `call`: the host it already has (a call never spans hosts), else a new pick from
    /// `loads` (one per host; `None` where `/system` did not answer) at `at`.
    pub fn place<R: Rng + ?Sized>(
        &mut self,
        call: &str,
        loads: &[Option<f64>],
        at: Duration,
        rng: &mut R,
    ) -> Result<usize, PlacementError> {
        if let Some(c) = self.calls.get(call) {
            return Ok(c.host);
        }
        if self.hosts.is_empty() {
            return Err(PlacementError::NoHosts { call: call.into() });
        }
        let open: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| !self.is_drained(i, at))
            .collect();
        if open.is_empty() {
            return Err(PlacementError::AllDrained { call: call.into() });
        }
        let calls: Vec<u64> = self.hosts.iter().map(|h| h.calls).collect();
        let host =
            lowest(&open, loads, &calls).unwrap_or_else(|| open[rng.random_range(0..open.len())]);
        // Record the diversion: the rule, blind to drains, would have chosen a drained host.
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        if let Some(blind) = lowest(&all, loads, &calls)
            && blind != host
            && self.is_drained(blind, at)
        {
            self.hosts[blind].diverted += 1;
        }
        self.hosts[host].calls += 1;
        self.calls.insert(
            call.to_owned(),
            CallState {
                host,
                placed_at: at,
                ..CallState::default()
            },
        );
        Ok(host)
    }

    /// The host `call` was placed on.
    pub fn host_of(&self, call: &str) -> Option<usize> {
        self.calls.get(call).map(|c| c.host)
    }

    /// The hosts' addresses, in order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.hosts.iter().map(|h| h.addr).collect()
    }

    fn call_mut(&mut self, call: &str) -> Option<&mut CallState> {
        self.calls.get_mut(call)
    }

    /// A session of `call` was started (it counts as live until its planned leave).
    pub fn session_started(&mut self, call: &str) {
        if let Some(c) = self.call_mut(call) {
            c.sessions += 1;
            c.live += 1;
            c.ended_at = None;
        }
    }

    /// A session of `call` completed its join.
    pub fn session_joined(&mut self, call: &str) {
        if let Some(c) = self.call_mut(call) {
            c.joins += 1;
        }
    }

    /// A session of `call` gave up joining (its planned join was at `at`). Liveness stays with
    /// the plan: the session still counts as live until its planned leave is reported.
    pub fn session_failed(&mut self, call: &str, at: Duration) {
        if let Some(c) = self.call_mut(call) {
            c.failures.push(at);
        }
    }

    /// A session of `call` left as planned at `at`.
    pub fn session_left(&mut self, call: &str, at: Duration) {
        if let Some(c) = self.call_mut(call) {
            c.end_one(at);
        }
    }

    /// A session of `call` dropped without a planned leave at `at` (recorded only; as with a failed
    /// join, the session's planned leave ends it).
    pub fn session_dropped(&mut self, call: &str, at: Duration) {
        if let Some(c) = self.call_mut(call) {
            c.disconnects.push(at);
        }
    }

    /// The per-host figures as counts (`host[ADDR].NAME`), for the run's results. Every host has
    /// its rows even without calls, so a merged run lists each host once.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let addr = h.addr.to_string();
            let mine: Vec<&CallState> = self.calls.values().filter(|c| c.host == i).collect();
            let mut put = |name: &str, v: u64| {
                out.insert(count_key(&addr, name), v);
            };
            put("calls", h.calls);
            put("sessions", mine.iter().map(|c| c.sessions).sum());
            put("joins", mine.iter().map(|c| c.joins).sum());
            put(
                "join_failures",
                mine.iter().map(|c| c.failures.len() as u64).sum(),
            );
            put(
                "disconnects",
                mine.iter().map(|c| c.disconnects.len() as u64).sum(),
            );
            let Some(t) = h.drain_at else { continue };
            let after = |v: &[Duration]| v.iter().filter(|x| **x >= t).count() as u64;
            let live_at_drain: Vec<&&CallState> = mine
                .iter()
                .filter(|c| c.placed_at < t && c.ended_at.is_none_or(|e| e > t))
                .collect();
            put("drained", 1);
            put(
                "drain_at_ms",
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
            );
            put("drain.calls_live", live_at_drain.len() as u64);
            put(
                "drain.calls_ended_clean",
                live_at_drain
                    .iter()
                    .filter(|c| {
                        c.live == 0 && after(&c.disconnects) == 0 && after(&c.failures) == 0
                    })
                    .count() as u64,
            );
            put(
                "drain.calls_placed_after",
                mine.iter().filter(|c| c.placed_at >= t).count() as u64,
            );
            put("drain.calls_diverted", h.diverted);
            put(
                "drain.disconnects_after",
                mine.iter().map(|c| after(&c.disconnects)).sum(),
            );
            put(
                "drain.join_failures_after",
                mine.iter().map(|c| after(&c.failures)).sum(),
            );
        }
        out
    }
}

impl CallState {
    fn end_one(&mut self, at: Duration) {
        self.live = self.live.saturating_sub(1);
        if self.live == 0 {
            self.ended_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn hosts() -> Vec<SocketAddr> {
        vec![
            "127.0.0.1:8045".parse().unwrap(),
            "127.0.0.2:8045".parse().unwrap(),
        ]
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn lowest_load_wins_and_near_ties_alternate() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut p = Placement::new(&hosts(), &[]).unwrap();
        // A clear difference: the lower load wins every time (the plugin's rule).
        for i in 0..3 {
            let h = p
                .place(&format!("a{i}"), &[Some(2.0), Some(0.5)], s(0), &mut rng)
                .unwrap();
            assert_eq!(h, 1);
        }
        // Within LOAD_TIE: the host with fewer calls from us wins, so calls alternate.
        let picks: Vec<usize> = (0..5)
            .map(|i| {
                p.place(&format!("b{i}"), &[Some(0.50), Some(0.52)], s(0), &mut rng)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            picks,
            [0, 0, 0, 0, 1],
            "host 1 already had 3 calls; equal counts: index"
        );
        // Near saturation one /proc/stat tick doubles the load (100 vs 50 is 0.01 vs 0.02 idle
        // CPUs): still equal, so with equal call counts (4 each) the lower index wins where the
        // strict minimum would take host 1.
        assert_eq!(
            p.place("sat", &[Some(100.0), Some(50.0)], s(0), &mut rng),
            Ok(0)
        );
        // A real difference in idle CPUs is not a tie: 2 idle CPUs against 0.5.
        assert_eq!(
            p.place("real", &[Some(2.0), Some(0.5)], s(0), &mut rng),
            Ok(1)
        );
        // A call keeps its host whatever the loads say now.
        assert_eq!(
            p.place("a0", &[Some(0.0), Some(9.0)], s(1), &mut rng),
            Ok(1)
        );
        // Nobody answers: a random open host.
        let h = p.place("c", &[None, None], s(0), &mut rng).unwrap();
        assert!(h < 2);
    }

    #[test]
    fn a_drained_host_gets_no_new_calls_and_its_calls_are_recorded() {
        let mut rng = StdRng::seed_from_u64(2);
        let drain = Drain::new(DrainHost::Address("127.0.0.2".into()), s(10));
        let mut p = Placement::new(&hosts(), &[drain]).unwrap();
        let loads = [Some(1.0), Some(0.1)];
        // Before the drain host 1 is the lowest.
        assert_eq!(p.place("early", &loads, s(5), &mut rng), Ok(1));
        assert_eq!(p.place("early2", &loads, s(6), &mut rng), Ok(1));
        for _ in 0..2 {
            p.session_started("early");
            p.session_started("early2");
        }
        p.session_joined("early");
        // From the drain on, host 1 would still win on load but is skipped.
        assert!(p.is_drained(1, s(10)) && !p.is_drained(1, s(9)));
        assert_eq!(p.place("late", &loads, s(10), &mut rng), Ok(0));
        assert_eq!(p.place("late2", &loads, s(12), &mut rng), Ok(0));
        // "early" ends cleanly after the drain; "early2" loses a session.
        p.session_left("early", s(20));
        p.session_left("early", s(21));
        p.session_dropped("early2", s(15));
        let c = p.counts();
        let k = |n: &str| c[&count_key("127.0.0.2:8045", n)];
        assert_eq!(k("calls"), 2);
        assert_eq!(k("sessions"), 4);
        assert_eq!(k("joins"), 1);
        assert_eq!(k("disconnects"), 1);
        assert_eq!(k("drained"), 1);
        assert_eq!(k("drain_at_ms"), 10_000);
        assert_eq!(k("drain.calls_live"), 2);
        assert_eq!(k("drain.calls_ended_clean"), 1);
        assert_eq!(k("drain.calls_placed_after"), 0);
        assert_eq!(k("drain.calls_diverted"), 2);
        assert_eq!(k("drain.disconnects_after"), 1);
        assert_eq!(c[&count_key("127.0.0.1:8045", "calls")], 2);
        assert!(!c.contains_key(&count_key("127.0.0.1:8045", "drained")));
    }

    #[test]
    fn drains_resolve_against_the_hosts() {
        let err = Placement::new(&hosts(), &[Drain::new(DrainHost::Index(2), s(1))]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "[[drain]] names host index 2, but the run has 2 rtcd host(s)"
        );
        let err = Placement::new(
            &hosts(),
            &[Drain::new(DrainHost::Address("127.0.0.2:9".into()), s(1))],
        );
        assert!(matches!(err, Err(PlacementError::NoSuchAddress { .. })));
        let mut p = Placement::new(
            &hosts(),
            &[
                Drain::new(DrainHost::Index(0), s(0)),
                Drain::new(DrainHost::Address("127.0.0.2:8045".into()), s(0)),
            ],
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(
            p.place("x", &[Some(1.0), Some(1.0)], s(0), &mut rng),
            Err(PlacementError::AllDrained { call: "x".into() })
        );
    }
}
