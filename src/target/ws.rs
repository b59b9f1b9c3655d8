//! The plugin's `/ws` connection to one rtcd host, multiplexing the signalling of every session placed
//! there (rtcd.md §2.1–2.2, §2.3 step 14).
//!
//! One task per host owns the socket: it writes what the engine sends (binary msgpack frames), reads
//! rtcd's frames and routes `rtc`, `vad` and `close` to the inbox registered for their session id, and
//! lets tungstenite answer rtcd's pings (rtcd drops a connection after 20 s without a pong). When the
//! connection drops it redials with a growing, jittered interval (capped at 30 s, at most 8 attempts,
//! as the plugin) and sends `reconnect` for every live session so rtcd routes them to the new
//! connection; RTC sessions survive a WS drop on rtcd's side.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use callsref::proto::rtcd::ws::WsMessage;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::rtcd::{ClientCredentials, RtcdHost};
use crate::engine::driver::{Inbox, SignalSink};

/// The plugin's dial timeout per host.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(4);
/// Reconnect attempts before a host is given up, as the plugin.
pub const MAX_RECONNECT_ATTEMPTS: u32 = 8;
/// Longest wait between reconnect attempts.
pub const MAX_RECONNECT_INTERVAL: Duration = Duration::from_secs(30);

/// Failure to open the connection.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("connecting to {url}: no answer within {DIAL_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("connecting to {url}: first frame was not hello")]
    NoHello { url: String },
}

#[derive(Debug)]
enum ToWs {
    Register { session_id: String, inbox: Inbox },
    Forget { session_id: String },
    Send(WsMessage),
}

/// Counters of one connection (relaxed atomics: read for reports only).
#[derive(Debug, Default)]
pub struct LinkStats {
    pub frames_out: AtomicU64,
    pub frames_in: AtomicU64,
    /// Frames that did not decode.
    pub bad_frames: AtomicU64,
    /// Messages for sessions with no inbox (e.g. after leave).
    pub unrouted: AtomicU64,
    pub reconnects: AtomicU64,
}

/// A cloneable handle to one host's plugin connection.
#[derive(Debug, Clone)]
pub struct PluginLink {
    host: RtcdHost,
    conn_id: String,
    tx: mpsc::UnboundedSender<ToWs>,
    pub stats: Arc<LinkStats>,
}

impl PluginLink {
    pub fn host(&self) -> RtcdHost {
        self.host
    }

    /// The connection id rtcd gave the first connection in its `hello`.
    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    /// Routes this session's incoming messages to `inbox` from now on.
    pub fn register(&self, session_id: String, inbox: Inbox) {
        // A closed task means the host was given up; sends then go nowhere, which the engine sees
        // as a session that never connects.
        let _ = self.tx.send(ToWs::Register { session_id, inbox });
    }

    /// Stops routing a session (after its `close`).
    pub fn forget(&self, session_id: String) {
        let _ = self.tx.send(ToWs::Forget { session_id });
    }

    /// Queues a message to rtcd.
    pub fn send(&self, msg: WsMessage) {
        let _ = self.tx.send(ToWs::Send(msg));
    }

    /// Whether the connection task is still running.
    pub fn is_up(&self) -> bool {
        !self.tx.is_closed()
    }
}

