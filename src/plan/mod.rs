//! Capacity planning from the published benchmarks: the rtcd and calls-offloader tables as data
//! (`scenarios/tables/`), the flow model that turns a call mix into media flows, an EC2 instance
//! catalog, non-negative linear resource models fit to the published rows with leave-one-out
//! validation, and the `plan` command built on them.
//! `calibrate` refits the same models on local results directories (`plan --calibrate DIR...`).

pub mod calibrate;
pub mod catalog;
pub mod cli;
pub mod flow;
pub mod model;
pub mod nnls;
pub mod offloader;
pub mod planner;
pub mod quantity;
pub mod render;
pub mod table;
