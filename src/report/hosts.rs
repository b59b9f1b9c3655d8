//! The summary's per-host rows of a multi-SFU run: calls, sessions and outcomes per rtcd host, and
//! the record of a drained host. Read back from the run's counts (`host[ADDR].NAME`, written by
//! [`crate::target::placement::Placement::counts`]), so merged shards sum exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::Counts;

/// What happened on a host drained during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainRecord {
    /// Drain time, seconds from the run start.
    pub at_s: f64,
    /// Calls live on the host at the drain time (they keep running there).
    pub calls_live: u64,
    /// Of those, calls whose sessions all ended with no disconnect or failed join after the drain.
    pub calls_ended_clean: u64,
    /// Calls placed on the host after the drain (0 unless placement is broken).
    pub calls_placed_after: u64,
    /// New calls the load rule would have put on the host that went elsewhere.
    pub calls_diverted: u64,
    /// Sessions on the host that dropped without a planned leave after the drain.
    pub disconnects_after: u64,
    /// Joins on the host that failed after the drain.
    pub join_failures_after: u64,
}

/// One rtcd host of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRow {
    /// `IP:port` of the host's API.
    pub address: String,
    /// Calls placed on it.
    pub calls: u64,
    /// Sessions started in those calls.
    pub sessions: u64,
    /// Sessions that completed their join.
    pub joins: u64,
    /// Sessions that gave up joining.
    pub join_failures: u64,
    /// Sessions that dropped without a planned leave.
    pub disconnects: u64,
    /// Set when the host was drained.
    pub drain: Option<DrainRecord>,
}

/// The rows, one per host address found in `counts`, in address order.
pub fn rows(counts: &Counts) -> Vec<HostRow> {
    let mut by_host: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for (key, v) in counts {
        let Some(rest) = key.strip_prefix("host[") else {
            continue;
        };
        let Some((addr, name)) = rest.split_once("].") else {
            continue;
        };
        by_host.entry(addr).or_default().insert(name, *v);
    }
    by_host
        .into_iter()
        .map(|(addr, f)| {
            let g = |n: &str| f.get(n).copied().unwrap_or(0);
            // Every shard that drained the host adds 1 to `drained` and its drain time to
            // `drain_at_ms`; all shards drain at the scenario's time, so the mean is exact.
            let drain = (g("drained") > 0).then(|| DrainRecord {
                at_s: g("drain_at_ms") as f64 / g("drained") as f64 / 1000.0,
                calls_live: g("drain.calls_live"),
                calls_ended_clean: g("drain.calls_ended_clean"),
                calls_placed_after: g("drain.calls_placed_after"),
                calls_diverted: g("drain.calls_diverted"),
                disconnects_after: g("drain.disconnects_after"),
                join_failures_after: g("drain.join_failures_after"),
            });
            HostRow {
                address: addr.to_owned(),
                calls: g("calls"),
                sessions: g("sessions"),
                joins: g("joins"),
                join_failures: g("join_failures"),
                disconnects: g("disconnects"),
                drain,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_host_counts_and_merge_by_sum() {
        let mut c = Counts::new();
        for (k, v) in [
            ("host[127.0.0.1:1].calls", 5),
            ("host[127.0.0.1:1].sessions", 20),
            ("host[127.0.0.2:2].calls", 3),
            ("host[127.0.0.2:2].drained", 2),
            ("host[127.0.0.2:2].drain_at_ms", 40_000),
            ("host[127.0.0.2:2].drain.calls_live", 3),
            ("join.first_media", 7),
        ] {
            c.insert(k.to_owned(), v);
        }
        let r = rows(&c);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].address.as_str(), r[0].calls, r[0].sessions),
            ("127.0.0.1:1", 5, 20)
        );
        assert_eq!(r[0].drain, None);
        let d = r[1].drain.as_ref().unwrap();
        assert_eq!((d.at_s, d.calls_live, d.calls_placed_after), (20.0, 3, 0));
        assert!(rows(&Counts::new()).is_empty());
    }

    #[test]
    fn summary_and_terminal_show_the_hosts_and_the_schema_allows_them() {
        let mut r = crate::report::synthetic::Synthetic::small().generate();
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../reports/schema/summary.schema.json")).unwrap();
        // Without host counts there is no hosts key at all (older readers see the same file).
        let plain = serde_json::to_value(&r.summary).unwrap();
        assert!(plain.get("hosts").is_none());
        for (k, v) in [
            ("host[127.0.0.1:4000].calls", 4),
            ("host[127.0.0.2:4001].calls", 2),
            ("host[127.0.0.2:4001].drained", 1),
            ("host[127.0.0.2:4001].drain_at_ms", 12_500),
            ("host[127.0.0.2:4001].drain.calls_live", 2),
            ("host[127.0.0.2:4001].drain.calls_diverted", 3),
        ] {
            r.counts.insert(k.to_owned(), v);
        }
        r.resummarise();
        let json = serde_json::to_value(&r.summary).unwrap();
        assert_eq!(json["hosts"][1]["drain"]["at_s"], 12.5);
        assert_eq!(
            crate::report::schema::validate(&schema, &json),
            Vec::<String>::new()
        );
        let mut bad = json.clone();
        bad["hosts"][0]["calls"] = serde_json::json!(-1);
        assert!(!crate::report::schema::validate(&schema, &bad).is_empty());
        let text = crate::report::text::render(&r);
        assert!(text.contains("\nHosts\n"), "{text}");
        assert!(text.contains("127.0.0.2:4001"));
        assert!(text.contains("at 12.5 s: 2 calls live"), "{text}");
        // The summary round-trips through its JSON.
        let back: crate::report::Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back, r.summary);
    }
}
