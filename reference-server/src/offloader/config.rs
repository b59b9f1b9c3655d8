//! Configuration of the reference offloader: the calls-offloader TOML keys, environment names,
//! built-in defaults and validation messages (offloader.md §5), plus a few reference-only keys.
//!
//! Loading follows the Go service: a missing file means built-in defaults; an existing file is taken
//! as-is with every absent key at its zero value (no merging), and environment overrides
//! (`API_HTTP_LISTENADDRESS`, ...) apply on top of either. Reference-only keys have defaults that
//! apply in both cases, because the Go service knows nothing of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the Go service looks when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/config.toml";

/// Why a configuration could not be loaded or is invalid. Messages follow the Go service where it
/// has one (offloader.md §5.2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file: {0}")]
    Read(#[from] std::io::Error),
    #[error("failed to decode config file: {0}")]
    Decode(String),
    #[error("failed to parse FailedJobsRetentionTime: {0}")]
    EnvRetention(RetentionError),
    #[error("envconfig.Process: assigning {name}: converting '{value}' to type {ty}")]
    Env {
        name: &'static str,
        value: String,
        ty: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The retention parser's error (offloader.md §2.8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("invalid retention time format")]
    Format,
}

/// Which backend runs jobs. `process` is the reference's own addition for machines without Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    Docker,
    Kubernetes,
    Process,
}

/// The whole configuration, shaped like the Go `service.Config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub api: ApiConfig,
    pub store: StoreConfig,
    pub jobs: JobsConfig,
    pub logger: LoggerConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    pub http: HttpConfig,
    pub security: SecurityConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen_address: String,
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub enable: bool,
    pub cert_file: String,
    pub cert_key: String,
}

#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    pub enable_admin: bool,
    pub admin_secret_key: String,
    pub allow_self_registration: bool,
    pub session_cache: SessionCacheConfig,
    /// Reference-only: seconds a verified Basic credential stays cached (0 = bcrypt on every
    /// request, like the Go service). `None` means the default.
    pub credential_cache_seconds: Option<u64>,
}

// The admin secret stays out of logs.
impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("enable_admin", &self.enable_admin)
            .field("admin_secret_key", &"<redacted>")
            .field("allow_self_registration", &self.allow_self_registration)
            .field("session_cache", &self.session_cache)
            .field("credential_cache_seconds", &self.credential_cache_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionCacheConfig {
    pub expiration_minutes: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    pub data_source: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    pub api_type: String,
    pub max_concurrent_jobs: i64,
    #[serde(deserialize_with = "de_retention")]
    pub failed_jobs_retention_time: Duration,
    pub image_registry: String,
    pub docker: DockerConfig,
    pub process: ProcessConfig,
    /// Reference-only: seconds between SIGTERM and SIGKILL at max duration (Go: 300).
    pub stop_grace_seconds: Option<u64>,
    /// Reference-only: seconds between retention passes (Go: 60).
    pub retention_interval_seconds: Option<u64>,
    /// Not in the Go service: how old a job container that never started (stuck in "created",
    /// e.g. after a crash between create and start) must be before the sweep removes it.
    #[serde(default)]
    pub created_grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    pub output_logs: bool,
}

/// Reference-only: the process backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    /// The runner executable (default: this executable, run as `callsref runner`).
    pub runner_path: String,
    /// Where job data directories live (default: `<data_source>/jobs`).
    pub data_dir: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoggerConfig {
    pub enable_console: bool,
    pub console_json: bool,
    pub console_level: String,
    pub enable_file: bool,
    pub file_json: bool,
    pub file_level: String,
    pub file_location: String,
    pub enable_color: bool,
}

fn de_retention<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_retention(&text).map_err(serde::de::Error::custom)
}

/// Parses `^(\d+)([mhd])$` (offloader.md §2.8).
pub fn parse_retention(text: &str) -> Result<Duration, RetentionError> {
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RetentionError::Format);
    }
    let n: u64 = digits.parse().map_err(|_| RetentionError::Format)?;
    let secs = match unit {
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    secs.map(Duration::from_secs).ok_or(RetentionError::Format)
}

