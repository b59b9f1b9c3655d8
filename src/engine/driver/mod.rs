//! The I/O driver: a few event-loop threads, each owning a shard of participants, their UDP sockets
//! and one timer heap. No task, lock or channel per packet; channels only at the signalling edge.
//!
//! Sockets: one nonblocking UDP socket per participant, bound to the configured local IP on an
//! ephemeral port. A shared socket per shard would save descriptors, but rtcd (pion's UDP mux) and
//! the reference SFU identify a session's ICE pair by the remote address, so every participant must
//! have its own port, as every real client does. 2000 participants per thread is 2000 descriptors.
//!
//! Batching: readiness comes from one `mio::Poll` per thread (epoll, edge-triggered, up to 1024
//! ready sockets per wait); a ready socket is drained with `recvmmsg` ([`batch`], nix's safe
//! wrapper; one set of buffers per thread, no per-packet allocation), each datagram one participant
//! input. Transmits are written straight away with one `sendto` each: `sendmmsg` and GSO batch only
//! datagrams of one socket, and a participant emits one or two per input (its media packet, an
//! RTCP report, a STUN check), so there is nothing to gather.
//!
//! Timers: a binary heap of `(deadline, participant, generation)` per thread with lazy deletion; a
//! participant's entry is replaced whenever its `Timeout` changes.
//!
//! Impairment ([`Driver::impair`]): a participant's datagrams in the impaired direction go through
//! its seeded [`Impairer`](super::impair::Impairer); a dropped one is never sent (up) or never handed to the participant
//! (down), a delayed one waits in the thread's [`DelayQueue`](super::impair::DelayQueue) (its bytes in a pooled buffer) and is
//! sent or handed over when the loop passes its release instant. Down-delayed datagrams are handed
//! over with the release instant as their arrival time, as if the wire had been slower.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use mio::{Poll, Token, Waker};

use super::impair::Link;
use super::participant::{Command, Event, ParticipantConfig};
use super::sendlog::SendLog;

mod batch;
pub mod meter;
mod shard;

use shard::{Loop, ShardCmd};

const WAKER: Token = Token(usize::MAX);
/// Receive buffer; rtcd's datagrams stay under its 1460-byte MTU, str0m's under 1200.
const RECV_BUF: usize = 2048;

/// Where a participant's outgoing signalling goes (the plugin connection of its call's host).
pub trait SignalSink: Send + Sync {
    fn send(&self, msg: WsMessage);
}

/// Where incoming signalling for a shard's sessions is delivered: the shard's channel and a waker.
/// Each message carries the instant it was delivered (read off the plugin connection), so what is
/// timed against rtcd's messages (VAD events, server offers) does not include the engine
/// thread's own wait before it got to the message.
#[derive(Clone)]
pub struct Inbox {
    pub tx: mpsc::Sender<(Instant, WsMessage)>,
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl Inbox {
    /// Delivers one message and wakes the shard; false when the shard is gone.
    pub fn deliver(&self, msg: WsMessage) -> bool {
        let ok = self.tx.send((Instant::now(), msg)).is_ok();
        if ok {
            (self.wake)();
        }
        ok
    }
}

/// Receives every participant event of one shard (aggregate per shard, merge after the run).
pub trait EventSink: Send + 'static {
    /// `participant` is the driver-wide index given by [`Driver::add`].
    fn on_event(&mut self, participant: usize, now: Instant, event: &Event);

    /// A participant's timer fired `lag` after its deadline (the event loop's lateness, a
    /// self-health input). Called for every fired timer; ignored unless overridden.
    fn on_timer_lag(&mut self, _lag: Duration) {}

    /// An input that made a participant write media came `error` after the earliest scheduled
    /// send instant among those packets (pacing error, a self-health input). Called once per
    /// input that wrote media, not per packet; ignored unless overridden.
    fn on_pacing_error(&mut self, _error: Duration) {}
}

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Event-loop threads (one per core to load).
    pub threads: usize,
    /// Local IP the participants' sockets bind to and advertise as their host candidate.
    pub local_ip: IpAddr,
}

