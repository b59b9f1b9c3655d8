//! The I/O driver: a few event-loop threads, each owning a shard of participants, their UDP sockets
//! and one timer heap. No task, lock or channel per packet; channels only at the signalling edge.
//!
//! Sockets: one nonblocking UDP socket per participant, bound to the configured local IP on an
//! ephemeral port. A shared socket per shard would save descriptors, but rtcd (pion's UDP mux) and
//! the reference SFU identify a session's ICE pair by the remote address, so every participant must
//! have its own port, as every real client does. 2000 participants per thread is 2000 descriptors.
//!
//! Batching: readiness comes from one `mio::Poll` per thread (epoll); a ready socket is read until
//! `WouldBlock` (each datagram is one participant input, no per-packet allocation: one receive
//! buffer per thread), and transmits are written straight away. recvmmsg/GSO would need either
//! `unsafe` or a shared socket, which the port-per-participant rule above rules out.
//!
//! Timers: a binary heap of `(deadline, participant, generation)` per thread with lazy deletion; a
//! participant's entry is replaced whenever its `Timeout` changes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::participant::{Command, Datagram, Event, Input, Output, Participant, ParticipantConfig};
use super::publish::Role;
use crate::measure::{Flow, HotCounters, TrackKind as FlowKind};

const WAKER: Token = Token(usize::MAX);
/// Receive buffer; rtcd's datagrams stay under its 1460-byte MTU, str0m's under 1200.
const RECV_BUF: usize = 2048;

/// Where a participant's outgoing signalling goes (the plugin connection of its call's host).
pub trait SignalSink: Send + Sync {
    fn send(&self, msg: WsMessage);
}

/// Where incoming signalling for a shard's sessions is delivered: the shard's channel and a waker.
#[derive(Clone)]
pub struct Inbox {
    pub tx: mpsc::Sender<WsMessage>,
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
        let ok = self.tx.send(msg).is_ok();
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
}

enum ShardCmd {
    Add {
        index: usize,
        cfg: ParticipantConfig,
        signal: Arc<dyn SignalSink>,
        bound: mpsc::Sender<io::Result<SocketAddr>>,
    },
    Command {
        session_id: String,
        cmd: Command,
    },
    Stop,
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
    /// in `meter` per flow (audio, screen, video by the stream's SSRC; RTCP, STUN, DTLS and SCTP
    /// as control), so wire bandwidth is measured where the bytes leave and arrive.
    pub fn start_metered(
        cfg: DriverConfig,
        meter: Option<Arc<HotCounters>>,
        mut make_sink: impl FnMut(usize) -> S,
    ) -> io::Result<Self> {
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
            let meter = meter.clone();
            let handle = std::thread::Builder::new()
                .name(format!("engine-{shard}"))
                .spawn(move || Loop::new(poll, rx, irx, sink, meter).run())?;
            shards.push(Shard { tx, inbox, waker });
            threads.push(handle);
        }
        Ok(Driver {
            cfg,
            shards,
            threads,
            next: 0,
            by_session: HashMap::new(),
        })
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

struct Slot {
    index: usize,
    p: Participant,
    socket: UdpSocket,
    signal: Arc<dyn SignalSink>,
    /// The deadline of the live heap entry; `None` once it fired (so an unchanged deadline is
    /// pushed again).
    deadline: Option<Instant>,
    /// SSRCs of received media streams and their kind, learned from the participant's RTP events
    /// (only kept when metering; a participant receives a handful of streams).
    rx_kinds: Vec<(u32, FlowKind)>,
}

/// The SSRC of an RTP datagram; `None` for RTCP (PT 192..=223), STUN, DTLS and anything else.
/// The RTP header stays in the clear under SRTP, so this works on encrypted packets.
pub fn rtp_ssrc(d: &[u8]) -> Option<u32> {
    if d.len() < 12 || !(128..=191).contains(&d[0]) || (192..=223).contains(&d[1]) {
        return None;
    }
    Some(u32::from_be_bytes([d[8], d[9], d[10], d[11]]))
}

fn role_kind(role: Role) -> FlowKind {
    match role {
        Role::Voice => FlowKind::Audio,
        Role::Screen => FlowKind::Screen,
        Role::Video => FlowKind::Video,
    }
}

fn track_kind(kind: callsref::proto::rtcd::ids::TrackKind) -> FlowKind {
    use callsref::proto::rtcd::ids::TrackKind as K;
    match kind {
        K::Voice | K::ScreenAudio => FlowKind::Audio,
        K::Screen => FlowKind::Screen,
        K::Video => FlowKind::Video,
    }
}

struct Loop<S> {
    poll: Poll,
    cmds: mpsc::Receiver<ShardCmd>,
    inbox: mpsc::Receiver<WsMessage>,
    sink: S,
    slots: Vec<Slot>,
    by_session: HashMap<String, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    counters: ShardCounters,
    buf: Vec<u8>,
    meter: Option<Arc<HotCounters>>,
}

impl<S: EventSink> Loop<S> {
    fn new(
        poll: Poll,
        cmds: mpsc::Receiver<ShardCmd>,
        inbox: mpsc::Receiver<WsMessage>,
        sink: S,
        meter: Option<Arc<HotCounters>>,
    ) -> Self {
        Loop {
            poll,
            cmds,
            inbox,
            sink,
            slots: Vec::new(),
            by_session: HashMap::new(),
            timers: BinaryHeap::new(),
            counters: ShardCounters::default(),
            buf: vec![0; RECV_BUF],
            meter,
        }
    }

