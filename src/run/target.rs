//! The target of a call load: the embedded reference SFU spawned as a child process on loopback
//! (no `--rtcd`), or the given rtcd hosts; either way connected to as the plugin does.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::RunArgs;
use crate::measure::{ProcProbe, ServerSource};
use crate::report::{Host, ProbeSource, TargetInfo};
use crate::target::RtcdTarget;
use crate::target::embedded::EmbeddedSfu;
use crate::target::rtcd::{ClientCredentials, MIN_VERSION, resolve_hosts};

/// The program that runs the embedded SFU: `callsref` beside this executable when it was built,
/// else this executable itself (`callsbench` carries the same SFU as a hidden `sfu` command, so
/// `cargo run -- run ...` works without building the `callsref` binary first).
pub fn embedded_program() -> PathBuf {
    let beside = crate::target::embedded::default_program();
    if beside.is_file() {
        return beside;
    }
    std::env::current_exe().unwrap_or(beside)
}

/// The local address that routes to `peer` (what a participant advertises as its host candidate).
fn local_ip_for(peer: SocketAddr) -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

async fn connect_target(
    hosts: Vec<crate::target::rtcd::RtcdHost>,
    creds: ClientCredentials,
    seed: u64,
    fresh: bool,
) -> Result<RtcdTarget, crate::target::TargetError> {
    if fresh {
        RtcdTarget::connect_new_client(hosts, creds, MIN_VERSION, seed).await
    } else {
        RtcdTarget::connect(hosts, creds, MIN_VERSION, seed).await
    }
}

/// What was set up to be loaded.
#[derive(Debug)]
pub struct TargetSetup {
    pub target: RtcdTarget,
    /// Kept for the whole run: dropping it kills the child.
    pub embedded: Option<EmbeddedSfu>,
    pub info: TargetInfo,
    pub probe: ServerSource,
    pub local_ip: IpAddr,
}

/// Sets up the target: spawns the embedded SFU (no `--rtcd`) or resolves the rtcd hosts, then
/// connects to every host as the plugin does (self-registering when needed).
pub async fn connect(args: &RunArgs, seed: u64) -> anyhow::Result<TargetSetup> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_c11e);
    // Without --client-id the identity is made here, so it must be registered before its first
    // dial (see `RtcdTarget::connect_new_client`).
    let fresh = args.client_id.is_none();
    let creds = match (&args.client_id, &args.auth_key) {
        (Some(id), Some(key)) => ClientCredentials::new(id.clone(), key.clone())?,
        (None, Some(key)) => {
            ClientCredentials::new(callsref::proto::rtcd::ids::new_id(&mut rng), key.clone())?
        }
        (Some(_), None) => anyhow::bail!("--client-id needs --auth-key"),
        (None, None) => ClientCredentials::generate(&mut rng),
    };
    let cores = Host::this_machine().cores;
    if args.rtcd.is_empty() {
        let dir = std::env::temp_dir().join(format!(
            "callsbench-sfu-{}-{}",
            std::process::id(),
            crate::report::model::unix_ms(SystemTime::now())
        ));
        let program = embedded_program();
        let sfu = tokio::task::block_in_place(|| EmbeddedSfu::spawn(&program, &dir))
            .with_context(|| format!("starting the embedded SFU ({})", program.display()))?;
        let host = sfu.host();
        let target = connect_target(vec![host], creds, seed, fresh).await?;
        let version = target.hosts()[0].version.build_version.clone();
        Ok(TargetSetup {
            info: TargetInfo {
                kind: "embedded".into(),
                version: Some(version).filter(|v| !v.is_empty()),
                address: Some(host.addr.to_string()),
                vcpus: Some(cores),
                probe: ProbeSource::Proc,
            },
            probe: ServerSource::Proc(ProcProbe::pid(sfu.pid())),
            local_ip: IpAddr::from([127, 0, 0, 1]),
            target,
            embedded: Some(sfu),
        })
    } else {
        let hosts = resolve_hosts(&args.rtcd).await?;
        let first = hosts[0];
        let target = connect_target(hosts.clone(), creds, seed, fresh).await?;
        let version = target.hosts()[0].version.build_version.clone();
        Ok(TargetSetup {
            info: TargetInfo {
                kind: "rtcd".into(),
                version: Some(version).filter(|v| !v.is_empty()),
                address: Some(
                    hosts
                        .iter()
                        .map(|h| h.addr.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                vcpus: None,
                probe: ProbeSource::Prometheus,
            },
            // rtcd serves its metrics on the API listener.
            probe: ServerSource::Prometheus {
                addr: first.addr,
                path: "/metrics".into(),
                timeout: Duration::from_millis(800),
            },
            local_ip: local_ip_for(first.addr),
            target,
            embedded: None,
        })
    }
}
