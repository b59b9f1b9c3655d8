//! The suite's connection to the target: raw HTTP requests (any method, any `Authorization` header,
//! malformed ones included) and raw WebSocket connections that expose every frame, so the suite can
//! see pings, text frames and close codes that a normal client would hide.

use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::rtcd_check::Reply;

/// Why the target could not be talked to at all (as opposed to answering wrongly).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("http request to {path} failed")]
    Http {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("websocket connection to {url} failed")]
    WebSocket {
        url: String,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("invalid authorization header value")]
    BadHeader,
}

/// Per-request timeout: rtcd's bcrypt rate limiter may hold a request for up to 10 s.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The target's base URL and an HTTP client.
#[derive(Debug, Clone)]
pub struct Target {
    http: reqwest::Client,
    base: Url,
}

impl Target {
    /// A target at `base` (an `http://` URL; a path prefix is kept).
    pub fn new(base: Url) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // Each case's answer must come from the route it names, not from a redirect target.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ClientError::Http {
                path: String::new(),
                source,
            })?;
        Ok(Target { http, base })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    /// Sends one request; `auth` is the raw `Authorization` value.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ClientError> {
        let err = |source| ClientError::Http {
            path: path.to_owned(),
            source,
        };
        let mut request = self.http.request(method, self.url(path));
        if let Some(auth) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(err)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await.map_err(err)?.to_vec();
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    pub async fn get(&self, path: &str, auth: Option<&str>) -> Result<Reply, ClientError> {
        self.request(reqwest::Method::GET, path, auth, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Result<Reply, ClientError> {
        self.request(reqwest::Method::POST, path, auth, Some(body.into()))
            .await
    }

    /// `ws://host/…/ws` from the base URL.
    pub fn ws_url(&self) -> Url {
        let mut url = self.url("/ws");
        // Invariant: the base URL was checked to be http (cli parser), so the scheme swap is valid.
        let _ = url.set_scheme("ws");
        url
    }

    /// Opens `/ws` with the given raw `Authorization` value.
    pub async fn ws_open(&self, auth: Option<&str>) -> Result<WsOpen, ClientError> {
        let url = self.ws_url();
        let ws_err = |source: tungstenite::Error| ClientError::WebSocket {
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut request = url.as_str().into_client_request().map_err(ws_err)?;
        if let Some(auth) = auth {
            request.headers_mut().insert(
                tungstenite::http::header::AUTHORIZATION,
                auth.parse().map_err(|_| ClientError::BadHeader)?,
            );
        }
        // Our own frames may exceed rtcd's 1 MiB limit on purpose; incoming ones keep the defaults.
        let config = WebSocketConfig::default();
        match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
            Ok((stream, _)) => Ok(WsOpen::Upgraded(Box::new(WsConn {
                stream,
                opened: Instant::now(),
            }))),
            Err(tungstenite::Error::Http(response)) => Ok(WsOpen::Refused {
                status: response.status().as_u16(),
                body: response.body().clone().unwrap_or_default(),
            }),
            Err(other) => Err(ws_err(other)),
        }
    }
}

/// The result of an upgrade attempt.
#[derive(Debug)]
pub enum WsOpen {
    /// 101 Switching Protocols.
    Upgraded(Box<WsConn>),
    /// Any other answer (rtcd's failed auth is a 200 with an empty body).
    Refused { status: u16, body: Vec<u8> },
}

/// One frame (or the end of the connection) as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Binary(Vec<u8>),
    Text(String),
    Ping,
    Pong,
    /// A close frame from the server, with its code if any.
    CloseFrame(Option<u16>),
    /// The TCP stream ended (or errored) without a close frame.
    Ended(String),
    /// Nothing arrived before the deadline.
    Timeout,
}

/// An open WebSocket connection. Reading answers pings (tungstenite queues the pong and flushes
/// it on the next read or write), so a connection that is not read does not answer pings.
#[derive(Debug)]
pub struct WsConn {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// When the upgrade completed.
    pub opened: Instant,
}

impl WsConn {
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.stream
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send failed: {e}"))
    }

    pub async fn send(&mut self, message: &WsMessage) -> Result<(), String> {
        self.send_binary(message.encode()).await
    }

    /// The next frame, or the end of the connection, or `Timeout` after `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> WsEvent {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => WsEvent::Timeout,
            Ok(None) => WsEvent::Ended("stream ended".into()),
            Ok(Some(Err(e))) => WsEvent::Ended(e.to_string()),
            Ok(Some(Ok(message))) => match message {
                Message::Binary(bytes) => WsEvent::Binary(bytes.to_vec()),
                Message::Text(text) => WsEvent::Text(text.to_string()),
                Message::Ping(_) => WsEvent::Ping,
                Message::Pong(_) => WsEvent::Pong,
                Message::Close(frame) => WsEvent::CloseFrame(frame.map(|f| u16::from(f.code))),
                Message::Frame(_) => WsEvent::Ended("unexpected raw frame".into()),
            },
        }
    }

    /// The next rtcd message within `wait`, skipping pings and pongs. A text frame, an undecodable
    /// binary frame, a close or a timeout is an error naming what came instead.
    pub async fn next_message(&mut self, wait: Duration) -> Result<WsMessage, String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                WsEvent::Ping | WsEvent::Pong => continue,
                WsEvent::Binary(bytes) => {
                    return WsMessage::decode(&bytes)
                        .map_err(|e| format!("binary frame is not an rtcd message: {e}"));
                }
                WsEvent::Text(text) => return Err(format!("unexpected text frame {text:?}")),
                WsEvent::CloseFrame(code) => {
                    return Err(format!("server closed the connection (code {code:?})"));
                }
                WsEvent::Ended(why) => return Err(format!("connection ended: {why}")),
                WsEvent::Timeout => return Err(format!("nothing within {wait:?}")),
            }
        }
    }

    /// Waits for `close{sessionID}` and returns how long it took; other rtcd messages (e.g. ICE
    /// candidates of a probe session) are skipped.
    pub async fn wait_close(
        &mut self,
        session_id: &str,
        wait: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_message(left).await {
                Ok(WsMessage::Close { session_id: closed }) if closed == session_id => {
                    return Ok(start.elapsed());
                }
                Ok(_) => continue,
                Err(e) => return Err(format!("no close for session {session_id}: {e}")),
            }
        }
    }

    /// Sends a close frame and drops the connection.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
