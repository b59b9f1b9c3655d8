//! The calls-offloader error texts held to the spec (shared/specs/offloader.md §1.4–1.7, §2.2–2.7):
//! one test per message, named after the case, and the order of validation.

use callsref::proto::offloader::error::{StatusError, check_registration};
use callsref::proto::offloader::http::{Credentials, UnregisterRequest};
use callsref::proto::offloader::{
    ApiError, AuthError, Config, ConfigError, JobType, LoginError, RegisterError, RunnerError,
    RunnerPolicy, ServiceConfig, ServiceConfigError, UnregisterError,
};

const REC: &str = "mattermost/calls-recorder:v0.8.13";
const TR: &str = "mattermost/calls-transcriber:v0.7.2";

fn policy() -> RunnerPolicy {
    RunnerPolicy::new("mattermost")
}

fn config(job_type: &str, max: i64, runner: &str) -> Config {
    Config {
        job_type: job_type.into(),
        max_duration_sec: max,
        runner: runner.into(),
        input_data: None,
    }
}

/// The message a `POST /jobs` with this config gets (validation only).
fn create_err(c: &Config) -> String {
    ApiError::from(policy().check_config(c).unwrap_err()).to_string()
}

fn runner_err(runner: &str) -> String {
    create_err(&config("recording", 60, runner))
}

// ---------------------------------------------------------------------------------------------
// §2.2 validation: one test per message

#[test]
fn empty_type() {
    assert_eq!(
        create_err(&config("", 60, REC)),
        "invalid Type value: should not be empty"
    );
}

#[test]
fn empty_runner() {
    assert_eq!(
        runner_err(""),
        "invalid Runner value: runner should not be empty"
    );
}

#[test]
fn empty_registry() {
    let err = RunnerPolicy::new("")
        .check_config(&config("recording", 60, REC))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Runner value: registry should not be empty"
    );
}

#[test]
fn runner_latest_tag() {
    assert_eq!(
        runner_err("mattermost/calls-recorder:latest"),
        "invalid Runner value: failed to validate runner \"mattermost/calls-recorder:latest\""
    );
}

#[test]
fn runner_digest() {
    assert_eq!(
        runner_err("mattermost/calls-recorder@sha256:abc"),
        "invalid Runner value: failed to validate runner \"mattermost/calls-recorder@sha256:abc\""
    );
}

#[test]
fn runner_other_registry() {
    assert_eq!(
        runner_err("evil/calls-recorder:v0.8.13"),
        "invalid Runner value: failed to validate runner \"evil/calls-recorder:v0.8.13\""
    );
}

#[test]
fn runner_leading_zero_version() {
    assert_eq!(
        runner_err("mattermost/calls-recorder:v0.08.13"),
        "invalid Runner value: failed to validate runner \"mattermost/calls-recorder:v0.08.13\""
    );
}

#[test]
fn runner_quoted_with_go_escapes() {
    assert_eq!(
        runner_err("a\"b\\c\n\u{0}\u{7f}é\u{2028}"),
        "invalid Runner value: failed to validate runner \"a\\\"b\\\\c\\n\\x00\\x7fé\\u2028\""
    );
}

#[test]
fn recorder_below_minimum_version() {
    assert_eq!(
        runner_err("mattermost/calls-recorder:v0.5.9"),
        "invalid Runner value: actual version (0.5.9) is lower than minimum supported version (0.6.0)"
    );
}

#[test]
fn recorder_minimum_message_quoted_by_spec() {
    assert_eq!(
        runner_err("mattermost/calls-recorder:v0.1.0"),
        "invalid Runner value: actual version (0.1.0) is lower than minimum supported version (0.6.0)"
    );
}

#[test]
fn transcriber_below_minimum_version() {
    assert_eq!(
        runner_err("mattermost/calls-transcriber:v0.0.9"),
        "invalid Runner value: actual version (0.0.9) is lower than minimum supported version (0.1.0)"
    );
}

#[test]
fn max_duration_zero() {
    assert_eq!(
        create_err(&config("recording", 0, REC)),
        "invalid MaxDurationSec value: should be positive"
    );
}

#[test]
fn max_duration_negative() {
    assert_eq!(
        create_err(&config("recording", -1, REC)),
        "invalid MaxDurationSec value: should be positive"
    );
}

#[test]
fn unknown_type_is_go_quoted() {
    assert_eq!(
        create_err(&config("live\tcaptions", 60, REC)),
        "invalid Type value: \"live\\tcaptions\""
    );
}