/// Counters of one shard, returned when the driver stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardCounters {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Sends that failed (full socket buffer or unreachable).
    pub send_errors: u64,
    /// Inputs a participant rejected (bad signalling, undecodable datagram).
    pub input_errors: u64,
    /// Largest lateness of a timer at dispatch, a self-health figure.
    pub max_timer_lag: Duration,
    /// Datagrams dropped by impairment (both directions).
    pub impaired_dropped: u64,
    /// Datagrams held back by impairment delay (both directions).
    pub impaired_delayed: u64,
    /// Event-loop wakeups (returns from `epoll_wait`); datagrams per wakeup says how well the
    /// loop batches.
    pub wakeups: u64,
}

struct Shard {
    tx: mpsc::Sender<ShardCmd>,
    inbox: Inbox,
    waker: Arc<Waker>,
}

/// Handle to the running event loops.
pub struct Driver<S: EventSink> {
    cfg: DriverConfig,
    shards: Vec<Shard>,
    threads: Vec<JoinHandle<(S, ShardCounters)>>,
    next: usize,
    by_session: HashMap<String, usize>,
    send_log: Arc<SendLog>,
}

impl<S: EventSink> std::fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("cfg", &self.cfg)
            .field("participants", &self.next)
            .finish_non_exhaustive()
    }
}

impl<S: EventSink> Driver<S> {
    /// Starts `cfg.threads` event loops, each with the sink `make_sink(shard)`.
    pub fn start(cfg: DriverConfig, make_sink: impl FnMut(usize) -> S) -> io::Result<Self> {
        Self::start_metered(cfg, None, make_sink)
    }