    fn run(mut self) -> (S, ShardCounters) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            self.fire_timers(now);
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
            if self.poll.poll(&mut events, timeout).is_err() {
                // EINTR and friends: just go round again.
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {
                        if !self.on_wake() {
                            return (self.sink, self.counters);
                        }
                    }
                    Token(i) => self.read(i),
                }
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            // Lazy deletion: only the entry matching the slot's current deadline is live.
            if let Some(slot) = self.slots.get_mut(i)
                && slot.deadline == Some(t)
            {
                slot.deadline = None;
                self.counters.max_timer_lag = self.counters.max_timer_lag.max(now - t);
                self.feed(i, Input::Timeout(now));
            }
        }
    }

    /// Handles commands and signalling; false when told to stop.
    fn on_wake(&mut self) -> bool {
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                ShardCmd::Stop => return false,
                ShardCmd::Add {
                    index,
                    cfg,
                    signal,
                    bound,
                } => {
                    let _ = bound.send(self.add(index, cfg, signal));
                }
                ShardCmd::Command { session_id, cmd } => {
                    if let Some(&i) = self.by_session.get(&session_id) {
                        self.feed(i, Input::Command(Instant::now(), cmd));
                    }
                }
            }
        }
        while let Ok(msg) = self.inbox.try_recv() {
            let session = match &msg {
                WsMessage::Rtc(m) | WsMessage::Vad(m) => m.session_id.as_str(),
                WsMessage::Close { session_id } => session_id.as_str(),
                _ => continue,
            };
            if let Some(&i) = self.by_session.get(session) {
                self.feed(i, Input::Signal(Instant::now(), msg));
            }
        }
        true
    }

    fn add(
        &mut self,
        index: usize,
        mut cfg: ParticipantConfig,
        signal: Arc<dyn SignalSink>,
    ) -> io::Result<SocketAddr> {
        let std_socket = std::net::UdpSocket::bind(cfg.local_addr)?;
        std_socket.set_nonblocking(true)?;
        let mut socket = UdpSocket::from_std(std_socket);
        let addr = socket.local_addr()?;
        cfg.local_addr = addr;
        let slot = self.slots.len();
        self.poll
            .registry()
            .register(&mut socket, Token(slot), Interest::READABLE)?;
        self.by_session.insert(cfg.session_id.clone(), slot);
        let now = Instant::now();
        self.slots.push(Slot {
            index,
            p: Participant::new(cfg, now),
            socket,
            signal,
            deadline: None,
            rx_kinds: Vec::new(),
        });
        self.feed(slot, Input::Timeout(now));
        Ok(addr)
    }

    fn read(&mut self, i: usize) {
        loop {
            let Some(slot) = self.slots.get(i) else {
                return;
            };
            let (n, source) = match slot.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            self.counters.datagrams_in += 1;
            let destination = slot.p.config().local_addr;
            let now = Instant::now();
            // Disjoint borrow: the buffer is read while the slot is driven.
            let buf = std::mem::take(&mut self.buf);
            let d = Datagram {
                source,
                destination,
                contents: &buf[..n],
            };
            self.feed(i, Input::Datagram(now, d));
            if let Some(meter) = &self.meter {
                // Classified after the participant saw it: a new stream's SSRC is learned from
                // the RTP event of its first packet.
                let kind = rtp_ssrc(&buf[..n]).and_then(|ssrc| {
                    self.slots[i]
                        .rx_kinds
                        .iter()
                        .find(|(s, _)| *s == ssrc)
                        .map(|(_, k)| *k)
                });
                meter.received(kind.map_or(Flow::Control, Flow::Media), n);
            }
            self.buf = buf;
        }
    }

    /// One input, then the full drain the participant's contract requires.
    fn feed(&mut self, i: usize, input: Input<'_>) {
        let slot = &mut self.slots[i];
        if slot.p.handle_input(input).is_err() {
            self.counters.input_errors += 1;
        }
        loop {
            let out = match slot.p.poll_output() {
                Ok(o) => o,
                Err(_) => {
                    // str0m refused to go on; look again shortly rather than spin.
                    self.counters.input_errors += 1;
                    Output::Timeout(Instant::now() + Duration::from_millis(10))
                }
            };
            match out {
                Output::Timeout(t) => {
                    if slot.deadline != Some(t) {
                        slot.deadline = Some(t);
                        self.timers.push(Reverse((t, i)));
                    }
                    return;
                }
                Output::Transmit(t) => match slot.socket.send_to(&t.contents, t.destination) {
                    Ok(n) => {
                        self.counters.datagrams_out += 1;
                        if let Some(meter) = &self.meter {
                            let kind = rtp_ssrc(&t.contents)
                                .and_then(|ssrc| slot.p.sent_role(ssrc.into()))
                                .map(role_kind);
                            meter.sent(kind.map_or(Flow::Control, Flow::Media), n);
                        }
                    }
                    Err(_) => self.counters.send_errors += 1,
                },
                Output::Signal(msg) => slot.signal.send(msg),
                Output::Event(e) => {
                    if let (Some(_), Event::Rtp(r)) = (&self.meter, &e)
                        && let Some(kind) = r.kind
                    {
                        let ssrc = *r.ssrc;
                        if !slot.rx_kinds.iter().any(|(s, _)| *s == ssrc) {
                            slot.rx_kinds.push((ssrc, track_kind(kind)));
                        }
                    }
                    self.sink.on_event(slot.index, Instant::now(), &e)
                }
            }
        }
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

    /// Voice packets received per (receiver, mid), shared with the test thread.
    #[derive(Clone, Default)]
    struct Counts(Arc<Mutex<HashMap<usize, u64>>>);

    impl EventSink for Counts {
        fn on_event(&mut self, participant: usize, _now: Instant, event: &Event) {
            if let Event::Rtp(r) = event
                && r.kind == Some(TrackKind::Voice)
            {
                *self.0.lock().unwrap().entry(participant).or_default() += 1;
            }
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
    fn datagrams_are_told_apart_by_their_first_bytes() {
        let mut rtp = vec![0x90, 111, 0, 1, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 1, 2];
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        rtp[1] = 0x80 | 96; // marker bit set, VP8
        assert_eq!(rtp_ssrc(&rtp), Some(0xdead_beef));
        rtp[1] = 200; // RTCP sender report
        assert_eq!(rtp_ssrc(&rtp), None);
        assert_eq!(
            rtp_ssrc(&[0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0]),
            None
        ); // STUN
        assert_eq!(rtp_ssrc(&[23, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None); // DTLS
        assert_eq!(rtp_ssrc(&[0x80, 111, 0]), None);
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
        let meter = Arc::new(HotCounters::default());
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
