//! Identifier formats: Mattermost-style 26-character ids and rtcd's track ids (rtcd.md §2.1, §2.6).
//!
//! A Mattermost id (call, session, user, channel and WS connection ids) is a random UUID version 4
//! (16 bytes, version nibble 4, RFC 4122 variant) written in base32 with the alphabet
//! `ybndrfg8ejkmcpqxot1uwisza345h769`, most significant bit first, padding dropped: 26 characters, the
//! last of which carries 3 data bits and 2 zero bits. Randomness always comes from the caller's RNG.
//!
//! A track id is `<type>_<senderSessionID>_<8 chars>`, type one of `voice`, `screen`, `screen-audio`,
//! `video`; rtcd takes the 8 characters from the front of a fresh id.

use std::fmt;

use rand::RngCore;

use super::error::{IdError, TrackIdError};

/// The id alphabet, indexed by 5-bit value.
pub const ID_ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
/// Length of a Mattermost id.
pub const ID_LEN: usize = 26;
/// Length of the random suffix of a track id.
pub const TRACK_SUFFIX_LEN: usize = 8;

fn alphabet_index(b: u8) -> Option<u8> {
    ID_ALPHABET.iter().position(|&c| c == b).map(|i| i as u8)
}

/// Encodes 16 bytes as a 26-character id (big-endian 5-bit groups, the last one zero-padded).
pub fn encode_id(bytes: &[u8; 16]) -> String {
    let value = u128::from_be_bytes(*bytes);
    // 26 groups of 5 bits cover 130 bits: the value shifted left by 2.
    (0..ID_LEN)
        .map(|i| {
            let shift = 123 - 5 * i as i32;
            let group = if shift >= 0 {
                (value >> shift) & 31
            } else {
                (value << 2) & 31
            };
            ID_ALPHABET[group as usize] as char
        })
        .collect()
}

/// Generates a fresh id from a UUID v4 drawn from `rng`, as Mattermost's `NewId` does.
pub fn new_id<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    encode_id(&bytes)
}

/// Decodes a canonical 26-character id back to its 16 bytes (strict: alphabet and zero padding bits).
/// It does not require the UUID version bits, so ids minted elsewhere from 16 random bytes pass.
pub fn decode_id(id: &str) -> Result<[u8; 16], IdError> {
    if id.len() != ID_LEN {
        return Err(IdError::Length { len: id.len() });
    }
    let mut acc: u128 = 0;
    for (at, b) in id.bytes().enumerate() {
        let v = alphabet_index(b).ok_or_else(|| IdError::BadChar {
            // Every earlier byte was ASCII, so `at` starts a character; `get` keeps this panic-free anyway.
            ch: id
                .get(at..)
                .and_then(|rest| rest.chars().next())
                .unwrap_or(char::REPLACEMENT_CHARACTER),
            at,
        })?;
        if at == ID_LEN - 1 {
            if v & 0b11 != 0 {
                return Err(IdError::NonCanonicalTail(b as char));
            }
            acc = (acc << 3) | u128::from(v >> 2);
        } else {
            acc = (acc << 5) | u128::from(v);
        }
    }
    Ok(acc.to_be_bytes())
}

/// Whether `id` is a canonical id (see [`decode_id`]).
pub fn is_valid_id(id: &str) -> bool {
    decode_id(id).is_ok()
}

/// Mattermost's own, laxer `IsValidId`: 26 bytes, every character a letter or digit.
pub fn is_mattermost_valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.chars().all(char::is_alphanumeric)
}

/// The kind of a forwarded track, as in track ids and the DC media map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    Voice,
    Screen,
    /// The audio of a screen share; note the hyphen in `screen-audio`.
    ScreenAudio,
    Video,
}