/// The level names mlog accepts (compared lower-cased).
const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "info", "debug", "trace", "stdlog",
];

impl Config {
    /// The Go service's built-in defaults, used when no config file exists.
    pub fn defaults() -> Self {
        let mut c = Config::default();
        c.api.http.listen_address = ":4545".into();
        c.api.security.session_cache.expiration_minutes = 1440;
        c.store.data_source = "/tmp/calls-offloader-db".into();
        c.jobs.api_type = "docker".into();
        c.jobs.max_concurrent_jobs = 2;
        c.jobs.image_registry = "mattermost".into();
        c.logger.enable_console = true;
        c.logger.console_level = "INFO".into();
        c.logger.enable_file = true;
        c.logger.file_json = true;
        c.logger.file_location = "calls-offloader.log".into();
        c.logger.file_level = "DEBUG".into();
        c
    }

    /// Loads `path` (or the defaults when it does not exist), then applies the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(path: &Path, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut cfg = if path.exists() {
            Self::from_toml(&std::fs::read_to_string(path)?)?
        } else {
            tracing::info!(
                "config file not found at {}, using defaults",
                path.display()
            );
            Self::defaults()
        };
        cfg.apply_env(env)?;
        Ok(cfg)
    }

    /// Decodes a TOML document with Go's no-merge rule: absent keys are zero.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Decode(e.message().to_owned()))
    }

    /// Applies the envconfig-style overrides (offloader.md §5.2).
    pub fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        let get = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(v) = get("JOBS_FAILEDJOBSRETENTIONTIME").filter(|v| !v.is_empty()) {
            self.jobs.failed_jobs_retention_time =
                parse_retention(&v).map_err(ConfigError::EnvRetention)?;
        }
        macro_rules! string {
            ($name:literal, $field:expr) => {
                if let Some(v) = get($name) {
                    $field = v;
                }
            };
        }
        macro_rules! boolean {
            ($name:literal, $field:expr) => {
                if let Some(v) = get($name) {
                    $field = parse_go_bool(&v).ok_or(ConfigError::Env {
                        name: $name,
                        value: v,
                        ty: "bool",
                    })?;
                }
            };
        }
        macro_rules! int {
            ($name:literal, $field:expr) => {
                if let Some(v) = get($name) {
                    $field = v.trim().parse().map_err(|_| ConfigError::Env {
                        name: $name,
                        value: v,
                        ty: "int",
                    })?;
                }
            };
        }
        string!("API_HTTP_LISTENADDRESS", self.api.http.listen_address);
        boolean!("API_HTTP_TLS_ENABLE", self.api.http.tls.enable);
        string!("API_HTTP_TLS_CERTFILE", self.api.http.tls.cert_file);
        string!("API_HTTP_TLS_CERTKEY", self.api.http.tls.cert_key);
        boolean!("API_SECURITY_ENABLEADMIN", self.api.security.enable_admin);
        string!(
            "API_SECURITY_ADMINSECRETKEY",
            self.api.security.admin_secret_key
        );
        boolean!(
            "API_SECURITY_ALLOWSELFREGISTRATION",
            self.api.security.allow_self_registration
        );
        int!(
            "API_SECURITY_SESSIONCACHE_EXPIRATIONMINUTES",
            self.api.security.session_cache.expiration_minutes
        );
        if let Some(v) = get("API_SECURITY_CREDENTIALCACHESECONDS") {
            let secs = v.trim().parse().map_err(|_| ConfigError::Env {
                name: "API_SECURITY_CREDENTIALCACHESECONDS",
                value: v,
                ty: "uint",
            })?;
            self.api.security.credential_cache_seconds = Some(secs);
        }
        string!("STORE_DATASOURCE", self.store.data_source);
        string!("JOBS_APITYPE", self.jobs.api_type);
        int!("JOBS_MAXCONCURRENTJOBS", self.jobs.max_concurrent_jobs);
        string!("JOBS_IMAGEREGISTRY", self.jobs.image_registry);
        boolean!("JOBS_DOCKER_OUTPUTLOGS", self.jobs.docker.output_logs);
        string!("JOBS_PROCESS_RUNNERPATH", self.jobs.process.runner_path);
        string!("JOBS_PROCESS_DATADIR", self.jobs.process.data_dir);
        boolean!("LOGGER_ENABLECONSOLE", self.logger.enable_console);
        boolean!("LOGGER_CONSOLEJSON", self.logger.console_json);
        string!("LOGGER_CONSOLELEVEL", self.logger.console_level);
        boolean!("LOGGER_ENABLEFILE", self.logger.enable_file);
        boolean!("LOGGER_FILEJSON", self.logger.file_json);
        string!("LOGGER_FILELEVEL", self.logger.file_level);
        string!("LOGGER_FILELOCATION", self.logger.file_location);
        boolean!("LOGGER_ENABLECOLOR", self.logger.enable_color);
        Ok(())
    }

    /// Validates in the Go order (API, store, jobs, logger, then the session cache that the Go
    /// service checks while starting), with the Go messages.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let sec = &self.api.security;
        if sec.enable_admin && sec.admin_secret_key.is_empty() {
            return bad("failed to validate security config: invalid AdminSecretKey value: should not be empty".into());
        }
        let http = &self.api.http;
        if http.listen_address.is_empty() {
            return bad(
                "failed to validate http config: invalid ListenAddress value: should not be empty"
                    .into(),
            );
        }
        if http.tls.enable && http.tls.cert_file.is_empty() {
            return bad("failed to validate http config: invalid TLS config: invalid CertFile value: should not be empty".into());
        }
        if http.tls.enable && http.tls.cert_key.is_empty() {
            return bad("failed to validate http config: invalid TLS config: invalid CertKey value: should not be empty".into());
        }
        if self.store.data_source.is_empty() {
            return bad("invalid DataSource value: should not be empty".into());
        }
        self.api_type()?;
        if self.jobs.max_concurrent_jobs <= 0 {
            return bad("invalid MaxConcurrentJobs value: should be greater than zero".into());
        }
        let retention = self.jobs.failed_jobs_retention_time;
        if !retention.is_zero() && retention < Duration::from_secs(60) {
            return bad(
                "invalid FailedJobsRetentionTime value: should be at least one minute".into(),
            );
        }
        let lg = &self.logger;
        if !lg.enable_console && !lg.enable_file {
            return bad("should enable at least one logging target".into());
        }
        let known = |l: &str| LOG_LEVELS.contains(&l.to_ascii_lowercase().as_str());
        if lg.enable_console && !known(&lg.console_level) {
            return bad(format!("invalid ConsoleLevel value {:?}", lg.console_level));
        }
        if lg.enable_file && !known(&lg.file_level) {
            return bad(format!("invalid FileLevel value {:?}", lg.file_level));
        }
        if lg.enable_file && lg.file_location.is_empty() {
            return bad("invalid FileLocation value: should not be empty".into());
        }
        if sec.session_cache.expiration_minutes <= 0 {
            return bad(
                "failed to create session cache: invalid ExpirationMinutes value: should be a positive number".into(),
            );
        }
        Ok(())
    }

    /// The backend named by `jobs.api_type`.
    pub fn api_type(&self) -> Result<ApiType, ConfigError> {
        match self.jobs.api_type.as_str() {
            "docker" => Ok(ApiType::Docker),
            "kubernetes" => Ok(ApiType::Kubernetes),
            "process" => Ok(ApiType::Process),
            other => Err(ConfigError::Invalid(format!(
                "invalid APIType value: {other}"
            ))),
        }
    }

    /// Seconds between SIGTERM and SIGKILL when a job reaches its max duration.
    pub fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.jobs.stop_grace_seconds.unwrap_or(300))
    }

    /// Interval of the retention loop.
    pub fn retention_interval(&self) -> Duration {
        Duration::from_secs(self.jobs.retention_interval_seconds.unwrap_or(60).max(1))
    }

    /// Age after which a never-started job container is swept (default 60 s).
    pub fn created_grace(&self) -> Duration {
        Duration::from_secs(self.jobs.created_grace_seconds.unwrap_or(60))
    }

    /// How long a verified Basic credential stays cached.
    pub fn credential_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.api.security.credential_cache_seconds.unwrap_or(60))
    }

    /// The listen address as a socket address: Go's ":4545" means all interfaces.
    pub fn listen_address(&self) -> String {
        let addr = &self.api.http.listen_address;
        if addr.starts_with(':') {
            format!("0.0.0.0{addr}")
        } else {
            addr.clone()
        }
    }

    /// Directory for process-backend job data.
    pub fn process_data_dir(&self) -> PathBuf {
        if self.jobs.process.data_dir.is_empty() {
            Path::new(&self.store.data_source).join("jobs")
        } else {
            PathBuf::from(&self.jobs.process.data_dir)
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn retention_parser_matches_go_regex() {
        assert_eq!(parse_retention("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_retention("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_retention("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["45s", "10h10m", "", "m", "-1m", "1.5h", "1 m"] {
            assert_eq!(parse_retention(bad), Err(RetentionError::Format), "{bad}");
        }
    }

    #[test]
    fn defaults_validate_and_file_does_not_merge() {
        Config::defaults().validate().unwrap();
        let cfg = Config::from_toml("[api]\nhttp.listen_address = \":0\"\n").unwrap();
        assert_eq!(cfg.jobs.image_registry, "");
        let err = cfg.validate().unwrap_err().to_string();
        assert_eq!(err, "invalid DataSource value: should not be empty");
    }

    #[test]
    fn sample_style_file_and_env_overrides() {
        let text = r#"
[api]
http.listen_address = ":4545"
http.tls.enable = false
security.allow_self_registration = false
security.enable_admin = true
security.admin_secret_key = "s3cret"
security.session_cache.expiration_minutes = 1440
[store]
data_source = "/var/lib/offloader"
[jobs]
api_type = "docker"
max_concurrent_jobs = 2
failed_jobs_retention_time = "30d"
image_registry = "mattermost"
[logger]
enable_console = true
console_level = "INFO"
"#;
        let mut cfg = Config::from_toml(text).unwrap();
        cfg.validate().unwrap();
        cfg.apply_env(&env(&[
            ("JOBS_MAXCONCURRENTJOBS", "7"),
            ("API_SECURITY_ALLOWSELFREGISTRATION", "T"),
            ("JOBS_FAILEDJOBSRETENTIONTIME", "2h"),
        ]))
        .unwrap();
        assert_eq!(cfg.jobs.max_concurrent_jobs, 7);
        assert!(cfg.api.security.allow_self_registration);
        assert_eq!(
            cfg.jobs.failed_jobs_retention_time,
            Duration::from_secs(7200)
        );
        let err = cfg
            .apply_env(&env(&[("JOBS_FAILEDJOBSRETENTIONTIME", "45s")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse FailedJobsRetentionTime: invalid retention time format"
        );
        assert!(
            cfg.apply_env(&env(&[("API_HTTP_TLS_ENABLE", "yes")]))
                .is_err()
        );
    }

    #[test]
    fn validation_messages_follow_go() {
        let mut c = Config::defaults();
        c.api.security.enable_admin = true;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .ends_with("invalid AdminSecretKey value: should not be empty")
        );
        let mut c = Config::defaults();
        c.jobs.max_concurrent_jobs = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid MaxConcurrentJobs value: should be greater than zero"
        );
        let mut c = Config::defaults();
        c.jobs.api_type = "nomad".into();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid APIType value: nomad"
        );
        let mut c = Config::defaults();
        c.logger.console_level = "loud".into();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid ConsoleLevel value \"loud\""
        );
        assert!(Config::from_toml("[jobs]\nfailed_jobs_retention_time = \"45s\"\n").is_err());
    }
}
