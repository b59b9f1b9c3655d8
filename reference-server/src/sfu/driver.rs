//! The RTC thread: owns the shared UDP socket and the SFU core, and only moves bytes, commands and
//! deadlines between them (the core is sans-IO).
//!
//! Commands from the async side arrive on a channel; after queueing one, the sender pokes the UDP
//! socket with a one-byte datagram from a dedicated waker socket, so the thread wakes from its
//! blocking `recv_from` at once instead of polling.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use tokio::sync::{mpsc, oneshot};

use super::core::{Input, Output, Sfu};
use super::metrics::Metrics;
use super::signal::{ConnId, SignalIn, SignalOut};
use super::tcp::{TcpConns, TcpFrame};
use crate::proto::rtcd::WsMessage;
use crate::proto::rtcd::http::SessionConfig;

/// Largest datagram read (rtcd reads with an MTU of 1460; leave room for jumbo frames).
const RECV_BUF: usize = 2048;
/// Longest blocking read, so the thread notices a dropped command channel.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// What the async side asks of the RTC thread.
#[derive(Debug)]
pub enum Command {
    Signal(ConnId, SignalIn),
    SessionConfigs {
        group: String,
        call: String,
        reply: oneshot::Sender<Result<Vec<SessionConfig>, &'static str>>,
    },
    SessionConfig {
        group: String,
        call: String,
        session: String,
        reply: oneshot::Sender<Result<SessionConfig, &'static str>>,
    },
    SessionCount(oneshot::Sender<usize>),
    /// A packet from an ICE-TCP connection (see `tcp.rs`).
    Tcp(TcpFrame),
    Stop,
}

/// Outgoing frames per WS connection, with the connection's clientID (for metrics).
pub type Router = Arc<Mutex<HashMap<ConnId, (String, mpsc::UnboundedSender<Vec<u8>>)>>>;

/// Sends commands to the RTC thread.
#[derive(Debug)]
pub struct DriverHandle {
    tx: Mutex<Sender<Command>>,
    waker: UdpSocket,
    target: SocketAddr,
}

impl DriverHandle {
    /// The address wake-ups come from; the RTC thread ignores datagrams from it.
    pub fn waker_addr(&self) -> std::io::Result<SocketAddr> {
        self.waker.local_addr()
    }

    pub fn send(&self, c: Command) {
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(c)
            .is_ok();
        if sent {
            // A lost wake-up only delays the command until the next packet or deadline.
            let _ = self.waker.send_to(&[0], self.target);
        }
    }
}

/// The RTC thread's state.
#[derive(Debug)]
pub struct Driver {
    pub socket: UdpSocket,
    /// The address host candidates advertise; given to str0m as each datagram's destination.
    pub advertised: SocketAddr,
    pub sfu: Sfu,
    pub router: Router,
    pub metrics: Arc<Metrics>,
    /// ICE-TCP connections: where transmits with `Protocol::Tcp` go.
    pub tcp: TcpConns,
}

impl Driver {
    /// A handle for this driver plus the receiving end it runs with.
    pub fn handle(socket_addr: SocketAddr) -> std::io::Result<(DriverHandle, Receiver<Command>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let target = if socket_addr.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), socket_addr.port())
        } else {
            socket_addr
        };
        let bind: SocketAddr = if target.is_ipv4() {
            "127.0.0.1:0".parse().unwrap_or(target)
        } else {
            "[::1]:0".parse().unwrap_or(target)
        };
        let waker = UdpSocket::bind(if target.ip().is_loopback() {
            bind
        } else {
            SocketAddr::new(target.ip(), 0)
        })?;
        Ok((
            DriverHandle {
                tx: Mutex::new(tx),
                waker,
                target,
            },
            rx,
        ))
    }

    /// Runs until [`Command::Stop`] or the handle is dropped.
    pub fn run(mut self, rx: Receiver<Command>, waker_addr: SocketAddr) {
        let mut buf = vec![0u8; RECV_BUF];
        let mut deadline = Instant::now();
        let mut frame = Vec::with_capacity(512);
        loop {
            loop {
                match rx.try_recv() {
                    Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return,
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            if now >= deadline {
                let _ = self.sfu.handle_input(Input::Timeout(now));
            }
            deadline = self.drain(&mut frame);
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(100), MAX_WAIT);
            if self.socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, src)) => {
                    if src == waker_addr {
                        continue;
                    }
                    let Ok(r) = Receive::new(Protocol::Udp, src, self.advertised, &buf[..n]) else {
                        continue;
                    };
                    let received = Instant::now();
                    let _ = self.sfu.handle_input(Input::Receive(received, r));
                    // rtcd times each WriteRTP (the fan-out to every receiver); here that is
                    // routing, encrypting and sending every copy of this packet.
                    deadline = self.drain(&mut frame);
                    if let Some((group, kind)) = self.sfu.take_forwarded() {
                        let took = received.elapsed().as_secs_f64();
                        self.metrics.observe_write(group, kind, took);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                // ICMP port-unreachable from a departed peer surfaces here on Linux; not fatal.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => tracing::warn!(error = %e, "udp receive failed"),
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Signal(conn, msg) => {
                if let Err(e) = self.sfu.handle_input(Input::Signal(now, conn, msg)) {
                    tracing::warn!(error = %e, "signalling message refused");
                }
            }
            Command::SessionConfigs { group, call, reply } => {
                let _ = reply.send(self.sfu.session_configs(&group, &call));
            }
            Command::SessionConfig {
                group,
                call,
                session,
                reply,
            } => {
                let _ = reply.send(self.sfu.session_config(&group, &call, &session));
            }
            Command::SessionCount(reply) => {
                let _ = reply.send(self.sfu.session_count());
            }
            Command::Tcp(f) => {
                let Some(local) = self.tcp.advertised else {
                    return;
                };
                if let Ok(r) = Receive::new(Protocol::Tcp, f.source, local, &f.data) {
                    let _ = self.sfu.handle_input(Input::Receive(now, r));
                    // Write times are measured on the UDP path only; do not let this packet's
                    // fan-out be timed against a later UDP receive.
                    let _ = self.sfu.take_forwarded();
                }
            }
            Command::Stop => {}
        }
    }

    /// Moves all pending output out; returns the next deadline.
    fn drain(&mut self, frame: &mut Vec<u8>) -> Instant {
        loop {
            match self.sfu.poll_output() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) if t.proto == Protocol::Tcp => self.tcp.send(&t),
                Output::Transmit(t) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                        tracing::debug!(error = %e, dest = %t.destination, "udp send failed");
                    }
                }
                Output::Event(e) => self.metrics.apply(&e),
                Output::Signal(conn, msg) => {
                    let (kind, ws) = match msg {
                        SignalOut::Rtc(m) => (Some("rtc"), WsMessage::Rtc(m)),
                        SignalOut::Vad(m) => (Some("vad"), WsMessage::Vad(m)),
                        SignalOut::Close { session_id } => (None, WsMessage::Close { session_id }),
                    };
                    frame.clear();
                    ws.encode_into(frame);
                    let router = self.router.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((client, tx)) = router.get(&conn) {
                        // rtcd counts only rtc and vad as outgoing messages.
                        if let Some(kind) = kind {
                            self.metrics.ws_message(client, kind, "out");
                        }
                        let _ = tx.send(frame.clone());
                    }
                }
            }
        }
    }
}
