//! The slow WebSocket cases of the rtcd suite, run concurrently with the rest (rtcd.md §2.1, §2.3,
//! §5): the server's ping every 10 s and the connection surviving past the 20 s read deadline while
//! we answer pongs; a connection that answers no pings being dropped; and the `close` rtcd sends
//! 10 s after a `join` that no offer followed, with its metrics.
//!
//! Each case holds its own connection; a dedicated client makes the per-client metrics exact.

use std::time::{Duration, Instant};

use callsref::proto::rtcd::http::text;
use callsref::proto::rtcd::ws::WsMessage;
use tokio::task::JoinHandle;

use super::rtcd::{Client, Ctx, Rows, fresh_id, http, poll};
use super::rtcd_check as check;
use super::rtcd_client::{Target, WsEvent};
use super::rtcd_http::scrape;
use super::rtcd_ws::{LIFECYCLE, REPLY_WAIT, TRANSPORT, closed_within, join, open, probe};

/// rtcd's ping interval; its read deadline is twice this, extended only by pongs.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Slack for a loaded host on top of the protocol's timers.
const SLACK: Duration = Duration::from_secs(2);
/// How long the keepalive case holds a connection: past the 20 s deadline by a margin.
const HOLD: Duration = Duration::from_secs(25);
/// rtcd's `signalingTimeout`.
const NO_OFFER_TIMEOUT: Duration = Duration::from_secs(10);

/// The running slow cases.
#[derive(Debug)]
pub(crate) struct Slow {
    tasks: Vec<JoinHandle<Rows>>,
    skipped: Rows,
}

impl Slow {
    /// Waits for every slow case and returns their rows (a panicked task becomes a failed row).
    pub async fn join(self) -> Vec<Rows> {
        let mut all = vec![self.skipped];
        for task in self.tasks {
            all.push(task.await.unwrap_or_else(|e| {
                let mut rows = Rows::default();
                rows.record("ws.slow", TRANSPORT, Err(format!("case task failed: {e}")));
                rows
            }));
        }
        all
    }
}

/// Starts the slow cases (or records them as skipped under `--quick`).
pub(crate) async fn spawn(ctx: &mut Ctx, client: &Client) -> Slow {
    let mut skipped = Rows::default();
    if ctx.quick {
        for id in [
            "ws.ping.first",
            "ws.ping.survives",
            "ws.ping.no_pong_closed",
        ] {
            skipped.skip(id, TRANSPORT, "skipped (--quick)");
        }
        for id in [
            "ws.no_offer.close",
            "ws.no_offer.metrics",
            "ws.no_offer.session_gone",
            "ws.join.metrics",
        ] {
            skipped.skip(id, LIFECYCLE, "skipped (--quick)");
        }
        return Slow {
            tasks: Vec::new(),
            skipped,
        };
    }
    let mut tasks = vec![
        tokio::spawn(keepalive(ctx.target.clone(), client.clone())),
        tokio::spawn(no_pong(ctx.target.clone(), client.clone())),
    ];
    match ctx.register_extra().await {
        Ok(dedicated) => tasks.push(tokio::spawn(no_offer(ctx.target.clone(), dedicated))),
        Err(e) => {
            for id in [
                "ws.join.metrics",
                "ws.no_offer.close",
                "ws.no_offer.metrics",
                "ws.no_offer.session_gone",
            ] {
                skipped.record(
                    id,
                    LIFECYCLE,
                    Err(format!("could not register a dedicated client: {e}")),
                );
            }
        }
    }
    Slow { tasks, skipped }
}

/// Reads (and so answers pings) for 25 s: the first ping must come within ~10 s, and the
/// connection must outlive the 20 s read deadline and still work.
async fn keepalive(target: Target, client: Client) -> Rows {
    let mut rows = Rows::default();
    let (mut conn, _) = match open(&target, &client, &client.basic()).await {
        Ok(opened) => opened,
        Err(e) => {
            rows.record("ws.ping.first", TRANSPORT, Err(e.clone()));
            rows.record("ws.ping.survives", TRANSPORT, Err(e));
            return rows;
        }
    };
    let mut pings = Vec::new();
    let mut ended = None;
    while conn.opened.elapsed() < HOLD {
        match conn
            .next_event(HOLD.saturating_sub(conn.opened.elapsed()))
            .await
        {
            WsEvent::Ping => pings.push(conn.opened.elapsed()),
            WsEvent::CloseFrame(code) => {
                ended = Some(format!("server closed the connection (code {code:?})"));
                break;
            }
            WsEvent::Ended(why) => {
                ended = Some(why);
                break;
            }
            _ => {}
        }
    }
    let at = |d: &Duration| format!("{:.1} s", d.as_secs_f64());
    rows.record(
        "ws.ping.first",
        TRANSPORT,
        match pings.first() {
            Some(first) if *first <= PING_INTERVAL + SLACK => {
                Ok(format!("first ping {} after open", at(first)))
            }
            Some(first) => Err(format!(
                "first ping only {} after open, expected within ~10 s",
                at(first)
            )),
            None => Err(format!("no ping in {}", at(&HOLD))),
        },
    );
    let survived = match ended {
        Some(why) => Err(format!(
            "connection ended at {} while answering pings: {why}",
            at(&conn.opened.elapsed())
        )),
        None => probe(&mut conn).await.map(|_| {
            let list: Vec<String> = pings.iter().map(at).collect();
            format!(
                "open and working after {} (pings at {})",
                at(&HOLD),
                list.join(", ")
            )
        }),
    };
    rows.record("ws.ping.survives", TRANSPORT, survived);
    conn.close().await;
    rows
}

