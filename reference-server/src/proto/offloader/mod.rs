//! The calls-offloader wire formats (offloader.md §1–4), shared by the harness's conformance and
//! load client and by the reference offloader server.
//!
//! - [`job`]: `Config`, `Job`, `ServiceConfig`, the constants, byte-exact Go JSON encoding;
//! - [`decode`]: Go-compatible body decoding (case-insensitive keys, first value only, Go's errors);
//! - [`validate`]: job and init validation with upstream's messages and order;
//! - [`error`]: every API error the server answers, with status and exact text; credential checks;
//! - [`http`]: routes, small bodies and envelopes, and the Go client's reading of responses;
//! - [`env`]: `input_data` → container env with Go's `%v` formatting;
//! - [`any`], [`goread`], [`gowrite`]: Go `any` values and Go-exact JSON/`fmt` text.
//!
//! A server's `POST /jobs`, after authentication:
//!
//! ```
//! use callsref::proto::offloader::{error::StatusError, input_data_to_env, ApiError, Config, Job, RunnerPolicy};
//!
//! // Built once at startup from `jobs.image_registry` and DEV_MODE/TEST_MODE.
//! let policy = RunnerPolicy::new("mattermost").with_dev_or_test_mode(false);
//!
//! let body = br#"{"type":"recording","max_duration_sec":60,"runner":"mattermost/calls-recorder:v0.8.13","input_data":{"site_url":"http://mm"}}"#;
//! let response = Config::decode(body)
//!     .map_err(ApiError::Decode)
//!     .and_then(|cfg| Ok((policy.check_config(&cfg)?, cfg)))
//!     .map(|(job_type, cfg)| {
//!         let env = input_data_to_env(cfg.input_data.as_ref().unwrap());
//!         assert_eq!(env, ["SITE_URL=http://mm"]);
//!         assert_eq!(job_type.prefix(), "calls-recorder"); // volume name prefix
//!         (200, Job::new(cfg, "d80ca23551da", 1_732_270_000_000).to_response_body())
//!     })
//!     .unwrap_or_else(|e| (e.status(), e.envelope()));
//! assert_eq!(response.0, 200);
//! assert!(response.1.ends_with("\"id\":\"d80ca23551da\",\"start_at\":1732270000000}\n"));
//!
//! let bad = Config::decode(b"{\"type\":\"recording\",\"max_duration_sec\":\"60\"}").map_err(ApiError::Decode).unwrap_err();
//! assert_eq!(bad.status(), 400);
//! assert_eq!(
//!     bad.envelope(),
//!     "{\"code\":\"400\",\"error\":\"failed to decode request body: json: cannot unmarshal string into Go struct field Config.max_duration_sec of type int64\"}\n"
//! );
//! ```

pub mod any;
pub mod decode;
pub mod env;
pub mod error;
pub mod goread;
pub mod gowrite;
pub mod http;
pub mod job;
pub mod validate;

pub use any::{AnyValue, ValueRef};
pub use decode::decode_string_map;
pub use env::input_data_to_env;
pub use error::{ApiError, AuthError, LoginError, RegisterError, UnregisterError};
pub use goread::{DecodeError, TypeError};
pub use job::{
    Config, IMAGE_REGISTRY_DEFAULT, INPUT_DATA_SITE_URL_KEY, InputData, Job, JobType,
    MIN_SUPPORTED_RECORDER_VERSION, MIN_SUPPORTED_TRANSCRIBER_VERSION, RECORDING_JOB_PREFIX,
    REQUEST_BODY_LIMIT, ServiceConfig, TRANSCRIBING_JOB_PREFIX,
};
pub use validate::{ConfigError, RunnerError, RunnerPolicy, ServiceConfigError};
