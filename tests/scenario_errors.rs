//! Every kind of bad scenario input is reported as `path:line:col: message` at the offending key.

use std::path::Path;

use callsbench::scenario::{MediaCheck, Scenario};

/// The error `bad.toml` gets, as the CLI prints it.
fn error(text: &str) -> String {
    match Scenario::from_toml(text, Path::new("bad.toml"), MediaCheck::Skip) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(err) => err.to_string(),
    }
}

const CALL: &str = "[[calls]]\nparticipants = 4\n";

#[test]
fn unknown_top_level_key() {
    let text = format!("seed = 1\ncolour = \"red\"\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:1: unknown field `colour`, expected one of `name`, `description`, `seed`, \
         `phases`, `calls`, `media`, `churn`, `impairment`, `thresholds`, `drain`"
    );
}

#[test]
fn unknown_key_in_a_call_group() {
    let text = "[[calls]]\nparticipants = 4\nunmute = 2\n";
    assert_eq!(
        error(text),
        "bad.toml:3:1: unknown field `unmute`, expected one of `name`, `count`, `participants`, \
         `unmuted`, `video`, `screen_sharing`, `simulcast`, `recordings`"
    );
}

#[test]
fn top_level_key_after_a_table_lands_in_the_table() {
    let text = format!("{CALL}thresholds = [\"loss <= 1%\"]\n");
    assert!(
        error(&text).starts_with("bad.toml:3:1: unknown field `thresholds`"),
        "{}",
        error(&text)
    );
}

#[test]
fn wrong_type() {
    let text = "[[calls]]\nparticipants = \"four\"\n";
    assert_eq!(
        error(text),
        "bad.toml:2:16: invalid type: string \"four\", expected an integer"
    );
}

#[test]
fn wrong_type_for_a_duration() {
    let text = format!("[phases]\nsteady = 20\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:10: invalid type: integer `20`, expected a string"
    );
}

#[test]
fn missing_calls() {
    assert_eq!(error("seed = 1\n"), "bad.toml:1:1: missing field `calls`");
}

#[test]
fn empty_calls() {
    assert_eq!(
        error("calls = []\n"),
        "bad.toml:1:1: expected at least one [[calls]] group"
    );
}

#[test]
fn not_toml() {
    let text = format!("{CALL}[phases\n");
    assert_eq!(error(&text), "bad.toml:3:8: unclosed table, expected `]`");
}

#[test]
fn bad_duration_string() {
    let text = format!("[phases]\nsteady = \"20 parsecs\"\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:1: steady: expected a duration like \"30s\", \"2m\", \"500ms\" or \"1m30s\", \
         found the unknown unit \"parsecs\" in \"20 parsecs\" (units: h, m, s, ms, us)"
    );
}

#[test]
fn duration_without_unit() {
    let text = format!("[phases]\n  join = \"30\"\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:3: join: expected a duration like \"30s\", \"2m\", \"500ms\" or \"1m30s\", \
         found \"30\" (the number 30 has no unit), or a rate like \"5/s\""
    );
}

#[test]
fn zero_steady_window() {
    let text = format!("[phases]\nsteady = \"0s\"\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:1: steady: expected a duration longer than 0s (the measurement window)"
    );
}

#[test]
fn negative_duration() {
    let text = format!("[phases]\nsettle = \"-5s\"\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:1: settle: expected a duration like \"30s\", \"2m\", \"500ms\" or \"1m30s\", \
         found the negative value \"-5s\""
    );
}

#[test]
fn unmuted_above_participants() {
    let text = "[[calls]]\ncount = 2\nparticipants = 4\nunmuted = 5\n";
    assert_eq!(
        error(text),
        "bad.toml:4:1: unmuted (5) must not exceed participants per call (4)"
    );
}

#[test]
fn video_above_participants() {
    let text = "[[calls]]\nparticipants = 4\nvideo = 9\n";
    assert_eq!(
        error(text),
        "bad.toml:3:1: video (9) must not exceed participants per call (4)"
    );
}

#[test]
fn screen_calls_above_calls() {
    let text = "[[calls]]\ncount = 3\nparticipants = 4\nscreen_sharing = 4\n";
    assert_eq!(
        error(text),
        "bad.toml:4:1: screen_sharing (4) counts calls and must not exceed count (3)"
    );
}

#[test]
fn zero_participants() {
    let text = "[[calls]]\nparticipants = 0\n";
    assert_eq!(
        error(text),
        "bad.toml:2:1: participants: expected an integer from 1 to 4294967295, found 0"
    );
}

