//! rtcd's HTTP API and `/ws` on axum (rtcd §1–2.1), with rtcd's exact statuses and bodies.
//!
//! Routes accept every method and answer a wrong one with Go's plain-text 404, as rtcd's
//! method-less `ServeMux` registrations do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::auth::Auth;
use super::config::Config;
use super::driver::{Command, DriverHandle, Router as ConnRouter};
use super::metrics::Metrics;
use super::signal::{ConnId, Join, SignalIn};
use crate::proto::auth::Authorization;
use crate::proto::rtcd::http::{
    self, AuthReply, Credentials, SessionProps, SystemInfo, UnregisterRequest, VersionInfo, errors,
    text,
};
use crate::proto::rtcd::ws::MAX_FRAME_LEN;
use crate::proto::rtcd::{WsMessage, ids};

/// Server ping period and the silence after which a connection is closed (rtcd §2.1).
const PING_PERIOD: Duration = Duration::from_secs(10);
const PONG_WAIT: Duration = Duration::from_secs(20);
/// The rtcd version this server is compatible with (≥ v1.1.0 enables DC locking in the plugin).
pub const COMPAT_VERSION: &str = "v1.2.6";

/// Shared state of the HTTP side.
#[derive(Debug)]
pub struct AppState {
    pub cfg: Config,
    pub auth: Auth,
    pub metrics: Arc<Metrics>,
    pub driver: Arc<DriverHandle>,
    pub router: ConnRouter,
    /// Latest `/system` cpu_load, refreshed every second.
    pub cpu_load: Arc<std::sync::Mutex<f64>>,
    pub next_conn: AtomicU64,
}

/// The axum router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", any(version))
        .route("/system", any(system))
        .route("/register", any(register))
        .route("/unregister", any(unregister))
        .route("/login", any(login))
        .route("/calls/{call_id}/sessions", any(sessions))
        .route("/calls/{call_id}/sessions/{session_id}", any(one_session))
        .route("/ws", any(ws))
        .route("/metrics", any(metrics))
        .fallback(|| async { not_found() })
        .with_state(state)
}

/// Go's `http.NotFound`.
fn not_found() -> Response {
    text_error(StatusCode::NOT_FOUND, text::NOT_FOUND)
}

/// Go's `http.Error`: plain text plus a newline, `nosniff`.
fn text_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, http::CONTENT_TYPE_TEXT),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{msg}\n"),
    )
        .into_response()
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, http::CONTENT_TYPE_JSON)],
        body,
    )
        .into_response()
}

fn auth_reply(r: AuthReply) -> Response {
    let status = r
        .status()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, http::to_go_body(&r))
}

/// rtcd's `authHandler`: the authenticated clientID (`""` for admin) or (status, message).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, (u16, String)> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(v) = value.filter(|v| v.starts_with("Bearer ")) {
        let token = &v["Bearer ".len()..];
        let client = state
            .auth
            .token_client(token)
            .map_err(|e| (401, format!("authentication failed: {e}")))?;
        if client.is_empty() {
            return Err((401, errors::AUTH_UNAUTHORIZED.into()));
        }
        return Ok(client);
    }
    let Ok(Authorization::Basic {
        client_id,
        auth_key,
    }) = Authorization::parse(value)
    else {
        return Err((401, errors::AUTH_INVALID_HEADER.into()));
    };
    let sec = &state.cfg.api.security;
    if sec.enable_admin && bool::from(auth_key.as_bytes().ct_eq(sec.admin_secret_key.as_bytes())) {
        return Ok(String::new());
    }
    if client_id.is_empty() {
        return Err((401, errors::AUTH_UNAUTHORIZED.into()));
    }
    state
        .auth
        .authenticate(&client_id, &auth_key)
        .await
        .map_err(|_| (401, errors::AUTH_FAILED.into()))?;
    Ok(client_id)
}

async fn version(method: Method) -> Response {
    if method != Method::GET {
        return not_found();
    }
    let v = VersionInfo {
        build_date: String::new(),
        build_version: COMPAT_VERSION.into(),
        build_hash: format!("callsref-{}", env!("CARGO_PKG_VERSION")),
        go_version: "rust".into(),
        go_os: std::env::consts::OS.into(),
        go_arch: match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        }
        .into(),
    };
    json(StatusCode::OK, http::to_go_body(&v))
}

async fn system(method: Method, State(st): State<Arc<AppState>>) -> Response {
    if method != Method::GET {
        return not_found();
    }
    let cpu_load = *st.cpu_load.lock().unwrap_or_else(|e| e.into_inner());
    json(StatusCode::OK, http::to_go_body(&SystemInfo { cpu_load }))
}