impl TrackKind {
    pub const ALL: [TrackKind; 4] = [
        TrackKind::Voice,
        TrackKind::Screen,
        TrackKind::ScreenAudio,
        TrackKind::Video,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Voice => "voice",
            TrackKind::Screen => "screen",
            TrackKind::ScreenAudio => "screen-audio",
            TrackKind::Video => "video",
        }
    }

    /// The kind named by `s`, exactly (case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        TrackKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for TrackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A track id `<type>_<sessionID>_<suffix>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackId {
    pub kind: TrackKind,
    /// The sending session (26 characters in practice; not enforced, as rtcd does not).
    pub session_id: String,
    /// Random suffix, 8 id-alphabet characters when rtcd makes it.
    pub suffix: String,
}

impl TrackId {
    /// A new id for a track of `kind` sent by `session_id`, with a suffix drawn from `rng`. The session id
    /// must not contain `_` (Mattermost ids never do), or the id will not parse back.
    pub fn generate<R: RngCore + ?Sized>(
        kind: TrackKind,
        session_id: impl Into<String>,
        rng: &mut R,
    ) -> Self {
        // 32 is a power of two, so masking 5 bits of a uniform u32 is uniform over the alphabet.
        let suffix = (0..TRACK_SUFFIX_LEN)
            .map(|_| ID_ALPHABET[(rng.next_u32() & 31) as usize] as char)
            .collect();
        TrackId {
            kind,
            session_id: session_id.into(),
            suffix,
        }
    }

    /// Parses a track id: exactly three `_`-separated fields, a known type, non-empty session id and
    /// suffix. Lengths are not checked (rtcd does not check them either).
    pub fn parse(s: &str) -> Result<Self, TrackIdError> {
        let fields: Vec<&str> = s.split('_').collect();
        let [kind, session_id, suffix] = fields[..] else {
            return Err(TrackIdError::FieldCount {
                count: fields.len(),
            });
        };
        let kind =
            TrackKind::parse(kind).ok_or_else(|| TrackIdError::UnknownKind(kind.to_owned()))?;
        if session_id.is_empty() {
            return Err(TrackIdError::EmptySessionId);
        }
        if suffix.is_empty() {
            return Err(TrackIdError::EmptySuffix);
        }
        Ok(TrackId {
            kind,
            session_id: session_id.to_owned(),
            suffix: suffix.to_owned(),
        })
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_{}", self.kind, self.session_id, self.suffix)
    }
}

impl std::str::FromStr for TrackId {
    type Err = TrackIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrackId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn all_zero_and_all_one_bytes_encode_as_computed_by_hand() {
        // 0 bits everywhere → index 0 ('y') everywhere.
        assert_eq!(encode_id(&[0; 16]), "y".repeat(26));
        // All ones: 25 groups of 31 ('9'), then 3 one bits + 2 zero bits = 0b11100 = 28 ('h').
        assert_eq!(encode_id(&[0xff; 16]), format!("{}h", "9".repeat(25)));
    }

    #[test]
    fn generated_ids_round_trip_and_carry_uuid_v4_bits() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let id = new_id(&mut rng);
            let bytes = decode_id(&id).unwrap();
            assert_eq!(bytes[6] >> 4, 4);
            assert_eq!(bytes[8] >> 6, 0b10);
            assert_eq!(encode_id(&bytes), id);
            assert!(is_mattermost_valid_id(&id));
        }
    }

    #[test]
    fn bad_ids_are_typed_errors() {
        assert_eq!(decode_id("short"), Err(IdError::Length { len: 5 }));
        assert_eq!(
            decode_id(&format!("{}Y", "y".repeat(25))),
            Err(IdError::BadChar { ch: 'Y', at: 25 })
        );
        // 'b' is index 2: a padding bit set.
        assert_eq!(
            decode_id(&format!("{}b", "y".repeat(25))),
            Err(IdError::NonCanonicalTail('b'))
        );
        // 24 ASCII bytes + one 2-byte char = 26 bytes, BadChar at the multi-byte char.
        assert_eq!(
            decode_id(&format!("{}é", "y".repeat(24))),
            Err(IdError::BadChar { ch: 'é', at: 24 })
        );
    }
}
