//! Plan expansion: determinism, role rules, ramps, churn, impairment groups, and sharding.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use callsbench::scenario::shard::assign;
use callsbench::scenario::{
    Action, MediaCheck, Plan, PlanConfig, Scenario, ScreenMode, ShardError, ShardSpec, Summary,
};
use proptest::prelude::*;

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text, Path::new("scenarios/test.toml"), MediaCheck::Skip).unwrap()
}

fn plan(text: &str) -> Plan {
    Plan::expand(&scenario(text), &PlanConfig::default())
}

const CI: &str = include_str!("../scenarios/ci.toml");

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn same_seed_same_plan_byte_for_byte_and_another_seed_differs() {
    let a = plan(CI).to_json();
    let b = plan(CI).to_json();
    assert_eq!(a, b);
    assert!(
        a.len() > 1000,
        "the plan serialises every session: {} bytes",
        a.len()
    );
    let other = Plan::expand(&scenario(CI).with_seed(8), &PlanConfig::default()).to_json();
    assert_ne!(a, other);
    // Another seed changes ids, seeds, order and churn targets, but not the shape.
    let s1 = Summary::of(&plan(CI));
    let s2 = Summary::of(&Plan::expand(
        &scenario(CI).with_seed(8),
        &PlanConfig::default(),
    ));
    assert_eq!(
        (s1.sessions, s1.speakers, s1.screen_sharers),
        (s2.sessions, s2.speakers, s2.screen_sharers)
    );
}

