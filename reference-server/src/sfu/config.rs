//! `callsref sfu` configuration: rtcd's TOML keys, `RTCD_*` environment overrides, defaults and
//! validation (rtcd §4). A missing file means defaults only, as in rtcd.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

/// Why a configuration cannot be used. Every message names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{key} ({env}): {message}")]
    Env {
        key: &'static str,
        env: &'static str,
        message: String,
    },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub api: ApiConfig,
    pub rtc: RtcConfig,
    pub store: StoreConfig,
    pub logger: LoggerConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    pub http: HttpConfig,
    pub security: SecurityConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen_address: String,
    pub tls: TlsConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen_address: ":8045".into(),
            tls: TlsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub enable: bool,
    pub cert_file: String,
    pub cert_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    pub allow_self_registration: bool,
    pub enable_admin: bool,
    pub admin_secret_key: String,
    pub session_cache: SessionCacheConfig,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            allow_self_registration: false,
            enable_admin: false,
            admin_secret_key: String::new(),
            session_cache: SessionCacheConfig {
                expiration_minutes: 1440,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SessionCacheConfig {
    pub expiration_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RtcConfig {
    pub ice_address_udp: String,
    pub ice_port_udp: u16,
    pub ice_address_tcp: String,
    pub ice_port_tcp: u16,
    pub enable_ipv6: bool,
    pub ice_host_override: String,
    pub ice_host_port_override: PortOverride,
    pub nack_buffer_size: u32,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice_address_udp: String::new(),
            ice_port_udp: 8443,
            ice_address_tcp: String::new(),
            ice_port_tcp: 8443,
            enable_ipv6: false,
            ice_host_override: String::new(),
            ice_host_port_override: PortOverride::default(),
            nack_buffer_size: 256,
        }
    }
}

/// `rtc.ice_host_port_override`: TOML accepts an int or a string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum PortOverride {
    #[default]
    None,
    Port(u16),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    pub data_source: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_source: "/tmp/rtcd_db".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
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

impl Default for LoggerConfig {
    fn default() -> Self {
        LoggerConfig {
            enable_console: true,
            console_json: false,
            console_level: "INFO".into(),
            enable_file: true,
            file_json: true,
            file_level: "DEBUG".into(),
            file_location: "rtcd.log".into(),
            enable_color: false,
        }
    }
}

