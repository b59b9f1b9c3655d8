//! `callsbench conform offloader`: every black-box case of offloader.md §9.1 against a running
//! calls-offloader (the Go service or `callsref offloader`), plus Docker white-box checks.
//!
//! The suite adapts to the target's configuration: admin cases run when `--admin-secret` is given,
//! self-registration is detected by probing `/register`, and cases that need another
//! configuration are reported as skipped with the reason. Job cases need the callsbench runner
//! image (`deploy/runner/build-image.sh`) tagged under the target's `jobs.image_registry`, because
//! they steer the job's exit code, run time and output through `RUNNER_*` input_data keys.

mod auth;
mod client;
mod jobs;

use std::path::PathBuf;
use std::time::Duration;

pub use client::{Http, Resp};
pub(crate) use jobs::running_labelled;

use super::{CaseResult, Outcome, Report};

/// What to test and how the target is configured.
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL, e.g. `http://127.0.0.1:4545`.
    pub url: String,
    /// The admin secret when the target has `enable_admin = true`.
    pub admin_secret: Option<String>,
    /// The target's `jobs.image_registry`.
    pub registry: String,
    /// Also run the Docker white-box checks (needs the `docker` CLI on the same engine).
    pub docker: bool,
    /// `DOCKER_NETWORK` of the target (white-box check of NetworkMode); `None` means unset.
    pub docker_network: Option<String>,
    /// The target's `jobs.max_concurrent_jobs`.
    pub limit: usize,
    /// A pre-registered client, needed when neither admin nor self-registration is on.
    pub client: Option<(String, String)>,
    /// The target's stop grace in seconds, if short enough to test (Go: 300).
    pub stop_grace: Option<u64>,
    /// Run the cases that need minutes (expired token, retention).
    pub slow: bool,
    /// The target's failed_jobs_retention_time in minutes (for the retention case with `slow`).
    pub retention_minutes: Option<u64>,
    /// The target's session_cache.expiration_minutes, when short (for the expiry case with `slow`).
    pub session_minutes: Option<u64>,
}

impl Options {
    pub fn recorder(&self) -> String {
        format!("{}/calls-recorder:v0.8.13", self.registry)
    }

    pub fn transcriber(&self) -> String {
        format!("{}/calls-transcriber:v0.7.2", self.registry)
    }
}

/// Runs the suite and returns the report.
pub async fn run(opts: Options) -> Report {
    let mut suite = Suite::new(opts);
    suite.run_all().await;
    suite.report
}

/// Suite state shared by the case groups.
pub(crate) struct Suite {
    pub(crate) opts: Options,
    pub(crate) http: Http,
    pub(crate) report: Report,
    /// Detected: the target registers unknown clients on first use.
    pub(crate) self_registration: bool,
    /// Credentials of a working client.
    pub(crate) client: Option<(String, String)>,
    /// Jobs the suite created and must clean up.
    pub(crate) created: Vec<String>,
}

/// A random 32-character key (base64url alphabet, as the plugin's).
pub(crate) fn random_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..32)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn random_client() -> String {
    format!("conform-{:016x}", rand::random::<u64>())
}

