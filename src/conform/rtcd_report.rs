//! The result model of `callsbench conform rtcd`: one row per case, a plain-text pass/fail table, the
//! JSON document written with `--out`, and the exit code (1 when any case failed).
//!
//! A case is `pass` or `fail` on the target's behaviour, `skip` when the suite could not run it (it
//! needs something the target's configuration withholds, e.g. the admin secret) and `info` when it
//! only records what the target does (a documented rtcd quirk, or a choice the spec leaves open).
//! Only `fail` changes the exit code.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// What became of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    Info,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
            Outcome::Info => "INFO",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// Stable dotted id, e.g. `http.login.wrong_key`; the JSON keys results by it.
    pub id: String,
    /// The spec section the expectation comes from (`rtcd.md §1.4`).
    pub spec: &'static str,
    pub outcome: Outcome,
    /// What was observed (pass, info), what differed (fail) or why the case did not run (skip).
    pub detail: String,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub info: usize,
}

/// What the suite learned about the target's configuration; `None` when it could not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetFacts {
    /// `buildVersion` from `/version`.
    pub build_version: Option<String>,
    /// Whether `POST /register` without credentials succeeded.
    pub self_registration: Option<bool>,
    /// Whether the given admin secret was accepted (`None` when no secret was given).
    pub admin_accepted: Option<bool>,
}

/// The whole run: target, facts, every case in the order it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub suite: &'static str,
    pub target: String,
    pub facts: TargetFacts,
    /// Media cases (join with real participants, forwarding, mute, screen) are not in this suite yet.
    pub not_covered: &'static str,
    pub duration_ms: u64,
    pub summary: Summary,
    pub cases: Vec<CaseResult>,
}

/// What the media-free suite leaves out; printed under the table and written into the JSON.
pub const NOT_COVERED: &str = "media cases (joining with real WebRTC participants, offer/answer, \
forwarding, mute, screen share) need the participant engine and are not part of this suite yet";

impl Report {
    /// Builds the report and its summary from the recorded cases.
    pub fn new(target: String, facts: TargetFacts, cases: Vec<CaseResult>, took: Duration) -> Self {
        let mut summary = Summary::default();
        for case in &cases {
            match case.outcome {
                Outcome::Pass => summary.pass += 1,
                Outcome::Fail => summary.fail += 1,
                Outcome::Skip => summary.skip += 1,
                Outcome::Info => summary.info += 1,
            }
        }
        Report {
            suite: "rtcd",
            target,
            facts,
            not_covered: NOT_COVERED,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            summary,
            cases,
        }
    }

    /// 0 when no case failed, 1 otherwise (see `crate::cli` for the exit-code contract).
    pub fn exit_code(&self) -> u8 {
        if self.summary.fail == 0 {
            0
        } else {
            crate::cli::EXIT_FAILED
        }
    }

    /// The case with this id, if it ran.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// The pass/fail table with a summary line, one case per line, for a terminal.
    pub fn render_table(&self) -> String {
        let width = self
            .cases
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(out, "rtcd conformance: {}", self.target);
        if let Some(version) = &self.facts.build_version {
            let _ = writeln!(out, "buildVersion: {version}");
        }
        let _ = writeln!(
            out,
            "self-registration: {}; admin secret: {}",
            tri_state(self.facts.self_registration, "on", "off"),
            tri_state(self.facts.admin_accepted, "accepted", "rejected")
                .replace("unknown", "not given"),
        );
        let _ = writeln!(out, "{:<4}  {:<width$}  detail", "", "case");
        for case in &self.cases {
            let _ = writeln!(
                out,
                "{:<4}  {:<width$}  {} ({})",
                case.outcome.label(),
                case.id,
                one_line(&case.detail),
                case.spec
            );
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped, {} informational in {:.1} s",
            s.pass,
            s.fail,
            s.skip,
            s.info,
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "not covered: {}", self.not_covered);
        out
    }

    /// The JSON document (pretty-printed) written by `--out`.
    pub fn to_json(&self) -> String {
        // Invariant: every field is a string, number, bool, null or a list/map of them.
        serde_json::to_string_pretty(self).expect("report serialises") + "\n"
    }
}

fn tri_state(value: Option<bool>, yes: &str, no: &str) -> String {
    match value {
        Some(true) => yes.to_owned(),
        Some(false) => no.to_owned(),
        None => "unknown".to_owned(),
    }
}

/// Details may quote bodies with newlines; the table keeps one case per line.
fn one_line(detail: &str) -> String {
    detail.replace('\n', "\\n").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            id: id.into(),
            spec: "rtcd.md §1.4",
            outcome,
            detail: "got 404 \"404 page not found\n\"".into(),
        }
    }

    #[test]
    fn summary_counts_and_exit_code() {
        let ok = Report::new(
            "http://x".into(),
            TargetFacts::default(),
            vec![
                case("a", Outcome::Pass),
                case("b", Outcome::Skip),
                case("c", Outcome::Info),
            ],
            Duration::from_millis(1500),
        );
        assert_eq!(
            ok.summary,
            Summary {
                pass: 1,
                fail: 0,
                skip: 1,
                info: 1
            }
        );
        assert_eq!(ok.exit_code(), 0);
        let bad = Report::new(
            "http://x".into(),
            TargetFacts::default(),
            vec![case("a", Outcome::Pass), case("b", Outcome::Fail)],
            Duration::ZERO,
        );
        assert_eq!(bad.summary.fail, 1);
        assert_eq!(bad.exit_code(), 1);
        assert_eq!(bad.case("b").map(|c| c.outcome), Some(Outcome::Fail));
        assert!(bad.case("zzz").is_none());
    }

    #[test]
    fn table_has_one_line_per_case_and_escapes_newlines() {
        let report = Report::new(
            "http://127.0.0.1:1".into(),
            TargetFacts {
                build_version: Some("v1.2.6".into()),
                self_registration: Some(false),
                admin_accepted: None,
            },
            vec![
                case("http.version.post", Outcome::Pass),
                case("ws.hello", Outcome::Fail),
            ],
            Duration::from_millis(2500),
        );
        let table = report.render_table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[1], "buildVersion: v1.2.6");
        assert_eq!(lines[2], "self-registration: off; admin secret: not given");
        assert!(lines[4].starts_with("PASS  http.version.post  got 404 \"404 page not found\\n\""));
        assert!(
            lines[5].starts_with("FAIL  ws.hello           "),
            "{:?}",
            lines[5]
        );
        assert_eq!(
            lines[6],
            "1 passed, 1 failed, 0 skipped, 0 informational in 2.5 s"
        );
        assert!(lines[7].starts_with("not covered: media cases"));
    }

    #[test]
    fn json_has_stable_keys() {
        let report = Report::new(
            "http://x".into(),
            TargetFacts {
                self_registration: Some(true),
                ..Default::default()
            },
            vec![case("http.login.wrong_key", Outcome::Fail)],
            Duration::from_millis(7),
        );
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["suite"], "rtcd");
        assert_eq!(value["target"], "http://x");
        assert_eq!(value["duration_ms"], 7);
        assert_eq!(value["facts"]["self_registration"], true);
        assert_eq!(value["facts"]["admin_accepted"], serde_json::Value::Null);
        assert_eq!(value["summary"]["fail"], 1);
        let row = &value["cases"][0];
        assert_eq!(row["id"], "http.login.wrong_key");
        assert_eq!(row["outcome"], "fail");
        assert_eq!(row["spec"], "rtcd.md §1.4");
        assert_eq!(row["detail"], "got 404 \"404 page not found\n\"");
        assert!(value["not_covered"].as_str().unwrap().contains("media"));
    }
}
