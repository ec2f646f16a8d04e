//! The longshore host: its configuration (`config`, `options`), loading plugins for a
//! command (`plugins`), and the commands themselves (`cli`). `main.rs` only parses the
//! command line, sets up logging and calls [`cli::run`]; the logic of plugins, polling
//! and publishing lives in the `longshore-*` library crates.

pub mod agent;
pub mod cli;
pub mod config;
pub mod options;
pub mod plugins;
pub mod publishers;
