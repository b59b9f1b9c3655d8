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
