//! Recording mode of `callsref runner`: joins a call on an rtcd-compatible SFU as a receive-only
//! participant, the way the Calls plugin connects a session (rtcd.md: `/ws` with Basic auth, `join`,
//! then `rtc` SDP and ICE frames), and writes every track it receives under `DATA_DIR/<job id>/`
//! ([`super::tracks`]: Opus → `<track>.ogg`, VP8 → `<track>.ivf`).
//!
//! The real recorder joins through Mattermost with a browser; this one joins rtcd directly, so it
//! needs rtcd credentials in its input_data. Environment (input_data keys upper-cased):
//!
//! | env | meaning |
//! |---|---|
//! | `RTCD_URL` | rtcd base URL (`http://host:port`); its presence selects recording mode |
//! | `RTCD_CLIENT_ID`, `RTCD_AUTH_KEY` | rtcd credentials (Basic auth on `/ws`) |
//! | `CALL_ID` | the call to join (as the real recorder's env) |
//! | `RECORDING_ID` | the job id: the output directory, and the recorder's session id |
//! | `RUNNER_RUN_MS` | stop after this long (otherwise at SIGTERM or when rtcd closes the session) |
//! | `RUNNER_EXIT_CODE` | exit code of a successful recording (default 0) |
//!
//! Exit codes follow the real recorder: failing to start (rtcd unreachable, join refused, no ICE
//! connection within [`CONNECT_TIMEOUT`]) reports on stderr and exits 0, since nothing was
//! recorded; losing the connection or a file mid-recording exits 1 so the files are kept.
//!
//! One current-thread task drives everything: str0m is sans-IO, so the loop only moves datagrams,
//! WebSocket frames and deadlines in and drains `poll_output` after each.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Output, Rtc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::tracks::{IvfVp8, OggOpus, TrackError};
use crate::proto::auth::Authorization;
use crate::proto::rtcd::{
    IceCandidateInit, JoinData, RtcMessage, RtcType, SdpType, SessionDescription, WsMessage,
};

/// How long joining may take before the recording counts as failed to start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a video track without a key frame yet asks for one.
const PLI_INTERVAL: Duration = Duration::from_secs(1);

/// What recording mode needs, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub rtcd_url: String,
    pub client_id: String,
    pub auth_key: String,
    pub call_id: String,
    pub job_id: String,
    pub dir: PathBuf,
    pub duration: Option<Duration>,
    pub exit_code: i32,
}

/// A missing or bad recording-mode variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recording mode needs {0}")]
pub struct ConfigError(pub &'static str);

impl RecordConfig {
    /// `Ok(None)` without `RTCD_URL`; otherwise every other variable must be there.
    pub fn from_env(
        env: &BTreeMap<String, String>,
        dir: PathBuf,
        job_id: &str,
        duration: Duration,
        exit_code: i32,
    ) -> Result<Option<RecordConfig>, ConfigError> {
        let Some(url) = env.get("RTCD_URL") else {
            return Ok(None);
        };
        let need = |k: &'static str| env.get(k).cloned().ok_or(ConfigError(k));
        Ok(Some(RecordConfig {
            rtcd_url: url.trim_end_matches('/').to_owned(),
            client_id: need("RTCD_CLIENT_ID")?,
            auth_key: need("RTCD_AUTH_KEY")?,
            call_id: need("CALL_ID")?,
            job_id: job_id.to_owned(),
            dir: dir.join(job_id),
            duration: (!duration.is_zero()).then_some(duration),
            exit_code,
        }))
    }

    fn ws_url(&self) -> String {
        let rest = self
            .rtcd_url
            .strip_prefix("http://")
            .map(|r| format!("ws://{r}"))
            .or_else(|| {
                self.rtcd_url
                    .strip_prefix("https://")
                    .map(|r| format!("wss://{r}"))
            })
            .unwrap_or_else(|| self.rtcd_url.clone());
        format!("{rest}/ws")
    }

    /// The local address that routes to rtcd's host (the host candidate to advertise).
    fn local_ip(&self) -> IpAddr {
        let host = self
            .rtcd_url
            .split("://")
            .nth(1)
            .unwrap_or(&self.rtcd_url)
            .split('/')
            .next()
            .unwrap_or_default();
        host.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .and_then(|target| {
                let any: SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = std::net::UdpSocket::bind(any).ok()?;
                s.connect(target).ok()?;
                Some(s.local_addr().ok()?.ip())
            })
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }
}

/// Why a recording ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Nothing was recorded: the job may be cleaned up (exit 0).
    #[error("failed to start: {0}")]
    Start(String),
    /// Recording was under way and broke: keep the files (exit 1).
    #[error("recording failed: {0}")]
    Broken(String),
    #[error(transparent)]
    File(#[from] TrackError),
}

enum Track {
    Audio(OggOpus),
    Video(IvfVp8),
}

/// What a finished recording holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// File name → packets (audio) or frames (video) written.
    pub files: BTreeMap<String, u64>,
}