#[test]
fn roles_follow_the_lt_rules() {
    let p = plan(
        "[[calls]]\ncount = 3\nparticipants = 5\nunmuted = 2\nvideo = 1\nscreen_sharing = 2\nrecordings = 1\n\
         [[calls]]\ncount = 1\nparticipants = 3\nscreen_sharing = 1\nsimulcast = true\n",
    );
    assert_eq!(p.calls().len(), 4);
    let screens: Vec<Option<ScreenMode>> = p.calls().iter().map(|c| c.screen()).collect();
    assert_eq!(
        screens,
        [
            Some(ScreenMode::Single),
            Some(ScreenMode::Single),
            None,
            Some(ScreenMode::Simulcast)
        ]
    );
    let recorded: Vec<bool> = p.calls().iter().map(|c| c.recorded()).collect();
    assert_eq!(recorded, [true, false, false, false]);
    for call in &p.calls()[..3] {
        let speakers: Vec<u32> = call
            .sessions()
            .iter()
            .filter(|s| s.roles().speaker)
            .map(|s| s.index())
            .collect();
        assert_eq!(speakers, [0, 1]);
        let cameras: Vec<u32> = call
            .sessions()
            .iter()
            .filter(|s| s.roles().camera)
            .map(|s| s.index())
            .collect();
        assert_eq!(cameras, [0]);
        let sharers: Vec<u32> = call
            .sessions()
            .iter()
            .filter(|s| s.roles().screen)
            .map(|s| s.index())
            .collect();
        assert_eq!(
            sharers,
            if call.screen().is_some() {
                vec![0]
            } else {
                vec![]
            }
        );
        assert!(call.sessions()[2..].iter().all(|s| s.roles().is_listener()));
        // Speakers of a call get different speech files (the default list has two).
        assert_ne!(call.sessions()[0].speech(), call.sessions()[1].speech());
        let files: BTreeSet<String> = call.sessions()[..2]
            .iter()
            .map(|s| {
                p.speech_file(s)
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            files,
            BTreeSet::from(["speech-97.ogg".to_owned(), "conversation.ogg".to_owned()])
        );
        assert_eq!(p.speech_file(&call.sessions()[2]), None);
        assert_eq!(call.sessions()[2].speech(), None);
    }
    let summary = Summary::of(&p);
    assert_eq!(summary.forwarded_audio, 3 * 2 * 4);
    assert_eq!(summary.screen_viewers, 2 * 4 + 2);
}

#[test]
fn ids_are_unique_and_mattermost_shaped() {
    let p = plan(CI);
    let mut ids = BTreeSet::new();
    for call in p.calls() {
        assert!(ids.insert(call.id().to_string()));
        for s in call.sessions() {
            assert!(ids.insert(s.id().to_string()));
            assert!(ids.insert(s.user_id().to_string()));
        }
    }
    for id in &ids {
        assert_eq!(id.len(), 26);
        assert!(
            id.bytes()
                .all(|b| b"ybndrfg8ejkmcpqxot1uwisza345h769".contains(&b)),
            "{id}"
        );
    }
    let seeds: BTreeSet<u64> = p.sessions().map(|s| s.rng_seed()).collect();
    assert_eq!(seeds.len(), p.session_count());
}

#[test]
fn joins_follow_the_ramp_and_leaves_are_first_in_first_out() {
    let p = plan(
        "[phases]\njoin = \"10s\"\nsettle = \"2s\"\nsteady = \"30s\"\nleave = \"5s\"\n[[calls]]\ncount = 4\nparticipants = 5\n",
    );
    let phases = p.phases();
    assert_eq!(phases.join_end, Duration::from_secs(10));
    assert_eq!(phases.steady_start, Duration::from_secs(12));
    assert_eq!(phases.steady_end, Duration::from_secs(42));
    assert_eq!(phases.end, Duration::from_secs(47));
    let mut joins: Vec<Duration> = p.sessions().map(|s| s.join_at()).collect();
    joins.sort();
    // 20 sessions evenly over 10 s: 0.5 s apart, the last exactly at the end of the ramp.
    let expected: Vec<Duration> = (1..=20).map(|k| Duration::from_millis(500 * k)).collect();
    assert_eq!(joins, expected);
    for s in p.sessions() {
        let rank = (s.join_at().as_millis() / 500) as u64; // 1-based
        assert_eq!(
            s.leave_at(),
            phases.steady_end + Duration::from_millis(250 * rank)
        );
        assert_eq!(s.events().len(), 2);
    }
    // Shuffled order mixes calls: the first five joins are not all from one call.
    let first_calls: BTreeSet<u32> = p
        .sessions()
        .filter(|s| s.join_at() <= Duration::from_millis(2500))
        .map(|s| s.call())
        .collect();
    assert!(first_calls.len() > 1);
}

#[test]
fn by_call_and_round_robin_orders() {
    let by_call = plan(
        "[phases]\njoin = \"6s\"\norder = \"by_call\"\n[[calls]]\ncount = 2\nparticipants = 3\n",
    );
    let order: Vec<(u32, u32)> = by_call
        .timeline()
        .iter()
        .filter(|e| e.action == Action::Join)
        .map(|e| (e.call, e.participant))
        .collect();
    assert_eq!(order, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    let rr = plan(
        "[phases]\njoin = \"6s\"\norder = \"round_robin\"\n[[calls]]\ncount = 2\nparticipants = 3\n",
    );
    let order: Vec<(u32, u32)> = rr
        .timeline()
        .iter()
        .filter(|e| e.action == Action::Join)
        .map(|e| (e.call, e.participant))
        .collect();
    assert_eq!(order, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
}

#[test]
fn churn_stays_in_the_steady_window_and_never_overlaps() {
    let p = plan(CI);
    let phases = p.phases();
    let mut rejoins = 0;
    for s in p.sessions() {
        let events = s.events();
        assert_eq!(events.first().unwrap().action, Action::Join);
        assert_eq!(events.last().unwrap().action, Action::Leave);
        assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
        // Between the first join and the final leave, churn comes in off/on pairs inside steady.
        let churn = &events[1..events.len() - 1];
        assert_eq!(churn.len() % 2, 0);
        for pair in churn.chunks(2) {
            assert!(pair[0].at >= phases.steady_start && pair[1].at <= phases.steady_end);
            let expected_gap = match (pair[0].action, pair[1].action) {
                (Action::Mute, Action::Unmute) => {
                    assert!(s.roles().speaker);
                    Duration::from_secs(5)
                }
                (Action::ScreenOff, Action::ScreenOn) => {
                    assert!(s.roles().screen);
                    Duration::from_secs(5)
                }
                (Action::Leave, Action::Join) => {
                    rejoins += 1;
                    Duration::from_secs(3)
                }
                other => panic!("unexpected churn pair {other:?}"),
            };
            assert_eq!(pair[1].at - pair[0].at, expected_gap);
        }
    }
    // rate 0.1/s over steady − off_for = 57 s → round(5.7) = 6 events, one session each.
    assert_eq!(rejoins, 6);
    let summary = Summary::of(&p);
    // mute: 2 events × 3 targets; screen: 1 event.
    assert_eq!(summary.events["mute"], 6);
    assert_eq!(summary.events["unmute"], 6);
    assert_eq!(summary.events["screen_off"], 1);
}

#[test]
fn crowded_churn_acts_on_fewer_sessions_instead_of_doubling() {
    // One speaker; two mute events 1 s apart while it is muted for 5 s: the second finds nobody.
    let p = plan(
        "[phases]\njoin = \"0s\"\nsteady = \"20s\"\n[[calls]]\nparticipants = 2\nunmuted = 1\n[[churn]]\naction = \"mute\"\nat = [\"1s\", \"2s\", \"7s\"]\noff_for = \"5s\"\n",
    );
    let mutes: Vec<Duration> = p
        .timeline()
        .iter()
        .filter(|e| e.action == Action::Mute)
        .map(|e| e.at)
        .collect();
    assert_eq!(mutes, [Duration::from_secs(1), Duration::from_secs(7)]);
}

#[test]
fn impairment_groups_take_rounded_down_shares_of_each_call() {
    let p = plan(
        "[[calls]]\ncount = 5\nparticipants = 10\n[[impairment]]\nname = \"a\"\nshare = \"25%\"\n[[impairment]]\nname = \"b\"\nshare = \"10%\"\nloss = \"2%\"\n",
    );
    for call in p.calls() {
        let mut counts = BTreeMap::new();
        for s in call.sessions() {
            *counts.entry(s.impairment()).or_insert(0) += 1;
        }
        // floor(2.5) = 2 in a; floor(3.5) − floor(2.5) = 1 in b; the rest unimpaired.
        assert_eq!(
            counts,
            BTreeMap::from([(None, 7), (Some(0), 2), (Some(1), 1)])
        );
    }
    assert_eq!(p.impairments()[1].loss().millionths(), 20_000);
    // Membership is seeded per call, so not the same participants everywhere.
    let members: BTreeSet<Vec<u32>> = p
        .calls()
        .iter()
        .map(|c| {
            c.sessions()
                .iter()
                .filter(|s| s.impairment().is_some())
                .map(|s| s.index())
                .collect()
        })
        .collect();
    assert!(members.len() > 1);
}

#[test]
fn start_at_is_carried_into_every_shard() {
    let start = UNIX_EPOCH + Duration::from_secs(1_795_348_800);
    let p = Plan::expand(
        &scenario(CI),
        &PlanConfig {
            start_at: Some(start),
        },
    );
    assert_eq!(p.start_at(), Some(start));
    let shard = p.shard(ShardSpec::new(1, nz(3)).unwrap(), nz(500)).unwrap();
    assert_eq!(shard.start_at(), Some(start));
}

#[test]
fn calls_that_fit_stay_whole_and_big_calls_split_by_index() {
    let p =
        plan("[[calls]]\ncount = 6\nparticipants = 8\n[[calls]]\nparticipants = 25\nunmuted = 2\n");
    let shards: Vec<Plan> = (0..3)
        .map(|i| p.shard(ShardSpec::new(i, nz(3)).unwrap(), nz(10)).unwrap())
        .collect();
    for call in 0..6 {
        let holders: Vec<usize> = shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.calls().iter().any(|c| c.index() == call))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(holders.len(), 1, "call {call} is on shards {holders:?}");
        let held = &shards[holders[0]]
            .calls()
            .iter()
            .find(|c| c.index() == call)
            .unwrap();
        assert_eq!(held.sessions().len(), 8);
    }
    // The 25-participant call is cut into 9, 8 and 8 contiguous participants (a shard may hold
    // more than one piece of it); together the shards hold each participant once.
    let mut pieces: Vec<std::ops::Range<u32>> = assign(p.calls(), nz(3), nz(10))
        .into_iter()
        .flatten()
        .filter(|piece| piece.call == 6)
        .map(|piece| piece.participants)
        .collect();
    pieces.sort_by_key(|r| r.start);
    assert_eq!(pieces, [0..9, 9..17, 17..25]);
    let mut held: Vec<u32> = shards
        .iter()
        .flat_map(|s| s.calls().iter().filter(|c| c.index() == 6))
        .flat_map(|c| c.sessions().iter().map(|s| s.index()))
        .collect();
    held.sort();
    assert_eq!(held, (0..25).collect::<Vec<_>>());
    // Roles stay those of the whole call: only participants 0 and 1 speak, wherever they run.
    let speakers: Vec<u32> = shards
        .iter()
        .flat_map(|s| s.sessions())
        .filter(|s| s.roles().speaker)
        .map(|s| s.index())
        .collect();
    assert_eq!(speakers, [0, 1]);
    assert_eq!(Plan::union(&shards).unwrap(), p);
}

#[test]
fn sharding_a_shard_and_overlapping_parts_are_errors() {
    let p = plan(CI);
    let shard = p.shard(ShardSpec::new(0, nz(2)).unwrap(), nz(500)).unwrap();
    assert_eq!(
        shard.shard(ShardSpec::new(0, nz(2)).unwrap(), nz(500)),
        Err(ShardError::AlreadySharded(
            ShardSpec::new(0, nz(2)).unwrap()
        ))
    );
    assert!(matches!(
        Plan::union(&[shard.clone(), shard]),
        Err(ShardError::Overlap { .. })
    ));
    assert_eq!(Plan::union(&[]), Err(ShardError::Empty));
    let other_seed = Plan::expand(&scenario(CI).with_seed(99), &PlanConfig::default());
    assert_eq!(Plan::union(&[p, other_seed]), Err(ShardError::Mismatch));
}

/// A random but valid scenario text.
fn arb_scenario() -> impl Strategy<Value = String> {
    let group = (1u32..12, 1u32..40, 0u32..5, 0u32..3, 0u32..3, any::<bool>()).prop_map(
        |(count, participants, unmuted, video, screen, simulcast)| {
            format!(
                "[[calls]]\ncount = {count}\nparticipants = {participants}\nunmuted = {}\nvideo = {}\nscreen_sharing = {}\nsimulcast = {simulcast}\n",
                unmuted.min(participants),
                video.min(participants),
                screen.min(count)
            )
        },
    );
    (any::<u32>(), prop::collection::vec(group, 1..4), any::<bool>()).prop_map(|(seed, groups, churn)| {
        let mut text = format!("seed = {seed}\n[phases]\njoin = \"7s\"\nsteady = \"30s\"\nleave = \"3s\"\n");
        text.push_str(&groups.concat());
        if churn {
            text.push_str("[[churn]]\naction = \"rejoin\"\nrate = \"0.5/s\"\ntargets = 1\noff_for = \"2s\"\n");
        }
        text.push_str("[[impairment]]\nname = \"slow\"\nshare = \"30%\"\ndelay = \"50ms\"\n");
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shards_union_to_the_whole_plan(text in arb_scenario(), n in 1u32..7, max in 1u32..30) {
        let whole = plan(&text);
        let shards: Vec<Plan> = (0..n)
            .map(|i| whole.shard(ShardSpec::new(i, nz(n)).unwrap(), nz(max)).unwrap())
            .collect();
        // Every session exactly once.
        let mut seen = BTreeSet::new();
        for shard in &shards {
            for s in shard.sessions() {
                prop_assert!(seen.insert((s.call(), s.index())));
            }
        }
        prop_assert_eq!(seen.len(), whole.session_count());
        // The union is the unsharded plan, value for value and byte for byte.
        let union = Plan::union(&shards).unwrap();
        prop_assert_eq!(union.to_json(), whole.to_json());
        prop_assert_eq!(&union, &whole);
        // Calls that fit are whole on one shard; no piece is larger than max.
        for call in whole.calls() {
            let holders = shards.iter().filter(|s| s.calls().iter().any(|c| c.index() == call.index())).count();
            if call.participants() <= max {
                prop_assert_eq!(holders, 1);
            }
        }
        // Greedy dealing keeps loads within one piece of each other.
        let assignment = assign(whole.calls(), nz(n), nz(max));
        let loads: Vec<usize> = assignment.iter().map(|p| p.iter().map(|x| x.participants.len()).sum()).collect();
        let largest = assignment.iter().flatten().map(|p| p.participants.len()).max().unwrap_or(0);
        prop_assert!(largest <= max as usize);
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        prop_assert!(hi - lo <= largest, "loads {:?}, largest piece {}", loads, largest);
        for (shard, pieces) in shards.iter().zip(&assignment) {
            prop_assert_eq!(shard.session_count(), pieces.iter().map(|p| p.participants.len()).sum::<usize>());
        }
    }

    #[test]
    fn expansion_is_deterministic(text in arb_scenario()) {
        prop_assert_eq!(plan(&text).to_json(), plan(&text).to_json());
    }
}
