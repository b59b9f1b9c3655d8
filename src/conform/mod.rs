//! Conformance suites: black-box checks that a server speaks the real service's API exactly.

pub mod rtcd;
mod rtcd_auth;
mod rtcd_check;
mod rtcd_client;
mod rtcd_http;
mod rtcd_metrics;
mod rtcd_report;
mod rtcd_ws;
mod rtcd_ws_malformed;
mod rtcd_ws_slow;
