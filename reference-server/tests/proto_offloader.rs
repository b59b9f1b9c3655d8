//! The calls-offloader wire formats held to the spec (shared/specs/offloader.md), not to our own
//! encoder: hand-written golden bytes, Go decoding quirks, the env conversion and routing. The error
//! texts and the validation order are in `proto_offloader_errors.rs`.

use callsref::proto::offloader::error::StatusError;
use callsref::proto::offloader::http::{
    Credentials, UnregisterRequest, VersionInfo, error_envelope, login_success_body,
    register_success_body,
};
use callsref::proto::offloader::{
    AnyValue, ApiError, AuthError, Config, ConfigError, DecodeError, InputData, Job, JobType,
    RunnerError, ServiceConfig, input_data_to_env,
};

const REC: &str = "mattermost/calls-recorder:v0.8.13";
const TR: &str = "mattermost/calls-transcriber:v0.7.2";

fn config(job_type: &str, max: i64, runner: &str) -> Config {
    Config {
        job_type: job_type.into(),
        max_duration_sec: max,
        runner: runner.into(),
        input_data: None,
    }
}

fn decode_err(body: &[u8]) -> String {
    ApiError::Decode(Config::decode(body).unwrap_err()).to_string()
}

// ---------------------------------------------------------------------------------------------
// Golden bytes (§1.2, §1.3, §2.1)

#[test]
fn golden_job_response_has_go_field_order_and_trailing_newline() {
    let mut data = InputData::new();
    data.insert("site_url", "http://x");
    data.insert("call_id", "abc");
    data.insert("video_rate", 1500.0);
    let job = Job::new(
        Config::new(JobType::Recording, 3600, REC, data),
        "d80ca23551da",
        1732270000000,
    );
    assert_eq!(
        job.to_response_body(),
        "{\"type\":\"recording\",\"max_duration_sec\":3600,\"runner\":\"mattermost/calls-recorder:v0.8.13\",\
         \"input_data\":{\"call_id\":\"abc\",\"site_url\":\"http://x\",\"video_rate\":1500},\
         \"id\":\"d80ca23551da\",\"start_at\":1732270000000}\n"
    );
}

#[test]
fn golden_stopped_job_shows_stop_at_after_start_at() {
    let mut job = Job::new(config("transcribing", 7200, TR), "0123456789ab", 5);
    job.stop_at = 9;
    assert_eq!(
        job.to_go_json(),
        r#"{"type":"transcribing","max_duration_sec":7200,"runner":"mattermost/calls-transcriber:v0.7.2","id":"0123456789ab","start_at":5,"stop_at":9}"#
    );
    assert!(!job.is_running());
}

#[test]
fn golden_empty_input_and_output_data_are_omitted() {
    let mut job = Job::new(config("recording", 1, "r"), "0123456789ab", 1);
    job.config.input_data = Some(InputData::new());
    job.output_data = Some(InputData::new());
    assert_eq!(
        job.to_go_json(),
        r#"{"type":"recording","max_duration_sec":1,"runner":"r","id":"0123456789ab","start_at":1}"#
    );
}