    /// Like [`start`](Self::start), and every datagram the participants send or receive is counted
    /// in `meter` per flow (see [`meter`]).
    pub fn start_metered(
        cfg: DriverConfig,
        meter: Option<Arc<crate::measure::HotCounters>>,
        mut make_sink: impl FnMut(usize) -> S,
    ) -> io::Result<Self> {
        let send_log = Arc::new(SendLog::new(Instant::now()));
        let mut shards = Vec::new();
        let mut threads = Vec::new();
        for shard in 0..cfg.threads.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = mpsc::channel();
            let (itx, irx) = mpsc::channel();
            let w = Arc::clone(&waker);
            let inbox = Inbox {
                tx: itx,
                wake: Arc::new(move || {
                    // A failed wake means the loop is gone; the message is then moot.
                    let _ = w.wake();
                }),
            };
            let sink = make_sink(shard);
            let log = Arc::clone(&send_log);
            let meter = meter.clone().map(meter::Meter);
            let handle = std::thread::Builder::new()
                .name(format!(
                    "{}{shard}",
                    crate::measure::host::ENGINE_THREAD_PREFIX
                ))
                .spawn(move || Loop::new(poll, rx, irx, sink, log, meter).run())?;
            shards.push(Shard { tx, inbox, waker });
            threads.push(handle);
        }
        Ok(Driver {
            cfg,
            shards,
            threads,
            next: 0,
            by_session: HashMap::new(),
            send_log,
        })
    }

    /// The send log shared by all participants of this driver (one-way latency lookups).
    pub fn send_log(&self) -> &Arc<SendLog> {
        &self.send_log
    }

    /// The inbox of the shard the next [`add`](Self::add) will use: register it for the session with
    /// the plugin connection before adding, so no answer from rtcd can arrive unrouted.
    pub fn next_inbox(&self) -> Inbox {
        self.shards[self.next % self.shards.len()].inbox.clone()
    }

    /// Adds a participant to the next shard (round robin); binds its socket and returns its index and
    /// local address. `cfg.local_addr` is replaced by the bound address.
    pub fn add(
        &mut self,
        mut cfg: ParticipantConfig,
        signal: Arc<dyn SignalSink>,
    ) -> io::Result<(usize, SocketAddr)> {
        let index = self.next;
        let shard = index % self.shards.len();
        self.next += 1;
        cfg.local_addr = SocketAddr::new(self.cfg.local_ip, 0);
        self.by_session.insert(cfg.session_id.clone(), shard);
        let (btx, brx) = mpsc::channel();
        self.send(
            shard,
            ShardCmd::Add {
                index,
                cfg,
                signal,
                bound: btx,
            },
        )?;
        let addr = brx
            .recv()
            .map_err(|_| io::Error::other("engine thread ended"))??;
        Ok((index, addr))
    }

    /// Gives a participant a command.
    pub fn command(&self, session_id: &str, cmd: Command) -> io::Result<()> {
        let shard = *self
            .by_session
            .get(session_id)
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "unknown session"))?;
        self.send(
            shard,
            ShardCmd::Command {
                session_id: session_id.to_string(),
                cmd,
            },
        )
    }

    /// Impairs a participant's path from now on: loss, delay and jitter on the datagrams it sends
    /// (`Up`), receives (`Down`) or both, drawn from an RNG seeded by the participant's seed. Call it
    /// right after [`add`](Self::add), before `Join`, so the whole session is impaired; a second
    /// call replaces the link (and restarts its RNG).
    pub fn impair(&self, session_id: &str, link: Link) -> io::Result<()> {
        let shard = *self
            .by_session
            .get(session_id)
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "unknown session"))?;
        if !(0.0..=1.0).contains(&link.loss) {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "impairment loss must be within 0..=1",
            ));
        }
        self.send(
            shard,
            ShardCmd::Impair {
                session_id: session_id.to_string(),
                link,
            },
        )
    }

    fn send(&self, shard: usize, cmd: ShardCmd) -> io::Result<()> {
        let s = &self.shards[shard];
        s.tx.send(cmd)
            .map_err(|_| io::Error::other("engine thread ended"))?;
        s.waker.wake()
    }

    /// Stops every loop and returns each shard's sink and counters.
    pub fn stop(self) -> Vec<(S, ShardCounters)> {
        for s in &self.shards {
            let _ = s.tx.send(ShardCmd::Stop);
            let _ = s.waker.wake();
        }
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use callsref::proto::rtcd::ids::TrackKind;

    use super::*;
    use crate::engine::mock_sfu::MockSfu;
    use crate::engine::sim::{ServerOutput, SimServer};
    use crate::engine::source::{Clip, ClipFrame, ClipSource};

    /// Voice packets received per (receiver, mid), shared with the test thread,
    /// and the pacing errors reported.
    #[derive(Clone, Default)]
    struct Counts(Arc<Mutex<HashMap<usize, u64>>>, Arc<Mutex<Vec<Duration>>>);

    impl EventSink for Counts {
        fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
            if let Event::Rtp(r) = event
                && r.kind == Some(TrackKind::Voice)
            {
                *self.0.lock().unwrap().entry(participant).or_default() += 1;
            }
        }

        fn on_pacing_error(&mut self, error: Duration) {
            self.1.lock().unwrap().push(error);
        }
    }

    struct ToServer(mpsc::Sender<WsMessage>);

    impl SignalSink for ToServer {
        fn send(&self, msg: WsMessage) {
            let _ = self.0.send(msg);
        }
    }

    /// Runs the mock SFU on a real loopback UDP socket until `stop`.
    fn serve(
        socket: std::net::UdpSocket,
        signals: mpsc::Receiver<WsMessage>,
        inboxes: Arc<Mutex<HashMap<String, Inbox>>>,
        stop: Arc<AtomicBool>,
    ) {
        let addr = socket.local_addr().unwrap();
        let mut server = MockSfu::new(addr, Instant::now());
        let mut deadline;
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            while let Ok(msg) = signals.try_recv() {
                server.handle_signal(Instant::now(), msg);
            }
            loop {
                match server.poll_output() {
                    ServerOutput::Timeout(t) => {
                        deadline = t;
                        break;
                    }
                    ServerOutput::Transmit {
                        destination,
                        contents,
                    } => {
                        let _ = socket.send_to(&contents, destination);
                    }
                    ServerOutput::Signal(msg) => {
                        let session = match &msg {
                            WsMessage::Rtc(m) | WsMessage::Vad(m) => m.session_id.clone(),
                            WsMessage::Close { session_id } => session_id.clone(),
                            _ => continue,
                        };
                        if let Some(inbox) = inboxes.lock().unwrap().get(&session) {
                            inbox.deliver(msg);
                        }
                    }
                }
            }
            // Wake at the server's deadline, or every 2 ms to pick up signalling.
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(100), Duration::from_millis(2));
            socket.set_read_timeout(Some(wait)).unwrap();
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => server.handle_datagram(Instant::now(), from, &buf[..n]),
                Err(_) => server.handle_timeout(Instant::now()),
            }
        }
    }

    fn audio() -> Box<dyn crate::engine::source::MediaSource> {
        let frames = (0..50u8)
            .map(|i| ClipFrame {
                payloads: vec![Arc::from(vec![0xfc, i, 9, 9])],
                keyframe: false,
                audio_level: Some(20),
            })
            .collect();
        let clip = Arc::new(Clip {
            frames,
            interval: Duration::from_millis(20),
            clock_rate: 48_000,
        });
        Box::new(ClipSource::new(clip, 10, 0))
    }

    #[test]
    fn mock_sfu_over_loopback_udp_two_threads() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (sig_tx, sig_rx) = mpsc::channel();
        let inboxes = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (inboxes, stop) = (Arc::clone(&inboxes), Arc::clone(&stop));
            std::thread::spawn(move || serve(socket, sig_rx, inboxes, stop))
        };

        let counts = Counts::default();
        let cfg = DriverConfig {
            threads: 2,
            local_ip: "127.0.0.1".parse().unwrap(),
        };
        let meter = Arc::new(crate::measure::HotCounters::default());
        let mut driver =
            Driver::start_metered(cfg, Some(Arc::clone(&meter)), |_| counts.clone()).unwrap();
        let sink: Arc<dyn SignalSink> = Arc::new(ToServer(sig_tx));
        let mut sessions = Vec::new();
        for i in 0..3 {
            let session_id = format!("session{i}");
            inboxes
                .lock()
                .unwrap()
                .insert(session_id.clone(), driver.next_inbox());
            let cfg = ParticipantConfig {
                call_id: "call".into(),
                user_id: format!("user{i}"),
                session_id: session_id.clone(),
                channel_id: "channel".into(),
                dc_signaling: false,
                local_addr: "0.0.0.0:0".parse().unwrap(),
                seed: i,
            };
            let (index, addr) = driver.add(cfg, Arc::clone(&sink)).unwrap();
            assert_eq!(index, i as usize);
            assert_eq!(addr.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
            assert_ne!(addr.port(), 0);
            driver.command(&session_id, Command::Join).unwrap();
            sessions.push(session_id);
        }
        driver
            .command(&sessions[0], Command::Unmute(Some(audio())))
            .unwrap();
        driver
            .command(&sessions[1], Command::Unmute(Some(audio())))
            .unwrap();

        // Poll the condition with a deadline: the listener hears both speakers (about 50
        // packets/s each once negotiated), each speaker hears the other.
        let deadline = Instant::now() + Duration::from_secs(10);
        let enough = |c: &HashMap<usize, u64>| {
            c.get(&2).copied().unwrap_or(0) >= 150
                && c.get(&0).copied().unwrap_or(0) >= 50
                && c.get(&1).copied().unwrap_or(0) >= 50
        };
        while !enough(&counts.0.lock().unwrap()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let snapshot = counts.0.lock().unwrap().clone();
        stop.store(true, Ordering::Relaxed);
        let shards = driver.stop();
        server.join().unwrap();
        assert!(
            enough(&snapshot),
            "voice packets per receiver: {snapshot:?}"
        );
        assert_eq!(shards.len(), 2);
        let total_in: u64 = shards.iter().map(|(_, c)| c.datagrams_in).sum();
        assert!(total_in > 250, "{total_in} datagrams in");
        assert_eq!(shards.iter().map(|(_, c)| c.input_errors).sum::<u64>(), 0);
        // Pacing error: one sample per input that wrote media (the two speakers wrote 150 or
        // more packets, one or a few per input), each a lateness that a loaded host can stretch
        // but never to seconds.
        let pacing = counts.1.lock().unwrap().clone();
        assert!(pacing.len() >= 20, "{} samples", pacing.len());
        assert!(
            pacing.iter().all(|e| *e < Duration::from_secs(2)),
            "{:?}",
            pacing.iter().max()
        );
        // Metering: every datagram counted once, the voice ones as audio in both directions.
        let v = meter.values();
        let out: u64 = shards.iter().map(|(_, c)| c.datagrams_out).sum();
        assert_eq!(v.packets_in.iter().sum::<u64>(), out);
        assert_eq!(v.packets_out.iter().sum::<u64>(), total_in);
        let heard: u64 = snapshot.values().sum();
        assert!(v.packets_out[0] >= heard, "{v:?} vs {heard} voice events");
        assert!(v.packets_in[0] >= 100, "{v:?}");
        assert!(
            v.packets_in[3] > 0 && v.packets_out[3] > 0,
            "control traffic {v:?}"
        );
    }
}
