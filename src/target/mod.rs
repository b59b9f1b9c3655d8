//! What is loaded: rtcd hosts driven over their plugin API ([`rtcd`] for HTTP, [`ws`] for the `/ws`
//! connection), joined up as an [`RtcdTarget`] that connects like the plugin and places calls, and
//! the [`embedded`] reference SFU run as a child process on loopback. [`placement`] decides which
//! host each new call goes to (and drains hosts during a run).

pub mod embedded;
pub mod placement;
pub mod rtcd;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use rand::SeedableRng;
use rand::rngs::StdRng;

use callsref::proto::rtcd::http::VersionInfo;

use self::placement::{Placement, PlacementError};
use self::rtcd::{ClientCredentials, RtcdApi, RtcdError, RtcdHost, check_version};
use self::ws::{PluginLink, WsError};
use crate::engine::driver::{Driver, EventSink, SignalSink};
use crate::engine::participant::ParticipantConfig;

/// Why the target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Rtcd(#[from] RtcdError),
    #[error("{host}: {source}")]
    Ws {
        host: SocketAddr,
        #[source]
        source: WsError,
    },
    #[error("no rtcd host given")]
    NoHosts,
}

/// One connected rtcd host.
#[derive(Debug, Clone)]
pub struct HostLink {
    pub api: RtcdApi,
    pub link: PluginLink,
    pub version: VersionInfo,
}

/// Every rtcd host of the run, each with its plugin connection.
#[derive(Debug)]
pub struct RtcdTarget {
    hosts: Vec<HostLink>,
    rng: StdRng,
    placement: Placement,
}

impl RtcdTarget {
    /// Connects to every host as the plugin does: check `/version` against `min_version`, open
    /// `/ws`; if that fails, self-register (`/register` with the same credentials) and open it again.
    pub async fn connect(
        hosts: Vec<RtcdHost>,
        creds: ClientCredentials,
        min_version: (u64, u64, u64),
        seed: u64,
    ) -> Result<Self, TargetError> {
        Self::connect_as(hosts, creds, min_version, seed, false).await
    }

    /// Like [`connect`](Self::connect) for credentials made for this run: no host can know them
    /// yet, so each host is registered with first and then dialled once. The plugin's order
    /// (dial, register on failure, dial again) would cost every host a refused `/ws` upgrade,
    /// which rtcd (and the reference SFU) log as a failed authentication.
    pub async fn connect_new_client(
        hosts: Vec<RtcdHost>,
        creds: ClientCredentials,
        min_version: (u64, u64, u64),
        seed: u64,
    ) -> Result<Self, TargetError> {
        Self::connect_as(hosts, creds, min_version, seed, true).await
    }

    async fn connect_as(
        hosts: Vec<RtcdHost>,
        creds: ClientCredentials,
        min_version: (u64, u64, u64),
        seed: u64,
        register_first: bool,
    ) -> Result<Self, TargetError> {
        if hosts.is_empty() {
            return Err(TargetError::NoHosts);
        }
        let mut links = Vec::with_capacity(hosts.len());
        for host in hosts {
            let api = RtcdApi::new(host, creds.clone());
            let version = api.version().await?;
            check_version(host.addr, &version.build_version, min_version)?;
            if register_first {
                api.register().await?;
            }
            let link = match ws::connect(host, creds.clone()).await {
                Ok(link) => link,
                Err(_) => {
                    api.register().await?;
                    ws::connect(host, creds.clone())
                        .await
                        .map_err(|source| TargetError::Ws {
                            host: host.addr,
                            source,
                        })?
                }
            };
            links.push(HostLink { api, link, version });
        }
        let addrs: Vec<SocketAddr> = links.iter().map(|h| h.api.host().addr).collect();
        Ok(RtcdTarget {
            hosts: links,
            rng: StdRng::seed_from_u64(seed),
            // Invariant: no drains, so nothing can fail to resolve.
            placement: Placement::new(&addrs, &[]).expect("placement without drains"),
        })
    }

    pub fn hosts(&self) -> &[HostLink] {
        &self.hosts
    }
}

impl RtcdTarget {
    /// Drains hosts during the run (the scenario's `[[drain]]`); replaces the placement record, so
    /// call it before placing calls.
    pub fn set_drains(&mut self, drains: &[crate::scenario::Drain]) -> Result<(), PlacementError> {
        let addrs = self.placement.addresses();
        self.placement = Placement::new(&addrs, drains)?;
        Ok(())
    }

    /// The host for `call`: the one it already has, else the lowest `/system` cpu_load among the
    /// connected hosts not drained at `at` (time since the run start); see [`placement`].
    pub async fn place(
        &mut self,
        call: &str,
        at: std::time::Duration,
    ) -> Result<usize, PlacementError> {
        if let Some(h) = self.placement.host_of(call) {
            return Ok(h);
        }
        // Drained hosts are asked too: their load tells whether a call was diverted from them.
        let loads = self.host_loads().await;
        tracing::debug!(call, ?loads, "placing a call by /system cpu_load");
        self.placement.place(call, &loads, at, &mut self.rng)
    }

    /// Every host's `/system` cpu_load, `None` for a host whose connection is down or that did
    /// not answer.
    async fn host_loads(&self) -> Vec<Option<f64>> {
        let mut loads = Vec::with_capacity(self.hosts.len());
        for h in &self.hosts {
            loads.push(if h.link.is_up() {
                h.api.system().await.ok()
            } else {
                None
            });
        }
        loads
    }

    /// Calls per host and the session outcomes reported to it.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// For reporting session outcomes ([`Placement::session_joined`] and the like).
    pub fn placement_mut(&mut self) -> &mut Placement {
        &mut self.placement
    }
}

impl HostLink {
    /// Adds a participant to `driver` whose signalling goes over this host's plugin connection.
    /// The session is registered for incoming messages before the participant exists, so rtcd's
    /// first answer cannot arrive unrouted. Returns the participant's index and local address.
    pub fn add_participant<S: EventSink>(
        &self,
        driver: &mut Driver<S>,
        cfg: ParticipantConfig,
    ) -> std::io::Result<(usize, SocketAddr)> {
        self.link
            .register(cfg.session_id.clone(), driver.next_inbox());
        let sink: Arc<dyn SignalSink> = Arc::new(self.link.clone());
        driver.add(cfg, sink)
    }
}
