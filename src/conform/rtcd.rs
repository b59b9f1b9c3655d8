//! `callsbench conform rtcd`: a black-box conformance suite for anything that claims to be rtcd (the
//! real mattermost/rtcd, or the reference SFU `callsref sfu`).
//!
//! The suite plays the Calls plugin against the target's HTTP API and `/ws`, and checks what a
//! plugin or an operator can see: every route under every kind of credentials with the exact status
//! and body (rtcd.md §1), the WebSocket lifecycle and framing (§2.1–2.3), the metric families (§5)
//! and the quirks of §9. Every expectation was checked by hand against a real rtcd v1.2.6; where the
//! spec leaves a choice open (a failed `/ws` upgrade may be a 200 or a 401) both answers pass, and
//! where rtcd has a documented quirk the case is reported as informational.
//!
//! Cases that need something the target withholds (the admin secret, self-registration) are
//! skipped with the reason. Media cases need real WebRTC participants and are not part of this
//! suite yet ([`rtcd_report::NOT_COVERED`](super::rtcd_report::NOT_COVERED)).
//!
//! The run is sequential except for three slow WebSocket cases (keepalive, missing pongs, the 10 s
//! no-offer close), which run concurrently so a full run takes about 30 s; `--quick` skips them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callsref::proto::auth::Authorization;
use callsref::proto::rtcd::ids;
use reqwest::Url;

use super::rtcd_check::{Check, Reply};
use super::rtcd_client::{ClientError, Target};

pub use super::rtcd_report::{CaseResult, NOT_COVERED, Outcome, Report, Summary, TargetFacts};

/// Arguments of `callsbench conform rtcd`.
#[derive(Debug, Clone, clap::Args)]
pub struct RtcdArgs {
    /// Base URL of the target's HTTP API, e.g. http://127.0.0.1:8045 (plain http only).
    #[arg(long, value_parser = parse_target_url)]
    pub url: Url,
    /// The target's `api.security.admin_secret_key`; without it the admin cases are skipped.
    #[arg(long)]
    pub admin_secret: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the slow cases (server ping, missing pongs, the 10 s no-offer close).
    #[arg(long)]
    pub quick: bool,
    /// Expect ICE-TCP (rtcd's default): an SDP offer must be answered with a passive TCP host
    /// candidate among the target's candidates. Without it that case is skipped.
    #[arg(long)]
    pub ice_tcp: bool,
}

/// Accepts `http://host[:port][/prefix]`; anything else is a usage error (exit 2).
pub fn parse_target_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => return Err("https targets are not supported by this build (no TLS)".into()),
        other => return Err(format!("unsupported scheme {other:?}, expected http")),
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    Ok(url)
}

/// What the suite is given.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub url: Url,
    pub admin_secret: Option<String>,
    pub quick: bool,
    /// Run the ICE-TCP case ([`rtcd_ice`](super::rtcd_ice)).
    pub ice_tcp: bool,
}

/// Why the suite could not run at all (exit 2), as opposed to the target failing cases (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("cannot reach the target at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot build the http client")]
    Client(#[source] ClientError),
}

/// Runs the command: the suite, the table on stdout, the JSON file, the exit code.
pub fn run(args: RtcdArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = SuiteConfig {
        url: args.url,
        admin_secret: args.admin_secret,
        quick: args.quick,
        ice_tcp: args.ice_tcp,
    };
    let report = runtime.block_on(run_suite(config))?;
    print!("{}", report.render_table());
    if let Some(path) = &args.out {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("cannot write results to {}", path.display()))?;
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// Runs every case against the target and returns the report.
pub async fn run_suite(config: SuiteConfig) -> Result<Report, SuiteError> {
    let start = Instant::now();
    let target = Target::new(config.url.clone()).map_err(SuiteError::Client)?;
    // One request up front tells "nothing listens there" (exit 2) from "it answers wrongly" (exit 1).
    target
        .get("/version", None)
        .await
        .map_err(|source| SuiteError::Unreachable {
            url: config.url.to_string(),
            source,
        })?;
    let mut ctx = Ctx {
        target,
        admin: config
            .admin_secret
            .as_deref()
            .map(|s| Authorization::admin(s).to_header_value()),
        quick: config.quick,
        ice_tcp: config.ice_tcp,
        cases: Rows::default(),
        facts: TargetFacts::default(),
        client: None,
        unregister_enabled: None,
        registered: Vec::new(),
    };
    super::rtcd_http::run(&mut ctx).await;
    super::rtcd_ws::run(&mut ctx).await;
    match ctx.client.clone() {
        Some(client) => super::rtcd_ice::run(&mut ctx, &client).await,
        None => {
            let reason = ctx.no_client_reason();
            ctx.skip(super::rtcd_ice::CASE, "rtcd.md §3.1", reason);
        }
    }
    super::rtcd_http::cleanup(&mut ctx).await;
    Ok(Report::new(
        config.url.to_string(),
        ctx.facts,
        ctx.cases.0,
        start.elapsed(),
    ))
}

/// Credentials of a client the suite registered.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: String,
    pub key: String,
}