impl Config {
    /// Loads `path` (absent file → defaults), applies `RTCD_*` overrides from `env`, validates.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                source: Box::new(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source: e,
                });
            }
        };
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(
            key: &'static str,
            env: &'static str,
            v: &str,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                key,
                env,
                message: e.to_string(),
            })
        }
        macro_rules! over {
            ($env:literal, $key:literal, $field:expr) => {
                if let Some(v) = env($env) {
                    $field = parse($key, $env, &v)?;
                }
            };
        }
        over!(
            "RTCD_API_HTTP_LISTENADDRESS",
            "api.http.listen_address",
            self.api.http.listen_address
        );
        over!(
            "RTCD_API_HTTP_TLS_ENABLE",
            "api.http.tls.enable",
            self.api.http.tls.enable
        );
        over!(
            "RTCD_API_HTTP_TLS_CERTFILE",
            "api.http.tls.cert_file",
            self.api.http.tls.cert_file
        );
        over!(
            "RTCD_API_HTTP_TLS_CERTKEY",
            "api.http.tls.cert_key",
            self.api.http.tls.cert_key
        );
        over!(
            "RTCD_API_SECURITY_ALLOWSELFREGISTRATION",
            "api.security.allow_self_registration",
            self.api.security.allow_self_registration
        );
        over!(
            "RTCD_API_SECURITY_ENABLEADMIN",
            "api.security.enable_admin",
            self.api.security.enable_admin
        );
        over!(
            "RTCD_API_SECURITY_ADMINSECRETKEY",
            "api.security.admin_secret_key",
            self.api.security.admin_secret_key
        );
        over!(
            "RTCD_API_SECURITY_SESSIONCACHE_EXPIRATIONMINUTES",
            "api.security.session_cache.expiration_minutes",
            self.api.security.session_cache.expiration_minutes
        );
        over!(
            "RTCD_RTC_ICEADDRESSUDP",
            "rtc.ice_address_udp",
            self.rtc.ice_address_udp
        );
        over!(
            "RTCD_RTC_ICEPORTUDP",
            "rtc.ice_port_udp",
            self.rtc.ice_port_udp
        );
        over!(
            "RTCD_RTC_ICEADDRESSTCP",
            "rtc.ice_address_tcp",
            self.rtc.ice_address_tcp
        );
        over!(
            "RTCD_RTC_ICEPORTTCP",
            "rtc.ice_port_tcp",
            self.rtc.ice_port_tcp
        );
        over!(
            "RTCD_RTC_ENABLEIPV6",
            "rtc.enable_ipv6",
            self.rtc.enable_ipv6
        );
        over!(
            "RTCD_RTC_ICEHOSTOVERRIDE",
            "rtc.ice_host_override",
            self.rtc.ice_host_override
        );
        over!(
            "RTCD_RTC_NACKBUFFERSIZE",
            "rtc.nack_buffer_size",
            self.rtc.nack_buffer_size
        );
        if let Some(v) = env("RTCD_RTC_ICEHOSTPORTOVERRIDE") {
            self.rtc.ice_host_port_override = PortOverride::Text(v);
        }
        over!(
            "RTCD_STORE_DATASOURCE",
            "store.data_source",
            self.store.data_source
        );
        over!(
            "RTCD_LOGGER_ENABLECONSOLE",
            "logger.enable_console",
            self.logger.enable_console
        );
        over!(
            "RTCD_LOGGER_CONSOLEJSON",
            "logger.console_json",
            self.logger.console_json
        );
        over!(
            "RTCD_LOGGER_CONSOLELEVEL",
            "logger.console_level",
            self.logger.console_level
        );
        over!(
            "RTCD_LOGGER_ENABLEFILE",
            "logger.enable_file",
            self.logger.enable_file
        );
        over!(
            "RTCD_LOGGER_FILEJSON",
            "logger.file_json",
            self.logger.file_json
        );
        over!(
            "RTCD_LOGGER_FILELEVEL",
            "logger.file_level",
            self.logger.file_level
        );
        over!(
            "RTCD_LOGGER_FILELOCATION",
            "logger.file_location",
            self.logger.file_location
        );
        over!(
            "RTCD_LOGGER_ENABLECOLOR",
            "logger.enable_color",
            self.logger.enable_color
        );
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_string(),
        };
        self.listen_addr()?;
        if self.api.security.enable_admin && self.api.security.admin_secret_key.is_empty() {
            return Err(invalid(
                "api.security.admin_secret_key",
                "admin secret key cannot be empty when enable_admin is true",
            ));
        }
        if self.api.security.session_cache.expiration_minutes <= 0 {
            return Err(invalid(
                "api.security.session_cache.expiration_minutes",
                "must be greater than 0",
            ));
        }
        // Port 0 asks the OS for a free port, which tests and embedded runs need.
        if self.rtc.ice_port_udp != 0 && !(80..=49151).contains(&self.rtc.ice_port_udp) {
            return Err(invalid(
                "rtc.ice_port_udp",
                "must be in the range [80, 49151]",
            ));
        }
        if self.rtc.ice_port_tcp != 0 && !(80..=49151).contains(&self.rtc.ice_port_tcp) {
            return Err(invalid(
                "rtc.ice_port_tcp",
                "must be in the range [80, 49151]",
            ));
        }
        for (key, list) in [
            ("rtc.ice_address_udp", &self.rtc.ice_address_udp),
            ("rtc.ice_address_tcp", &self.rtc.ice_address_tcp),
        ] {
            for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                if a.parse::<IpAddr>().is_err() {
                    return Err(invalid(key, &format!("invalid IP address {a:?}")));
                }
            }
        }
        let n = self.rtc.nack_buffer_size;
        if n != 0 && (!n.is_power_of_two() || !(32..=8192).contains(&n)) {
            return Err(invalid(
                "rtc.nack_buffer_size",
                "must be a power of two in the range [32, 8192]",
            ));
        }
        if self.store.data_source.is_empty() {
            return Err(invalid("store.data_source", "must not be empty"));
        }
        if let Some(p) = self.host_port_override()?
            && !(80..=49151).contains(&p)
        {
            return Err(invalid(
                "rtc.ice_host_port_override",
                "must be in the range [80, 49151]",
            ));
        }
        Ok(())
    }

    /// `api.http.listen_address` as a socket address (`:8045` means all interfaces).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let a = &self.api.http.listen_address;
        let full = if a.starts_with(':') {
            format!("0.0.0.0{a}")
        } else {
            a.clone()
        };
        full.parse().map_err(|_| ConfigError::Invalid {
            key: "api.http.listen_address",
            message: format!("invalid address {a:?}"),
        })
    }

    /// The UDP bind address: the first `ice_address_udp` IP (or all interfaces) and the port.
    pub fn udp_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(first_ip(&self.rtc.ice_address_udp), self.rtc.ice_port_udp)
    }

    /// The ICE-TCP listen address: the first `ice_address_tcp` IP (or all interfaces) and the
    /// port.
    pub fn tcp_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(first_ip(&self.rtc.ice_address_tcp), self.rtc.ice_port_tcp)
    }

    /// The port host candidates advertise instead of the bound one, if overridden.
    pub fn host_port_override(&self) -> Result<Option<u16>, ConfigError> {
        let bad = |v: &str| ConfigError::Invalid {
            key: "rtc.ice_host_port_override",
            message: format!("invalid port {v:?}"),
        };
        match &self.rtc.ice_host_port_override {
            // 0 means unset, as in rtcd.
            PortOverride::None | PortOverride::Port(0) => Ok(None),
            PortOverride::Port(p) => Ok(Some(*p)),
            PortOverride::Text(t) if t.trim().is_empty() => Ok(None),
            PortOverride::Text(t) => {
                // `localIP/port,...`: this SFU advertises one address, so the first pair applies.
                let first = t.split(',').next().unwrap_or_default();
                let port = first.rsplit('/').next().unwrap_or_default();
                let port: u16 = port.trim().parse().map_err(|_| bad(t))?;
                Ok(Some(port).filter(|p| *p != 0))
            }
        }
    }
}

