//! One event-loop thread of the driver: its participants, their sockets, its timer heap and its
//! impairment delay queue. Everything here runs on that thread; the [`Driver`](super::Driver)
//! reaches it only through [`ShardCmd`]s, the signalling inbox and the waker.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::batch::{BATCH, RecvBatch};
use super::meter::{Meter, RxKinds};
use super::{EventSink, ShardCounters, SignalSink, WAKER};
use crate::engine::impair::{DelayQueue, Impairer, Link, Verdict};
use crate::engine::participant::{
    Command, Datagram, Input, Output, Participant, ParticipantConfig,
};
use crate::engine::sendlog::SendLog;

pub(super) enum ShardCmd {
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
    Impair {
        session_id: String,
        link: Link,
    },
    Stop,
}

struct Slot {
    index: usize,
    p: Participant,
    socket: UdpSocket,
    signal: Arc<dyn SignalSink>,
    /// The deadline of the live heap entry; `None` once it fired (so an unchanged deadline is
    /// pushed again).
    deadline: Option<Instant>,
    impairer: Option<Impairer>,
    /// Received streams' kinds, for the meter.
    rx_kinds: RxKinds,
}

/// A datagram held back by impairment delay.
struct HeldDatagram {
    slot: usize,
    /// Up: send to `peer`; down: hand to the participant as from `peer`.
    up: bool,
    peer: SocketAddr,
    contents: Vec<u8>,
}

pub(super) struct Loop<S> {
    poll: Poll,
    cmds: mpsc::Receiver<ShardCmd>,
    inbox: mpsc::Receiver<(Instant, WsMessage)>,
    sink: S,
    slots: Vec<Slot>,
    by_session: HashMap<String, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    counters: ShardCounters,
    /// The thread's receive buffers; taken out while a batch is handed to participants.
    batch: Option<RecvBatch>,
    send_log: Arc<SendLog>,
    held: DelayQueue<HeldDatagram>,
    /// Buffers of released held datagrams, reused for the next ones.
    pool: Vec<Vec<u8>>,
    meter: Option<Meter>,
}