struct Session {
    cfg: RecordConfig,
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    answered: bool,
    early: Vec<Candidate>,
    tracks: HashMap<Mid, (String, Track)>,
    last_pli: HashMap<Mid, Instant>,
    connected: bool,
    out: Vec<WsMessage>,
}

fn file_name(raw: &str, mid: Mid, ext: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        format!("track-{mid}.{ext}")
    } else {
        format!("{clean}.{ext}")
    }
}

impl Session {
    fn signal(&mut self, t: RtcType, data: Vec<u8>) {
        self.out.push(WsMessage::Rtc(RtcMessage::to_rtcd(
            self.cfg.job_id.clone(),
            t,
            data,
        )));
    }

    fn on_ws(&mut self, msg: WsMessage) -> Result<bool, RecordError> {
        let m = match msg {
            WsMessage::Rtc(m) => m,
            WsMessage::Close { .. } => return Ok(false),
            _ => return Ok(true),
        };
        let bad = |e: String| RecordError::Broken(format!("bad signalling from rtcd: {e}"));
        match m.msg_type {
            RtcType::Sdp => {
                let sdp = m.parse_sdp().map_err(|e| bad(e.to_string()))?;
                match sdp.sdp_type {
                    SdpType::Answer => {
                        let answer =
                            SdpAnswer::from_sdp_string(&sdp.sdp).map_err(|e| bad(e.to_string()))?;
                        if let Some(p) = self.pending.take() {
                            self.rtc
                                .sdp_api()
                                .accept_answer(p, answer)
                                .map_err(|e| bad(e.to_string()))?;
                            self.answered();
                        }
                    }
                    SdpType::Offer => {
                        let offer =
                            SdpOffer::from_sdp_string(&sdp.sdp).map_err(|e| bad(e.to_string()))?;
                        let answer = self
                            .rtc
                            .sdp_api()
                            .accept_offer(offer)
                            .map_err(|e| bad(e.to_string()))?;
                        let desc = SessionDescription::answer(answer.to_sdp_string());
                        self.signal(RtcType::Sdp, desc.to_json());
                        self.answered();
                    }
                    _ => {}
                }
            }
            RtcType::Ice => {
                let c = m.parse_server_candidate().map_err(|e| bad(e.to_string()))?;
                let bare = c.candidate.strip_prefix("a=").unwrap_or(&c.candidate);
                if !bare.is_empty() {
                    let cand = Candidate::from_sdp_string(bare).map_err(|e| bad(e.to_string()))?;
                    if self.answered {
                        self.rtc.add_remote_candidate(cand);
                    } else {
                        self.early.push(cand);
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }

    fn answered(&mut self) {
        self.answered = true;
        for c in std::mem::take(&mut self.early) {
            self.rtc.add_remote_candidate(c);
        }
    }

    fn on_event(&mut self, e: Event, now: Instant) -> Result<bool, RecordError> {
        match e {
            Event::Connected => {
                self.connected = true;
                eprintln!("runner: connected to the call, recording");
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                return Err(RecordError::Broken("ICE disconnected".into()));
            }
            Event::MediaAdded(m) => {
                let name = self
                    .rtc
                    .media(m.mid)
                    .map(|media| media.track_id().to_owned())
                    .unwrap_or_default();
                let track = match m.kind {
                    MediaKind::Audio => {
                        let f = file_name(&name, m.mid, "ogg");
                        let serial = self.tracks.len() as u32 + 1;
                        (
                            f.clone(),
                            Track::Audio(OggOpus::create(&self.cfg.dir.join(&f), serial)?),
                        )
                    }
                    MediaKind::Video => {
                        let f = file_name(&name, m.mid, "ivf");
                        (
                            f.clone(),
                            Track::Video(IvfVp8::create(&self.cfg.dir.join(&f))?),
                        )
                    }
                };
                eprintln!("runner: recording track {} to {}", m.mid, track.0);
                self.tracks.insert(m.mid, track);
            }
            Event::MediaData(d) => {
                if let Some((_, t)) = self.tracks.get_mut(&d.mid) {
                    match t {
                        Track::Audio(ogg) => ogg.write(d.time.numer(), &d.data)?,
                        Track::Video(ivf) => ivf.write(d.time.numer(), &d.data)?,
                    }
                }
            }
            _ => {}
        }
        // Video tracks that have not seen a key frame ask for one, at most once per interval.
        if self.connected {
            let waiting: Vec<Mid> = self
                .tracks
                .iter()
                .filter(|(_, (_, t))| matches!(t, Track::Video(v) if !v.started()))
                .map(|(mid, _)| *mid)
                .collect();
            for mid in waiting {
                let due = self
                    .last_pli
                    .get(&mid)
                    .is_none_or(|t| now.duration_since(*t) >= PLI_INTERVAL);
                if due && let Some(mut w) = self.rtc.writer(mid) {
                    // A request can fail before the stream's SSRC is known; the next one retries.
                    if w.request_keyframe(None, KeyframeRequestKind::Pli).is_ok() {
                        self.last_pli.insert(mid, now);
                    }
                }
            }
        }
        Ok(true)
    }

    fn finish(self) -> Result<Recorded, RecordError> {
        let mut out = Recorded::default();
        for (_, (name, t)) in self.tracks {
            let n = match t {
                Track::Audio(ogg) => ogg.finish()?,
                Track::Video(ivf) => u64::from(ivf.finish()?),
            };
            out.files.insert(name, n);
        }
        Ok(out)
    }
}

/// Records until the duration passes, `stop` resolves (SIGTERM) or rtcd closes the session.
pub async fn record(
    cfg: RecordConfig,
    stop: impl Future<Output = ()>,
) -> Result<Recorded, RecordError> {
    let start = |e: String| RecordError::Start(e);
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| RecordError::Broken(format!("cannot create {}: {e}", cfg.dir.display())))?;
    let mut req = cfg
        .ws_url()
        .into_client_request()
        .map_err(|e| start(format!("bad RTCD_URL {:?}: {e}", cfg.rtcd_url)))?;
    let auth = Authorization::basic(&cfg.client_id, &cfg.auth_key).to_header_value();
    req.headers_mut().insert(
        "Authorization",
        auth.parse()
            .map_err(|_| start("credentials are not a valid header".into()))?,
    );
    let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| start("timed out connecting to rtcd".into()))?
        .map_err(|e| start(format!("cannot open rtcd's /ws: {e}")))?;

    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(cfg.local_ip(), 0))
        .await
        .map_err(|e| start(format!("cannot bind UDP: {e}")))?;
    let local = socket
        .local_addr()
        .map_err(|e| start(format!("no UDP address: {e}")))?;
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    let host = Candidate::host(local, "udp").map_err(|e| start(e.to_string()))?;
    let host = rtc
        .add_local_candidate(host)
        .map(|c| c.to_sdp_string())
        .ok_or_else(|| start("str0m refused the host candidate".into()))?;
    // The initial offer carries only the data channel, like a muted participant; rtcd offers a
    // receive track for every sender in the call.
    let mut api = rtc.sdp_api();
    api.add_channel("calls-dc".into());
    let (offer, pending) = api
        .apply()
        .ok_or_else(|| start("no offer for the data channel".into()))?;
    let offer = offer.to_sdp_string();
    let first_mid = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .map(|m| m.trim().to_owned());
    let ufrag = rtc.direct_api().local_ice_credentials().ufrag;

    let join = WsMessage::Join(JoinData {
        call_id: cfg.call_id.clone(),
        user_id: "calls-recorder".into(),
        session_id: cfg.job_id.clone(),
        channel_id: Some(cfg.call_id.clone()),
        av1_support: Some(false),
        dc_signaling: Some(false),
    });
    let mut s = Session {
        cfg,
        rtc,
        pending: Some(pending),
        answered: false,
        early: Vec::new(),
        tracks: HashMap::new(),
        last_pli: HashMap::new(),
        connected: false,
        out: vec![join],
    };
    s.signal(RtcType::Sdp, SessionDescription::offer(offer).to_json());
    let init = IceCandidateInit {
        candidate: host,
        sdp_mid: first_mid,
        sdp_mline_index: Some(0),
        username_fragment: Some(ufrag),
    };
    s.out
        .push(WsMessage::Rtc(RtcMessage::ice(s.cfg.job_id.clone(), &init)));

    let began = Instant::now();
    let end = s.cfg.duration.map(|d| began + d);
    tokio::pin!(stop);
    let mut buf = vec![0u8; 2048];
    let result: Result<(), RecordError> = 'run: loop {
        for m in std::mem::take(&mut s.out) {
            if let Err(e) = ws.send(Message::Binary(m.encode().into())).await {
                break 'run Err(RecordError::Broken(format!("rtcd's /ws failed: {e}")));
            }
        }
        // Drain str0m: transmit, handle events, until it names its next deadline.
        let deadline = loop {
            match s.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(e)) => match s.on_event(e, Instant::now()) {
                    Ok(_) => {}
                    Err(e) => break 'run Err(e),
                },
                Ok(Output::Timeout(t)) => break t,
                Err(e) => break 'run Err(RecordError::Broken(e.to_string())),
            }
        };
        if !s.out.is_empty() {
            continue;
        }
        if !s.connected && began.elapsed() > CONNECT_TIMEOUT {
            break Err(RecordError::Start("no media connection to rtcd".into()));
        }
        let wake = end.map_or(deadline, |e| deadline.min(e));
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep_until(wake.into()) => {
                if end.is_some_and(|e| Instant::now() >= e) {
                    break Ok(());
                }
                if let Err(e) = s.rtc.handle_input(str0m::Input::Timeout(Instant::now())) {
                    break Err(RecordError::Broken(e.to_string()));
                }
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                if let Ok(rcv) = Receive::new(Protocol::Udp, src, local, &buf[..n])
                    && let Err(e) = s.rtc.handle_input(str0m::Input::Receive(Instant::now(), rcv))
                {
                    break Err(RecordError::Broken(e.to_string()));
                }
            }
            f = ws.next() => match f {
                Some(Ok(Message::Binary(b))) => match WsMessage::decode(&b) {
                    Ok(m) => match s.on_ws(m) {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(e),
                    },
                    Err(e) => break Err(RecordError::Broken(format!("undecodable frame from rtcd: {e}"))),
                },
                Some(Ok(_)) => {}
                _ => break Err(RecordError::Broken("rtcd closed the WebSocket".into())),
            },
        }
    };
    // Leave politely whatever happened; the files are finished either way.
    let leave = WsMessage::Leave {
        session_id: s.cfg.job_id.clone(),
    };
    let _ = ws.send(Message::Binary(leave.encode().into())).await;
    let _ = ws.close(None).await;
    let was_connected = s.connected;
    let recorded = s.finish()?;
    match result {
        Err(RecordError::Broken(e)) if !was_connected => Err(RecordError::Start(e)),
        Err(e) => Err(e),
        Ok(()) => Ok(recorded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn recording_mode_needs_every_variable() {
        let none = RecordConfig::from_env(&env(&[]), "/d".into(), "j", Duration::ZERO, 0);
        assert_eq!(none, Ok(None));
        let partial = env(&[("RTCD_URL", "http://h:1"), ("RTCD_CLIENT_ID", "c")]);
        let err = RecordConfig::from_env(&partial, "/d".into(), "j", Duration::ZERO, 0);
        assert_eq!(err, Err(ConfigError("RTCD_AUTH_KEY")));
        let full = env(&[
            ("RTCD_URL", "http://127.0.0.1:8045/"),
            ("RTCD_CLIENT_ID", "c"),
            ("RTCD_AUTH_KEY", "k"),
            ("CALL_ID", "call"),
        ]);
        let cfg = RecordConfig::from_env(&full, "/d".into(), "job1", Duration::from_secs(2), 0)
            .unwrap()
            .unwrap();
        assert_eq!(cfg.ws_url(), "ws://127.0.0.1:8045/ws");
        assert_eq!(cfg.dir, PathBuf::from("/d/job1"));
        assert_eq!(cfg.duration, Some(Duration::from_secs(2)));
        assert_eq!(cfg.local_ip(), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn track_file_names_are_safe() {
        let mid = Mid::from("1");
        assert_eq!(
            file_name("voice_abc/../x", mid, "ogg"),
            "voice_abc____x.ogg"
        );
        assert_eq!(file_name("", mid, "ivf"), "track-1.ivf");
    }
}