impl SignalSink for PluginLink {
    fn send(&self, msg: WsMessage) {
        PluginLink::send(self, msg);
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn dial(host: RtcdHost, creds: &ClientCredentials) -> Result<(Stream, String), WsError> {
    let url = host.ws_url();
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| WsError::Connect {
            url: url.clone(),
            source: Box::new(e),
        })?;
    let auth = HeaderValue::from_str(&creds.basic_header()).map_err(|_| WsError::Connect {
        url: url.clone(),
        source: Box::new(tokio_tungstenite::tungstenite::Error::Url(
            tokio_tungstenite::tungstenite::error::UrlError::UnableToConnect(
                "client id or key not valid in a header".into(),
            ),
        )),
    })?;
    req.headers_mut().insert("Authorization", auth);
    let (mut ws, _) = tokio::time::timeout(DIAL_TIMEOUT, tokio_tungstenite::connect_async(req))
        .await
        .map_err(|_| WsError::Timeout { url: url.clone() })?
        .map_err(|e| WsError::Connect {
            url: url.clone(),
            source: Box::new(e),
        })?;
    // rtcd sends `hello` right after the upgrade.
    let first = tokio::time::timeout(DIAL_TIMEOUT, ws.next())
        .await
        .map_err(|_| WsError::Timeout { url: url.clone() })?;
    match first {
        Some(Ok(Message::Binary(b))) => match WsMessage::decode(&b) {
            Ok(WsMessage::Hello { conn_id, .. }) => Ok((ws, conn_id)),
            _ => Err(WsError::NoHello { url }),
        },
        _ => Err(WsError::NoHello { url }),
    }
}

/// Opens the connection (failing if the first dial fails, so the caller can register and retry, as
/// the plugin does) and spawns the task that keeps it up.
pub async fn connect(host: RtcdHost, creds: ClientCredentials) -> Result<PluginLink, WsError> {
    let (ws, conn_id) = dial(host, &creds).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(LinkStats::default());
    tokio::spawn(run(host, creds, ws, rx, Arc::clone(&stats)));
    Ok(PluginLink {
        host,
        conn_id,
        tx,
        stats,
    })
}

async fn run(
    host: RtcdHost,
    creds: ClientCredentials,
    mut ws: Stream,
    mut rx: mpsc::UnboundedReceiver<ToWs>,
    stats: Arc<LinkStats>,
) {
    let mut inboxes: HashMap<String, Inbox> = HashMap::new();
    let mut buf = Vec::with_capacity(1024);
    loop {
        let dropped = loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => {
                        // Every handle is gone: the run is over.
                        let _ = ws.close(None).await;
                        return;
                    }
                    Some(ToWs::Register { session_id, inbox }) => {
                        inboxes.insert(session_id, inbox);
                    }
                    Some(ToWs::Forget { session_id }) => {
                        inboxes.remove(&session_id);
                    }
                    Some(ToWs::Send(msg)) => {
                        buf.clear();
                        msg.encode_into(&mut buf);
                        if ws.send(Message::binary(buf.clone())).await.is_err() {
                            break true;
                        }
                        stats.frames_out.fetch_add(1, Ordering::Relaxed);
                    }
                },
                frame = ws.next() => match frame {
                    Some(Ok(Message::Binary(b))) => {
                        stats.frames_in.fetch_add(1, Ordering::Relaxed);
                        route(&b, &inboxes, &stats);
                    }
                    // Pings are answered by tungstenite itself; text frames are not rtcd's.
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break true,
                },
            }
        };
        if !dropped {
            return;
        }
        match redial(host, &creds).await {
            Some(new) => {
                ws = new;
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
                // rtcd keeps the RTC sessions; point their signalling at this connection.
                for session_id in inboxes.keys() {
                    buf.clear();
                    WsMessage::Reconnect {
                        session_id: session_id.clone(),
                    }
                    .encode_into(&mut buf);
                    if ws.send(Message::binary(buf.clone())).await.is_err() {
                        break;
                    }
                }
            }
            None => return,
        }
    }
}

async fn redial(host: RtcdHost, creds: &ClientCredentials) -> Option<Stream> {
    let mut wait = Duration::ZERO;
    for _ in 0..MAX_RECONNECT_ATTEMPTS {
        // Jittered base up to 2 s plus a growing increment, as the plugin's client.
        let base = Duration::from_millis(rand::rng().random_range(500..2000));
        wait = (wait + base).min(MAX_RECONNECT_INTERVAL);
        tokio::time::sleep(wait).await;
        if let Ok((ws, _)) = dial(host, creds).await {
            return Some(ws);
        }
    }
    None
}

