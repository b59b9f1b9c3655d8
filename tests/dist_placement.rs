//! Multi-SFU placement at target level (issue #8): two reference SFUs (`callsref sfu`) on different
//! loopback addresses, 127.0.0.1 and 127.0.0.2, joined up as one `RtcdTarget` the way the plugin
//! sees several rtcd hosts. Eight calls of two real WebRTC participants each are placed by
//! `/system` cpu_load; every call must live whole on its host (its sessions listed by that host's
//! `/calls/{id}/sessions`, unknown to the other) and both hosts must be used. A second run drains
//! 127.0.0.2 half way: no call is placed there afterwards, the calls already there keep running
//! (still listed after the drain) and the per-host record in the results says so.

mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::callsref;

use callsbench::engine::driver::{Driver, DriverConfig, EventSink};
use callsbench::engine::participant::{Command, Event, ParticipantConfig};
use callsbench::report::hosts::rows;
use callsbench::scenario::{Drain, DrainHost};
use callsbench::target::RtcdTarget;
use callsbench::target::embedded::EmbeddedSfu;
use callsbench::target::rtcd::{ClientCredentials, MIN_VERSION};
use callsref::proto::rtcd::ids::new_id;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Session events by participant index.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<HashMap<usize, Vec<Event>>>>);

impl EventSink for Log {
    fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
        if !matches!(event, Event::Rtp(_) | Event::Pong { .. }) {
            self.0
                .lock()
                .unwrap()
                .entry(participant)
                .or_default()
                .push(event.clone());
        }
    }
}

impl Log {
    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|evs| evs.iter().any(&f))
            .count()
    }
}

async fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Sfus {
    sfus: Vec<EmbeddedSfu>,
    dir: PathBuf,
}

