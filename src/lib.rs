//! `callsbench`: load-test and conformance toolkit for Mattermost Calls infrastructure.
//!
//! The binary is a thin shell over [`cli::run`]; tests call it in-process.

pub mod cli;
pub mod media;
pub mod plan;
pub mod scenario;