#[test]
fn negative_count() {
    let text = "[[calls]]\ncount = -3\nparticipants = 2\n";
    assert_eq!(
        error(text),
        "bad.toml:2:1: count: expected an integer from 1 to 4294967295, found -3"
    );
}

#[test]
fn negative_seed() {
    let text = format!("seed = -1\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:1:1: expected a non-negative integer seed, found -1"
    );
}

#[test]
fn too_many_sessions() {
    let text = "[[calls]]\ncount = 1001\nparticipants = 1000\n";
    assert_eq!(
        error(text),
        "bad.toml:2:1: the scenario expands to 1001000 sessions or more; at most 1000000 are supported"
    );
}

#[test]
fn bad_threshold_metric() {
    let text = format!("thresholds = [\"loss <= 1%\", \"join_latency.p99 <= 3s\"]\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:1:29: unknown metric \"join_latency.p99\", expected one of: join_time.<stat>, \
         first_media.<stat>, latency.<stat>, jitter.<stat> (stat: p50, p90, p95, p99, p999, max, \
         mean), loss, join_failures, disconnects"
    );
}

#[test]
fn threshold_value_in_the_wrong_unit() {
    let text = format!("thresholds = [\n  \"loss <= 3s\",\n]\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:2:3: loss is a percentage: expected a percentage like \"1%\" or \"0.5%\" \
         (0% to 100%), found \"3s\" (missing the % sign)"
    );
}

#[test]
fn threshold_with_a_bad_comparator() {
    let text = format!("thresholds = [\"join_time.p99 == 3s\"]\n{CALL}");
    assert_eq!(
        error(&text),
        "bad.toml:1:15: unknown comparator \"==\" in \"join_time.p99 == 3s\", expected one of: < <= > >="
    );
}

#[test]
fn negative_loss() {
    let text = format!("{CALL}\n[[impairment]]\nname = \"bad\"\nshare = \"50%\"\nloss = \"-1%\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:7:1: loss: expected a percentage like \"1%\" or \"0.5%\" (0% to 100%), \
         found the negative value \"-1%\""
    );
}

#[test]
fn percentage_without_percent_sign() {
    let text = format!("{CALL}[[impairment]]\nname = \"x\"\nshare = 0.5\n");
    assert_eq!(
        error(&text),
        "bad.toml:5:9: invalid type: floating point `0.5`, expected a string"
    );
    let text = format!("{CALL}[[impairment]]\nname = \"x\"\nshare = \"50\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:5:1: share: expected a percentage like \"1%\" or \"0.5%\" (0% to 100%), \
         found \"50\" (missing the % sign)"
    );
}

#[test]
fn impairment_shares_above_100_percent() {
    let text = format!(
        "{CALL}[[impairment]]\nname = \"a\"\nshare = \"60%\"\n[[impairment]]\nname = \"b\"\nshare = \"50%\"\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:8:1: share: the impairment groups' shares add up to more than 100%"
    );
}

#[test]
fn duplicate_impairment_name() {
    let text = format!(
        "{CALL}[[impairment]]\nname = \"a\"\nshare = \"10%\"\n[[impairment]]\nname = \"a\"\nshare = \"10%\"\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:7:1: name: impairment group \"a\" is defined twice"
    );
}

#[test]
fn bad_enum_value() {
    let text = format!("{CALL}[phases]\norder = \"random\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:4:9: unknown variant `random`, expected one of `shuffled`, `by_call`, `round_robin`"
    );
}

#[test]
fn both_join_and_join_steps() {
    let text = format!(
        "{CALL}[phases]\njoin = \"10s\"\njoin_steps = [{{ over = \"10s\", to = \"100%\" }}]\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:5:1: give either join or join_steps, not both"
    );
}

#[test]
fn ramp_steps_that_stop_short() {
    let text = format!("{CALL}[phases]\njoin_steps = [{{ over = \"10s\", to = \"90%\" }}]\n");
    assert_eq!(
        error(&text),
        "bad.toml:4:1: join_steps: the last step ends at 90%; a ramp must end at 100%"
    );
}

#[test]
fn ramp_steps_that_go_down() {
    let text = format!(
        "{CALL}[phases]\nleave_steps = [\n  {{ over = \"5s\", to = \"60%\" }},\n  {{ over = \"5s\", to = \"40%\" }},\n  {{ over = \"5s\", to = \"100%\" }},\n]\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:6:18: leave_steps: step 1 goes down from 60% to 40%; ramp shares must not decrease"
    );
}

#[test]
fn bad_rate() {
    let text = format!("{CALL}[phases]\njoin = \"5/d\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:4:1: join: expected a rate like \"5/s\", \"0.5/s\" or \"30/m\", found the unknown unit \"d\" (units: s, m, h)"
    );
}

