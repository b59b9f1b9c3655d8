//! Deterministic randomness and ids derived from the master seed.
//!
//! There is no global RNG. Every random choice of a plan is a pure function of the master seed and
//! the stable indices of what it concerns (call index, participant index, churn index, …):
//!
//! * [`derive()`] hashes the seed with a label and indices using SipHash-1-3 (128-bit output, keyed with
//!   the seed) over an explicit little-endian byte layout, so the result is the same on every
//!   platform and in every shard.
//! * [`Rng`] is a SplitMix64 stream started from such a derived value, for shuffles and draws.
//! * [`Id`] is a 26-character Mattermost-style id: the 16 derived bytes written in RFC 4648
//!   base32 order (most significant bit first, no padding) with Mattermost's alphabet
//!   `ybndrfg8ejkmcpqxot1uwisza345h769`. 128 bits make 25 full characters plus one of 3 bits.

use std::fmt;

use serde::{Serialize, Serializer};
use siphasher::sip128::SipHasher13;

/// Second SipHash key word: "callsben" in ASCII, fixed so ids do not change between releases.
const KEY1: u64 = 0x6361_6c6c_7362_656e;

/// The Mattermost id alphabet (base32, lowercase, no padding).
pub const ID_ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// 128 bits derived from `seed`, a purpose `label` and `parts` (stable indices).
pub fn derive128(seed: u64, label: &str, parts: &[u64]) -> u128 {
    let mut message = Vec::with_capacity(8 + label.len() + 8 * parts.len());
    // Length-prefix the label so ("ab", [..]) and ("a", [..]) can never collide.
    message.extend_from_slice(&(label.len() as u64).to_le_bytes());
    message.extend_from_slice(label.as_bytes());
    for part in parts {
        message.extend_from_slice(&part.to_le_bytes());
    }
    SipHasher13::new_with_keys(seed, KEY1)
        .hash(&message)
        .as_u128()
}

/// 64 bits derived from `seed`, `label` and `parts` (see [`derive128`]).
pub fn derive(seed: u64, label: &str, parts: &[u64]) -> u64 {
    // Keep the low half; both halves are uniformly distributed.
    derive128(seed, label, parts) as u64
}

/// A small deterministic PRNG (SplitMix64). Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A stream for one purpose: `Rng::new(derive(seed, "join-order", &[]))`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let n = n.max(1);
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A 26-character Mattermost-style id (`[ybndrfg8ejkmcpqxot1uwisza345h769]{26}`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id([u8; 26]);

impl Id {
    /// The id for `label` and `parts` under `seed` (e.g. `Id::derive(seed, "call", &[3])`).
    pub fn derive(seed: u64, label: &str, parts: &[u64]) -> Id {
        Id::from_bytes(derive128(seed, label, parts).to_be_bytes())
    }

    /// Encodes 16 bytes as 26 base32 characters, most significant bit first.
    pub fn from_bytes(bytes: [u8; 16]) -> Id {
        let value = u128::from_be_bytes(bytes);
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            // Characters 0..25 take 5 bits each from the top; the last takes the final 3 bits
            // shifted left by 2 (zero padding), as base32 without padding characters does.
            let index = if i < 25 {
                (value >> (123 - 5 * i)) & 0x1f
            } else {
                (value & 0x7) << 2
            };
            *slot = ID_ALPHABET[index as usize];
        }
        Id(out)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII alphabet bytes, so always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.as_str())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_26_alphabet_characters_and_stable() {
        let id = Id::derive(42, "call", &[0]);
        assert_eq!(id.as_str().len(), 26);
        assert!(id.as_str().bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_eq!(id, Id::derive(42, "call", &[0]));
        assert_ne!(id, Id::derive(42, "call", &[1]));
        assert_ne!(id, Id::derive(43, "call", &[0]));
        assert_ne!(id, Id::derive(42, "user", &[0]));
    }

    #[test]
    fn id_encoding_matches_base32_bit_order() {
        assert_eq!(Id::from_bytes([0; 16]).as_str(), "y".repeat(26));
        // All ones: 25 × 31 ('9') and a last character of 0b11100 = 28 ('h').
        assert_eq!(
            Id::from_bytes([0xff; 16]).as_str(),
            format!("{}h", "9".repeat(25))
        );
        let mut one = [0u8; 16];
        one[0] = 0b0000_1000; // fifth bit from the top: first character 0b00001 = 'b'
        assert_eq!(&Id::from_bytes(one).as_str()[..2], "by");
    }

    #[test]
    fn derivation_is_pinned() {
        // Pinned so that a change of hash or layout (which would change every plan) is noticed.
        assert_eq!(derive(1, "pin", &[1, 2, 3]), 10_471_625_991_035_146_819);
        assert_eq!(
            Id::derive(42, "call", &[0]).as_str(),
            "m88341fh14dzuxq9j3bd4r8cxy"
        );
        assert_ne!(derive(1, "ab", &[]), derive(1, "a", &[u64::from(b'b')]));
    }

    #[test]
    fn rng_below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[rng.below(6) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        Rng::new(3).shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
