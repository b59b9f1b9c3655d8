//! Signalling helpers of the participant: the channel an SDP travels on, candidate parsing, and the
//! error for signalling input that cannot be applied.

use callsref::proto::rtcd::error::{DcDecodeError, PayloadError};
use str0m::Candidate;

/// The channel an offer or answer travels on; an answer goes back on the offer's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The plugin WebSocket (rtc message type 2, plain JSON).
    Ws,
    /// The data channel (DC message 3, zlib JSON), when the session signals over the DC.
    Dc,
}

/// Signalling input the participant could not understand.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("rtc message payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("data channel message: {0}")]
    Dc(#[from] DcDecodeError),
    #[error("session description: {0}")]
    Sdp(#[from] str0m::error::SdpError),
    #[error("ice candidate {candidate:?}: {reason}")]
    Candidate { candidate: String, reason: String },
}

/// Parses a trickled candidate as pion writes it (`candidate:...`, with or without the prefix).
pub fn parse_candidate(s: &str) -> Result<Candidate, SignalError> {
    let bare = s.strip_prefix("a=").unwrap_or(s);
    Candidate::from_sdp_string(bare).map_err(|e| SignalError::Candidate {
        candidate: s.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pion_host_candidate() {
        // The shape pion's ICECandidate.ToJSON() produces for an rtcd host candidate.
        let c = parse_candidate("candidate:1966762133 1 udp 2130706431 127.0.0.1 8443 typ host")
            .unwrap();
        assert_eq!(c.addr(), "127.0.0.1:8443".parse().unwrap());
    }

    #[test]
    fn rejects_garbage_candidate() {
        let err = parse_candidate("candidate:nonsense").unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }
}
