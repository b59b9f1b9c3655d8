//! A participant that reaches the SFU over ICE-TCP only: str0m with a single `tcptype active`
//! host candidate over one real TCP connection, framed per RFC 4571, the test acting as the
//! plugin over `/ws`. webrtc-rs has no ICE-TCP (its agent ignores TCP), so str0m plays this
//! client; it has no UDP socket at all, so any media it gets came over TCP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callsref::proto::rtcd::{
    JoinData, RtcMessage, RtcType, SdpType, ServerCandidate, SessionDescription, WsMessage,
};
use futures_util::{SinkExt, StreamExt};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::sfu_proc::{Server, Ws, ws_connect, ws_next};

/// What the TCP client observed.
#[derive(Default)]
pub struct TcpStats {
    /// TCP candidates the SFU offered (trickled or in its answer): their `a=candidate` lines.
    pub tcp_candidates: Mutex<Vec<String>>,
    /// When ICE over TCP completed (DTLS up), since the join was sent.
    pub connected_after: Mutex<Option<Duration>>,
    /// When the first forwarded Opus packet arrived, since the join was sent.
    pub first_audio_after: Mutex<Option<Duration>>,
    pub dc_open: AtomicBool,
    /// Forwarded Opus packets received.
    pub audio_packets: AtomicUsize,
    /// RFC 4571 frames read from the connection.
    pub frames_in: AtomicUsize,
}

/// Joins `call` as `session_id` over ICE-TCP; the client runs in a background task.
pub async fn join_tcp(srv: &Server, auth: &str, call: &str, session_id: &str) -> Arc<TcpStats> {
    let mut ws = ws_connect(srv.http, auth).await.unwrap();
    assert!(matches!(
        ws_next(&mut ws, Duration::from_secs(5)).await,
        Some(WsMessage::Hello { .. })
    ));
    let started = Instant::now();
    let join = JoinData {
        call_id: call.into(),
        user_id: "tcpuser".into(),
        session_id: session_id.into(),
        channel_id: Some("channel1".into()),
        av1_support: Some(false),
        dc_signaling: Some(false),
    };
    send(&mut ws, WsMessage::Join(join)).await;

    let server: SocketAddr = SocketAddr::new(srv.http.ip(), srv.tcp_port);
    let stream = TcpStream::connect(server).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let local = stream.local_addr().unwrap();
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(started.into_std());
    let cand = Candidate::builder().tcp().host(local);
    rtc.add_local_candidate(cand.tcptype(TcpType::Active).build().unwrap());
    let mut api = rtc.sdp_api();
    api.add_channel("calls-dc".into());
    let (offer, pending) = api.apply().unwrap();
    let desc = SessionDescription::offer(offer.to_sdp_string());
    send(&mut ws, WsMessage::Rtc(RtcMessage::sdp(session_id, &desc))).await;

    let (read, write) = stream.into_split();
    let (frames_tx, frames_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_frames(read, frames_tx));
    let stats = Arc::new(TcpStats::default());
    let client = Client {
        rtc,
        pending: Some(pending),
        session_id: session_id.into(),
        server,
        local,
        write,
        started,
        stats: stats.clone(),
    };
    tokio::spawn(client.run(ws, frames_rx));
    stats
}

async fn send(ws: &mut Ws, m: WsMessage) {
    ws.send(Message::Binary(m.encode().into())).await.unwrap();
}

/// Reads RFC 4571 frames until the connection ends.
async fn read_frames(mut read: impl AsyncReadExt + Unpin, out: mpsc::UnboundedSender<Vec<u8>>) {
    loop {
        let Ok(len) = read.read_u16().await else {
            return;
        };
        let mut data = vec![0; len as usize];
        if read.read_exact(&mut data).await.is_err() || out.send(data).is_err() {
            return;
        }
    }
}