impl Suite {
    fn new(opts: Options) -> Self {
        let http = Http::new(&opts.url);
        let report = Report {
            suite: "offloader".into(),
            target: opts.url.clone(),
            cases: Vec::new(),
        };
        Suite {
            client: opts.client.clone(),
            opts,
            http,
            report,
            self_registration: false,
            created: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, group: &str, name: &str, result: Result<String, String>) {
        let (outcome, detail) = match result {
            Ok(d) => (Outcome::Pass, d),
            Err(d) => (Outcome::Fail, d),
        };
        self.report.cases.push(CaseResult {
            group: group.into(),
            name: name.into(),
            outcome,
            detail,
        });
    }

    pub(crate) fn info(&mut self, group: &str, name: &str, detail: String) {
        self.report.cases.push(CaseResult {
            group: group.into(),
            name: name.into(),
            outcome: Outcome::Info,
            detail,
        });
    }

    pub(crate) fn skip(&mut self, group: &str, name: &str, why: &str) {
        self.report.cases.push(CaseResult {
            group: group.into(),
            name: name.into(),
            outcome: Outcome::Skip,
            detail: why.into(),
        });
    }

    /// Basic header of the suite's client.
    pub(crate) fn client_auth(&self) -> Option<String> {
        self.client
            .as_ref()
            .map(|(id, key)| callsref::proto::auth::Authorization::basic(id, key).to_header_value())
    }

    pub(crate) fn admin_auth(&self) -> Option<String> {
        self.opts
            .admin_secret
            .as_ref()
            .map(|s| callsref::proto::auth::Authorization::admin(s).to_header_value())
    }

    async fn run_all(&mut self) {
        auth::routing(self).await;
        auth::setup(self).await;
        auth::auth_cases(self).await;
        auth::register_login_unregister(self).await;
        if self.client.is_none() {
            self.skip(
                "jobs",
                "all job cases",
                "no working client (give --admin-secret or a registered client)",
            );
            return;
        }
        jobs::creation_input(self).await;
        jobs::init(self).await;
        jobs::lifecycle(self).await;
        jobs::limits(self).await;
        jobs::cleanup(self).await;
    }
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub(crate) async fn poll<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `callsbench conform offloader` arguments.
#[derive(Debug, clap::Args)]
pub struct ConformOffloaderArgs {
    /// Base URL of the offloader.
    #[arg(long)]
    pub url: String,
    /// Admin secret (the target has enable_admin = true).
    #[arg(long)]
    pub admin_secret: Option<String>,
    /// The target's jobs.image_registry (the runner image must be tagged under it).
    #[arg(long, default_value = "callsbench")]
    pub registry: String,
    /// Run the Docker white-box checks with the local docker CLI.
    #[arg(long)]
    pub docker: bool,
    /// The target's DOCKER_NETWORK, for the NetworkMode check.
    #[arg(long)]
    pub docker_network: Option<String>,
    /// The target's jobs.max_concurrent_jobs.
    #[arg(long, default_value_t = 2)]
    pub limit: usize,
    /// A registered client id (with --auth-key), when neither admin nor self-registration is on.
    #[arg(long, requires = "auth_key")]
    pub client_id: Option<String>,
    #[arg(long, requires = "client_id")]
    pub auth_key: Option<String>,
    /// The target's stop grace in seconds if short (Go: 300); enables the SIGTERM-ignored case.
    #[arg(long)]
    pub stop_grace: Option<u64>,
    /// Also run the cases that take minutes (expired bearer token, retention).
    #[arg(long)]
    pub slow: bool,
    /// The target's failed_jobs_retention_time in minutes (with --slow).
    #[arg(long)]
    pub retention_minutes: Option<u64>,
    /// The target's session_cache.expiration_minutes (with --slow, 1 or 2: tests token expiry).
    #[arg(long)]
    pub session_minutes: Option<u64>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "conform-offloader.json")]
    pub out: PathBuf,
}

impl From<&ConformOffloaderArgs> for Options {
    fn from(a: &ConformOffloaderArgs) -> Self {
        Options {
            url: a.url.trim_end_matches('/').to_owned(),
            admin_secret: a.admin_secret.clone(),
            registry: a.registry.clone(),
            docker: a.docker,
            docker_network: a.docker_network.clone(),
            limit: a.limit,
            client: a.client_id.clone().zip(a.auth_key.clone()),
            stop_grace: a.stop_grace,
            slow: a.slow,
            retention_minutes: a.retention_minutes,
            session_minutes: a.session_minutes,
        }
    }
}

/// Runs the command: table on stdout, JSON to `--out`, exit 1 on any failure.
pub fn command(args: ConformOffloaderArgs) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(Options::from(&args)));
    print!("{}", report.table());
    std::fs::write(&args.out, report.to_json())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    Ok(if report.passed() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(crate::cli::EXIT_FAILED)
    })
}