#[test]
fn churn_without_eligible_sessions() {
    let text = format!("{CALL}[[churn]]\naction = \"mute\"\nat = [\"1s\"]\noff_for = \"1s\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:4:1: mute churn has nothing to act on: no session is unmuted"
    );
}

#[test]
fn churn_that_outlasts_the_steady_window() {
    let text = "[[calls]]\nparticipants = 4\nunmuted = 1\n[[churn]]\naction = \"mute\"\n\
                at = [\"10s\", \"59s\"]\noff_for = \"5s\"\n";
    assert_eq!(
        error(text),
        "bad.toml:6:14: at: 59s plus off_for 5s ends after the steady phase (1m); churn must revert before leaving starts"
    );
}

#[test]
fn churn_with_both_at_and_rate() {
    let text = format!(
        "{CALL}[[churn]]\naction = \"rejoin\"\nat = [\"1s\"]\nrate = \"1/s\"\noff_for = \"1s\"\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:6:1: give either at or rate, not both"
    );
}

#[test]
fn churn_with_neither_at_nor_rate() {
    let text = format!("{CALL}[[churn]]\naction = \"rejoin\"\noff_for = \"1s\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:4:1: churn needs `at` (a list of times) or `rate` (events per second)"
    );
}

#[test]
fn churn_with_too_many_targets() {
    let text = format!(
        "{CALL}[[churn]]\naction = \"rejoin\"\nrate = \"1/s\"\ntargets = 5\noff_for = \"1s\"\n"
    );
    assert_eq!(
        error(&text),
        "bad.toml:6:1: targets (5) exceeds the 4 sessions rejoin churn can act on"
    );
}

#[test]
fn churn_with_zero_off_for() {
    let text = format!("{CALL}[[churn]]\naction = \"rejoin\"\nrate = \"1/s\"\noff_for = \"0s\"\n");
    assert_eq!(
        error(&text),
        "bad.toml:6:1: off_for: expected a duration longer than 0s"
    );
}

#[test]
fn quoted_keys_are_located_too() {
    let text = "[[calls]]\n\"participants\" = 2\n\"unmuted\" = 3\n";
    assert_eq!(
        error(text),
        "bad.toml:3:1: unmuted (3) must not exceed participants per call (2)"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "description = \"é\" ; bad\n[[calls]]\nparticipants = 1\n";
    // `;` is the 19th character of the line but its 20th byte.
    assert_eq!(
        error(text),
        "bad.toml:1:19: unexpected key or value, expected newline, `#`"
    );
}

#[test]
fn missing_media_points_at_the_role_that_needs_it() {
    let dir =
        std::env::temp_dir().join(format!("callsbench-scenario-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.toml");
    let text = "[[calls]]\nparticipants = 4\nunmuted = 1\n";
    let err = Scenario::from_toml(text, &path, MediaCheck::Require).unwrap_err();
    let expected = format!(
        "{}:3:1: speech file {} does not exist",
        path.display(),
        dir.join("media").join("speech-97.ogg").display()
    );
    assert_eq!(err.to_string(), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn media_is_checked_only_for_the_roles_present() {
    let dir =
        std::env::temp_dir().join(format!("callsbench-scenario-roles-{}", std::process::id()));
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    for name in ["speech-97.ogg", "conversation.ogg", "screen.ivf"] {
        std::fs::write(media.join(name), b"").unwrap();
    }
    let path = dir.join("s.toml");
    // Speech and a plain screen share: both present.
    let plain = "[[calls]]\nparticipants = 4\nunmuted = 1\nscreen_sharing = 1\n";
    let scenario = Scenario::from_toml(plain, &path, MediaCheck::Require).unwrap();
    assert_eq!(scenario.media().screen(), media.join("screen.ivf"));
    // Simulcast needs the l and h layers, which are missing: blamed on screen_sharing.
    let simulcast = "[[calls]]\nparticipants = 4\nscreen_sharing = 1\nsimulcast = true\n";
    let err = Scenario::from_toml(simulcast, &path, MediaCheck::Require).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:1: screen_low file {} does not exist",
            path.display(),
            media.join("screen_l.ivf").display()
        )
    );
    // An explicit file that is missing is blamed on its own key.
    let explicit = "[media]\ncamera = \"cam.ivf\"\n[[calls]]\nparticipants = 2\nvideo = 1\n";
    let err = Scenario::from_toml(explicit, &path, MediaCheck::Require).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:1: camera file {} does not exist",
            path.display(),
            media.join("cam.ivf").display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
