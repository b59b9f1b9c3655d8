//! The job model of calls-offloader (offloader.md §2.1): the `POST /jobs` request (`Config`), the job
//! record and response (`Job`), the `POST /jobs/init` body (`ServiceConfig`) and the constants.
//!
//! Encoding is byte-exact with Go's `encoding/json`: fields in Go's declaration order, `stop_at` and
//! empty maps omitted, HTML-safe string escaping, `float64` numbers inside `input_data`, sorted map
//! keys. Decoding (with Go's quirks and error texts) lives in `decode.rs`.

use std::collections::BTreeMap;

use super::any::AnyValue;
use super::gowrite::{push_json_any, push_json_string};

/// Lowest accepted calls-recorder image version (`MinSupportedRecorderVersion`).
pub const MIN_SUPPORTED_RECORDER_VERSION: &str = "0.6.0";
/// Lowest accepted calls-transcriber image version (`MinSupportedTranscriberVersion`).
pub const MIN_SUPPORTED_TRANSCRIBER_VERSION: &str = "0.1.0";
/// Image name, container volume prefix and Kubernetes job prefix of recordings.
pub const RECORDING_JOB_PREFIX: &str = "calls-recorder";
/// Image name, container volume prefix and Kubernetes job prefix of transcriptions.
pub const TRANSCRIBING_JOB_PREFIX: &str = "calls-transcriber";
/// Default `jobs.image_registry`.
pub const IMAGE_REGISTRY_DEFAULT: &str = "mattermost";
/// The `input_data` key holding the Mattermost site URL.
pub const INPUT_DATA_SITE_URL_KEY: &str = "site_url";
/// `MaxBytesReader` limit of `POST /jobs` and `POST /jobs/init` (1 MiB).
pub const REQUEST_BODY_LIMIT: usize = 1024 * 1024;

/// The two job types. On the wire `type` is any string; see [`Config::job_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobType {
    Recording,
    Transcribing,
}

impl JobType {
    /// `recording` or `transcribing`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Recording => "recording",
            JobType::Transcribing => "transcribing",
        }
    }

    /// The exact wire value, or `None` (matching is case-sensitive, as in Go).
    pub fn parse(s: &str) -> Option<JobType> {
        match s {
            "recording" => Some(JobType::Recording),
            "transcribing" => Some(JobType::Transcribing),
            _ => None,
        }
    }

    /// `calls-recorder` or `calls-transcriber`: the volume-name prefix for this type.
    pub fn prefix(self) -> &'static str {
        match self {
            JobType::Recording => RECORDING_JOB_PREFIX,
            JobType::Transcribing => TRANSCRIBING_JOB_PREFIX,
        }
    }
}

impl std::fmt::Display for JobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `input_data` / `output_data`: Go `map[string]any`, keys iterated in sorted order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputData(pub BTreeMap<String, AnyValue>);

impl InputData {
    pub fn new() -> Self {
        InputData::default()
    }

    pub fn get(&self, key: &str) -> Option<&AnyValue> {
        self.0.get(key)
    }

    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<AnyValue>) {
        self.0.insert(key.into(), value.into());
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AnyValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// `site_url` if it is a string, else `""` (Go's `GetSiteURL`).
    pub fn site_url(&self) -> &str {
        self.get(INPUT_DATA_SITE_URL_KEY)
            .and_then(AnyValue::as_str)
            .unwrap_or("")
    }

    /// Replaces `site_url` (Go's `SetSiteURL`).
    pub fn set_site_url(&mut self, url: &str) {
        self.insert(INPUT_DATA_SITE_URL_KEY, url);
    }
}

impl<K: Into<String>, V: Into<AnyValue>> FromIterator<(K, V)> for InputData {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        InputData(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// `POST /jobs` body (Go `job.Config`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `type`: kept as sent, so validation can quote an unknown value.
    pub job_type: String,
    /// `max_duration_sec`.
    pub max_duration_sec: i64,
    /// `runner`: the full image reference.
    pub runner: String,
    /// `input_data`; `None` is Go's nil map. Omitted from JSON when `None` or empty.
    pub input_data: Option<InputData>,
}

impl Config {
    /// A config of a known type.
    pub fn new(
        job_type: JobType,
        max_duration_sec: i64,
        runner: impl Into<String>,
        input_data: InputData,
    ) -> Self {
        Config {
            job_type: job_type.as_str().to_owned(),
            max_duration_sec,
            runner: runner.into(),
            input_data: Some(input_data),
        }
    }

