//! The WebSocket phase of the rtcd suite (rtcd.md §2.1–2.3, §9): upgrade auth, `hello`, binary
//! msgpack framing, text frames, the session routes while a session lives, and survival of
//! malformed frames. The slow cases (pings, missing pongs, the 10 s no-offer close) are in
//! [`super::rtcd_ws_slow`] and run concurrently with these.

use std::time::Duration;

use callsref::proto::rtcd::http::{SessionConfig, text};
use callsref::proto::rtcd::ws::{JoinData, WsMessage};
use callsref::proto::rtcd::{RtcMessage, SessionDescription, ids};

use super::rtcd::{Client, Ctx, fresh_id, http, poll};
use super::rtcd_check::{self as check, Reply};
use super::rtcd_client::{Target, WsConn, WsEvent, WsOpen};
use super::rtcd_http::{bad_auth, scrape, unknown_client};

pub(crate) const TRANSPORT: &str = "rtcd.md §2.1";
pub(crate) const FRAMING: &str = "rtcd.md §2.2";
pub(crate) const LIFECYCLE: &str = "rtcd.md §2.3";
const BODIES: &str = "rtcd.md §1.4";

/// How long a reply to our own message may take on a loaded host.
pub(crate) const REPLY_WAIT: Duration = Duration::from_secs(5);

/// A `join` as the plugin sends it, with all six keys.
pub(crate) fn join(call_id: &str, session_id: &str) -> JoinData {
    JoinData {
        call_id: call_id.to_owned(),
        user_id: fresh_id(),
        session_id: session_id.to_owned(),
        channel_id: Some(fresh_id()),
        av1_support: Some(false),
        dc_signaling: Some(false),
    }
}