fn body_error(e: serde_json::Error) -> Response {
    let msg = if e.is_eof() {
        errors::EMPTY_BODY.to_string()
    } else {
        e.to_string()
    };
    auth_reply(AuthReply::error(400, msg))
}

async fn register(
    method: Method,
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return not_found();
    }
    if !st.cfg.api.security.allow_self_registration
        && let Err((code, msg)) = authenticate(&st, &headers).await
    {
        return auth_reply(AuthReply::error(code, msg));
    }
    let req: Credentials = match http::parse_go_request(&body) {
        Ok(r) => r,
        Err(e) => return body_error(e),
    };
    match st.auth.register(&req.client_id, &req.auth_key).await {
        Ok(()) => auth_reply(AuthReply::registered(req.client_id)),
        Err(e) => auth_reply(AuthReply::error(400, e.to_string())),
    }
}

async fn unregister(
    method: Method,
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return not_found();
    }
    let sec = &st.cfg.api.security;
    if !sec.enable_admin && !sec.allow_self_registration {
        return auth_reply(AuthReply::error(403, errors::UNREGISTER_NOT_ENABLED));
    }
    let authed = match authenticate(&st, &headers).await {
        Ok(c) => c,
        Err((code, msg)) => return auth_reply(AuthReply::error(code, msg)),
    };
    let req: UnregisterRequest = match http::parse_go_request(&body) {
        Ok(r) => r,
        Err(e) => return body_error(e),
    };
    if req.client_id.is_empty() {
        return auth_reply(AuthReply::error(400, errors::UNREGISTER_EMPTY_ID));
    }
    if !authed.is_empty() && authed != req.client_id {
        return auth_reply(AuthReply::error(403, errors::UNREGISTER_OTHER_CLIENT));
    }
    match st.auth.unregister(&req.client_id) {
        Ok(()) => auth_reply(AuthReply::unregistered()),
        Err(e) => auth_reply(AuthReply::error(400, e.to_string())),
    }
}

async fn login(method: Method, State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    if method != Method::POST {
        return not_found();
    }
    let req: Credentials = match http::parse_go_request(&body) {
        Ok(r) => r,
        Err(e) => return body_error(e),
    };
    match st.auth.login(&req.client_id, &req.auth_key).await {
        Ok(token) => auth_reply(AuthReply::logged_in(token)),
        Err(e) => auth_reply(AuthReply::error(400, e.to_string())),
    }
}

/// The clientID for the sessions routes; admin and failures are 401 "unauthorized".
async fn session_client(st: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    match authenticate(st, headers).await {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(text_error(StatusCode::UNAUTHORIZED, text::UNAUTHORIZED)),
        Err((code, msg)) => {
            tracing::warn!(code, error = %msg, "failed to authenticate");
            Err(text_error(StatusCode::UNAUTHORIZED, text::UNAUTHORIZED))
        }
    }
}

async fn sessions(
    method: Method,
    State(st): State<Arc<AppState>>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET {
        return not_found();
    }
    let group = match session_client(&st, &headers).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (reply, rx) = oneshot::channel();
    st.driver.send(Command::SessionConfigs {
        group,
        call: call_id,
        reply,
    });
    match rx.await {
        Ok(Ok(cfgs)) => json(StatusCode::OK, http::to_go_body(&cfgs)),
        Ok(Err(reason)) => text_error(
            StatusCode::NOT_FOUND,
            &text::session_configs_not_found(reason),
        ),
        Err(_) => text_error(StatusCode::SERVICE_UNAVAILABLE, "rtc server stopped"),
    }
}