fn route(frame: &[u8], inboxes: &HashMap<String, Inbox>, stats: &LinkStats) {
    let msg = match WsMessage::decode(frame) {
        Ok(m) => m,
        Err(_) => {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let session = match &msg {
        WsMessage::Rtc(m) | WsMessage::Vad(m) => m.session_id.as_str(),
        WsMessage::Close { session_id } => session_id.as_str(),
        // A later hello (none expected) or a message type rtcd does not send to plugins.
        _ => return,
    };
    match inboxes.get(session) {
        Some(inbox) => {
            inbox.deliver(msg);
        }
        None => {
            stats.unrouted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;

    use callsref::proto::rtcd::rtc::{RtcMessage, RtcType};
    use callsref::proto::rtcd::ws::JoinData;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    use super::*;

    type Server = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

    /// Accepts one connection on the mock rtcd, records its Authorization header, sends hello.
    #[allow(clippy::result_large_err)] // the callback signature is tungstenite's
    async fn accept(l: &TcpListener, auth: &Arc<Mutex<Vec<String>>>) -> Server {
        let (tcp, _) = l.accept().await.unwrap();
        let auth = Arc::clone(auth);
        let mut ws =
            tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp: Response| {
                let h = req
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string());
                auth.lock().unwrap().push(h.unwrap_or_default());
                Ok(resp)
            })
            .await
            .unwrap();
        let hello = WsMessage::Hello {
            client_id: "c".into(),
            conn_id: "conn1".into(),
        };
        ws.send(Message::binary(hello.encode())).await.unwrap();
        ws
    }

    async fn next_msg(ws: &mut Server) -> WsMessage {
        loop {
            if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
                return WsMessage::decode(&b).unwrap();
            }
        }
    }

    fn recv_within(
        rx: &std::sync::mpsc::Receiver<(Instant, WsMessage)>,
        d: Duration,
    ) -> Option<WsMessage> {
        rx.recv_timeout(d).ok().map(|(_, m)| m)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_rtcd_ws_routes_by_session_and_reconnects() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let host = RtcdHost { addr, tls: false };
        let creds = ClientCredentials::generate(&mut StdRng::seed_from_u64(1));
        let auth = Arc::new(Mutex::new(Vec::new()));

        let (link, mut server) = tokio::join!(connect(host, creds.clone()), accept(&l, &auth));
        let link = link.unwrap();
        assert_eq!(link.conn_id(), "conn1");
        assert_eq!(auth.lock().unwrap()[0], creds.basic_header());

        let (tx, rx) = std::sync::mpsc::channel();
        let woken = Arc::new(AtomicU64::new(0));
        let w = Arc::clone(&woken);
        let inbox = Inbox {
            tx,
            wake: Arc::new(move || {
                w.fetch_add(1, Ordering::Relaxed);
            }),
        };
        link.register("s1".into(), inbox);
        let join = WsMessage::Join(JoinData {
            call_id: "call".into(),
            user_id: "u".into(),
            session_id: "s1".into(),
            channel_id: Some("ch".into()),
            av1_support: Some(false),
            dc_signaling: Some(false),
        });
        link.send(join.clone());
        assert_eq!(next_msg(&mut server).await, join);

        // rtcd → plugin: routed by session id; unknown sessions are counted, not delivered.
        let mut m = RtcMessage::to_rtcd("s9", RtcType::Sdp, b"{}".to_vec());
        server
            .send(Message::binary(WsMessage::Rtc(m.clone()).encode()))
            .await
            .unwrap();
        m.session_id = "s1".into();
        server
            .send(Message::binary(WsMessage::Rtc(m.clone()).encode()))
            .await
            .unwrap();
        let got =
            tokio::task::spawn_blocking(move || (recv_within(&rx, Duration::from_secs(5)), rx))
                .await
                .unwrap();
        assert_eq!(got.0, Some(WsMessage::Rtc(m)));
        // The wake follows the delivery on the link's task: wait for it instead of racing it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while woken.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(woken.load(Ordering::Relaxed), 1);
        assert_eq!(link.stats.unrouted.load(Ordering::Relaxed), 1);

        // The connection drops: the link redials and re-points the live session.
        drop(server);
        let started = Instant::now();
        let mut server = accept(&l, &auth).await;
        assert_eq!(
            next_msg(&mut server).await,
            WsMessage::Reconnect {
                session_id: "s1".into()
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "first redial waits at most 2 s"
        );
        assert_eq!(link.stats.reconnects.load(Ordering::Relaxed), 1);
        assert_eq!(auth.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refused_upgrade_is_an_error() {
        // rtcd answers a failed /ws auth with a plain HTTP 200 and no upgrade.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 2048];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let creds = ClientCredentials::generate(&mut StdRng::seed_from_u64(2));
        let err = connect(RtcdHost { addr, tls: false }, creds)
            .await
            .unwrap_err();
        assert!(matches!(err, WsError::Connect { .. }), "{err}");
    }
}