/// Reads nothing (so answers no ping) for 26 s: the target must have dropped the connection.
async fn no_pong(target: Target, client: Client) -> Rows {
    let mut rows = Rows::default();
    let result = async {
        let (mut conn, _) = open(&target, &client, &client.basic()).await?;
        // Not reading is the case itself: pongs go out only when the connection is read.
        tokio::time::sleep((2 * PING_INTERVAL + 3 * SLACK).saturating_sub(conn.opened.elapsed()))
            .await;
        match closed_within(&mut conn, 2 * SLACK).await {
            Some(code) => Ok(format!(
                "dropped by {:.1} s without pongs (close code {code}; 0 = no close frame)",
                conn.opened.elapsed().as_secs_f64()
            )),
            None => Err(format!(
                "still open {:.1} s after open without a single pong (rtcd drops it at 20 s)",
                conn.opened.elapsed().as_secs_f64()
            )),
        }
    }
    .await;
    rows.record("ws.ping.no_pong_closed", TRANSPORT, result);
    rows
}

/// A `join` without an offer: the session is counted, then closed after rtcd's 10 s signalling
/// timeout with a `close{sessionID}`, a signalling error and the session gone from the routes.
async fn no_offer(target: Target, client: Client) -> Rows {
    let mut rows = Rows::default();
    let (mut conn, _) = match open(&target, &client, &client.basic()).await {
        Ok(opened) => opened,
        Err(e) => {
            for id in [
                "ws.join.metrics",
                "ws.no_offer.close",
                "ws.no_offer.metrics",
                "ws.no_offer.session_gone",
            ] {
                rows.record(id, LIFECYCLE, Err(e.clone()));
            }
            return rows;
        }
    };
    let call = fresh_id();
    let session = fresh_id();
    let sent = Instant::now();
    if let Err(e) = conn.send(&WsMessage::Join(join(&call, &session))).await {
        rows.record("ws.no_offer.close", LIFECYCLE, Err(e));
        return rows;
    }
    let group = [("groupID", client.id.as_str())];
    let joined = poll(REPLY_WAIT, || async {
        let scrape = scrape(&target).await?;
        let sessions = scrape.value("rtcd_rtc_sessions_total", &group);
        let joins = scrape.value("rtcd_ws_messages_total", &[("clientID", &client.id), ("type", "join"), ("direction", "in")]);
        match (sessions, joins) {
            (Some(1.0), Some(1.0)) => Ok("rtcd_rtc_sessions_total{groupID} 1 and rtcd_ws_messages_total{type=\"join\",direction=\"in\"} 1".to_owned()),
            other => Err(format!("(sessions_total, ws_messages_total join in) = {other:?}, expected (1, 1)")),
        }
    })
    .await;
    rows.record("ws.join.metrics", "rtcd.md §5", joined);

    // Read until the close; reading keeps answering pings meanwhile.
    let closed = conn
        .wait_close(&session, NO_OFFER_TIMEOUT + 3 * SLACK)
        .await
        .map(|_| sent.elapsed());
    let window = NO_OFFER_TIMEOUT - SLACK / 2..=NO_OFFER_TIMEOUT + 3 * SLACK / 2;
    rows.record(
        "ws.no_offer.close",
        LIFECYCLE,
        closed.and_then(|took| {
            let shown = format!("{:.1} s", took.as_secs_f64());
            if window.contains(&took) {
                Ok(format!(
                    "close{{sessionID}} {shown} after a join without an offer"
                ))
            } else {
                Err(format!(
                    "close{{sessionID}} after {shown}, expected about 10 s"
                ))
            }
        }),
    );
    let cleaned = poll(Duration::from_secs(3), || async {
        let scrape = scrape(&target).await?;
        let sessions = scrape.value("rtcd_rtc_sessions_total", &group);
        let errors = scrape.value("rtcd_rtc_errors_total", &[("groupID", &client.id), ("type", "signaling")]);
        match (sessions, errors) {
            (Some(0.0), Some(1.0)) => Ok("rtcd_rtc_sessions_total{groupID} back to 0, rtcd_rtc_errors_total{type=\"signaling\"} 1".to_owned()),
            other => Err(format!("(sessions_total, errors_total signaling) = {other:?}, expected (0, 1)")),
        }
    })
    .await;
    rows.record("ws.no_offer.metrics", "rtcd.md §5", cleaned);
    let reply = http(
        target
            .get(&format!("/calls/{call}/sessions"), Some(&client.basic()))
            .await,
    );
    rows.record(
        "ws.no_offer.session_gone",
        "rtcd.md §1.4",
        reply.and_then(|r| {
            check::plain_text(
                &r,
                404,
                &text::session_configs_not_found(text::GROUP_NOT_FOUND),
            )
        }),
    );
    conn.close().await;
    rows
}