impl Drop for Sfus {
    fn drop(&mut self) {
        self.sfus.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn two_sfus(tag: &str) -> Sfus {
    let program = callsref();
    let dir = std::env::temp_dir().join(format!("callsbench-dist-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sfus = [[127, 0, 0, 1], [127, 0, 0, 2]]
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            EmbeddedSfu::spawn_on(&program, &dir.join(i.to_string()), IpAddr::from(*ip)).unwrap()
        })
        .collect();
    Sfus { sfus, dir }
}

/// Places `calls` calls of two participants each, call `i` at logical time `i` seconds, joins
/// them and waits until every data channel is open. Returns the call ids, their hosts and the
/// session ids.
async fn place_and_join(
    target: &mut RtcdTarget,
    driver: &mut Driver<Log>,
    log: &Log,
    calls: usize,
    rng: &mut StdRng,
) -> Vec<(String, usize, Vec<String>)> {
    let mut out = Vec::new();
    for i in 0..calls {
        let call_id = new_id(rng);
        let at = Duration::from_secs(i as u64);
        let host = target.place(&call_id, at).await.unwrap();
        let mut sessions = Vec::new();
        for p in 0..2u64 {
            let session_id = new_id(rng);
            let cfg = ParticipantConfig {
                call_id: call_id.clone(),
                user_id: new_id(rng),
                session_id: session_id.clone(),
                channel_id: call_id.clone(),
                dc_signaling: false,
                local_addr: "127.0.0.1:0".parse().unwrap(),
                seed: i as u64 * 2 + p,
            };
            target.hosts()[host].add_participant(driver, cfg).unwrap();
            driver.command(&session_id, Command::Join).unwrap();
            target.placement_mut().session_started(&call_id);
            sessions.push(session_id);
        }
        // Joining call by call lets each host's once-a-second load sample move between calls.
        let want = (i + 1) * 2;
        wait_for("data channels", Duration::from_secs(20), || {
            log.count(|e| *e == Event::DcOpen) >= want
        })
        .await;
        target.placement_mut().session_joined(&call_id);
        target.placement_mut().session_joined(&call_id);
        out.push((call_id, host, sessions));
    }
    out
}

/// Every call is listed, with exactly its two sessions, by its own host and by no other.
async fn assert_whole(target: &RtcdTarget, calls: &[(String, usize, Vec<String>)]) {
    for (call, host, sessions) in calls {
        for (h, link) in target.hosts().iter().enumerate() {
            let listed = link.api.sessions(call).await.unwrap();
            if h == *host {
                let mut ids: Vec<String> = listed
                    .expect("call listed by its host")
                    .into_iter()
                    .map(|s| s.session_id)
                    .collect();
                ids.sort();
                let mut want = sessions.clone();
                want.sort();
                assert_eq!(ids, want, "call {call} on host {h}");
            } else {
                assert_eq!(listed, None, "call {call} also on host {h}");
            }
        }
    }
}

async fn leave_all(driver: &Driver<Log>, log: &Log, calls: &[(String, usize, Vec<String>)]) {
    for (_, _, sessions) in calls {
        for s in sessions {
            driver.command(s, Command::Leave).unwrap();
        }
    }
    let n = calls.len() * 2;
    wait_for("closes", Duration::from_secs(20), || {
        log.count(|e| matches!(e, Event::Closed { .. })) >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_calls_over_two_sfus_each_whole_on_one_host() {
    let sfus = two_sfus("place");
    let mut rng = StdRng::seed_from_u64(8);
    let hosts = sfus.sfus.iter().map(EmbeddedSfu::host).collect();
    let creds = ClientCredentials::generate(&mut rng);
    let mut target = RtcdTarget::connect(hosts, creds, MIN_VERSION, 1)
        .await
        .unwrap();
    let log = Log::default();
    let cfg = DriverConfig {
        threads: 1,
        local_ip: "127.0.0.1".parse().unwrap(),
    };
    let mut driver = Driver::start(cfg, |_| log.clone()).unwrap();

    let calls = place_and_join(&mut target, &mut driver, &log, 8, &mut rng).await;
    let per_host: Vec<usize> = (0..2)
        .map(|h| calls.iter().filter(|c| c.1 == h).count())
        .collect();
    eprintln!("calls per host: {per_host:?}");
    assert!(
        per_host.iter().all(|n| *n > 0),
        "both hosts used: {per_host:?}"
    );
    assert_whole(&target, &calls).await;

    // The per-host rows of the results agree with what the hosts list.
    let r = rows(&target.placement().counts());
    assert_eq!(r.len(), 2);
    for (h, row) in r.iter().enumerate() {
        assert_eq!(row.address, sfus.sfus[h].host().addr.to_string());
        assert_eq!(row.calls as usize, per_host[h]);
        assert_eq!(row.sessions as usize, per_host[h] * 2);
        assert_eq!(row.joins, row.sessions);
        assert_eq!(row.drain, None);
    }
    leave_all(&driver, &log, &calls).await;
    driver.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_sfu_takes_no_new_calls_and_keeps_its_own() {
    let sfus = two_sfus("drain");
    let mut rng = StdRng::seed_from_u64(9);
    let hosts = sfus.sfus.iter().map(EmbeddedSfu::host).collect();
    let creds = ClientCredentials::generate(&mut rng);
    let mut target = RtcdTarget::connect(hosts, creds, MIN_VERSION, 1)
        .await
        .unwrap();
    let drained = sfus.sfus[1].host().addr;
    // Calls 0..=3 are placed at logical seconds 0..=3, before the drain at 4 s; 4..=7 after it.
    target
        .set_drains(&[Drain::new(
            DrainHost::Address(drained.ip().to_string()),
            Duration::from_secs(4),
        )])
        .unwrap();
    let log = Log::default();
    let cfg = DriverConfig {
        threads: 1,
        local_ip: "127.0.0.1".parse().unwrap(),
    };
    let mut driver = Driver::start(cfg, |_| log.clone()).unwrap();
    let calls = place_and_join(&mut target, &mut driver, &log, 8, &mut rng).await;
    let hosts: Vec<usize> = calls.iter().map(|c| c.1).collect();
    eprintln!("hosts by call: {hosts:?}");
    assert!(
        hosts[4..].iter().all(|h| *h == 0),
        "placed after the drain: {hosts:?}"
    );
    let before = hosts[..4].iter().filter(|h| **h == 1).count();
    assert!(before > 0, "127.0.0.2 used before its drain: {hosts:?}");
    // The drained host's calls still run there, whole.
    assert_whole(&target, &calls).await;

    leave_all(&driver, &log, &calls).await;
    for (call, _, _) in &calls {
        for _ in 0..2 {
            target
                .placement_mut()
                .session_left(call, Duration::from_secs(30));
        }
    }
    driver.stop();
    let r = rows(&target.placement().counts());
    let row = r.iter().find(|r| r.address == drained.to_string()).unwrap();
    let d = row.drain.as_ref().unwrap();
    assert_eq!(d.at_s, 4.0);
    assert_eq!(row.calls as usize, before);
    assert_eq!(d.calls_live as usize, before);
    assert_eq!(d.calls_ended_clean as usize, before);
    assert_eq!(d.calls_placed_after, 0);
    assert_eq!((d.disconnects_after, d.join_failures_after), (0, 0));
    let other = r.iter().find(|r| r.address != drained.to_string()).unwrap();
    assert_eq!(other.calls as usize, 8 - before);
    assert!(other.drain.is_none());
}