impl<S: EventSink> Loop<S> {
    pub(super) fn new(
        poll: Poll,
        cmds: mpsc::Receiver<ShardCmd>,
        inbox: mpsc::Receiver<(Instant, WsMessage)>,
        sink: S,
        send_log: Arc<SendLog>,
        meter: Option<Meter>,
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
            batch: Some(RecvBatch::new()),
            send_log,
            held: DelayQueue::default(),
            pool: Vec::new(),
            meter,
        }
    }

    pub(super) fn run(mut self) -> (S, ShardCounters) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            self.release_held(now);
            self.fire_timers(now);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let next = match (next_timer, self.held.next_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = next.map(|t| t.saturating_duration_since(Instant::now()));
            if self.poll.poll(&mut events, timeout).is_err() {
                // EINTR and friends: just go round again.
                continue;
            }
            self.counters.wakeups += 1;
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
                self.sink.on_timer_lag(now - t);
                // A fresh instant per participant: the batch's `now` goes stale while earlier
                // participants are served, and this one's packets (send log, pacing error) are
                // stamped with it.
                self.feed(i, Input::Timeout(Instant::now()));
            }
        }
    }

    /// Sends or hands over every held datagram whose release instant has passed.
    fn release_held(&mut self, now: Instant) {
        while let Some((at, h)) = self.held.pop_due(now) {
            if h.up {
                let slot = &self.slots[h.slot];
                match slot.socket.send_to(&h.contents, h.peer) {
                    Ok(_) => {
                        self.counters.datagrams_out += 1;
                        if let Some(m) = &self.meter {
                            m.sent(&slot.p, &h.contents);
                        }
                    }
                    Err(_) => self.counters.send_errors += 1,
                }
            } else {
                let d = Datagram {
                    source: h.peer,
                    destination: self.slots[h.slot].p.config().local_addr,
                    contents: &h.contents,
                };
                // Arrival is the release instant: the loop's own lateness is not the wire's.
                self.feed(h.slot, Input::Datagram(at, d));
            }
            let mut buf = h.contents;
            buf.clear();
            self.pool.push(buf);
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
                ShardCmd::Impair { session_id, link } => {
                    if let Some(&i) = self.by_session.get(&session_id) {
                        let slot = &mut self.slots[i];
                        slot.impairer = Some(Impairer::new(link, slot.p.config().seed));
                    }
                }
            }
        }
        while let Ok((delivered, msg)) = self.inbox.try_recv() {
            let session = match &msg {
                WsMessage::Rtc(m) | WsMessage::Vad(m) => m.session_id.as_str(),
                WsMessage::Close { session_id } => session_id.as_str(),
                _ => continue,
            };
            if let Some(&i) = self.by_session.get(session) {
                self.feed(i, Input::Signal(delivered, msg));
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
        let mut p = Participant::new(cfg, now);
        p.set_send_log(Arc::clone(&self.send_log));
        self.slots.push(Slot {
            index,
            p,
            socket,
            signal,
            deadline: None,
            impairer: None,
            rx_kinds: RxKinds::default(),
        });
        self.feed(slot, Input::Timeout(now));
        Ok(addr)
    }

    /// Reads slot `i`'s socket until it is drained, a batch at a time.
    fn read(&mut self, i: usize) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        while let Some(slot) = self.slots.get(i) {
            let n = match batch.recv(&slot.socket) {
                Ok(n) => n,
                // A socket error (e.g. ICMP unreachable reported on the next read): go on later.
                Err(_) => break,
            };
            let destination = slot.p.config().local_addr;
            let now = Instant::now();
            for k in 0..n {
                let Some((contents, Some(source))) = batch.get(k) else {
                    continue;
                };
                self.counters.datagrams_in += 1;
                self.on_datagram(i, now, source, destination, contents);
                // Counted as it arrived on the wire (impairment drops happen after the wire);
                // classified after the participant saw it, which names a new stream's SSRC.
                if let Some(m) = &self.meter {
                    m.received(&self.slots[i].rx_kinds, contents);
                }
            }
            if n < BATCH {
                break;
            }
        }
        self.batch = Some(batch);
    }

    /// One received datagram: through the slot's down impairment, then to the participant.
    fn on_datagram(
        &mut self,
        i: usize,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if let Some(imp) = self.slots[i].impairer.as_mut().filter(|m| m.link().down()) {
            match imp.judge(now) {
                Verdict::Drop => {
                    self.counters.impaired_dropped += 1;
                    return;
                }
                Verdict::At(at) if at > now => {
                    self.counters.impaired_delayed += 1;
                    let mut held = self.pool.pop().unwrap_or_default();
                    held.extend_from_slice(contents);
                    self.held.push(
                        at,
                        HeldDatagram {
                            slot: i,
                            up: false,
                            peer: source,
                            contents: held,
                        },
                    );
                    return;
                }
                Verdict::At(_) => {}
            }
        }
        let d = Datagram {
            source,
            destination,
            contents,
        };
        self.feed(i, Input::Datagram(now, d));
    }

    /// One input, then the full drain the participant's contract requires.
    fn feed(&mut self, i: usize, input: Input<'_>) {
        let at = match &input {
            Input::Timeout(t)
            | Input::Datagram(t, _)
            | Input::Signal(t, _)
            | Input::Command(t, _) => *t,
        };
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
                    // Pacing error: how late the input that wrote media came versus the earliest
                    // packet it was due to send. Measured at the input's start, not after its
                    // datagrams left: a keyframe is a burst of packets all due at once, and the
                    // time to write the burst is the sender's work, not lateness of the loop.
                    if let Some(due) = slot.p.take_paced() {
                        self.sink.on_pacing_error(at.saturating_duration_since(due));
                    }
                    return;
                }
                Output::Transmit(t) => {
                    if let Some(imp) = slot.impairer.as_mut().filter(|m| m.link().up()) {
                        let now = Instant::now();
                        match imp.judge(now) {
                            Verdict::Drop => {
                                self.counters.impaired_dropped += 1;
                                continue;
                            }
                            Verdict::At(at) if at > now => {
                                // str0m hands over an owned buffer: hold it as it is.
                                self.counters.impaired_delayed += 1;
                                self.held.push(
                                    at,
                                    HeldDatagram {
                                        slot: i,
                                        up: true,
                                        peer: t.destination,
                                        contents: t.contents.into(),
                                    },
                                );
                                continue;
                            }
                            Verdict::At(_) => {}
                        }
                    }
                    match slot.socket.send_to(&t.contents, t.destination) {
                        Ok(_) => {
                            self.counters.datagrams_out += 1;
                            if let Some(m) = &self.meter {
                                m.sent(&slot.p, &t.contents);
                            }
                        }
                        Err(_) => self.counters.send_errors += 1,
                    }
                }
                Output::Signal(msg) => slot.signal.send(msg),
                Output::Event(e) => {
                    if self.meter.is_some() {
                        slot.rx_kinds.learn(&e);
                    }
                    self.sink.on_event(slot.index, Instant::now(), &e)
                }
            }
        }
    }
}
