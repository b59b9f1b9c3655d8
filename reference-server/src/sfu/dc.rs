//! The data-channel messages the SFU core exchanges with clients (rtcd §2.5).
//!
//! Framing: a msgpack unsigned int (any width) for the type, optionally followed by one msgpack
//! value. SDP travels as msgpack bin holding zlib(JSON). This adapter stays small on purpose:
//! once the shared `proto::rtcd` DC codec lands on main the core switches to it.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

/// Largest inflated SDP accepted over the DC, as the plugin caps SDP at 64 KiB.
const MAX_SDP_BYTES: u64 = 1 << 20;

/// One data-channel message.
#[derive(Debug, Clone, PartialEq)]
pub enum DcMsg {
    Ping,
    Pong,
    /// JSON SessionDescription (already inflated).
    Sdp(Vec<u8>),
    LossRate(f64),
    RoundTripTime(f64),
    Jitter(f64),
    /// Request (`None`) or response (`Some(granted)`).
    Lock(Option<bool>),
    Unlock,
    /// `mid → (type, sender_id)`.
    MediaMap(Vec<(String, String, String)>),
}

/// Why a DC message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DcDecodeError {
    #[error("dc message type: {0}")]
    Type(String),
    #[error("unknown dc message type {0}")]
    UnknownType(u64),
    #[error("dc message payload: {0}")]
    Payload(String),
    #[error("dc sdp inflate: {0}")]
    Inflate(#[from] std::io::Error),
}

impl DcMsg {
    /// Decodes one binary DC message.
    pub fn decode(mut buf: &[u8]) -> Result<DcMsg, DcDecodeError> {
        let t: u64 =
            rmp::decode::read_int(&mut buf).map_err(|e| DcDecodeError::Type(e.to_string()))?;
        let payload = |buf: &mut &[u8]| -> Result<rmpv::Value, DcDecodeError> {
            rmpv::decode::read_value(buf).map_err(|e| DcDecodeError::Payload(e.to_string()))
        };
        let float = |v: rmpv::Value| -> Result<f64, DcDecodeError> {
            v.as_f64()
                .or_else(|| v.as_i64().map(|i| i as f64))
                .or_else(|| v.as_u64().map(|i| i as f64))
                .ok_or_else(|| DcDecodeError::Payload(format!("expected a number, got {v}")))
        };
        Ok(match t {
            1 => DcMsg::Ping,
            2 => DcMsg::Pong,
            3 => {
                let v = payload(&mut buf)?;
                let rmpv::Value::Binary(z) = v else {
                    return Err(DcDecodeError::Payload("sdp is not bin".into()));
                };
                let mut out = Vec::new();
                ZlibDecoder::new(&z[..])
                    .take(MAX_SDP_BYTES)
                    .read_to_end(&mut out)?;
                DcMsg::Sdp(out)
            }
            4 => DcMsg::LossRate(float(payload(&mut buf)?)?),
            5 => DcMsg::RoundTripTime(float(payload(&mut buf)?)?),
            6 => DcMsg::Jitter(float(payload(&mut buf)?)?),
            7 => {
                if buf.is_empty() {
                    DcMsg::Lock(None)
                } else {
                    DcMsg::Lock(payload(&mut buf)?.as_bool())
                }
            }
            8 => DcMsg::Unlock,
            9 => {
                let v = payload(&mut buf)?;
                let mut out = Vec::new();
                for (k, e) in v.as_map().into_iter().flatten() {
                    let field = |name: &str| {
                        e.as_map()
                            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(name)))
                            .and_then(|(_, v)| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    };
                    out.push((
                        k.as_str().unwrap_or_default().to_string(),
                        field("type"),
                        field("sender_id"),
                    ));
                }
                DcMsg::MediaMap(out)
            }
            n => return Err(DcDecodeError::UnknownType(n)),
        })
    }

    /// Encodes the message as Go's rtcd does (type as `cc NN`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let t: u8 = match self {
            DcMsg::Ping => 1,
            DcMsg::Pong => 2,
            DcMsg::Sdp(_) => 3,
            DcMsg::LossRate(_) => 4,
            DcMsg::RoundTripTime(_) => 5,
            DcMsg::Jitter(_) => 6,
            DcMsg::Lock(_) => 7,
            DcMsg::Unlock => 8,
            DcMsg::MediaMap(_) => 9,
        };
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_u8(&mut out, t);
        match self {
            DcMsg::Ping | DcMsg::Pong | DcMsg::Unlock | DcMsg::Lock(None) => {}
            DcMsg::Sdp(json) => {
                let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
                let _ = z.write_all(json);
                let z = z.finish().unwrap_or_default();
                let _ = rmp::encode::write_bin(&mut out, &z);
            }
            DcMsg::LossRate(f) | DcMsg::RoundTripTime(f) | DcMsg::Jitter(f) => {
                let _ = rmp::encode::write_f64(&mut out, *f);
            }
            DcMsg::Lock(Some(b)) => {
                let _ = rmp::encode::write_bool(&mut out, *b);
            }
            DcMsg::MediaMap(entries) => {
                let _ = rmp::encode::write_map_len(&mut out, entries.len() as u32);
                for (mid, kind, sender) in entries {
                    let _ = rmp::encode::write_str(&mut out, mid);
                    let _ = rmp::encode::write_map_len(&mut out, 2);
                    let _ = rmp::encode::write_str(&mut out, "type");
                    let _ = rmp::encode::write_str(&mut out, kind);
                    let _ = rmp::encode::write_str(&mut out, "sender_id");
                    let _ = rmp::encode::write_str(&mut out, sender);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_every_message() {
        let msgs = [
            DcMsg::Ping,
            DcMsg::Pong,
            DcMsg::Sdp(br#"{"type":"offer","sdp":"v=0"}"#.to_vec()),
            DcMsg::LossRate(0.25),
            DcMsg::RoundTripTime(0.5),
            DcMsg::Jitter(0.01),
            DcMsg::Lock(None),
            DcMsg::Lock(Some(true)),
            DcMsg::Unlock,
            DcMsg::MediaMap(vec![("1".into(), "voice".into(), "s1".into())]),
        ];
        for m in msgs {
            assert_eq!(DcMsg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn accepts_fixint_type_and_rejects_garbage() {
        assert_eq!(DcMsg::decode(&[0x01]).unwrap(), DcMsg::Ping);
        assert!(matches!(
            DcMsg::decode(&[0x63]),
            Err(DcDecodeError::UnknownType(99))
        ));
        assert!(DcMsg::decode(&[0xc1]).is_err());
        assert!(DcMsg::decode(&[0x04]).is_err());
    }
}
