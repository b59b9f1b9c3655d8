//! webrtc-rs as a Calls participant behind the plugin's `/ws`: what it does with the `rtc` messages
//! the SFU sends (trickled candidates, answers to its offer, server offers to answer). Shared by
//! the interop and recording tests, so both drive the independent stack the same way.

use callsref::proto::rtcd::{RtcMessage, RtcType, ServerCandidate, SessionDescription, WsMessage};
use tokio::sync::mpsc;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;

/// Applies one server `rtc` message to `pc`; a server offer is answered through `out` as
/// `session_id`. Other rtc types are ignored.
pub async fn apply_server_rtc(
    pc: &RTCPeerConnection,
    m: &RtcMessage,
    session_id: &str,
    out: &mpsc::UnboundedSender<WsMessage>,
) {
    match m.msg_type {
        RtcType::Ice => {
            let c = ServerCandidate::parse(&m.data).unwrap();
            let init = RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
                username_fragment: c.username_fragment,
            };
            pc.add_ice_candidate(init).await.unwrap();
        }
        RtcType::Sdp => {
            let v: serde_json::Value = serde_json::from_slice(&m.data).unwrap();
            let sdp = v["sdp"].as_str().unwrap().to_string();
            if v["type"] == "answer" {
                pc.set_remote_description(RTCSessionDescription::answer(sdp).unwrap())
                    .await
                    .unwrap();
            } else {
                pc.set_remote_description(RTCSessionDescription::offer(sdp).unwrap())
                    .await
                    .unwrap();
                let answer = pc.create_answer(None).await.unwrap();
                pc.set_local_description(answer.clone()).await.unwrap();
                let desc = SessionDescription::answer(answer.sdp);
                let _ = out.send(WsMessage::Rtc(RtcMessage::sdp(session_id, &desc)));
            }
        }
        _ => {}
    }
}