impl Client {
    /// A fresh id and a key of rtcd's minimum length or more.
    pub fn fresh() -> Client {
        Client {
            id: fresh_id(),
            key: format!("{}{}", fresh_id(), fresh_id()),
        }
    }

    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        Authorization::basic(&self.id, &self.key).to_header_value()
    }

    /// `{"clientID": ..., "authKey": ...}`.
    pub fn credentials_body(&self) -> Vec<u8> {
        serde_json::json!({"clientID": self.id, "authKey": self.key})
            .to_string()
            .into_bytes()
    }
}

/// A fresh Mattermost-style id (used for client, call, session, user and channel ids).
pub(crate) fn fresh_id() -> String {
    ids::new_id(&mut rand::rng())
}

/// The state shared by the phases: the target, what is known about it, and the recorded rows.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub target: Target,
    /// The admin `Authorization` value, when a secret was given.
    pub admin: Option<String>,
    pub quick: bool,
    /// Whether to run the ICE-TCP case (`--ice-tcp`).
    pub ice_tcp: bool,
    pub cases: Rows,
    pub facts: TargetFacts,
    /// The suite's main registered client, when it could register one.
    pub client: Option<Client>,
    /// Whether `/unregister` is enabled (`enable_admin` or self-registration), when known.
    pub unregister_enabled: Option<bool>,
    /// Every client the suite registered, to unregister at the end.
    pub registered: Vec<Client>,
}

/// Recorded rows; the concurrent WebSocket cases each fill their own and are appended at the end.
#[derive(Debug, Default)]
pub(crate) struct Rows(pub Vec<CaseResult>);

impl Rows {
    pub fn record(&mut self, id: &str, spec: &'static str, check: Check) {
        let (outcome, detail) = match check {
            Ok(detail) => (Outcome::Pass, detail),
            Err(detail) => (Outcome::Fail, detail),
        };
        self.push(id, spec, outcome, detail);
    }

    pub fn skip(&mut self, id: &str, spec: &'static str, reason: impl Into<String>) {
        self.push(id, spec, Outcome::Skip, reason.into());
    }

    pub fn info(&mut self, id: &str, spec: &'static str, detail: impl Into<String>) {
        self.push(id, spec, Outcome::Info, detail.into());
    }

    fn push(&mut self, id: &str, spec: &'static str, outcome: Outcome, detail: String) {
        self.0.push(CaseResult {
            id: id.to_owned(),
            spec,
            outcome,
            detail,
        });
    }
}

impl Ctx {
    pub fn record(&mut self, id: &str, spec: &'static str, check: Check) {
        self.cases.record(id, spec, check);
    }

    pub fn skip(&mut self, id: &str, spec: &'static str, reason: impl Into<String>) {
        self.cases.skip(id, spec, reason);
    }

    pub fn info(&mut self, id: &str, spec: &'static str, detail: impl Into<String>) {
        self.cases.info(id, spec, detail);
    }

    /// Why client cases cannot run, for skip rows.
    pub fn no_client_reason(&self) -> &'static str {
        if self.admin.is_none() {
            "skipped (needs --admin-secret: self-registration is off, so the suite has no client)"
        } else {
            "skipped (the admin secret was rejected and self-registration is off: no client)"
        }
    }

    /// Registers one more client the best way available (self-registration, admin, or the main
    /// client's own credentials) and remembers it for cleanup.
    pub async fn register_extra(&mut self) -> Result<Client, String> {
        let client = Client::fresh();
        let auth = if self.facts.self_registration == Some(true) {
            None
        } else if self.facts.admin_accepted == Some(true) {
            self.admin.clone()
        } else if let Some(main) = &self.client {
            Some(main.basic())
        } else {
            return Err(self.no_client_reason().into());
        };
        let reply = http(
            self.target
                .post("/register", auth.as_deref(), client.credentials_body())
                .await,
        )?;
        super::rtcd_check::auth_success(&reply, 201, &[("clientID", Some(&client.id))])?;
        self.registered.push(client.clone());
        Ok(client)
    }
}

/// A transport error inside a case is that case's failure.
pub(crate) fn http(result: Result<Reply, ClientError>) -> Result<Reply, String> {
    result.map_err(|e| format!("request failed: {:#}", anyhow::Error::new(e)))
}

/// Polls `probe` every 100 ms until it returns `Ok` or `wait` passes; returns the last result.
pub(crate) async fn poll<F, Fut, T>(wait: Duration, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + wait;
    loop {
        let result = probe().await;
        if result.is_ok() || Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_url_must_be_plain_http() {
        assert!(parse_target_url("http://127.0.0.1:8045").is_ok());
        assert!(parse_target_url("http://rtcd.internal/prefix").is_ok());
        assert!(
            parse_target_url("https://x")
                .unwrap_err()
                .contains("no TLS")
        );
        assert!(
            parse_target_url("ws://x")
                .unwrap_err()
                .contains("unsupported scheme")
        );
        assert!(parse_target_url("127.0.0.1:8045").is_err());
        assert!(
            parse_target_url("http://x/?a=1")
                .unwrap_err()
                .contains("query")
        );
    }

    #[test]
    fn fresh_clients_meet_the_key_length() {
        let client = Client::fresh();
        assert!(client.key.len() >= callsref::proto::rtcd::http::MIN_KEY_LEN);
        assert!(ids::is_valid_id(&client.id));
        let parsed = Authorization::parse(Some(&client.basic())).unwrap();
        assert_eq!(parsed, Authorization::basic(&client.id, &client.key));
    }
}
