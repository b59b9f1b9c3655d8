//! Conformance suites: black-box checks of a running service against the documented contract,
//! reported as a pass/fail table and a JSON file.
//!
//! - [`rtcd`]: `callsbench conform rtcd`, for an rtcd or rtcd-compatible SFU.
//! - [`offloader`]: `callsbench conform offloader` (offloader.md §9.1), whose result model
//!   ([`Report`], [`CaseResult`], [`Outcome`]) is defined here.
//!
//! A case fails the run only when the service breaks the contract. Known defects of the real
//! service (limit overshoot, volume leak, ...) are separate informational rows: they say whether
//! the defect was observed, and never fail the run.

pub mod offloader;
pub mod rtcd;
mod rtcd_auth;
mod rtcd_check;
mod rtcd_client;
mod rtcd_http;
mod rtcd_ice;
mod rtcd_metrics;
mod rtcd_report;
mod rtcd_ws;
mod rtcd_ws_malformed;
mod rtcd_ws_slow;

use serde::Serialize;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Informational (known defects of the real service, implementation-defined behaviour).
    Info,
    /// Not run, with the reason in the detail (e.g. needs `--slow` or another configuration).
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Info => "INFO",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub group: String,
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// A suite's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub suite: String,
    pub target: String,
    pub cases: Vec<CaseResult>,
}

impl Report {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }

    /// True when no case failed.
    pub fn passed(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// The case named `name`, if it ran.
    pub fn case(&self, name: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The pass/fail table printed on stdout.
    pub fn table(&self) -> String {
        let gw = self
            .cases
            .iter()
            .map(|c| c.group.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let nw = self
            .cases
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:<6} {:<gw$} {:<nw$} detail\n", "result", "group", "case");
        for c in &self.cases {
            out.push_str(&format!(
                "{:<6} {:<gw$} {:<nw$} {}\n",
                c.outcome.label(),
                c.group,
                c.name,
                c.detail
            ));
        }
        out.push_str(&format!(
            "\n{} passed, {} failed, {} informational, {} skipped\n",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Info),
            self.count(Outcome::Skip)
        ));
        out
    }

    /// The JSON results file.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Summary<'a> {
            #[serde(flatten)]
            report: &'a Report,
            passed: usize,
            failed: usize,
            informational: usize,
            skipped: usize,
        }
        let summary = Summary {
            report: self,
            passed: self.count(Outcome::Pass),
            failed: self.count(Outcome::Fail),
            informational: self.count(Outcome::Info),
            skipped: self.count(Outcome::Skip),
        };
        // Invariant: the report holds only strings and numbers.
        serde_json::to_string_pretty(&summary).expect("report serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_count_outcomes() {
        let mut r = Report {
            suite: "offloader".into(),
            target: "http://x".into(),
            cases: vec![],
        };
        for (n, o) in [
            ("a", Outcome::Pass),
            ("b", Outcome::Fail),
            ("c", Outcome::Info),
        ] {
            r.cases.push(CaseResult {
                group: "g".into(),
                name: n.into(),
                outcome: o,
                detail: String::new(),
            });
        }
        assert!(!r.passed());
        assert!(
            r.table()
                .contains("1 passed, 1 failed, 1 informational, 0 skipped")
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["failed"], 1);
        assert_eq!(v["cases"][1]["outcome"], "fail");
    }
}