async fn one_session(
    method: Method,
    State(st): State<Arc<AppState>>,
    Path((call_id, session_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET {
        return not_found();
    }
    let group = match session_client(&st, &headers).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (reply, rx) = oneshot::channel();
    st.driver.send(Command::SessionConfig {
        group,
        call: call_id,
        session: session_id,
        reply,
    });
    match rx.await {
        Ok(Ok(cfg)) => json(StatusCode::OK, http::to_go_body(&cfg)),
        Ok(Err(reason)) => text_error(
            StatusCode::NOT_FOUND,
            &text::session_config_not_found(reason),
        ),
        Err(_) => text_error(StatusCode::SERVICE_UNAVAILABLE, "rtc server stopped"),
    }
}

async fn metrics(method: Method, State(st): State<Arc<AppState>>) -> Response {
    if method != Method::GET {
        return not_found();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

async fn ws(
    method: Method,
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if method != Method::GET {
        return not_found();
    }
    let client = match authenticate(&st, &headers).await {
        Ok(c) => c,
        Err((code, msg)) => {
            // rtcd writes nothing on a failed WS auth: an empty 200.
            tracing::warn!(code, error = %msg, "ws authentication failed");
            return Response::new(Body::empty());
        }
    };
    match upgrade {
        Ok(u) => u
            // Twice rtcd's read limit, so a message just over it reaches `ws_conn` whole and gets
            // rtcd's 1009 close there; larger ones fail in tungstenite (handled the same way).
            .max_message_size(2 * MAX_FRAME_LEN)
            .on_upgrade(move |socket| ws_conn(socket, st, client)),
        Err(e) => e.into_response(),
    }
}

async fn ws_conn(mut socket: WebSocket, st: Arc<AppState>, client: String) {
    let conn = ConnId(st.next_conn.fetch_add(1, Ordering::Relaxed));
    let conn_id = ids::new_id(&mut rand::rng());
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    st.router
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(conn, (client.clone(), tx));
    st.metrics.ws_connection(&client, 1);
    let hello = WsMessage::Hello {
        client_id: client.clone(),
        conn_id,
    };
    let mut alive = socket
        .send(Message::Binary(hello.encode().into()))
        .await
        .is_ok();
    let mut ping = tokio::time::interval(PING_PERIOD);
    ping.tick().await;
    // rtcd's read deadline: 20 s from open, pushed back by pongs only (not by data frames).
    let read_deadline = tokio::time::sleep(PONG_WAIT);
    tokio::pin!(read_deadline);
    while alive {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Binary(b))) if b.len() > MAX_FRAME_LEN => {
                    too_big(&mut socket, &client).await;
                    alive = false;
                }
                Some(Ok(Message::Binary(b))) => frame(&st, conn, &client, &b),
                Some(Ok(Message::Text(t))) => frame(&st, conn, &client, t.as_bytes()),
                Some(Ok(Message::Pong(_))) => read_deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + PONG_WAIT),
                Some(Ok(Message::Ping(_))) => {}
                Some(Err(e)) => {
                    // tungstenite reports a message over `max_message_size` as a capacity
                    // error ("Space limit exceeded"); its type is not reachable through axum.
                    if e.to_string().contains("Space limit exceeded") {
                        too_big(&mut socket, &client).await;
                    }
                    alive = false;
                }
                Some(Ok(Message::Close(_))) | None => alive = false,
            },
            out = rx.recv() => match out {
                Some(bytes) => alive = socket.send(Message::Binary(bytes.into())).await.is_ok(),
                None => alive = false,
            },
            _ = ping.tick() => {
                alive = socket.send(Message::Ping(Bytes::new())).await.is_ok();
            }
            () = &mut read_deadline => {
                tracing::info!(client = %client, "ws: no pong in time, closing");
                alive = false;
            }
        }
    }
    st.router
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&conn);
    st.metrics.ws_connection(&client, -1);
}

/// Closes a connection whose message exceeded rtcd's 1 MiB read limit with 1009, as gorilla does.
async fn too_big(socket: &mut WebSocket, client: &str) {
    tracing::warn!(client = %client, limit = MAX_FRAME_LEN, "ws message too big, closing");
    let close = axum::extract::ws::CloseFrame {
        code: axum::extract::ws::close_code::SIZE,
        reason: "message too big".into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}

/// One frame from the plugin. A malformed frame is counted and logged; the connection stays up.
fn frame(st: &AppState, conn: ConnId, client: &str, bytes: &[u8]) {
    let msg = match WsMessage::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(client = %client, error = %e, "malformed ws frame");
            st.metrics.error(client, "signaling");
            return;
        }
    };
    st.metrics.ws_message(client, msg.type_str(), "in");
    let signal = match msg {
        WsMessage::Join(j) => SignalIn::Join(Join {
            group_id: client.to_string(),
            call_id: j.call_id,
            user_id: j.user_id,
            session_id: j.session_id,
            props: SessionProps {
                channel_id: j.channel_id,
                av1_support: j.av1_support,
                dc_signaling: j.dc_signaling,
            },
        }),
        WsMessage::Leave { session_id } => SignalIn::Leave { session_id },
        WsMessage::Reconnect { session_id } => SignalIn::Reconnect { session_id },
        WsMessage::Rtc(m) => SignalIn::Rtc {
            session_id: m.session_id,
            msg_type: m.msg_type.as_u8() as u64,
            data: m.data,
        },
        other => {
            tracing::warn!(client = %client, kind = other.type_str(), "unexpected ws message type");
            st.metrics.error(client, "signaling");
            return;
        }
    };
    st.driver.send(Command::Signal(conn, signal));
}
