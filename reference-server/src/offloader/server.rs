//! Wiring: config → store, backend, job service, auth → HTTP server; `callsref offloader` and the
//! in-process [`start`] that tests use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::backend::docker::DockerBackend;
use super::backend::process::ProcessBackend;
use super::backend::{Backend, BackendError};
use super::clients::{AuthSettings, Clients};
use super::config::{ApiType, Config, ConfigError};
use super::http::App;
use super::jobs::{Jobs, Timing};
use super::seccomp;
use super::store::{Store, StoreError};
use crate::proto::offloader::RunnerPolicy;

/// DEV_MODE=true or TEST_MODE=true skip runner validation, as in the Go service.
fn dev_or_test_mode() -> bool {
    ["DEV_MODE", "TEST_MODE"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| v == "true"))
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to load config: {0}")]
    Load(ConfigError),
    #[error("failed to validate config: {0}")]
    Invalid(ConfigError),
    #[error("failed to create store: {0}")]
    Store(#[from] StoreError),
    #[error("failed to create job service: {0}")]
    Backend(#[from] BackendError),
    #[error("failed to create job service: the kubernetes api_type is not implemented by callsref")]
    Kubernetes,
    #[error("failed to start api server: TLS is not implemented by callsref (api.http.tls.enable)")]
    Tls,
    #[error("failed to start api server: {0}")]
    Listen(std::io::Error),
    #[error("failed to start runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running service.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    pub app: Arc<App>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops serving HTTP. Jobs keep running, as containers outlive the Go service too.
    pub fn abort(&self) {
        self.server.abort();
    }
}

/// Builds the backend named by the config.
pub async fn backend(cfg: &Config) -> Result<Backend, StartError> {
    match cfg.api_type().map_err(StartError::Invalid)? {
        ApiType::Docker => {
            let network = std::env::var("DOCKER_NETWORK")
                .ok()
                .filter(|n| !n.is_empty());
            Ok(Backend::Docker(
                DockerBackend::connect(
                    network,
                    seccomp::security_opt(),
                    cfg.jobs.docker.output_logs,
                )
                .await?,
            ))
        }
        ApiType::Process => {
            let runner = if cfg.jobs.process.runner_path.is_empty() {
                std::env::current_exe().map_err(|e| BackendError::Spawn(e.to_string()))?
            } else {
                cfg.jobs.process.runner_path.clone().into()
            };
            Ok(Backend::Process(ProcessBackend::open(
                runner,
                cfg.process_data_dir(),
            )?))
        }
        ApiType::Kubernetes => Err(StartError::Kubernetes),
    }
}

/// Starts the service on the configured address inside the current tokio runtime.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    cfg.validate().map_err(StartError::Invalid)?;
    if cfg.api.http.tls.enable {
        return Err(StartError::Tls);
    }
    if cfg.store.data_source.starts_with("/tmp") {
        tracing::warn!(
            data_source = cfg.store.data_source,
            "store under /tmp may be wiped on reboot"
        );
    }
    let store = Store::open(Path::new(&cfg.store.data_source))?;
    let backend = backend(&cfg).await?;
    let timing = Timing {
        stop_grace: cfg.stop_grace(),
        retention: cfg.jobs.failed_jobs_retention_time,
        retention_interval: cfg.retention_interval(),
        created_grace: cfg.created_grace(),
    };
    // Invariant: validate() rejected max_concurrent_jobs <= 0.
    let limit = usize::try_from(cfg.jobs.max_concurrent_jobs).unwrap_or(usize::MAX);
    let jobs = Jobs::new(backend, store.clone(), limit, timing);
    jobs.start().await?;
    let sec = &cfg.api.security;
    let settings = AuthSettings {
        admin_secret: sec.enable_admin.then(|| sec.admin_secret_key.clone()),
        self_registration: sec.allow_self_registration,
        session_ttl: std::time::Duration::from_secs(
            u64::try_from(sec.session_cache.expiration_minutes)
                .unwrap_or(0)
                .saturating_mul(60),
        ),
        credential_cache_ttl: cfg.credential_cache_ttl(),
    };
    let app = Arc::new(App {
        clients: Clients::new(store, settings),
        jobs,
        policy: RunnerPolicy::new(cfg.jobs.image_registry.clone())
            .with_dev_or_test_mode(dev_or_test_mode()),
        build_version: format!("dev-callsref-{}", env!("CARGO_PKG_VERSION")),
        build_hash: String::new(),
        build_date: String::new(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.listen_address())
        .await
        .map_err(StartError::Listen)?;
    let addr = listener.local_addr().map_err(StartError::Listen)?;
    let shared = Arc::clone(&app);
    let router =
        axum::Router::new().fallback(move |req| super::http::handle(Arc::clone(&shared), req));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Running { addr, app, server })
}

fn init_logging(cfg: &Config) {
    let level = cfg.logger.console_level.to_ascii_lowercase();
    let level = match level.as_str() {
        "panic" | "fatal" => "error",
        "stdlog" => "info",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("callsref={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// `callsref offloader --config FILE`: load, validate, serve until SIGINT/SIGTERM.
pub fn run(config_path: &Path) -> Result<(), StartError> {
    let cfg = Config::load(config_path).map_err(StartError::Load)?;
    cfg.validate().map_err(StartError::Invalid)?;
    init_logging(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    rt.block_on(async {
        let running = start(cfg).await?;
        // Tests and scripts read the bound address from this line (the port may be 0 in the config).
        println!("callsref offloader listening on {}", running.addr);
        wait_for_shutdown().await;
        tracing::info!("shutting down; job containers keep running");
        running.abort();
        Ok(())
    })
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
