//! Probes against real processes and a real HTTP endpoint: CPU of a busy child versus an idle one,
//! a target that exits, and the Prometheus scrape path end to end.

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use callsbench::measure::{ProbeError, ProcProbe, Sampler, ServerSource};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Samples `pid` twice, `window` apart, through the sampler; returns the second reading's cores.
fn cores_over(pid: u32, window: Duration) -> (f64, u64) {
    let mut s = Sampler::new(ServerSource::Proc(ProcProbe::pid(pid)));
    let start = Instant::now();
    let (first, err) = s.sample(Duration::ZERO);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        first.server_cpu_cores, None,
        "first reading has no interval"
    );
    // Measuring over a window is the point here, not synchronisation.
    std::thread::sleep(window);
    let (second, err) = s.sample(start.elapsed());
    assert!(err.is_none(), "{err:?}");
    (
        second.server_cpu_cores.unwrap(),
        second.server_rss_bytes.unwrap(),
    )
}

#[test]
fn a_busy_child_uses_more_cpu_than_an_idle_one() {
    let busy = Kill(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    let idle = Kill(Command::new("sleep").arg("30").spawn().unwrap());
    let window = Duration::from_millis(800);
    let (busy_cores, busy_rss) = cores_over(busy.0.id(), window);
    let (idle_cores, _) = cores_over(idle.0.id(), window);
    // One busy loop can use at most one core (plus tick rounding); the machine may be shared, so
    // only a floor well above idle is asserted.
    assert!(busy_cores <= 1.2, "{busy_cores}");
    assert!(busy_cores > 0.02, "{busy_cores}");
    assert!(idle_cores < 0.02, "{idle_cores}");
    assert!(busy_rss > 100 * 1024, "{busy_rss}");
}

#[test]
fn a_target_that_exits_is_reported_gone() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap(); // reaped: /proc/<pid> disappears
    let mut s = Sampler::new(ServerSource::Proc(ProcProbe::pid(pid)));
    let (readings, err) = s.sample(Duration::ZERO);
    assert!(matches!(err, Some(ProbeError::TargetGone(_))), "{err:?}");
    // The harness's own reading is still taken.
    assert_eq!(readings.server_rss_bytes, None);
}

#[test]
fn prometheus_source_reads_cpu_rate_from_two_scrapes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for cpu in ["10.0", "10.5"] {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).unwrap();
                request.push(byte[0]);
            }
            write!(
                conn,
                "HTTP/1.0 200 OK\r\n\r\nrtcd_process_cpu_seconds_total {cpu}\n\
                 rtcd_process_resident_memory_bytes 2.5e+08\n"
            )
            .unwrap();
        }
    });
    let mut s = Sampler::new(ServerSource::Prometheus {
        addr,
        path: "/metrics".into(),
        timeout: Duration::from_secs(5),
    });
    let (_, err) = s.sample(Duration::from_secs(1));
    assert!(err.is_none(), "{err:?}");
    let (r, err) = s.sample(Duration::from_secs(2));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(r.server_cpu_cores, Some(0.5));
    assert_eq!(r.server_rss_bytes, Some(250_000_000));
    server.join().unwrap();
}