struct Client {
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    session_id: String,
    server: SocketAddr,
    local: SocketAddr,
    write: OwnedWriteHalf,
    started: Instant,
    stats: Arc<TcpStats>,
}

impl Client {
    async fn run(mut self, mut ws: Ws, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
        let mut timeout = self.started;
        loop {
            tokio::select! {
                f = ws.next() => {
                    let Some(Ok(Message::Binary(b))) = f else {
                        if matches!(f, None | Some(Err(_))) { return; }
                        continue;
                    };
                    if let Ok(WsMessage::Rtc(m)) = WsMessage::decode(&b)
                        && let Some(reply) = self.signal(&m)
                    {
                        send(&mut ws, reply).await;
                    }
                }
                f = frames.recv() => {
                    let Some(data) = f else { return };
                    self.stats.frames_in.fetch_add(1, Ordering::SeqCst);
                    let now = Instant::now().into_std();
                    if let Ok(r) = Receive::new(Protocol::Tcp, self.server, self.local, &data) {
                        let _ = self.rtc.handle_input(Input::Receive(now, r));
                    }
                }
                _ = tokio::time::sleep_until(timeout) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now().into_std()));
                }
            }
            match self.drain().await {
                Some(t) => timeout = t,
                None => return,
            }
        }
    }

    /// Applies one server `rtc` message; returns the reply to send, if any.
    fn signal(&mut self, m: &RtcMessage) -> Option<WsMessage> {
        match m.msg_type {
            RtcType::Ice => {
                let c = ServerCandidate::parse(&m.data).ok()?;
                let cand = Candidate::from_sdp_string(&c.candidate).ok()?;
                if cand.proto() == Protocol::Tcp {
                    self.stats.tcp_candidates.lock().unwrap().push(c.candidate);
                }
                self.rtc.add_remote_candidate(cand);
                None
            }
            RtcType::Sdp => {
                let desc = m.parse_sdp().ok()?;
                match desc.sdp_type {
                    SdpType::Answer => {
                        for line in desc.sdp.lines().filter(|l| l.contains(" tcp ")) {
                            let line = line.trim_start_matches("a=").to_string();
                            self.stats.tcp_candidates.lock().unwrap().push(line);
                        }
                        let answer = SdpAnswer::from_sdp_string(&desc.sdp).ok()?;
                        let pending = self.pending.take()?;
                        self.rtc.sdp_api().accept_answer(pending, answer).ok()?;
                        None
                    }
                    SdpType::Offer => {
                        let offer = SdpOffer::from_sdp_string(&desc.sdp).ok()?;
                        let answer = self.rtc.sdp_api().accept_offer(offer).ok()?;
                        let reply = SessionDescription::answer(answer.to_sdp_string());
                        Some(WsMessage::Rtc(RtcMessage::sdp(&self.session_id, &reply)))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Polls str0m until its next deadline, writing transmits to the connection; `None` once
    /// the client is done (str0m failed or the connection broke).
    async fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.rtc.poll_output().ok()? {
                Output::Timeout(t) => return Some(Instant::from_std(t)),
                Output::Transmit(t) => {
                    assert_eq!(t.proto, Protocol::Tcp, "a non-tcp transmit");
                    let mut f = Vec::with_capacity(2 + t.contents.len());
                    f.extend_from_slice(&(t.contents.len() as u16).to_be_bytes());
                    f.extend_from_slice(&t.contents);
                    self.write.write_all(&f).await.ok()?;
                }
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn event(&mut self, e: Event) {
        let since = self.started.elapsed();
        match e {
            Event::Connected => {
                *self.stats.connected_after.lock().unwrap() = Some(since);
            }
            Event::ChannelOpen(..) => self.stats.dc_open.store(true, Ordering::SeqCst),
            Event::RtpPacket(p) if *p.header.payload_type == 111 => {
                let mut first = self.stats.first_audio_after.lock().unwrap();
                first.get_or_insert(since);
                self.stats.audio_packets.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}