    /// The type, if it is one of the two known ones.
    pub fn job_type(&self) -> Option<JobType> {
        JobType::parse(&self.job_type)
    }

    fn push_fields(&self, out: &mut String) {
        out.push_str("\"type\":");
        push_json_string(out, &self.job_type);
        out.push_str(",\"max_duration_sec\":");
        out.push_str(&self.max_duration_sec.to_string());
        out.push_str(",\"runner\":");
        push_json_string(out, &self.runner);
        if let Some(data) = self.input_data.as_ref().filter(|d| !d.is_empty()) {
            out.push_str(",\"input_data\":");
            push_map(out, data);
        }
    }

    /// `json.Marshal` of the config (no trailing newline).
    pub fn to_go_json(&self) -> String {
        let mut out = String::from("{");
        self.push_fields(&mut out);
        out.push('}');
        out
    }

    /// The body the Go client sends for `CreateJob`: `json.Encoder` output, newline-terminated.
    pub fn to_request_body(&self) -> String {
        self.to_go_json() + "\n"
    }
}

/// The job record and the response of `POST /jobs` and `GET /jobs/{id}` (Go `job.Job`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Job {
    /// The embedded config; its fields come first in the JSON.
    pub config: Config,
    /// `id`: 12 hex chars on Docker.
    pub id: String,
    /// `start_at`: Unix ms of the successful start.
    pub start_at: i64,
    /// `stop_at`: Unix ms; 0 (omitted) while running.
    pub stop_at: i64,
    /// `output_data`: never filled by the offloader; omitted when `None` or empty.
    pub output_data: Option<InputData>,
}

impl Job {
    /// A running job made from a config.
    pub fn new(config: Config, id: impl Into<String>, start_at: i64) -> Self {
        Job {
            config,
            id: id.into(),
            start_at,
            stop_at: 0,
            output_data: None,
        }
    }

    /// `true` while `stop_at` is unset (the only state signal the API has).
    pub fn is_running(&self) -> bool {
        self.stop_at == 0
    }

    /// `json.Marshal` of the job (the stored record; no trailing newline).
    pub fn to_go_json(&self) -> String {
        let mut out = String::from("{");
        self.config.push_fields(&mut out);
        out.push_str(",\"id\":");
        push_json_string(&mut out, &self.id);
        out.push_str(",\"start_at\":");
        out.push_str(&self.start_at.to_string());
        if self.stop_at != 0 {
            out.push_str(",\"stop_at\":");
            out.push_str(&self.stop_at.to_string());
        }
        if let Some(data) = self.output_data.as_ref().filter(|d| !d.is_empty()) {
            out.push_str(",\"output_data\":");
            push_map(&mut out, data);
        }
        out.push('}');
        out
    }

    /// The 200 response body of `POST /jobs` and `GET /jobs/{id}`: `json.Encoder` output, which ends
    /// with a newline.
    pub fn to_response_body(&self) -> String {
        self.to_go_json() + "\n"
    }
}

/// `POST /jobs/init` body (Go `job.ServiceConfig`; the key is `Runners`, the Go field has no tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `None` is Go's nil slice (`"Runners":null`).
    pub runners: Option<Vec<String>>,
}

impl ServiceConfig {
    pub fn new<S: Into<String>>(runners: impl IntoIterator<Item = S>) -> Self {
        ServiceConfig {
            runners: Some(runners.into_iter().map(Into::into).collect()),
        }
    }

    /// The runners, empty for a nil slice.
    pub fn runners(&self) -> &[String] {
        self.runners.as_deref().unwrap_or(&[])
    }

    /// `json.Marshal` form: `{"Runners":[...]}` or `{"Runners":null}`.
    pub fn to_go_json(&self) -> String {
        let mut out = String::from("{\"Runners\":");
        match &self.runners {
            None => out.push_str("null"),
            Some(runners) => {
                out.push('[');
                for (i, r) in runners.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(&mut out, r);
                }
                out.push(']');
            }
        }
        out.push('}');
        out
    }

    /// The body the Go client sends for `Init`, newline-terminated.
    pub fn to_request_body(&self) -> String {
        self.to_go_json() + "\n"
    }
}

fn push_map(out: &mut String, data: &InputData) {
    out.push('{');
    for (i, (k, v)) in data.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, k);
        out.push(':');
        push_json_any(out, v);
    }
    out.push('}');
}