/// The first IP of a comma-separated list, or the unspecified address (all interfaces).
fn first_ip(list: &str) -> IpAddr {
    list.split(',')
        .map(str::trim)
        .find_map(|a| a.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("callsref-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per call: tests run in parallel and two configs may have the same length.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = dir.join(format!("{n}.toml"));
        std::fs::write(&p, toml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&p, |k| {
            env.iter().find(|(e, _)| e == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_match_rtcd() {
        let c = Config::load(Path::new("/nonexistent/callsref.toml"), |_| None).unwrap();
        assert_eq!(c.listen_addr().unwrap().port(), 8045);
        assert_eq!(c.rtc.ice_port_udp, 8443);
        assert_eq!(c.api.security.session_cache.expiration_minutes, 1440);
        assert_eq!(c.store.data_source, "/tmp/rtcd_db");
        assert_eq!(c.tcp_bind_addr(), "0.0.0.0:8443".parse().unwrap());
    }

    #[test]
    fn ice_tcp_keys_env_and_validation() {
        let c = load(
            "[rtc]\nice_address_tcp = \"127.0.0.1\"\nice_port_tcp = 9000\n",
            &[("RTCD_RTC_ICEPORTTCP", "9002")],
        )
        .unwrap();
        assert_eq!(c.tcp_bind_addr(), "127.0.0.1:9002".parse().unwrap());
        let c = load("", &[("RTCD_RTC_ICEADDRESSTCP", "10.0.0.7,10.0.0.8")]).unwrap();
        assert_eq!(c.tcp_bind_addr(), "10.0.0.7:8443".parse().unwrap());
        let e = load("[rtc]\nice_port_tcp = 70\n", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "rtc.ice_port_tcp: must be in the range [80, 49151]");
        let e = load("", &[("RTCD_RTC_ICEPORTTCP", "tcp")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rtc.ice_port_tcp (RTCD_RTC_ICEPORTTCP)"),
            "{e}"
        );
        let e = load("[rtc]\nice_address_tcp = \"nohost\"\n", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "rtc.ice_address_tcp: invalid IP address \"nohost\"");
    }

    #[test]
    fn env_overrides_toml_and_errors_name_the_key() {
        let c = load(
            "[rtc]\nice_port_udp = 9000\n",
            &[("RTCD_RTC_ICEPORTUDP", "9001")],
        )
        .unwrap();
        assert_eq!(c.rtc.ice_port_udp, 9001);
        let e = load("", &[("RTCD_RTC_ICEPORTUDP", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rtc.ice_port_udp (RTCD_RTC_ICEPORTUDP)"),
            "{e}"
        );
        let e = load("[api.security]\nenable_admin = true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("api.security.admin_secret_key"), "{e}");
        let e = load("[rtc]\nice_port_udp = 50000\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rtc.ice_port_udp"), "{e}");
        let e = load("[rtc]\nnack_buffer_size = 100\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rtc.nack_buffer_size"), "{e}");
        let c = load("[rtc]\nice_host_port_override = 30000\n", &[]).unwrap();
        assert_eq!(c.host_port_override().unwrap(), Some(30000));
        let c = load("[rtc]\nice_host_port_override = \"10.0.0.1/30001\"\n", &[]).unwrap();
        assert_eq!(c.host_port_override().unwrap(), Some(30001));
        let c = load("[rtc]\nice_host_port_override = 0\n", &[]).unwrap();
        assert_eq!(c.host_port_override().unwrap(), None);
        let e = load("", &[("RTCD_RTC_ICEHOSTPORTOVERRIDE", "50000")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rtc.ice_host_port_override: must be in the range [80, 49151]"
        );
    }
}
