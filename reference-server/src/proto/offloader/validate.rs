//! Validation of job configs (`POST /jobs`, offloader.md §2.2) and of `POST /jobs/init` bodies
//! (§2.6), with the exact messages and in the exact order of upstream.
//!
//! The runner pattern is built by inserting the configured registry into the regex WITHOUT escaping,
//! as upstream does: a registry `registry.example.com` also accepts `registryXexample.com/...`, and a
//! registry with its own capture group shifts which group is read as the version. A registry that
//! is not a valid regex makes upstream panic mid-request (the client sees the connection close with
//! no response); here it is [`RunnerError::InvalidRegistryPattern`], which has no upstream text.
//! Known divergence: Perl classes (`\d`, `\w`, `\s`) inside a registry are Unicode-aware in Rust's
//! `regex` and ASCII-only in Go; the fixed parts of the pattern use explicit ASCII classes.

use regex::Regex;

use super::gowrite::go_quote;
use super::job::{
    Config, JobType, MIN_SUPPORTED_RECORDER_VERSION, MIN_SUPPORTED_TRANSCRIBER_VERSION,
    RECORDING_JOB_PREFIX, ServiceConfig, TRANSCRIBING_JOB_PREFIX,
};

/// Why a runner image reference is rejected (`RunnerIsValid`). Display is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    #[error("runner should not be empty")]
    Empty,
    #[error("registry should not be empty")]
    EmptyRegistry,
    /// The runner matches neither image pattern; upstream quotes it with Go's `%q`.
    #[error("failed to validate runner {}", go_quote(.0))]
    NoMatch(String),
    #[error("actual version ({actual}) is lower than minimum supported version ({min})")]
    TooOld { actual: String, min: &'static str },
    /// The captured version is not semver to Masterminds/semver v1 (only reachable through a
    /// registry with capture groups, or a segment beyond `i64`).
    #[error("failed to parse actualVersion: {reason}")]
    BadVersion { actual: String, reason: String },
    /// The registry makes the runner pattern an invalid regex. Upstream panics instead.
    #[error("invalid registry pattern {}: {reason}", go_quote(.registry))]
    InvalidRegistryPattern { registry: String, reason: String },
}

/// Why a `POST /jobs` config is rejected (`Config.IsValid`), all answered 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid Type value: should not be empty")]
    EmptyType,
    #[error("invalid Runner value: {0}")]
    Runner(RunnerError),
    #[error("invalid MaxDurationSec value: should be positive")]
    NonPositiveDuration,
    #[error("invalid Type value: {}", go_quote(.0))]
    UnknownType(String),
}

/// Why a `POST /jobs/init` body is rejected (`ServiceConfig.IsValid`). The handler prefixes it with
/// `invalid job service config: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceConfigError {
    #[error("invalid empty Runners")]
    EmptyRunners,
    /// Includes [`RunnerError::EmptyRegistry`], which init checks even in dev/test mode.
    #[error(transparent)]
    Runner(RunnerError),
}

/// The runner rules of one offloader: its `jobs.image_registry` and whether `DEV_MODE=true` or
/// `TEST_MODE=true` disables runner checks. Reading the environment is the caller's business.
#[derive(Debug, Clone)]
pub struct RunnerPolicy {
    registry: String,
    skip_runner_checks: bool,
    /// Recorder and transcriber patterns, or why they do not compile.
    patterns: Result<(Regex, Regex), String>,
}

impl RunnerPolicy {
    /// Policy for `registry` with checks on.
    pub fn new(registry: impl Into<String>) -> Self {
        let registry = registry.into();
        let patterns = compile(&registry, RECORDING_JOB_PREFIX)
            .and_then(|rec| Ok((rec, compile(&registry, TRANSCRIBING_JOB_PREFIX)?)));
        RunnerPolicy {
            registry,
            skip_runner_checks: false,
            patterns,
        }
    }

