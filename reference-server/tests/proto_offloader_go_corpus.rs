//! Differential test against Go 1.23.6's `encoding/json` (the offloader's pinned toolchain).
//!
//! `fixtures/offloader_go_decode.tsv` was produced by a small Go program that decodes each input
//! with `json.NewDecoder(..).Decode(&v)` into types shaped like upstream's `job.Config`, `job.Job`,
//! `job.ServiceConfig`, `public.VersionInfo` and the handlers' `map[string]string` (and `job.Config`
//! behind `http.MaxBytesReader` with a 16-byte limit), and records the error text or the
//! re-encoded value (`json.Marshal`) plus the sorted `KEY=%v` env of `input_data`. Inputs are hand
//! seeds plus seeded random mutations (truncations, stray tokens, bad bytes, case-folded keys).
//! Columns: target, hex(input), OK|ERR, json-or-error, hex(env joined by '\n').

use callsref::proto::offloader::gowrite::push_json_string;
use callsref::proto::offloader::http::{Credentials, VersionInfo};
use callsref::proto::offloader::{
    Config, Job, ServiceConfig, decode_string_map, input_data_to_env,
};

const CORPUS: &str = include_str!("fixtures/offloader_go_decode.tsv");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `Ok((json, env))` or `Err(text)` for one target, as this crate decodes it.
fn ours(target: &str, input: &[u8]) -> Result<(String, Vec<String>), String> {
    match target {
        "config" => Config::decode_limited(input, None).map(|c| {
            let env = c
                .input_data
                .as_ref()
                .map(input_data_to_env)
                .unwrap_or_default();
            (c.to_go_json(), env)
        }),
        // `http.MaxBytesReader(body, 16)`: the 1 MiB rule at a size the corpus can hold.
        "config16" => Config::decode_limited(input, Some(16)).map(|c| (c.to_go_json(), Vec::new())),
        "version" => VersionInfo::decode(input).map(|v| {
            let body = v.to_response_body();
            (body.trim_end().to_owned(), Vec::new())
        }),
        "job" => Job::decode(input).map(|j| (j.to_go_json(), Vec::new())),
        "init" => ServiceConfig::decode(input).map(|c| (c.to_go_json(), Vec::new())),
        "map" => decode_string_map(input).map(|m| {
            let mut out = String::from("{");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, k);
                out.push(':');
                push_json_string(&mut out, v);
            }
            out.push('}');
            (out, Vec::new())
        }),
        other => panic!("unknown target {other}"),
    }
    .map_err(|e| e.to_string())
}

#[test]
fn decoding_matches_go_on_corpus() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in CORPUS.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (target, input) = (cols[0], unhex(cols[1]));
        let got = ours(target, &input);
        let ok = match (cols[2], &got) {
            ("ERR", Err(text)) => text == cols[3],
            ("OK", Ok((json, env))) => {
                let want_env = String::from_utf8(unhex(cols[4])).unwrap();
                // A top-level `null` makes Go's map nil (re-encoded as `null`); the handlers only
                // look keys up in it, so an empty map is the same to them.
                let want = if target == "map" && cols[3] == "null" {
                    "{}"
                } else {
                    cols[3]
                };
                json == want && env.join("\n") == want_env
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {target} {:?}\n  go:   {} {}\n  ours: {got:?}",
                n + 1,
                String::from_utf8_lossy(&input),
                cols[2],
                cols[3]
            ));
        }
        checked += 1;
    }
    assert!(checked > 1900, "corpus too small: {checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn credentials_read_the_map_keys_exactly() {
    // The map decoding is case-sensitive: "clientid" is another key.
    let c = Credentials::decode(br#"{"clientID":null,"authKey":"k","clientid":"x"}"#).unwrap();
    assert_eq!((c.client_id.as_str(), c.auth_key.as_str()), ("", "k"));
}

/// `fixtures/offloader_go_validate.tsv`: upstream's own `public/job` package (v0.9.5, built with Go
/// 1.23.6) run on registries × runners (`RunnerIsValid`), configs (`Config.IsValid`) and init bodies
/// (`ServiceConfig.IsValid`). `PANIC` marks a registry that is not a valid regex.
/// Columns: kind, hex(registry), input, OK|ERR|PANIC, message.
const VALIDATE: &str = include_str!("fixtures/offloader_go_validate.tsv");

fn unhex_str(s: &str) -> Option<String> {
    String::from_utf8(unhex(s)).ok()
}

#[test]
fn validation_matches_upstream_on_corpus() {
    use callsref::proto::offloader::{RunnerError, RunnerPolicy, ServiceConfigError};
    let mut failures = Vec::new();
    let mut checked = 0;
    // Compiling the patterns dominates in debug builds: one policy per registry.
    let mut policies = std::collections::HashMap::new();
    for (n, line) in VALIDATE.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        let registry = unhex_str(cols[1]).unwrap();
        let policy = policies
            .entry(registry.clone())
            .or_insert_with(|| RunnerPolicy::new(registry.as_str()));
        // Rust strings cannot hold the invalid UTF-8 some Go inputs have; JSON decoding would
        // already have replaced it, so those rows do not apply.
        let got: Option<Result<(), String>> = match cols[0] {
            "runner" => unhex_str(cols[2]).map(|r| {
                policy.check_runner(&r).map_err(|e| match e {
                    RunnerError::InvalidRegistryPattern { .. } => "PANIC".to_owned(),
                    e => e.to_string(),
                })
            }),
            "config" => {
                let parts: Vec<&str> = cols[2].split('|').collect();
                match (unhex_str(parts[0]), unhex_str(parts[2])) {
                    (Some(job_type), Some(runner)) => {
                        let c = Config {
                            job_type,
                            max_duration_sec: parts[1].parse().unwrap(),
                            runner,
                            input_data: None,
                        };
                        Some(policy.check_config(&c).map(|_| ()).map_err(|e| match e {
                            callsref::proto::offloader::ConfigError::Runner(
                                RunnerError::InvalidRegistryPattern { .. },
                            ) => "PANIC".to_owned(),
                            e => e.to_string(),
                        }))
                    }
                    _ => None,
                }
            }
            "init" => {
                // "<count>|<hex>,<hex>,…"
                let (count, list) = cols[2].split_once('|').unwrap();
                let runners: Option<Vec<String>> = match count.parse::<usize>().unwrap() {
                    0 => Some(Vec::new()),
                    _ => list.split(',').map(unhex_str).collect(),
                };
                runners.map(|rs| {
                    let c = ServiceConfig {
                        runners: if rs.is_empty() { None } else { Some(rs) },
                    };
                    policy.check_service_config(&c).map_err(|e| match e {
                        ServiceConfigError::Runner(RunnerError::InvalidRegistryPattern {
                            ..
                        }) => "PANIC".to_owned(),
                        e => e.to_string(),
                    })
                })
            }
            other => panic!("unknown kind {other}"),
        };
        let Some(got) = got else { continue };
        checked += 1;
        let ok = match (cols[3], &got) {
            ("OK", Ok(())) => true,
            ("ERR", Err(text)) => text == cols[4],
            ("PANIC", Err(text)) => text == "PANIC",
            _ => false,
        };
        if !ok {
            failures.push(format!("line {}: {line}\n  ours: {got:?}", n + 1));
        }
    }
    assert!(checked > 1400, "corpus too small: {checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