#[test]
fn golden_input_data_echo_is_float64_and_html_escaped() {
    let c = Config::decode(br#"{"type":"recording","input_data":{"n":3.0,"big":12345678901234567890,"e":1e21,"s":"<a&b>"}}"#)
        .unwrap();
    assert_eq!(
        c.to_go_json(),
        r#"{"type":"recording","max_duration_sec":0,"runner":"","input_data":{"big":12345678901234567000,"e":1e+21,"n":3,"s":"\u003ca\u0026b\u003e"}}"#
    );
}

#[test]
fn golden_error_envelope_code_is_a_string() {
    assert_eq!(
        error_envelope(401, "authentication failed"),
        "{\"code\":\"401\",\"error\":\"authentication failed\"}\n"
    );
    assert_eq!(
        AuthError::InvalidHeader.envelope(),
        "{\"code\":\"401\",\"error\":\"authentication failed: invalid auth header\"}\n"
    );
}

#[test]
fn golden_error_envelope_escapes_quotes_and_html() {
    let err = ApiError::from(ConfigError::Runner(RunnerError::NoMatch("<x>".into())));
    assert_eq!(
        err.envelope(),
        "{\"code\":\"400\",\"error\":\"invalid Runner value: failed to validate runner \\\"\\u003cx\\u003e\\\"\"}\n"
    );
}

#[test]
fn golden_register_and_login_success_bodies() {
    assert_eq!(
        register_success_body("x"),
        "{\"clientID\":\"x\",\"code\":\"201\"}\n"
    );
    assert_eq!(
        login_success_body("tok"),
        "{\"bearerToken\":\"tok\",\"code\":\"200\"}\n"
    );
}

#[test]
fn success_bodies_read_back_as_the_go_client_reads_them() {
    use callsref::proto::offloader::http::{decode_login_response, decode_register_response};
    assert_eq!(
        decode_login_response(login_success_body("t0k").as_bytes()),
        Ok("t0k".to_owned())
    );
    assert_eq!(
        decode_register_response(register_success_body("c").as_bytes()),
        Ok("c".to_owned())
    );
    assert_eq!(
        decode_login_response(b"{\"code\":200}")
            .unwrap_err()
            .to_string(),
        "json: cannot unmarshal number into Go value of type string"
    );
}

#[test]
fn golden_version_body() {
    let v = VersionInfo {
        build_date: "2026-03-06".into(),
        build_version: "v0.9.5".into(),
        build_hash: "9ad35ec".into(),
        go_version: "go1.23.6".into(),
    };
    assert_eq!(
        v.to_response_body(),
        "{\"buildDate\":\"2026-03-06\",\"buildVersion\":\"v0.9.5\",\"buildHash\":\"9ad35ec\",\"goVersion\":\"go1.23.6\"}\n"
    );
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        v.to_response_body().trim_end()
    );
}

#[test]
fn golden_client_request_bodies() {
    assert_eq!(
        Credentials::new("c", "k").to_request_body(),
        "{\"authKey\":\"k\",\"clientID\":\"c\"}\n"
    );
    assert_eq!(
        UnregisterRequest {
            client_id: "c".into()
        }
        .to_request_body(),
        "{\"clientID\":\"c\"}\n"
    );
    assert_eq!(
        ServiceConfig::new([REC, TR]).to_request_body(),
        format!("{{\"Runners\":[\"{REC}\",\"{TR}\"]}}\n")
    );
    assert_eq!(ServiceConfig::default().to_go_json(), "{\"Runners\":null}");
    assert_eq!(
        config("recording", 60, REC).to_request_body(),
        format!("{{\"type\":\"recording\",\"max_duration_sec\":60,\"runner\":\"{REC}\"}}\n")
    );
}

#[test]
fn constants_match_upstream() {
    use callsref::proto::offloader::*;
    assert_eq!(MIN_SUPPORTED_RECORDER_VERSION, "0.6.0");
    assert_eq!(MIN_SUPPORTED_TRANSCRIBER_VERSION, "0.1.0");
    assert_eq!(RECORDING_JOB_PREFIX, "calls-recorder");
    assert_eq!(TRANSCRIBING_JOB_PREFIX, "calls-transcriber");
    assert_eq!(IMAGE_REGISTRY_DEFAULT, "mattermost");
    assert_eq!(INPUT_DATA_SITE_URL_KEY, "site_url");
    assert_eq!(REQUEST_BODY_LIMIT, 1 << 20);
    assert_eq!(JobType::Transcribing.prefix(), "calls-transcriber");
    assert_eq!(JobType::parse("Recording"), None);
}

// ---------------------------------------------------------------------------------------------
// Go decoding quirks (§1.1, §1.5, §2.2)

#[test]
fn decode_empty_body_is_eof() {
    assert_eq!(decode_err(b""), "failed to decode request body: EOF");
    assert_eq!(decode_err(b" \r\n\t"), "failed to decode request body: EOF");
}

