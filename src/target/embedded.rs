//! The embedded target: the reference SFU (`callsref sfu`) as a separate child process on loopback,
//! so its CPU and memory are measured apart from the load the harness generates.
//!
//! The child gets an rtcd-style TOML config with every port set to 0 and self-registration on, and
//! `--ready-file`; once listening it writes `{"http":"ADDR","udp":PORT}` there, which gives the
//! [`RtcdHost`] to connect to. The child is killed when the handle is dropped.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::rtcd::RtcdHost;

/// How long the child may take to start listening.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the embedded SFU could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("preparing {path}: {source}")]
    Files {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} exited before listening ({status})")]
    Exited { program: String, status: String },
    #[error("{program} did not report its ports within {READY_TIMEOUT:?}")]
    NotReady { program: String },
    #[error("ready file {path}: {reason}")]
    BadReady { path: String, reason: String },
}

/// The ready file the SFU writes.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Ready {
    pub http: SocketAddr,
    pub udp: u16,
}

/// The config given to the child: loopback, ephemeral ports, self-registration, store in `dir`.
pub fn loopback_config(dir: &Path) -> String {
    loopback_config_on(dir, IpAddr::from([127, 0, 0, 1]))
}

/// The same config on another loopback address (`127.0.0.2`, ...), so several SFUs on one machine
/// are told apart by IP as rtcd hosts are.
pub fn loopback_config_on(dir: &Path, ip: IpAddr) -> String {
    format!(
        "[api.http]\nlisten_address = \"{}\"\n\
         [api.security]\nallow_self_registration = true\n\
         [rtc]\nice_address_udp = \"{ip}\"\nice_port_udp = 0\n\
         ice_address_tcp = \"{ip}\"\nice_port_tcp = 0\n\
         [store]\ndata_source = {:?}\n\
         [logger]\nenable_file = false\nconsole_level = \"WARN\"\n",
        SocketAddr::new(ip, 0),
        dir.join("store").display().to_string()
    )
}

/// The `callsref` binary next to the running executable (cargo puts workspace binaries side by
/// side), else `callsref` from `PATH`.
pub fn default_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            // Test binaries live one level down, in `deps/`.
            let dir = exe.parent()?;
            [dir.join("callsref"), dir.parent()?.join("callsref")]
                .into_iter()
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("callsref"))
}

/// A running reference SFU child process.
#[derive(Debug)]
pub struct EmbeddedSfu {
    child: Child,
    dir: PathBuf,
    pub ready: Ready,
}

impl EmbeddedSfu {
    /// Starts `program sfu --config <dir>/config.toml --ready-file <dir>/ready.json` and waits for
    /// the ready file. `dir` must be a fresh, private directory (it holds the credential store).
    pub fn spawn(program: &Path, dir: &Path) -> Result<Self, EmbeddedError> {
        Self::spawn_on(program, dir, IpAddr::from([127, 0, 0, 1]))
    }

    /// [`EmbeddedSfu::spawn`] with the API and media bound to `ip` (a loopback address).
    pub fn spawn_on(program: &Path, dir: &Path, ip: IpAddr) -> Result<Self, EmbeddedError> {
        let files = |source| EmbeddedError::Files {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(files)?;
        let config = dir.join("config.toml");
        let ready_path = dir.join("ready.json");
        std::fs::write(&config, loopback_config_on(dir, ip)).map_err(files)?;
        let name = program.display().to_string();
        let mut child = Command::new(program)
            .arg("sfu")
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready_path)
            .stdin(Stdio::null())
            // The ready line is also in the ready file; the harness's stdout is its summary.
            .stdout(Stdio::null())
            // Its own process group: a terminal's Ctrl-C interrupts the harness, which then
            // ends the run cleanly, instead of killing the target under it.
            .process_group(0)
            .spawn()
            .map_err(|source| EmbeddedError::Spawn {
                program: name.clone(),
                source,
            })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready_path)
                && !text.trim().is_empty()
            {
                let ready: Ready = serde_json::from_str(&text).map_err(|e| {
                    let _ = child.kill();
                    EmbeddedError::BadReady {
                        path: ready_path.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                return Ok(EmbeddedSfu {
                    child,
                    dir: dir.to_path_buf(),
                    ready,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(EmbeddedError::Exited {
                    program: name,
                    status: status.to_string(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(EmbeddedError::NotReady { program: name });
            }
            // Polling a file the child writes once: a short pause between looks, bounded above.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The host to drive.
    pub fn host(&self) -> RtcdHost {
        RtcdHost {
            addr: self.ready.http,
            tls: false,
        }
    }

    /// The child's pid, for CPU and memory sampling from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding its config and store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for EmbeddedSfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_binds_loopback_on_ephemeral_ports() {
        let c = loopback_config(Path::new("/tmp/x"));
        let v: toml::Value = toml::from_str(&c).unwrap();
        assert_eq!(
            v["api"]["http"]["listen_address"].as_str(),
            Some("127.0.0.1:0")
        );
        assert_eq!(v["rtc"]["ice_port_udp"].as_integer(), Some(0));
        assert_eq!(
            v["api"]["security"]["allow_self_registration"].as_bool(),
            Some(true)
        );
        assert_eq!(v["store"]["data_source"].as_str(), Some("/tmp/x/store"));
        let c = loopback_config_on(Path::new("/tmp/y"), IpAddr::from([127, 0, 0, 2]));
        let v: toml::Value = toml::from_str(&c).unwrap();
        assert_eq!(
            v["api"]["http"]["listen_address"].as_str(),
            Some("127.0.0.2:0")
        );
        assert_eq!(v["rtc"]["ice_address_udp"].as_str(), Some("127.0.0.2"));
    }

    #[test]
    fn ready_file_parses() {
        let r: Ready = serde_json::from_str(r#"{"http":"127.0.0.1:40001","udp":40002}"#).unwrap();
        assert_eq!(r.http.port(), 40001);
        assert_eq!(r.udp, 40002);
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let dir = std::env::temp_dir().join(format!("callsbench-embedded-{}", std::process::id()));
        let err = EmbeddedSfu::spawn(Path::new("/nonexistent/callsref"), &dir).unwrap_err();
        assert!(matches!(err, EmbeddedError::Spawn { .. }), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
