//! Deterministic slicing of a plan across load agents (`--shard I/N`).
//!
//! The plan is cut into pieces: a call of at most `max_call_size` participants is one piece; a larger
//! call is cut by participant index into `ceil(size / max_call_size)` contiguous pieces of nearly
//! equal size. Pieces go to shards by longest-processing-time-first (largest piece first, ties by call
//! index then first participant) onto the shard with the fewest participants so far (ties: lowest
//! shard). Every shard runs the same computation on the same plan, so no coordination is needed, and
//! since sessions keep everything they derived from the unsharded plan (ids, roles, media, seeds,
//! times), the union of the shards is the unsharded plan exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::str::FromStr;

use serde::Serialize;

use super::plan::{Call, Plan};

/// Default largest call kept whole on one shard.
pub const DEFAULT_MAX_CALL_SIZE: u32 = 500;

/// Shard `index` of `count`, written `I/N` with `1 ≤ I ≤ N` (1-based) on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ShardSpec {
    index: u32,
    count: NonZeroU32,
}

impl ShardSpec {
    /// Shard `index` (0-based) of `count`; `None` when `index ≥ count`.
    pub fn new(index: u32, count: NonZeroU32) -> Option<ShardSpec> {
        (index < count.get()).then_some(ShardSpec { index, count })
    }

    /// 0-based shard index.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Number of shards.
    pub fn count(self) -> NonZeroU32 {
        self.count
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ShardSpec, String> {
        let expected =
            || format!("expected a shard like \"1/4\" (I/N with 1 ≤ I ≤ N), found \"{text}\"");
        let (i, n) = text.split_once('/').ok_or_else(expected)?;
        // `I` may be a sum (`0+1`), so a Kubernetes Indexed Job can pass its 0-based
        // `$(JOB_COMPLETION_INDEX)+1/N`: the API server expands variables but does no arithmetic.
        let i = i.split('+').try_fold(0u32, |sum, part| {
            part.trim()
                .parse::<u32>()
                .ok()
                .and_then(|p| sum.checked_add(p))
                .ok_or_else(expected)
        })?;
        let n: u32 = n.trim().parse().map_err(|_| expected())?;
        let n = NonZeroU32::new(n).ok_or_else(expected)?;
        if i == 0 {
            return Err(expected());
        }
        ShardSpec::new(i - 1, n).ok_or_else(expected)
    }
}

/// Which slice of the plan a sharded plan holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShardInfo {
    /// This shard.
    pub spec: ShardSpec,
    /// Calls larger than this were split by participant index.
    pub max_call_size: NonZeroU32,
}

/// A contiguous range of one call's participants that goes to one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    /// Call index.
    pub call: u32,
    /// Participant indices.
    pub participants: Range<u32>,
}

/// Why sharding or merging failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Sharding a shard would lose track of the whole plan.
    #[error("the plan is already shard {0}; shard the whole plan instead")]
    AlreadySharded(ShardSpec),
    /// Merging needs at least one part.
    #[error("no plans to merge")]
    Empty,
    /// Parts of different runs.
    #[error("the parts come from different plans (scenario, seed, start time or phases differ)")]
    Mismatch,
    /// A session appears in two parts.
    #[error("call {call} participant {participant} is in more than one part")]
    Overlap {
        /// Call index.
        call: u32,
        /// Participant index.
        participant: u32,
    },
}

/// Cuts the calls into pieces and deals them to `count` shards; element `i` is shard `i`'s pieces,
/// sorted by call then participant.
pub fn assign(calls: &[Call], count: NonZeroU32, max_call_size: NonZeroU32) -> Vec<Vec<Piece>> {
    let max = max_call_size.get();
    let mut pieces: Vec<Piece> = Vec::new();
    for call in calls {
        let size = call.participants();
        let parts = size.div_ceil(max).max(1);
        // Nearly equal contiguous pieces: the first `size % parts` get one extra participant.
        let (base, extra) = (size / parts, size % parts);
        let mut start = 0;
        for k in 0..parts {
            let len = base + u32::from(k < extra);
            pieces.push(Piece {
                call: call.index(),
                participants: start..start + len,
            });
            start += len;
        }
    }
    pieces.sort_by_key(|p| (Reverse(p.participants.len()), p.call, p.participants.start));

    let n = count.get() as usize;
    let mut shards: Vec<Vec<Piece>> = vec![Vec::new(); n];
    let mut load: BinaryHeap<Reverse<(u64, usize)>> = (0..n).map(|i| Reverse((0, i))).collect();
    for piece in pieces {
        // The heap holds one entry per shard at all times.
        let Some(Reverse((used, shard))) = load.pop() else {
            break;
        };
        load.push(Reverse((used + piece.participants.len() as u64, shard)));
        shards[shard].push(piece);
    }
    for shard in &mut shards {
        shard.sort_by_key(|p| (p.call, p.participants.start));
    }
    shards
}

