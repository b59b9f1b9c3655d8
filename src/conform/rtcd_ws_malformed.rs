//! Malformed WebSocket frames (rtcd.md §2.2, §8.2): rtcd logs a frame it cannot decode or use and
//! drops it, so after each one the sending connection must still work (a join/leave round trip on
//! it gets its `close`), and another connection with a live session must be untouched. A frame
//! over rtcd's 1 MiB read limit is different: rtcd closes the sending connection with 1009
//! (message too big); staying open is accepted too, any other close is not.
//!
//! The frames are hand-made bytes on purpose (they are what no encoder would write); valid parts
//! come from `callsref::proto::rtcd`.

use std::time::Duration;

use callsref::proto::rtcd::http::text;
use callsref::proto::rtcd::ws::{JoinData, MAX_FRAME_LEN, WsMessage};

use super::rtcd::{Client, Ctx, fresh_id, http};
use super::rtcd_check as check;
use super::rtcd_client::WsConn;
use super::rtcd_http::scrape;
use super::rtcd_ws::{
    FRAMING, REPLY_WAIT, closed_within, join, offer_for_unknown_session, open, probe, raw_frame,
};

/// The malformed frames, each with its case name.
fn frames() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let whole_join = WsMessage::Join(join(&fresh_id(), &fresh_id())).encode();
    let no_ids = WsMessage::Join(JoinData {
        call_id: fresh_id(),
        ..JoinData::default()
    })
    .encode();
    vec![
        // 0xc1 is the one byte msgpack never uses.
        ("garbage", vec![vec![0xc1, 0xff, 0xfe, 0x00, 0x13]]),
        ("empty", vec![Vec::new()]),
        // The type is a positive fixint (5) instead of a str, followed by an empty map.
        ("non_string_type", vec![vec![0x05, 0x80]]),
        (
            "wrong_data_type",
            vec![
                raw_frame("leave", &[0x2a]),            // leave + 42
                raw_frame("join", &[0x92, 0x01, 0x02]), // join + [1, 2]
                raw_frame("rtc", &[0xa1, b'x']),        // rtc + "x"
            ],
        ),
        // leave + {"sessionID": 1}: rtcd decodes leave as a str→str map.
        (
            "non_string_value",
            vec![raw_frame(
                "leave",
                &[&[0x81, 0xa9][..], b"sessionID", &[0x01]].concat(),
            )],
        ),
        (
            "truncated",
            vec![whole_join[..whole_join.len() / 2].to_vec()],
        ),
        ("unknown_type", vec![raw_frame("bogus", &[0x80])]),
        ("join_without_ids", vec![no_ids]),
        ("rtc_unknown_session", vec![offer_for_unknown_session()]),
    ]
}

pub(crate) async fn run(ctx: &mut Ctx, client: &Client, mut main: WsConn) {
    // The bystander: a second connection with a live session in its own call.
    let call = fresh_id();
    let session = fresh_id();
    let bystander = async {
        let (mut conn, _) = open(&ctx.target, client, &client.basic()).await?;
        conn.send(&WsMessage::Join(join(&call, &session))).await?;
        Ok::<_, String>(conn)
    }
    .await;
    let errors_before = errors_total(ctx, client).await;

    for (name, frames) in frames() {
        let result = async {
            for frame in frames {
                main.send_binary(frame).await?;
            }
            probe(&mut main).await
        }
        .await
        .map_err(|e| format!("the connection did not survive the frame: {e}"));
        let failed = result.is_err();
        ctx.record(
            &format!("ws.malformed.{name}"),
            FRAMING,
            result.map(|t| {
                format!(
                    "ignored; the connection still works (join/leave → close in {} ms)",
                    t.as_millis()
                )
            }),
        );
        if failed {
            // Later cases need a working connection of their own.
            match open(&ctx.target, client, &client.basic()).await {
                Ok((conn, _)) => main = conn,
                Err(e) => {
                    ctx.record(
                        "ws.malformed.reconnect",
                        FRAMING,
                        Err(format!("cannot reopen after a failure: {e}")),
                    );
                    return;
                }
            }
        }
    }

    let mut bystander = match bystander {
        Ok(conn) => conn,
        Err(e) => {
            ctx.record(
                "ws.malformed.bystander",
                FRAMING,
                Err(format!("bystander connection failed: {e}")),
            );
            return;
        }
    };
    let result = bystander_alive(ctx, client, &call, &session, &mut bystander).await;
    ctx.record("ws.malformed.bystander", FRAMING, result);

    match (errors_before, errors_total(ctx, client).await) {
        (Some(before), Some(after)) => ctx.info(
            "ws.malformed.errors_total",
            "rtcd.md §5",
            format!(
                "rtcd_rtc_errors_total{{groupID}} went from {before} to {after} (rtcd counts only rtp, \
                 signaling, ice and track errors, not undecodable frames)"
            ),
        ),
        _ => ctx.info("ws.malformed.errors_total", "rtcd.md §5", "no rtcd_rtc_errors_total sample for our group"),
    }

    // Over the read limit: rtcd closes this connection with 1009; the server and others go on.
    let result = async {
        main.send_binary(vec![0x00; MAX_FRAME_LEN + 1]).await?;
        let closed = closed_within(&mut main, Duration::from_secs(3)).await;
        let sender = match closed {
            Some(1009) => {
                "closed the sending connection with 1009 (message too big), as rtcd does".to_owned()
            }
            Some(code) => {
                return Err(format!(
                    "closed the sending connection with code {code}, expected 1009 or staying open"
                ));
            }
            None => {
                probe(&mut main).await?;
                "kept the sending connection open and working".to_owned()
            }
        };
        bystander_alive(ctx, client, &call, &session, &mut bystander).await?;
        Ok(format!(
            "{sender}; the other connection and its session are untouched"
        ))
    }
    .await;
    ctx.record("ws.malformed.oversize", "rtcd.md §2.1", result);

    let _ = bystander
        .send(&WsMessage::Leave {
            session_id: session.clone(),
        })
        .await;
    let _ = bystander.wait_close(&session, REPLY_WAIT).await;
    bystander.close().await;
}

/// The bystander's session is still listed and its connection still works.
async fn bystander_alive(
    ctx: &Ctx,
    client: &Client,
    call: &str,
    session: &str,
    conn: &mut WsConn,
) -> Result<String, String> {
    let reply = http(
        ctx.target
            .get(
                &format!("/calls/{call}/sessions/{session}"),
                Some(&client.basic()),
            )
            .await,
    )?;
    if reply.status != 200 {
        let gone = check::plain_text(
            &reply,
            404,
            &text::session_config_not_found(text::SESSION_NOT_FOUND),
        );
        return Err(format!(
            "the other connection's session is gone: {}",
            gone.unwrap_or_else(|e| e)
        ));
    }
    let took = probe(conn)
        .await
        .map_err(|e| format!("the other connection stopped working: {e}"))?;
    Ok(format!(
        "another connection's session is still listed and its connection still works ({} ms)",
        took.as_millis()
    ))
}

async fn errors_total(ctx: &Ctx, client: &Client) -> Option<f64> {
    let scrape = scrape(&ctx.target).await.ok()?;
    // rtcd creates the family on the first error: absent means zero once the family exists.
    scrape
        .value("rtcd_rtc_errors_total", &[("groupID", &client.id)])
        .or_else(|| scrape.has_family("rtcd_rtc_errors_total").then_some(0.0))
}