/// Opens `/ws` as `client` and reads the `hello`; returns the connection and its connID.
pub(crate) async fn open(
    target: &Target,
    client: &Client,
    auth: &str,
) -> Result<(WsConn, String), String> {
    match target
        .ws_open(Some(auth))
        .await
        .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?
    {
        WsOpen::Upgraded(mut conn) => {
            let conn_id = expect_hello(&mut conn, &client.id).await?;
            Ok((*conn, conn_id))
        }
        WsOpen::Refused { status, body } => Err(format!(
            "upgrade refused with {status} {:?}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// The first message must be a binary `hello{clientID, connID}` with our client id and a
/// canonical 26-character connID.
async fn expect_hello(conn: &mut WsConn, client_id: &str) -> Result<String, String> {
    match conn
        .next_message(REPLY_WAIT)
        .await
        .map_err(|e| format!("no hello: {e}"))?
    {
        WsMessage::Hello {
            client_id: got,
            conn_id,
        } => {
            if got != client_id {
                Err(format!(
                    "hello carries clientID {got:?}, expected {client_id:?}"
                ))
            } else if !ids::is_valid_id(&conn_id) {
                Err(format!(
                    "connID {conn_id:?} is not a 26-character Mattermost id"
                ))
            } else {
                Ok(conn_id)
            }
        }
        other => Err(format!(
            "first message is {:?}, expected hello",
            other.type_str()
        )),
    }
}

/// Proves a connection still works end to end: a `join` then a `leave` of a fresh session must
/// come back as `close{sessionID}` (rtcd never replies otherwise).
pub(crate) async fn probe(conn: &mut WsConn) -> Result<Duration, String> {
    let session = fresh_id();
    conn.send(&WsMessage::Join(join(&fresh_id(), &session)))
        .await?;
    conn.send(&WsMessage::Leave {
        session_id: session.clone(),
    })
    .await?;
    conn.wait_close(&session, REPLY_WAIT).await
}

pub(crate) async fn run(ctx: &mut Ctx) {
    auth_failures(ctx).await;
    let Some(client) = ctx.client.clone() else {
        let reason = ctx.no_client_reason();
        for id in ALL_CLIENT_CASES {
            ctx.skip(id, TRANSPORT, reason);
        }
        return;
    };
    let Some(mut main) = hello_cases(ctx, &client).await else {
        for id in &ALL_CLIENT_CASES[4..] {
            ctx.skip(id, TRANSPORT, "skipped (no WebSocket connection)");
        }
        return;
    };
    let slow = super::rtcd_ws_slow::spawn(ctx, &client).await;
    text_frame(ctx, &mut main).await;
    session_routes(ctx, &client, &mut main).await;
    super::rtcd_ws_malformed::run(ctx, &client, main).await;
    for rows in slow.join().await {
        ctx.cases.0.extend(rows.0);
    }
}

/// The client-dependent WebSocket cases, in order, for skip rows.
const ALL_CLIENT_CASES: [&str; 30] = [
    "ws.hello.basic",
    "ws.hello.bearer",
    "ws.hello.distinct_conn_ids",
    "ws.metrics.connections",
    "ws.text_frame_ignored",
    "ws.join.sessions_listed",
    "ws.join.session_listed",
    "ws.join.unknown_session",
    "ws.join.unknown_call",
    "ws.leave.close",
    "ws.leave.sessions_gone",
    "ws.malformed.garbage",
    "ws.malformed.empty",
    "ws.malformed.non_string_type",
    "ws.malformed.wrong_data_type",
    "ws.malformed.non_string_value",
    "ws.malformed.truncated",
    "ws.malformed.unknown_type",
    "ws.malformed.join_without_ids",
    "ws.malformed.rtc_unknown_session",
    "ws.malformed.bystander",
    "ws.malformed.oversize",
    "ws.ping.first",
    "ws.ping.survives",
    "ws.ping.no_pong_closed",
    "ws.join.metrics",
    "ws.no_offer.close",
    "ws.no_offer.metrics",
    "ws.no_offer.session_gone",
    "ws.malformed.errors_total",
];

/// A failed upgrade is anything but 101: rtcd answers 200 with an empty body (its handler returns
/// without writing), a compatible SFU may answer 401.
async fn auth_failures(ctx: &mut Ctx) {
    let cases: [(&str, Option<String>); 4] = [
        ("none", None),
        ("unknown_client", Some(unknown_client())),
        ("bad_token", Some(bad_auth::UNKNOWN_TOKEN.to_owned())),
        ("malformed", Some(bad_auth::MALFORMED.to_owned())),
    ];
    for (name, auth) in cases {
        let result = match ctx.target.ws_open(auth.as_deref()).await {
            Ok(WsOpen::Refused { status, body }) => {
                let reply = Reply {
                    status,
                    content_type: String::new(),
                    body,
                };
                Ok(format!("refused with {} {}", status, reply.body_preview()))
            }
            Ok(WsOpen::Upgraded(conn)) => {
                conn.close().await;
                Err("upgraded (101) without valid credentials".to_owned())
            }
            Err(e) => Err(format!("{:#}", anyhow::Error::new(e))),
        };
        ctx.record(&format!("ws.auth.{name}"), "rtcd.md §1.4, §9", result);
    }
}

/// Basic and Bearer upgrades, their `hello`s, and the connection gauge. Returns the open Basic
/// connection for the following cases.
async fn hello_cases(ctx: &mut Ctx, client: &Client) -> Option<WsConn> {
    let first = open(&ctx.target, client, &client.basic()).await;
    ctx.record(
        "ws.hello.basic",
        TRANSPORT,
        first
            .as_ref()
            .map(|(_, id)| format!("101, then a binary hello with our clientID and connID {id}"))
            .map_err(Clone::clone),
    );
    let second = match super::rtcd_auth::login(ctx, client).await {
        Ok(token) => open(&ctx.target, client, &format!("Bearer {token}")).await,
        Err(e) => Err(format!("login failed: {e}")),
    };
    ctx.record(
        "ws.hello.bearer",
        TRANSPORT,
        second
            .as_ref()
            .map(|(_, id)| format!("101 with a bearer token, hello with connID {id}"))
            .map_err(Clone::clone),
    );
    let (Ok((main, first_id)), Ok((other, second_id))) = (first, second) else {
        ctx.skip(
            "ws.hello.distinct_conn_ids",
            TRANSPORT,
            "skipped (needs two connections)",
        );
        ctx.skip(
            "ws.metrics.connections",
            "rtcd.md §5",
            "skipped (needs two connections)",
        );
        return None;
    };
    ctx.record(
        "ws.hello.distinct_conn_ids",
        TRANSPORT,
        if first_id == second_id {
            Err(format!("both connections got connID {first_id}"))
        } else {
            Ok("two connections, two connIDs".into())
        },
    );
    let result = connection_gauge(ctx, client, other).await;
    ctx.record("ws.metrics.connections", "rtcd.md §5", result);
    Some(main)
}

/// `rtcd_ws_connections_total{clientID}` counts our two connections, then one after a close.
async fn connection_gauge(ctx: &Ctx, client: &Client, other: WsConn) -> Result<String, String> {
    let expect = |want: f64| async move {
        let scrape = scrape(&ctx.target).await?;
        match scrape.value("rtcd_ws_connections_total", &[("clientID", &client.id)]) {
            Some(v) if v == want => Ok(()),
            Some(v) => Err(format!(
                "rtcd_ws_connections_total{{clientID}} is {v}, expected {want}"
            )),
            None => Err("no rtcd_ws_connections_total sample for our clientID".to_owned()),
        }
    };
    poll(Duration::from_secs(3), || expect(2.0)).await?;
    other.close().await;
    poll(Duration::from_secs(3), || expect(1.0)).await?;
    Ok("2 with two connections open, 1 after closing one".into())
}

/// A text frame is logged and dropped; the connection stays usable.
async fn text_frame(ctx: &mut Ctx, conn: &mut WsConn) {
    let result = async {
        conn.send_text("{\"type\":\"join\"}").await?;
        let took = probe(conn).await?;
        Ok(format!(
            "ignored; a join/leave after it got its close in {} ms",
            took.as_millis()
        ))
    }
    .await;
    ctx.record("ws.text_frame_ignored", FRAMING, result);
}

/// While a joined session lives (rtcd creates it on `join`, before any offer), the sessions routes
/// list it with Go's PascalCase keys; after `leave` the target answers `close` and forgets it.
async fn session_routes(ctx: &mut Ctx, client: &Client, conn: &mut WsConn) {
    let call = fresh_id();
    let session = fresh_id();
    let data = join(&call, &session);
    let want: SessionConfig = data.session_config(&client.id);
    let want_json = serde_json::to_value(&want).expect("session configs serialise");
    let auth = client.basic();
    let list = format!("/calls/{call}/sessions");
    if let Err(e) = conn.send(&WsMessage::Join(data)).await {
        for id in &ALL_CLIENT_CASES[5..11] {
            ctx.record(id, LIFECYCLE, Err(e.clone()));
        }
        return;
    }
    let target = ctx.target.clone();
    let get = |path: String| {
        let target = target.clone();
        let auth = auth.clone();
        async move { http(target.get(&path, Some(&auth)).await) }
    };
    let listed = poll(REPLY_WAIT, || {
        let reply = get(list.clone());
        let want = serde_json::Value::Array(vec![want_json.clone()]);
        async move { reply.await.and_then(|r| check::json_value(&r, 200, &want)) }
    })
    .await;
    ctx.record("ws.join.sessions_listed", BODIES, listed);
    let one = get(format!("{list}/{session}")).await;
    ctx.record(
        "ws.join.session_listed",
        BODIES,
        one.and_then(|r| check::json_value(&r, 200, &want_json)),
    );
    let missing = get(format!("{list}/{}", fresh_id())).await;
    ctx.record(
        "ws.join.unknown_session",
        BODIES,
        missing.and_then(|r| {
            check::plain_text(
                &r,
                404,
                &text::session_config_not_found(text::SESSION_NOT_FOUND),
            )
        }),
    );
    let other_call = get(format!("/calls/{}/sessions", fresh_id())).await;
    ctx.record(
        "ws.join.unknown_call",
        BODIES,
        other_call.and_then(|r| {
            check::plain_text(
                &r,
                404,
                &text::session_configs_not_found(text::CALL_NOT_FOUND),
            )
        }),
    );

    let closed = async {
        conn.send(&WsMessage::Leave {
            session_id: session.clone(),
        })
        .await?;
        conn.wait_close(&session, REPLY_WAIT).await
    }
    .await;
    ctx.record(
        "ws.leave.close",
        LIFECYCLE,
        closed.map(|t| format!("close{{sessionID}} {} ms after leave", t.as_millis())),
    );
    let gone = poll(Duration::from_secs(2), || {
        let reply = get(list.clone());
        async move {
            let reply = reply.await?;
            check::plain_text(
                &reply,
                404,
                &text::session_configs_not_found(text::GROUP_NOT_FOUND),
            )
            .or_else(|_| {
                check::plain_text(
                    &reply,
                    404,
                    &text::session_configs_not_found(text::CALL_NOT_FOUND),
                )
            })
        }
    })
    .await;
    ctx.record("ws.leave.sessions_gone", BODIES, gone);
}

/// Builds a frame: a msgpack fixstr type followed by raw bytes, for malformed-frame cases.
pub(crate) fn raw_frame(msg_type: &str, data: &[u8]) -> Vec<u8> {
    debug_assert!(msg_type.len() < 32, "fixstr holds at most 31 bytes");
    let mut out = vec![0xa0 | msg_type.len() as u8];
    out.extend_from_slice(msg_type.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An `rtc` SDP offer for a session that does not exist.
pub(crate) fn offer_for_unknown_session() -> Vec<u8> {
    WsMessage::Rtc(RtcMessage::sdp(
        fresh_id(),
        &SessionDescription::offer("v=0\r\n"),
    ))
    .encode()
}

/// Reads a connection until it closes or `wait` passes: `Some(code)` for a close (0 without a
/// close frame), `None` if it stayed open.
pub(crate) async fn closed_within(conn: &mut WsConn, wait: Duration) -> Option<u16> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match conn
            .next_event(deadline.saturating_duration_since(std::time::Instant::now()))
            .await
        {
            WsEvent::CloseFrame(code) => return Some(code.unwrap_or(0)),
            WsEvent::Ended(_) => return Some(0),
            WsEvent::Timeout => return None,
            _ => continue,
        }
    }
}