#[test]
fn accepted_runners_matrix() {
    let p = policy();
    for ok in [
        "mattermost/calls-recorder:v0.6.0",
        "mattermost/calls-recorder:v0.8.13",
        "mattermost/calls-recorder:v1.0.0-dev",
        "mattermost/calls-recorder:v0.8.13-dev29",
        "mattermost/calls-transcriber:v0.1.0",
        "mattermost/calls-transcriber:v10.20.30",
    ] {
        assert_eq!(p.check_runner(ok), Ok(()), "{ok}");
    }
    for bad in [
        "mattermost/calls-recorder:v0.8.13-rc1",
        "mattermost/calls-recorder:0.8.13",
        "mattermost/calls-offloader:v0.9.5",
    ] {
        assert_eq!(
            p.check_runner(bad),
            Err(RunnerError::NoMatch(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn type_and_runner_mismatch_is_accepted() {
    assert_eq!(
        policy().check_config(&config("recording", 60, TR)),
        Ok(JobType::Recording)
    );
}

#[test]
fn dev_or_test_mode_skips_runner_checks_only() {
    let p = policy().with_dev_or_test_mode(true);
    assert_eq!(
        p.check_config(&config("recording", 60, "anything")),
        Ok(JobType::Recording)
    );
    assert_eq!(
        p.check_config(&config("recording", 0, "")),
        Err(ConfigError::NonPositiveDuration)
    );
}

// Order (§2.2): the first fault in the order empty type, runner, duration, unknown type wins.

#[test]
fn order_empty_type_before_bad_runner_and_duration() {
    assert_eq!(
        create_err(&config("", 0, "bad")),
        "invalid Type value: should not be empty"
    );
}

#[test]
fn order_runner_before_duration_and_unknown_type() {
    assert_eq!(
        create_err(&config("bogus", 0, "")),
        "invalid Runner value: runner should not be empty"
    );
}

#[test]
fn order_duration_before_unknown_type() {
    assert_eq!(
        create_err(&config("bogus", 0, REC)),
        "invalid MaxDurationSec value: should be positive"
    );
}

// ---------------------------------------------------------------------------------------------
// §2.6 /jobs/init

fn init_err(body: &[u8], registry: &str, dev: bool) -> String {
    let cfg = ServiceConfig::decode(body).unwrap();
    let err = RunnerPolicy::new(registry)
        .with_dev_or_test_mode(dev)
        .check_service_config(&cfg)
        .unwrap_err();
    ApiError::from(err).to_string()
}

#[test]
fn init_empty_runners() {
    assert_eq!(
        init_err(b"{}", "mattermost", false),
        "invalid job service config: invalid empty Runners"
    );
    assert_eq!(
        init_err(br#"{"Runners":[]}"#, "mattermost", false),
        "invalid job service config: invalid empty Runners"
    );
}

#[test]
fn init_bad_runner_not_prefixed_with_runner_value() {
    assert_eq!(
        init_err(br#"{"Runners":["x"]}"#, "mattermost", false),
        "invalid job service config: failed to validate runner \"x\""
    );
}

#[test]
fn init_empty_registry_even_in_dev_mode() {
    assert_eq!(
        init_err(br#"{"Runners":["x"]}"#, "", true),
        "invalid job service config: registry should not be empty"
    );
}

#[test]
fn init_second_runner_checked_in_order() {
    let body = format!(r#"{{"runners":["{REC}","mattermost/calls-transcriber:v0.0.1","x"]}}"#);
    assert_eq!(
        init_err(body.as_bytes(), "mattermost", false),
        "invalid job service config: actual version (0.0.1) is lower than minimum supported version (0.1.0)"
    );
}

#[test]
fn init_accepts_lower_case_key_and_valid_runners() {
    let cfg =
        ServiceConfig::decode(format!(r#"{{"runners":["{REC}","{TR}"]}}"#).as_bytes()).unwrap();
    assert_eq!(policy().check_service_config(&cfg), Ok(()));
    assert!(matches!(
        ServiceConfigError::EmptyRunners.to_string().as_str(),
        "invalid empty Runners"
    ));
}

// ---------------------------------------------------------------------------------------------
// §1.4–1.7 auth, register, unregister, login; §2.3–2.7 job API errors: one test per message

macro_rules! message_tests {
    ($($name:ident: $err:expr => $status:expr, $text:expr;)*) => {$(
        #[test]
        fn $name() {
            let err = $err;
            assert_eq!(err.to_string(), $text);
            assert_eq!(err.status(), $status);
        }
    )*};
}

message_tests! {
    auth_invalid_auth_header: AuthError::InvalidHeader => 401, "authentication failed: invalid auth header";
    auth_empty_client_id: AuthError::EmptyClientId => 401, "authentication failed: unauthorized";
    auth_self_registration_failed: AuthError::SelfRegistrationFailed => 401, "unauthorized";
    auth_failed: AuthError::Failed => 401, "authentication failed";
    auth_token_invalid: AuthError::TokenInvalid => 401, "authentication failed: token is invalid";
    auth_session_expired: AuthError::SessionExpired => 401, "authentication failed: session is expired";
    register_key_not_long_enough: RegisterError::KeyTooShort => 400, "registration failed: key not long enough";
    register_empty_client_id: RegisterError::EmptyClientId => 400, "registration failed: error: empty key";
    register_already_registered: RegisterError::AlreadyRegistered => 400, "registration failed: already registered";
    register_key_too_long: RegisterError::KeyTooLong => 400, "registration failed: bcrypt: password length exceeds 72 bytes";
    register_client_id_too_long: RegisterError::ClientIdTooLong => 400, "registration failed: failed to set key: error: key too large";
    register_empty_body: RegisterError::Decode(Credentials::decode(b"").unwrap_err()) => 400, "EOF";
    register_number_value: RegisterError::Decode(Credentials::decode(br#"{"clientID":1}"#).unwrap_err()) => 400,
        "json: cannot unmarshal number into Go value of type string";
    unregister_not_enabled: UnregisterError::NotEnabled => 403, "unregister not enabled";
    unregister_auth: UnregisterError::Auth(AuthError::Failed) => 401, "authentication failed";
    unregister_empty_client_id: UnregisterError::EmptyClientId => 400, "client id should not be empty";
    unregister_other_client: UnregisterError::ClientIdMismatch => 403, "client id not valid";
    unregister_not_found: UnregisterError::NotFound => 400, "unregister failed: error: not found";
    unregister_empty_body: UnregisterError::Decode(UnregisterRequest::decode(b" ").unwrap_err()) => 400, "EOF";
    login_wrong_key: LoginError::WrongKey => 400, "login failed: authentication failed";
    login_unknown_client: LoginError::UnknownClient => 400, "login failed: authentication failed: error: not found";
    login_empty_client_id: LoginError::EmptyClientId => 400, "login failed: authentication failed: error: empty key";
    login_empty_body: LoginError::Decode(Credentials::decode(b"").unwrap_err()) => 400, "EOF";
    job_not_found: ApiError::NotFound => 404, "failed to get job failed to get job: error: not found";
    job_is_running: ApiError::Running => 400, "job is running";
    job_max_concurrent: ApiError::MaxConcurrentJobs => 500, "failed to create recording job: max concurrent jobs reached";
    job_create_failed: ApiError::Create("failed to pull docker image: x".into()) => 500,
        "failed to create recording job: failed to pull docker image: x";
    job_save_failed: ApiError::Save("failed to save to store: failed to set key: error: value too large".into()) => 500,
        "failed to save job: failed to save to store: failed to set key: error: value too large";
    job_delete_failed: ApiError::Delete("failed to get container: x".into()) => 500,
        "failed to delete recording job: failed to get container: x";
    job_logs_failed: ApiError::Logs("failed to get container logs: Error response from daemon: No such container: abc".into()) => 403,
        "failed to get recording job logs: failed to get container logs: Error response from daemon: No such container: abc";
    job_init_pull_failed: ApiError::Init("failed to pull docker image: x".into()) => 500,
        "failed to update job runner: failed to pull docker image: x";
    job_missing_id: ApiError::MissingJobId => 400, "missing job ID";
    job_auth_passthrough: ApiError::Auth(AuthError::TokenInvalid) => 401, "authentication failed: token is invalid";
    job_invalid_config_is_400: ApiError::from(ConfigError::EmptyType) => 400, "invalid Type value: should not be empty";
}

#[test]
fn registration_checks_run_in_upstream_order() {
    let key32 = "k".repeat(32);
    let key73 = "k".repeat(73);
    let id65 = "i".repeat(65);
    // Key length is checked before the empty client id.
    assert_eq!(
        check_registration("", "short", false),
        Err(RegisterError::KeyTooShort)
    );
    assert_eq!(
        check_registration("", &key32, false),
        Err(RegisterError::EmptyClientId)
    );
    assert_eq!(
        check_registration("c", &key73, true),
        Err(RegisterError::AlreadyRegistered)
    );
    assert_eq!(
        check_registration(&id65, &key73, false),
        Err(RegisterError::KeyTooLong)
    );
    assert_eq!(
        check_registration(&id65, &key32, false),
        Err(RegisterError::ClientIdTooLong)
    );
    assert_eq!(
        check_registration(&"i".repeat(64), &"k".repeat(72), false),
        Ok(())
    );
    // Lengths are bytes: 16 two-byte characters make a 32-byte key.
    assert_eq!(check_registration("c", &"é".repeat(16), false), Ok(()));
    assert_eq!(
        check_registration("c", &"é".repeat(37), false),
        Err(RegisterError::KeyTooLong)
    );
}
