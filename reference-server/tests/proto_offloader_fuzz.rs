//! Robustness of every offloader decoder on hostile input, and round-trip properties.
//!
//! A seeded generator feeds 100 000 byte strings (half raw random bytes, half JSON-token soup) to
//! each decoder: none may panic, every failure must be a typed error with a non-empty Go text, and
//! whatever decodes must re-encode to bytes that decode to the same value.

use callsref::proto::offloader::gowrite::{fmt_float, go_quote, json_float};
use callsref::proto::offloader::http::{
    Credentials, UnregisterRequest, VersionInfo, client_error, is_valid_job_id,
};
use callsref::proto::offloader::{
    AnyValue, Config, DecodeError, InputData, Job, ServiceConfig, decode_string_map,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "0",
    "-",
    ".",
    "e",
    "E+",
    "1e400",
    "true",
    "tru",
    "null",
    "false",
    " ",
    "\n",
    "\u{0}",
    "\u{ff}",
    "é",
    "x",
    "\"type\":",
    "\"TYPE\":",
    "\"max_duration_sec\":",
    "\"input_data\":",
    "\"Runners\":",
    "\"clientID\":",
    "\"authKey\":",
    "\"id\":",
    "\"start_at\":",
    "1.5",
    "\"s\"",
    "01",
    "-0",
    "1e3",
    "[]",
    "{}",
    "9223372036854775808",
];

fn random_input(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..48);
    if rng.random_bool(0.5) {
        (0..len).map(|_| rng.random()).collect()
    } else {
        let mut out = Vec::new();
        for _ in 0..len / 2 {
            out.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes());
        }
        out
    }
}

fn check_err(e: &DecodeError) {
    let text = e.to_string();
    assert!(!text.is_empty());
    match e {
        DecodeError::Syntax(s) => assert!(s.starts_with("invalid character '"), "{s}"),
        DecodeError::Type(t) => {
            assert!(t.to_string().starts_with("json: cannot unmarshal "), "{t}")
        }
        DecodeError::Eof | DecodeError::UnexpectedEof | DecodeError::TooLarge => {}
    }
}

/// `None` and an empty map encode the same (omitempty), so compare modulo that.
fn normalize(mut c: Config) -> Config {
    if c.input_data.as_ref().is_some_and(InputData::is_empty) {
        c.input_data = None;
    }
    c
}

#[test]
fn seeded_random_bytes_never_panic_any_decoder() {
    let mut rng = StdRng::seed_from_u64(0x0ff1_0ade);
    let (mut ok, mut err) = (0u32, 0u32);
    for _ in 0..100_000 {
        let input = random_input(&mut rng);
        match Config::decode(&input) {
            Ok(c) => {
                ok += 1;
                let again =
                    Config::decode(c.to_go_json().as_bytes()).expect("our own encoding decodes");
                assert_eq!(
                    normalize(again),
                    normalize(c),
                    "{:?}",
                    String::from_utf8_lossy(&input)
                );
            }
            Err(e) => {
                err += 1;
                check_err(&e);
            }
        }
        match ServiceConfig::decode(&input) {
            Ok(c) => assert_eq!(ServiceConfig::decode(c.to_go_json().as_bytes()), Ok(c)),
            Err(e) => check_err(&e),
        }
        match Job::decode(&input) {
            Ok(j) => {
                let again =
                    Job::decode(j.to_go_json().as_bytes()).expect("our own encoding decodes");
                assert_eq!(again.to_go_json(), j.to_go_json());
            }
            Err(e) => check_err(&e),
        }
        match Credentials::decode(&input) {
            Ok(c) => assert_eq!(Credentials::decode(c.to_request_body().as_bytes()), Ok(c)),
            Err(e) => check_err(&e),
        }
        match UnregisterRequest::decode(&input) {
            Ok(c) => assert_eq!(
                UnregisterRequest::decode(c.to_request_body().as_bytes()),
                Ok(c)
            ),
            Err(e) => check_err(&e),
        }
        match VersionInfo::decode(&input) {
            Ok(v) => assert_eq!(VersionInfo::decode(v.to_response_body().as_bytes()), Ok(v)),
            Err(e) => check_err(&e),
        }
        if let Err(e) = decode_string_map(&input) {
            check_err(&e);
        }
        assert!(!client_error(400, &input).to_string().is_empty());
    }
    // The generator must reach both outcomes, or the test proves little.
    assert!(ok > 500 && err > 50_000, "ok={ok} err={err}");
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue::null()),
        any::<bool>().prop_map(AnyValue::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(AnyValue::from),
        ".{0,12}".prop_map(AnyValue::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::array),
            prop::collection::vec((".{0,6}", inner), 0..4).prop_map(AnyValue::object),
        ]
    })
}

fn config() -> impl Strategy<Value = Config> {
    (
        ".{0,16}",
        any::<i64>(),
        ".{0,24}",
        prop::option::of(prop::collection::btree_map(".{0,8}", any_value(), 0..4)),
    )
        .prop_map(|(job_type, max_duration_sec, runner, data)| Config {
            job_type,
            max_duration_sec,
            runner,
            input_data: data.map(InputData),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn config_round_trips_through_go_json(c in config()) {
        let body = c.to_request_body();
        prop_assert_eq!(normalize(Config::decode(body.as_bytes()).unwrap()), normalize(c));
    }

    #[test]
    fn job_round_trips_through_go_json(c in config(), id in "[a-z0-9]{12}", start in any::<i64>(), stop in any::<i64>()) {
        let job = Job { config: normalize(c), id, start_at: start, stop_at: stop, output_data: None };
        let again = Job::decode(job.to_response_body().as_bytes()).unwrap();
        prop_assert_eq!(again, job);
    }

    #[test]
    fn floats_print_shortest_round_trip(x in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        prop_assert_eq!(json_float(x).parse::<f64>().unwrap().to_bits(), x.to_bits());
        prop_assert_eq!(fmt_float(x).parse::<f64>().unwrap().to_bits(), x.to_bits());
    }

    #[test]
    fn quote_leaves_plain_ascii_alone(s in "[ !#-\\[\\]-~]{0,32}") {
        prop_assert_eq!(go_quote(&s), format!("\"{s}\""));
    }

    #[test]
    fn arbitrary_bytes_decode_to_typed_results(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(e) = Config::decode(&bytes) { check_err(&e) }
        if let Err(e) = ServiceConfig::decode(&bytes) { check_err(&e) }
        if let Err(e) = Credentials::decode(&bytes) { check_err(&e) }
        if let Err(e) = Job::decode(&bytes) { check_err(&e) }
    }

    #[test]
    fn job_id_rule_is_the_router_pattern(id in "[a-zA-Z0-9_-]{0,30}") {
        let want = (12..=26).contains(&id.len()) && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        prop_assert_eq!(is_valid_job_id(&id), want);
    }
}