impl Plan {
    /// The slice of this plan that shard `spec` runs. Calls of at most `max_call_size` participants
    /// stay whole; larger calls are split by participant index (see the module docs).
    pub fn shard(&self, spec: ShardSpec, max_call_size: NonZeroU32) -> Result<Plan, ShardError> {
        if let Some(info) = &self.shard {
            return Err(ShardError::AlreadySharded(info.spec));
        }
        let pieces = assign(&self.calls, spec.count(), max_call_size)
            .into_iter()
            .nth(spec.index() as usize)
            .unwrap_or_default();
        let mut calls: Vec<Call> = Vec::new();
        for piece in pieces {
            let source = &self.calls[piece.call as usize];
            let sessions = source.sessions
                [piece.participants.start as usize..piece.participants.end as usize]
                .iter()
                .cloned();
            match calls.last_mut() {
                Some(last) if last.index == piece.call => last.sessions.extend(sessions),
                _ => calls.push(Call {
                    sessions: sessions.collect(),
                    ..source.clone_without_sessions()
                }),
            }
        }
        Ok(Plan {
            calls,
            shard: Some(ShardInfo {
                spec,
                max_call_size,
            }),
            ..self.clone_without_calls()
        })
    }

    /// Puts shards (or any disjoint parts of one plan) back together. The result equals the unsharded
    /// plan when every shard is given.
    pub fn union(parts: &[Plan]) -> Result<Plan, ShardError> {
        let first = parts.first().ok_or(ShardError::Empty)?;
        let mut merged = first.clone_without_calls();
        let mut calls: BTreeMap<u32, Call> = BTreeMap::new();
        for part in parts {
            let header = part.clone_without_calls();
            if (
                &header.scenario,
                header.seed,
                header.start_at,
                header.phases,
            ) != (
                &merged.scenario,
                merged.seed,
                merged.start_at,
                merged.phases,
            ) {
                return Err(ShardError::Mismatch);
            }
            for call in &part.calls {
                calls
                    .entry(call.index)
                    .or_insert_with(|| call.clone_without_sessions())
                    .sessions
                    .extend(call.sessions.iter().cloned());
            }
        }
        let mut calls: Vec<Call> = calls.into_values().collect();
        for call in &mut calls {
            call.sessions.sort_by_key(|s| s.index);
            if let Some(w) = call.sessions.windows(2).find(|w| w[0].index == w[1].index) {
                return Err(ShardError::Overlap {
                    call: call.index,
                    participant: w[0].index,
                });
            }
        }
        merged.calls = calls;
        merged.shard = None;
        Ok(merged)
    }

    fn clone_without_calls(&self) -> Plan {
        Plan {
            scenario: self.scenario.clone(),
            seed: self.seed,
            start_at: self.start_at,
            phases: self.phases,
            media: self.media.clone(),
            impairments: self.impairments.clone(),
            thresholds: self.thresholds.clone(),
            calls: Vec::new(),
            shard: self.shard,
        }
    }
}

impl Call {
    fn clone_without_sessions(&self) -> Call {
        Call {
            index: self.index,
            group: self.group,
            id: self.id,
            participants: self.participants,
            screen: self.screen,
            recorded: self.recorded,
            sessions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_are_one_based_on_the_command_line() {
        let spec: ShardSpec = "2/4".parse().unwrap();
        assert_eq!((spec.index(), spec.count().get()), (1, 4));
        assert_eq!(spec.to_string(), "2/4");
        // A Kubernetes Indexed Job's 0-based index plus one.
        let spec: ShardSpec = "0+1/3".parse().unwrap();
        assert_eq!((spec.index(), spec.count().get()), (0, 3));
        assert_eq!("2+1/3".parse::<ShardSpec>().unwrap().index(), 2);
        for bad in [
            "0/4", "5/4", "1/0", "1", "a/b", "-1/2", "3+1/3", "+1/3", "0+/2",
        ] {
            assert!(
                bad.parse::<ShardSpec>()
                    .unwrap_err()
                    .starts_with("expected a shard like")
            );
        }
    }
}
