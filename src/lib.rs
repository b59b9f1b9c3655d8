//! `callsbench`: load-test and conformance toolkit for Mattermost Calls infrastructure.
//!
//! The binary is a thin shell over [`cli::run`]; tests call it in-process.

pub mod cli;
pub mod conform;
pub mod engine;
pub mod jobload;
pub mod measure;
pub mod media;
pub mod plan;
pub mod report;
pub mod run;
pub mod scenario;
pub mod table;
pub mod target;
