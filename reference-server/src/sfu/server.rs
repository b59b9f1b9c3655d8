//! `callsref sfu`: wires config, credentials, the RTC thread and the HTTP/WS API together, reports
//! the bound addresses when ready, and drains on SIGTERM/SIGINT.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::api::{AppState, router};
use super::auth::{Auth, AuthError};
use super::config::{Config, ConfigError};
use super::core::{Sfu, SfuConfig};
use super::driver::{Command, Driver, Router};
use super::metrics::Metrics;
use super::tcp::TcpConns;

/// Command-line options of `callsref sfu`.
#[derive(Debug, Clone, clap::Args)]
pub struct SfuArgs {
    /// rtcd-style TOML config; a missing file means defaults (then `RTCD_*` env overrides apply).
    #[arg(long, default_value = "config/config.toml")]
    pub config: PathBuf,
    /// Write `{"http":"ADDR","udp":PORT,"tcp":PORT}` here once listening (for parents using
    /// port 0).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Stop draining after this many seconds (rtcd waits forever for sessions to end).
    #[arg(long)]
    pub drain_timeout: Option<u64>,
    /// Run a send-side bandwidth estimator per session, so simulcast viewers move from `l` to `h`
    /// when their estimate allows (rtcd's rule). Off by default: str0m's estimator comes with a
    /// pacer that adds ~0.4 Mbit/s per video viewer on top of the forwarded media (measured on
    /// loopback), where rtcd's estimator has a no-op pacer; with it off, viewers stay on `l`.
    #[arg(long)]
    pub bwe: bool,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("binding udp {addr}: {source}")]
    Udp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("binding ice-tcp {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("binding http {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("rtc.ice_host_override: cannot resolve {0:?}")]
    HostOverride(String),
    #[error("writing ready file {path}: {source}")]
    Ready {
        path: String,
        source: std::io::Error,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the SFU until a termination signal and the drain finish.
pub async fn run(args: SfuArgs) -> Result<(), ServerError> {
    let cfg = Config::load(&args.config, |k| std::env::var(k).ok())?;
    let auth = Auth::open(
        std::path::Path::new(&cfg.store.data_source),
        Duration::from_secs(cfg.api.security.session_cache.expiration_minutes as u64 * 60),
    )?;
    let bind = cfg.udp_bind_addr();
    let socket = UdpSocket::bind(bind).map_err(|source| ServerError::Udp { addr: bind, source })?;
    let rcvbuf = widen_buffers(&socket);
    tracing::debug!(rcvbuf, "udp socket receive buffer");
    let local = socket.local_addr()?;
    let advertised = advertised_addr(&cfg, local)?;
    let tcp_bind = cfg.tcp_bind_addr();
    let tcp_listener = tokio::net::TcpListener::bind(tcp_bind)
        .await
        .map_err(|source| ServerError::Tcp {
            addr: tcp_bind,
            source,
        })?;
    let tcp_local = tcp_listener.local_addr()?;
    // The TCP candidate shares the UDP one's address (the override, or the routed IP) unless
    // the listener is bound to one IP and nothing is overridden. The port override is for UDP
    // (NLB port mappings are per protocol); TCP advertises its bound port.
    let tcp_ip = if cfg.rtc.ice_host_override.trim().is_empty() && !tcp_local.ip().is_unspecified()
    {
        tcp_local.ip()
    } else {
        advertised.ip()
    };
    let tcp_advertised = SocketAddr::new(tcp_ip, tcp_local.port());
    let tcp = TcpConns::new(tcp_advertised);
    let metrics = Arc::new(Metrics::default());
    let conns: Router = Arc::default();
    let (handle, rx) = Driver::handle(local)?;
    let waker_addr = handle.waker_addr()?;
    let sfu = Sfu::new(
        SfuConfig {
            host_candidates: vec![advertised],
            seed: rand::random(),
            bwe: args.bwe,
            nack_buffer_size: match cfg.rtc.nack_buffer_size {
                0 => 256,
                n => n as usize,
            },
        },
        std::time::Instant::now(),
    )
    .with_tcp(vec![tcp_advertised]);
    let driver = Driver {
        socket,
        advertised,
        sfu,
        router: conns.clone(),
        metrics: metrics.clone(),
        tcp: tcp.clone(),
    };
    let rtc_thread = std::thread::Builder::new()
        .name("callsref-rtc".into())
        .spawn(move || driver.run(rx, waker_addr))?;
    let handle = Arc::new(handle);
    let to_rtc = handle.clone();
    tokio::spawn(tcp.serve(tcp_listener, move |f| to_rtc.send(Command::Tcp(f))));
    // The first load figure is in place before the server says it is ready.
    let (first_load, last_reading) = first_cpu_sample().await;
    let cpu_load = Arc::new(Mutex::new(first_load.unwrap_or(0.0)));
    tokio::spawn(sample_cpu(cpu_load.clone(), last_reading));
    let state = Arc::new(AppState {
        cfg: cfg.clone(),
        auth,
        metrics: metrics.clone(),
        driver: handle.clone(),
        router: conns,
        cpu_load,
        next_conn: AtomicU64::new(1),
    });
    let http_addr = cfg.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| ServerError::Http {
            addr: http_addr,
            source,
        })?;
    let bound = listener.local_addr()?;
    let ready = format!(
        "{{\"http\":\"{bound}\",\"udp\":{},\"tcp\":{}}}\n",
        local.port(),
        tcp_local.port()
    );
    print!("{ready}");
    if let Some(p) = &args.ready_file {
        std::fs::write(p, &ready).map_err(|source| ServerError::Ready {
            path: p.display().to_string(),
            source,
        })?;
    }
    tracing::info!(http = %bound, udp = %local, tcp = %tcp_local, advertised = %advertised, "callsref sfu ready");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    shutdown_signal().await;
    tracing::info!("draining: waiting for sessions to end");
    let deadline = args
        .drain_timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    loop {
        let (tx, rx) = oneshot::channel();
        handle.send(Command::SessionCount(tx));
        if rx.await.unwrap_or(0) == 0 {
            break;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            tracing::warn!("drain timeout reached with sessions still open");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    handle.send(Command::Stop);
    let _ = tokio::task::spawn_blocking(move || rtc_thread.join()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The host candidate: `ice_host_override` if set, else the bound IP, else the IP of the
/// default route (found without sending anything), else loopback. The port may be overridden.
fn advertised_addr(cfg: &Config, local: SocketAddr) -> Result<SocketAddr, ServerError> {
    let port = cfg.host_port_override()?.unwrap_or(local.port());
    let over = cfg.rtc.ice_host_override.trim();
    if !over.is_empty() {
        // `ext/int,...` pairs: this server advertises one address, the first external one.
        let host = over.split(',').next().unwrap_or(over);
        let host = host.split('/').next().unwrap_or(host);
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (host, 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.find(|a| a.is_ipv4()))
                .map(|a| a.ip())
                .ok_or_else(|| ServerError::HostOverride(over.to_string()))?,
        };
        return Ok(SocketAddr::new(ip, port));
    }
    if !local.ip().is_unspecified() {
        return Ok(SocketAddr::new(local.ip(), port));
    }
    let routed = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    Ok(SocketAddr::new(
        routed.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        port,
    ))
}

/// Shortest window a `/system` sample is taken over; a shorter one reads mostly tick rounding.
const MIN_LOAD_WINDOW: Duration = Duration::from_millis(100);

/// An idle-time reading of /proc/stat: idle ticks and when they were read.
type IdleReading = Option<(u64, std::time::Instant)>;

/// The first `/system` cpu_load, over a short window at start-up, so a new server never answers
/// with a placeholder; returns the reading the next window starts from.
async fn first_cpu_sample() -> (Option<f64>, IdleReading) {
    let prev = read_idle();
    tokio::time::sleep(MIN_LOAD_WINDOW).await;
    let cur = read_idle();
    (load_between(prev, cur), cur)
}

/// `/system` cpu_load: the reciprocal of idle CPUs over the last second, from /proc/stat. Never
/// Inf or NaN: zero idle time reads as 1/0.01 CPUs.
///
/// Windows end on whole wall-clock seconds: SFUs sharing a machine (tests, small deployments)
/// then measure the same window of the same counters and report the same load, instead of
/// figures up to a second apart that a placement rule would read as a real difference.
async fn sample_cpu(out: Arc<Mutex<f64>>, mut cur: IdleReading) {
    loop {
        tokio::time::sleep(until_next_second(MIN_LOAD_WINDOW)).await;
        let prev = cur;
        cur = read_idle();
        if let Some(load) = load_between(prev, cur) {
            *out.lock().unwrap_or_else(|e| e.into_inner()) = load;
        }
    }
}

/// Time from now to the next whole wall-clock second that is at least `min` away.
fn until_next_second(min: Duration) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let to_next = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    if to_next < min {
        to_next + Duration::from_secs(1)
    } else {
        to_next
    }
}

/// cpu_load over the window between two /proc/stat readings; `None` when either is missing or
/// the window is too short to mean anything.
fn load_between(prev: IdleReading, cur: IdleReading) -> Option<f64> {
    let ((idle0, t0), (idle1, t1)) = (prev?, cur?);
    let wall = t1.checked_duration_since(t0)?;
    if wall < MIN_LOAD_WINDOW / 2 {
        return None;
    }
    // /proc/stat counts USER_HZ ticks (100 per second).
    let idle_cpus = (idle1.saturating_sub(idle0) as f64 / 100.0 / wall.as_secs_f64()).max(0.01);
    Some(1.0 / idle_cpus)
}

fn read_idle() -> IdleReading {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let idle = line.split_whitespace().nth(4)?.parse().ok()?;
    Some((idle, std::time::Instant::now()))
}

/// Receive and send buffer the SFU asks for on its one UDP socket. Every session's media arrives on
/// it, so the kernel's default (~208 KB, ~150 full datagrams) overflows after a few milliseconds
/// of scheduling delay at call-scale rates and the drops look like network loss to every client.
pub const UDP_BUFFER_BYTES: usize = 8 << 20;

/// Widens the socket's buffers to [`UDP_BUFFER_BYTES`]: with `SO_RCVBUFFORCE` when the process may
/// (root / CAP_NET_ADMIN), else up to `net.core.rmem_max`. Returns the receive buffer the kernel
/// granted (it reports twice the requested size); failures leave the default and are not fatal.
pub fn widen_buffers(socket: &UdpSocket) -> Option<usize> {
    use nix::sys::socket::{setsockopt, sockopt};
    let size = UDP_BUFFER_BYTES;
    if setsockopt(socket, sockopt::RcvBufForce, &size).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &size);
    }
    if setsockopt(socket, sockopt::SndBufForce, &size).is_err() {
        let _ = setsockopt(socket, sockopt::SndBuf, &size);
    }
    nix::sys::socket::getsockopt(socket, sockopt::RcvBuf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_is_the_reciprocal_of_idle_cpus_and_never_infinite() {
        let t0 = std::time::Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        // 150 idle ticks in one second: 1.5 idle CPUs.
        let load = load_between(Some((1000, t0)), Some((1150, t1))).unwrap();
        assert!((load - 1.0 / 1.5).abs() < 1e-9, "{load}");
        // No idle time at all reads as 0.01 idle CPUs, not infinity.
        assert_eq!(
            load_between(Some((1000, t0)), Some((1000, t1))),
            Some(100.0)
        );
        // A window too short to mean anything, or a missing reading, gives no figure.
        let short = t0 + Duration::from_millis(10);
        assert_eq!(load_between(Some((1000, t0)), Some((1001, short))), None);
        assert_eq!(load_between(None, Some((1000, t1))), None);
    }

    #[test]
    fn sample_windows_end_on_whole_seconds_at_least_the_minimum_away() {
        let min = Duration::from_millis(100);
        let wait = until_next_second(min);
        assert!(
            wait >= min && wait <= Duration::from_secs(1) + min,
            "{wait:?}"
        );
        let end = std::time::SystemTime::now() + wait;
        let sub = end
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        // Within a few milliseconds of a whole second (the clock moved while we computed).
        assert!(!(50..=950).contains(&sub), "window ends at .{sub:03}");
    }

    fn proc_usize(path: &str) -> usize {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn the_udp_socket_gets_a_wide_receive_buffer() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let default =
            nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::RcvBuf).unwrap();
        let granted = widen_buffers(&socket).unwrap();
        // Root may force any size; anyone else gets at most net.core.rmem_max (the kernel doubles
        // the request for its bookkeeping and reports the doubled figure).
        let cap = if nix::unistd::geteuid().is_root() {
            UDP_BUFFER_BYTES
        } else {
            UDP_BUFFER_BYTES.min(proc_usize("/proc/sys/net/core/rmem_max"))
        };
        assert_eq!(granted, 2 * cap, "default was {default}");
    }
}