#[test]
fn decode_cut_body_is_unexpected_eof() {
    assert_eq!(
        decode_err(br#"{"type":"rec"#),
        "failed to decode request body: unexpected EOF"
    );
}

#[test]
fn decode_string_duration() {
    assert_eq!(
        decode_err(br#"{"max_duration_sec":"60"}"#),
        "failed to decode request body: json: cannot unmarshal string into Go struct field Config.max_duration_sec of type int64"
    );
}

#[test]
fn decode_fractional_duration() {
    assert_eq!(
        decode_err(br#"{"max_duration_sec":1.5}"#),
        "failed to decode request body: json: cannot unmarshal number 1.5 into Go struct field Config.max_duration_sec of type int64"
    );
}

#[test]
fn decode_overflowing_duration() {
    assert_eq!(
        decode_err(br#"{"max_duration_sec":9223372036854775808}"#),
        "failed to decode request body: json: cannot unmarshal number 9223372036854775808 into Go struct field Config.max_duration_sec of type int64"
    );
}

#[test]
fn decode_number_type() {
    assert_eq!(
        decode_err(br#"{"type":1}"#),
        "failed to decode request body: json: cannot unmarshal number into Go struct field Config.type of type job.Type"
    );
}

#[test]
fn decode_bool_runner() {
    assert_eq!(
        decode_err(br#"{"runner":true}"#),
        "failed to decode request body: json: cannot unmarshal bool into Go struct field Config.runner of type string"
    );
}

#[test]
fn decode_array_input_data() {
    assert_eq!(
        decode_err(br#"{"input_data":[]}"#),
        "failed to decode request body: json: cannot unmarshal array into Go struct field Config.input_data of type job.InputData"
    );
}

#[test]
fn decode_top_level_array() {
    assert_eq!(
        decode_err(b"[]"),
        "failed to decode request body: json: cannot unmarshal array into Go value of type job.Config"
    );
}

#[test]
fn decode_syntax_error_text() {
    assert_eq!(
        decode_err(br#"{"type" "x"}"#),
        "failed to decode request body: invalid character '\"' after object key"
    );
    assert_eq!(
        decode_err(b"{'type':1}"),
        "failed to decode request body: invalid character '\\'' looking for beginning of object key string"
    );
    assert_eq!(
        decode_err(br#"{"a":tru}"#),
        "failed to decode request body: invalid character '}' in literal true (expecting 'e')"
    );
}

#[test]
fn decode_body_over_one_mib_is_too_large() {
    let mut body = br#"{"type":"recording","input_data":{"pad":""#.to_vec();
    body.resize((1 << 20) + 10, b'a');
    body.extend_from_slice(br#""}}"#);
    assert_eq!(
        decode_err(&body),
        "failed to decode request body: http: request body too large"
    );
    let init = ServiceConfig::decode(&body).unwrap_err();
    assert_eq!(init, DecodeError::TooLarge);
}

#[test]
fn decode_value_complete_within_limit_ignores_the_rest() {
    // Go reads only as far as the first value needs; trailing megabytes are never read.
    let mut body = br#"{"type":"recording"}"#.to_vec();
    body.resize(3 << 20, b'x');
    assert_eq!(Config::decode(&body).unwrap().job_type, "recording");
}

#[test]
fn decode_syntax_error_inside_limit_wins_over_too_large() {
    let mut body = br#"{"type":"recording",,"#.to_vec();
    body.resize(2 << 20, b' ');
    assert_eq!(
        decode_err(&body),
        "failed to decode request body: invalid character ',' looking for beginning of object key string"
    );
}

#[test]
fn decode_keys_are_case_insensitive() {
    let c = Config::decode(
        br#"{"TYPE":"recording","Max_Duration_Sec":60,"RUNNER":"r","Input_Data":{"Site_URL":"u"}}"#,
    )
    .unwrap();
    assert_eq!(
        (c.job_type.as_str(), c.max_duration_sec, c.runner.as_str()),
        ("recording", 60, "r")
    );
    // Keys INSIDE input_data are map keys: kept as sent.
    assert_eq!(
        c.input_data
            .unwrap()
            .get("Site_URL")
            .and_then(AnyValue::as_str),
        Some("u")
    );
}

#[test]
fn decode_unknown_keys_are_ignored() {
    let c =
        Config::decode(br#"{"status":{"deep":[1,2,{"x":null}]},"type":"recording","extra":"y"}"#)
            .unwrap();
    assert_eq!(c.job_type, "recording");
}

#[test]
fn decode_trailing_bytes_are_ignored() {
    assert_eq!(
        Config::decode(br#"{"type":"recording"} garbage {"type":"x"}"#)
            .unwrap()
            .job_type,
        "recording"
    );
    assert_eq!(
        Config::decode(br#"{"type":"recording"}}}"#)
            .unwrap()
            .job_type,
        "recording"
    );
}

#[test]
fn decode_later_syntax_error_beats_earlier_type_error() {
    assert_eq!(
        decode_err(br#"{"type":1,"runner":x}"#),
        "failed to decode request body: invalid character 'x' looking for beginning of value"
    );
}

#[test]
fn decode_register_keys_are_case_sensitive() {
    let c = Credentials::decode(br#"{"ClientID":"a","authKey":"k"}"#).unwrap();
    assert_eq!((c.client_id.as_str(), c.auth_key.as_str()), ("", "k"));
}

#[test]
fn decode_job_as_client() {
    let j = Job::decode(b"{\"type\":\"recording\",\"max_duration_sec\":60,\"runner\":\"r\",\"id\":\"d80ca23551da\",\"start_at\":1,\"stop_at\":2}\n").unwrap();
    assert_eq!(
        (j.id.as_str(), j.start_at, j.stop_at),
        ("d80ca23551da", 1, 2)
    );
    assert_eq!(
        Job::decode(br#"{"start_at":"1"}"#).unwrap_err().to_string(),
        "json: cannot unmarshal string into Go struct field Job.start_at of type int64"
    );
}

// ---------------------------------------------------------------------------------------------
// §4.2 input_data → env

fn env_of(json: &str) -> Vec<String> {
    let c = Config::decode(format!(r#"{{"input_data":{json}}}"#).as_bytes()).unwrap();
    input_data_to_env(&c.input_data.unwrap())
}

#[test]
fn env_spec_example() {
    assert_eq!(
        env_of(
            r#"{"site_url":"http://x","video_rate":1500,"big":1000000,"flag":true,"nested":{"a":1}}"#
        ),
        [
            "BIG=1e+06",
            "FLAG=true",
            "NESTED=map[a:1]",
            "SITE_URL=http://x",
            "VIDEO_RATE=1500"
        ]
    );
}

#[test]
fn env_number_formatting() {
    assert_eq!(
        env_of(
            r#"{"a":3.0,"b":0.5,"c":1234567,"d":999999,"e":1e21,"f":0.0001,"g":0.00001,"h":-0}"#
        ),
        [
            "A=3",
            "B=0.5",
            "C=1.234567e+06",
            "D=999999",
            "E=1e+21",
            "F=0.0001",
            "G=1e-05",
            "H=-0"
        ]
    );
}

#[test]
fn env_null_arrays_and_nested_maps() {
    assert_eq!(
        env_of(r#"{"n":null,"arr":["a",1,null,{"z":true,"b":[]}],"m":{"y":{},"x":"s p"}}"#),
        [
            "ARR=[a 1 <nil> map[b:[] z:true]]",
            "M=map[x:s p y:map[]]",
            "N=<nil>"
        ]
    );
}

#[test]
fn env_keys_upper_cased_values_unsanitised() {
    assert_eq!(
        env_of(r#"{"dev_mode":"true","transcribe_api_options":"{\"AZURE_SPEECH_KEY\":\"k\"}"}"#),
        [
            "DEV_MODE=true",
            "TRANSCRIBE_API_OPTIONS={\"AZURE_SPEECH_KEY\":\"k\"}"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// §1.3 routing and §3 the Go client's reading of responses

mod routing {
    use callsref::proto::offloader::http::{
        ClientError, NOT_FOUND_BODY, Route, RouteMatch, clean_path, client_error, route,
        status_line,
    };

    #[test]
    fn wrong_method_on_handler_routes_is_404() {
        for (m, p) in [
            ("POST", "/version"),
            ("GET", "/register"),
            ("GET", "/login"),
            ("GET", "/unregister"),
        ] {
            assert_eq!(route(m, p), RouteMatch::NotFound, "{m} {p}");
        }
        assert_eq!(NOT_FOUND_BODY, "404 page not found\n");
    }

    #[test]
    fn wrong_method_on_jobs_routes_is_405() {
        assert_eq!(route("GET", "/jobs"), RouteMatch::MethodNotAllowed);
        assert_eq!(route("GET", "/jobs/init"), RouteMatch::MethodNotAllowed);
        assert_eq!(
            route("POST", "/jobs/abcdef123456"),
            RouteMatch::MethodNotAllowed
        );
        assert_eq!(
            route("DELETE", "/jobs/abcdef123456/logs"),
            RouteMatch::MethodNotAllowed
        );
    }

    #[test]
    fn job_id_pattern_and_removed_routes_are_404() {
        assert_eq!(route("GET", "/jobs/ABCDEFGHIJKL"), RouteMatch::NotFound);
        assert_eq!(
            route("GET", "/jobs/abcdef12345"),
            RouteMatch::NotFound,
            "11 chars"
        );
        assert_eq!(
            route("GET", &format!("/jobs/{}", "a".repeat(27))),
            RouteMatch::NotFound
        );
        assert_eq!(
            route("GET", "/jobs/calls-recorder-job-abc"),
            RouteMatch::NotFound
        );
        assert_eq!(
            route("POST", "/jobs/abcdef123456/stop"),
            RouteMatch::NotFound
        );
        assert_eq!(route("GET", "/nope"), RouteMatch::NotFound);
        assert_eq!(route("GET", "/version/"), RouteMatch::NotFound);
    }

    #[test]
    fn routes_found() {
        assert_eq!(route("GET", "/version"), RouteMatch::Found(Route::Version));
        assert_eq!(
            route("POST", "/register"),
            RouteMatch::Found(Route::Register)
        );
        assert_eq!(
            route("POST", "/unregister"),
            RouteMatch::Found(Route::Unregister)
        );
        assert_eq!(route("POST", "/login"), RouteMatch::Found(Route::Login));
        assert_eq!(route("POST", "/jobs"), RouteMatch::Found(Route::CreateJob));
        assert_eq!(route("POST", "/jobs/init"), RouteMatch::Found(Route::Init));
        let id = "d80ca23551da".to_owned();
        assert_eq!(
            route("GET", "/jobs/d80ca23551da"),
            RouteMatch::Found(Route::GetJob(id.clone()))
        );
        assert_eq!(
            route("DELETE", "/jobs/d80ca23551da"),
            RouteMatch::Found(Route::DeleteJob(id.clone()))
        );
        assert_eq!(
            route("GET", "/jobs/d80ca23551da/logs"),
            RouteMatch::Found(Route::JobLogs(id))
        );
        let id26 = "ybndrfg8ejkmcpqxot1uwisza3";
        assert_eq!(
            route("GET", &format!("/jobs/{id26}")),
            RouteMatch::Found(Route::GetJob(id26.into()))
        );
    }

    #[test]
    fn unclean_paths_redirect_to_the_clean_one() {
        assert_eq!(
            route("GET", "//version"),
            RouteMatch::Redirect("/version".into())
        );
        assert_eq!(
            route("GET", "/jobs/../version"),
            RouteMatch::Redirect("/version".into())
        );
        assert_eq!(
            route("GET", "/./jobs/"),
            RouteMatch::Redirect("/jobs/".into())
        );
        assert_eq!(clean_path(""), "/");
        assert_eq!(clean_path("/../.."), "/");
    }

    #[test]
    fn client_maps_401_to_unauthorized_whatever_the_body() {
        assert_eq!(
            client_error(
                401,
                b"{\"code\":\"401\",\"error\":\"authentication failed\"}\n"
            ),
            ClientError::Unauthorized
        );
        assert_eq!(ClientError::Unauthorized.to_string(), "unauthorized");
    }

    #[test]
    fn client_reports_the_envelope_error() {
        let body = b"{\"code\":\"500\",\"error\":\"failed to create recording job: max concurrent jobs reached\"}\n";
        assert_eq!(
            client_error(500, body).to_string(),
            "request failed: failed to create recording job: max concurrent jobs reached"
        );
    }

    #[test]
    fn client_falls_back_to_the_status_line() {
        assert_eq!(
            client_error(404, b"{}").to_string(),
            "request failed with status 404 Not Found"
        );
        assert_eq!(status_line(500), "500 Internal Server Error");
    }

    #[test]
    fn client_reports_undecodable_bodies() {
        // Go's decoder stops after the number 404, so the router's text body is a type error.
        assert_eq!(
            client_error(404, NOT_FOUND_BODY.as_bytes()).to_string(),
            "decoding http response failed: json: cannot unmarshal number into Go value of type map[string]interface {}"
        );
        assert_eq!(
            client_error(405, b"").to_string(),
            "decoding http response failed: EOF"
        );
    }
}