    /// Upstream's `DEV_MODE=true` / `TEST_MODE=true`: every runner passes.
    pub fn with_dev_or_test_mode(mut self, on: bool) -> Self {
        self.skip_runner_checks = on;
        self
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Why the registry does not make a valid runner pattern, if it does not. Upstream only finds
    /// out per request (and panics); a server can refuse such a config at startup instead.
    pub fn registry_pattern_error(&self) -> Option<&str> {
        self.patterns.as_ref().err().map(String::as_str)
    }

    /// `RunnerIsValid(runner, registry)`.
    pub fn check_runner(&self, runner: &str) -> Result<(), RunnerError> {
        if self.skip_runner_checks {
            return Ok(());
        }
        if runner.is_empty() {
            return Err(RunnerError::Empty);
        }
        if self.registry.is_empty() {
            return Err(RunnerError::EmptyRegistry);
        }
        let (rec, tr) =
            self.patterns
                .as_ref()
                .map_err(|reason| RunnerError::InvalidRegistryPattern {
                    registry: self.registry.clone(),
                    reason: reason.clone(),
                })?;
        for (re, min) in [
            (rec, MIN_SUPPORTED_RECORDER_VERSION),
            (tr, MIN_SUPPORTED_TRANSCRIBER_VERSION),
        ] {
            if let Some(caps) = re.captures(runner) {
                // Go's FindStringSubmatch gives "" for a group that did not take part.
                let actual = caps.get(1).map_or("", |m| m.as_str());
                return check_min_version(min, actual);
            }
        }
        Err(RunnerError::NoMatch(runner.to_owned()))
    }

    /// `Config.IsValid(registry)`: empty type, runner, duration, unknown type — in that order.
    pub fn check_config(&self, config: &Config) -> Result<JobType, ConfigError> {
        if config.job_type.is_empty() {
            return Err(ConfigError::EmptyType);
        }
        self.check_runner(&config.runner)
            .map_err(ConfigError::Runner)?;
        if config.max_duration_sec <= 0 {
            return Err(ConfigError::NonPositiveDuration);
        }
        config
            .job_type()
            .ok_or_else(|| ConfigError::UnknownType(config.job_type.clone()))
    }

    /// `ServiceConfig.IsValid(registry)`: empty list, empty registry (even in dev/test mode), then
    /// each runner in order.
    pub fn check_service_config(&self, config: &ServiceConfig) -> Result<(), ServiceConfigError> {
        if config.runners().is_empty() {
            return Err(ServiceConfigError::EmptyRunners);
        }
        if self.registry.is_empty() {
            return Err(ServiceConfigError::Runner(RunnerError::EmptyRegistry));
        }
        config
            .runners()
            .iter()
            .try_for_each(|r| self.check_runner(r))
            .map_err(ServiceConfigError::Runner)
    }
}

fn compile(registry: &str, prefix: &str) -> Result<Regex, String> {
    let semver = "(?:0|[1-9][0-9]*)";
    let pattern = format!(r"^{registry}/{prefix}:v({semver}\.{semver}\.{semver})(?:-dev[0-9]*)?$");
    Regex::new(&pattern).map_err(|e| e.to_string())
}

/// A version as Masterminds/semver v1.5.0 parses it.
#[derive(Debug)]
struct SemVer {
    segments: [i64; 3],
    pre: String,
}

fn parse_semver(v: &str) -> Result<SemVer, String> {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        // A constant pattern; it compiles.
        Regex::new(concat!(
            r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?",
            r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?",
            r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$"
        ))
        .expect("constant semver pattern")
    });
    let caps = re
        .captures(v)
        .ok_or_else(|| "Invalid Semantic Version".to_owned())?;
    let mut segments = [0i64; 3];
    for (i, seg) in segments.iter_mut().enumerate() {
        let Some(m) = caps.get(i + 1) else { continue };
        let digits = m.as_str().trim_start_matches('.');
        *seg = digits.parse().map_err(|_| {
            format!(
                "Error parsing version segment: strconv.ParseInt: parsing {}: value out of range",
                go_quote(digits)
            )
        })?;
    }
    Ok(SemVer {
        segments,
        pre: caps.get(5).map_or("", |m| m.as_str()).to_owned(),
    })
}

/// `checkMinVersion(min, actual)`: a release is ordered by its segments, and a pre-release sorts
/// below the release it precedes (the minimums have none, so that is the only case that matters).
fn check_min_version(min: &'static str, actual: &str) -> Result<(), RunnerError> {
    let min_v = parse_semver(min).map_err(|reason| RunnerError::BadVersion {
        actual: min.to_owned(),
        reason,
    })?;
    let cur = parse_semver(actual).map_err(|reason| RunnerError::BadVersion {
        actual: actual.to_owned(),
        reason,
    })?;
    let lower = match cur.segments.cmp(&min_v.segments) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => !cur.pre.is_empty() && min_v.pre.is_empty(),
    };
    if lower {
        return Err(RunnerError::TooOld {
            actual: actual.to_owned(),
            min,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaped_registry_dot_matches_any_char() {
        let p = RunnerPolicy::new("registry.example.com");
        assert_eq!(
            p.check_runner("registryXexample.com/calls-recorder:v0.8.13"),
            Ok(())
        );
    }

    #[test]
    fn registry_capture_group_shifts_version_group() {
        let p = RunnerPolicy::new("(mattermost)");
        assert_eq!(
            p.check_runner("mattermost/calls-recorder:v0.8.13"),
            Err(RunnerError::BadVersion {
                actual: "mattermost".into(),
                reason: "Invalid Semantic Version".into()
            })
        );
    }

    #[test]
    fn invalid_registry_regex_is_typed() {
        let p = RunnerPolicy::new("mm(");
        assert!(p.registry_pattern_error().is_some());
        assert!(
            RunnerPolicy::new("mattermost")
                .registry_pattern_error()
                .is_none()
        );
        assert!(matches!(
            p.check_runner("mm(/calls-recorder:v0.8.13"),
            Err(RunnerError::InvalidRegistryPattern { .. })
        ));
        // dev/test mode returns before the pattern is built, as upstream does.
        assert_eq!(
            RunnerPolicy::new("mm(")
                .with_dev_or_test_mode(true)
                .check_runner("x"),
            Ok(())
        );
    }

    #[test]
    fn huge_version_segment_reports_parse_error() {
        let p = RunnerPolicy::new("mattermost");
        let err = p
            .check_runner("mattermost/calls-recorder:v99999999999999999999.0.0")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse actualVersion: Error parsing version segment: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
    }
}
