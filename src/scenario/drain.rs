//! `[[drain]]`: rtcd hosts that stop receiving new calls from a time in the run (multi-SFU runs).
//! Hosts are named by index or address and resolved against the run's hosts in `target::placement`.

use super::error::{ScenarioError, Source};
use super::model::{Drain, DrainHost};
use super::schema::{RawDrain, S};
use super::units::parse_duration;

pub(super) fn drains(src: Source<'_>, raw: &[S<RawDrain>]) -> Result<Vec<Drain>, ScenarioError> {
    let mut out: Vec<Drain> = Vec::new();
    for item in raw {
        let item = item.get_ref();
        let host = match item.host.get_ref() {
            toml::Value::Integer(i) => u32::try_from(*i).map(DrainHost::Index).map_err(|_| {
                src.error_at_key(
                    item.host.span(),
                    format!("host: expected a host index from 0, found {i}"),
                )
            })?,
            toml::Value::String(a) => {
                let a = a.trim();
                if a.parse::<std::net::IpAddr>().is_err()
                    && a.parse::<std::net::SocketAddr>().is_err()
                {
                    return Err(src.error_at_key(
                        item.host.span(),
                        format!("host: expected an IP address or IP:port, found \"{a}\""),
                    ));
                }
                DrainHost::Address(a.to_owned())
            }
            other => {
                return Err(src.error_at_key(
                    item.host.span(),
                    format!(
                        "host: expected a host index (integer) or address (string), found a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        if out.iter().any(|d| d.host() == &host) {
            return Err(
                src.error_at_key(item.host.span(), format!("host: {host} is drained twice"))
            );
        }
        out.push(Drain::new(
            host,
            parse_duration(item.at.get_ref())
                .map_err(|e| src.error_at_key(item.at.span(), format!("at: {e}")))?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{MediaCheck, Scenario};
    use super::*;

    fn load(extra: &str) -> Result<Scenario, ScenarioError> {
        let text = format!("[[calls]]\ncount = 8\nparticipants = 2\n{extra}");
        Scenario::from_toml(&text, Path::new("d.toml"), MediaCheck::Skip)
    }

    #[test]
    fn drains_name_hosts_by_index_or_address() {
        let s = load(
            "[[drain]]\nhost = 1\nat = \"20s\"\n[[drain]]\nhost = \"127.0.0.2:8045\"\nat = \"1m\"\n",
        )
        .unwrap();
        assert_eq!(
            s.drains(),
            [
                Drain::new(DrainHost::Index(1), Duration::from_secs(20)),
                Drain::new(
                    DrainHost::Address("127.0.0.2:8045".into()),
                    Duration::from_secs(60)
                ),
            ]
        );
        assert!(load("").unwrap().drains().is_empty());
    }

    #[test]
    fn bad_drains_point_at_the_key() {
        let cases = [
            (
                "host = -1\nat = \"1s\"",
                "d.toml:5:1: host: expected a host index from 0, found -1",
            ),
            (
                "host = \"rtcd-a\"\nat = \"1s\"",
                "d.toml:5:1: host: expected an IP address or IP:port, found \"rtcd-a\"",
            ),
            (
                "host = 1.5\nat = \"1s\"",
                "d.toml:5:1: host: expected a host index (integer) or address (string), found a float",
            ),
            ("host = 0\nat = \"soon\"", "d.toml:6:1: at: "),
            (
                "host = 0\nat = \"1s\"\n[[drain]]\nhost = 0\nat = \"2s\"",
                "d.toml:8:1: host: host 0 is drained twice",
            ),
        ];
        for (body, expected) in cases {
            let err = load(&format!("[[drain]]\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expected), "{body:?}: {err}");
        }
        assert!(load("[[drain]]\nhost = 0\n").is_err(), "at is required");
    }
}
