//! The ICE-TCP case of the rtcd suite (rtcd.md §3.1): with `--ice-tcp`, a `join` and a real SDP
//! offer (str0m's, a data channel only) must be answered, and among the candidates the target
//! gives (in its answer or trickled after it) there must be a passive TCP host candidate. rtcd
//! listens on `rtc.ice_port_tcp` (8443) by default, so a target without one has ICE-TCP turned
//! off or broken; the flag says the operator expects it on.

use std::time::{Duration, Instant};

use callsref::proto::rtcd::ws::WsMessage;
use callsref::proto::rtcd::{RtcMessage, RtcType, SdpType, ServerCandidate, SessionDescription};

use super::rtcd::{Client, Ctx, fresh_id};
use super::rtcd_client::WsConn;
use super::rtcd_ws::{REPLY_WAIT, join, open};

const NETWORK: &str = "rtcd.md §3.1";
pub(crate) const CASE: &str = "rtc.ice_tcp.candidate";

/// How long candidates may keep trickling in after the answer.
const TRICKLE_WAIT: Duration = Duration::from_secs(3);

pub(crate) async fn run(ctx: &mut Ctx, client: &Client) {
    if !ctx.ice_tcp {
        ctx.skip(CASE, NETWORK, "not asked for (--ice-tcp)");
        return;
    }
    let result = match open(&ctx.target, client, &client.basic()).await {
        Ok((mut conn, _)) => {
            let r = offered_tcp(&mut conn).await;
            conn.close().await;
            r
        }
        Err(e) => Err(e),
    };
    ctx.record(CASE, NETWORK, result);
}

/// Joins, offers, and reads the answer and the candidates; leaves again.
async fn offered_tcp(conn: &mut WsConn) -> Result<String, String> {
    let session = fresh_id();
    conn.send(&WsMessage::Join(join(&fresh_id(), &session)))
        .await?;
    let offer = data_channel_offer()?;
    conn.send(&WsMessage::Rtc(RtcMessage::sdp(
        session.clone(),
        &SessionDescription::offer(offer),
    )))
    .await?;
    let seen = candidates(conn).await;
    conn.send(&WsMessage::Leave {
        session_id: session.clone(),
    })
    .await?;
    let _ = conn.wait_close(&session, REPLY_WAIT).await;
    let seen = seen?;
    match seen.iter().find(|c| is_tcp_passive_host(c)) {
        Some(c) => Ok(format!("offered {c:?}")),
        None => Err(format!("no passive tcp host candidate among {seen:?}")),
    }
}

/// A browser-like offer: one data channel, as the Calls client's first offer has.
fn data_channel_offer() -> Result<String, String> {
    let mut rtc = str0m::Rtc::builder().build(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_channel("calls-dc".into());
    let (offer, _pending) = api.apply().ok_or("str0m made no offer")?;
    Ok(offer.to_sdp_string())
}

/// The candidate lines of the answer and of the candidates trickled after it (until the answer
/// has come and no candidate for [`TRICKLE_WAIT`]).
async fn candidates(conn: &mut WsConn) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    let mut answered = false;
    let mut deadline = Instant::now() + REPLY_WAIT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(msg) = conn.next_message(wait).await else {
            break;
        };
        let WsMessage::Rtc(m) = msg else { continue };
        match m.msg_type {
            RtcType::Sdp => {
                let desc = m
                    .parse_sdp()
                    .map_err(|e| format!("unreadable answer: {e}"))?;
                if desc.sdp_type != SdpType::Answer {
                    continue;
                }
                answered = true;
                let lines = desc.sdp.lines().filter_map(|l| l.strip_prefix("a="));
                seen.extend(
                    lines
                        .filter(|l| l.starts_with("candidate:"))
                        .map(String::from),
                );
                deadline = Instant::now() + TRICKLE_WAIT;
            }
            RtcType::Ice => {
                let c = ServerCandidate::parse(&m.data)
                    .map_err(|e| format!("unreadable candidate: {e}"))?;
                seen.push(c.candidate);
                if answered {
                    deadline = Instant::now() + TRICKLE_WAIT;
                }
            }
            _ => {}
        }
        // One passive TCP candidate is all this case needs.
        if answered && seen.iter().any(|c| is_tcp_passive_host(c)) {
            break;
        }
    }
    if !answered {
        return Err(format!(
            "no answer to the offer within {} s",
            REPLY_WAIT.as_secs()
        ));
    }
    Ok(seen)
}

/// `candidate:<foundation> <component> tcp <prio> <ip> <port> typ host ... tcptype passive`.
fn is_tcp_passive_host(line: &str) -> bool {
    let f: Vec<&str> = line.split_whitespace().collect();
    let attr = |name: &str| f.iter().position(|x| *x == name).and_then(|i| f.get(i + 1));
    f.len() >= 8
        && f[2].eq_ignore_ascii_case("tcp")
        && attr("typ") == Some(&"host")
        && attr("tcptype") == Some(&"passive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passive_tcp_host_candidates_count() {
        let tcp = "candidate:2 1 tcp 1509949438 127.0.0.1 41235 typ host tcptype passive";
        assert!(is_tcp_passive_host(tcp));
        assert!(is_tcp_passive_host(&tcp.replace(" tcp ", " TCP ")));
        for other in [
            "candidate:1 1 udp 2130706431 127.0.0.1 8443 typ host",
            "candidate:2 1 tcp 1509949438 127.0.0.1 9 typ host tcptype active",
            "candidate:3 1 tcp 1509949438 10.0.0.1 443 typ srflx raddr 0.0.0.0 rport 0 tcptype passive",
            "candidate:4 1 tcp",
        ] {
            assert!(!is_tcp_passive_host(other), "{other}");
        }
    }

    #[test]
    fn the_offer_is_a_data_channel_offer() {
        let sdp = data_channel_offer().unwrap();
        assert!(sdp.contains("m=application"), "{sdp}");
        assert!(sdp.contains("a=ice-ufrag:"), "{sdp}");
    }
}
