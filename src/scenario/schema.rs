//! The scenario file's schema as serde structs that keep the span of every value.
//!
//! These are the raw shapes only: `deny_unknown_fields` everywhere, strings for units, `Int` for
//! integers (so a type error says "an integer"). [`super::parse`] turns them into the model.

use serde::Deserialize;
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

/// A TOML integer whose type error says "an integer" rather than Rust's "i64".
#[derive(Debug, Clone, Copy)]
pub(super) struct Int(pub(super) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Int;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
        }
        deserializer.deserialize_i64(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<S<String>>,
    pub(super) description: Option<String>,
    pub(super) seed: Option<S<Int>>,
    pub(super) phases: Option<RawPhases>,
    pub(super) calls: S<Vec<S<RawGroup>>>,
    pub(super) media: Option<RawMedia>,
    #[serde(default)]
    pub(super) churn: Vec<S<RawChurn>>,
    #[serde(default)]
    pub(super) impairment: Vec<S<RawImpairment>>,
    #[serde(default)]
    pub(super) thresholds: Vec<S<String>>,
    #[serde(default)]
    pub(super) drain: Vec<S<RawDrain>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhases {
    pub(super) join: Option<S<String>>,
    pub(super) join_steps: Option<S<Vec<RawStep>>>,
    pub(super) order: Option<JoinOrderRaw>,
    pub(super) settle: Option<S<String>>,
    pub(super) steady: Option<S<String>>,
    pub(super) leave: Option<S<String>>,
    pub(super) leave_steps: Option<S<Vec<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) over: S<String>,
    pub(super) to: S<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum JoinOrderRaw {
    Shuffled,
    ByCall,
    RoundRobin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: Option<String>,
    pub(super) count: Option<S<Int>>,
    pub(super) participants: S<Int>,
    pub(super) unmuted: Option<S<Int>>,
    pub(super) video: Option<S<Int>>,
    pub(super) screen_sharing: Option<S<Int>>,
    pub(super) simulcast: Option<bool>,
    pub(super) recordings: Option<S<Int>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    pub(super) dir: Option<S<String>>,
    pub(super) speech: Option<S<Vec<S<String>>>>,
    pub(super) screen: Option<S<String>>,
    pub(super) screen_low: Option<S<String>>,
    pub(super) screen_high: Option<S<String>>,
    pub(super) camera: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChurn {
    pub(super) action: S<ChurnActionRaw>,
    pub(super) at: Option<S<Vec<S<String>>>>,
    pub(super) rate: Option<S<String>>,
    pub(super) targets: Option<S<Int>>,
    pub(super) off_for: S<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ChurnActionRaw {
    Mute,
    Screen,
    Video,
    Rejoin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImpairment {
    pub(super) name: S<String>,
    pub(super) share: S<String>,
    pub(super) loss: Option<S<String>>,
    pub(super) delay: Option<S<String>>,
    pub(super) jitter: Option<S<String>>,
    pub(super) direction: Option<DirectionRaw>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum DirectionRaw {
    Up,
    Down,
    Both,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrain {
    /// An index into the run's rtcd hosts (integer) or an address (string).
    pub(super) host: S<toml::Value>,
    pub(super) at: S<String>,
}
