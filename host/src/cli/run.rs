//! `longshore run`: the service. Polls until SIGTERM or SIGINT (then stops cleanly:
//! running pollsters get `[DEFAULT] graceful_shutdown_timeout`, the publisher is
//! flushed). SIGHUP reloads the configuration, entry points, plugins and polling.yaml;
//! an invalid new configuration is reported and the running agent keeps going.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use longshore_polling::RunningAgent;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::GlobalArgs;
use crate::agent::assemble;
use crate::publishers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Namespace groups to poll (e.g. `compute`); default [DEFAULT] polling_namespaces.
    #[arg(long = "namespace", value_name = "GROUP")]
    pub namespaces: Vec<String>,
}

fn start(global: &GlobalArgs, args: &Args) -> anyhow::Result<(RunningAgent, Duration)> {
    let mut settings = global.settings_or_bail()?;
    let groups = (!args.namespaces.is_empty()).then_some(args.namespaces.as_slice());
    let parts = assemble(&mut settings, groups, global.strict)?;
    let timeout = parts.options.shutdown_timeout;
    let publisher = publishers::build(&settings)?;
    let agent = parts.into_agent(publisher);
    for task in agent.plan() {
        for (source, pollsters) in &task.sources {
            log::info!(
                "every {} s, source {source}: {} pollster(s): {}",
                task.interval.as_secs(),
                pollsters.len(),
                pollsters.join(", ")
            );
        }
    }
    let running = agent.start().context("starting the polling threads")?;
    Ok((running, timeout))
}

pub fn run(global: &GlobalArgs, args: &Args) -> anyhow::Result<ExitCode> {
    // Signals first, so a SIGTERM during start-up is not lost.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    let (mut running, mut timeout) = start(global, args)?;
    log::info!(
        "longshore {} running (pid {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                log::info!("SIGHUP: reloading configuration, plugins and polling definitions");
                // Check the new configuration before stopping anything: a broken
                // edit must not take the agent down.
                let settings = match global.settings_or_bail() {
                    Ok(s) => s,
                    Err(e) => {
                        log::error!(
                            "reload refused, still running the previous configuration: {e:#}"
                        );
                        continue;
                    }
                };
                if let Err(e) = crate::agent::load_definition(&settings) {
                    log::error!("reload refused, still running the previous configuration: {e:#}");
                    continue;
                }
                let report = running.shutdown(timeout);
                log_shutdown(&report);
                match start(global, args) {
                    Ok((r, t)) => {
                        running = r;
                        timeout = t;
                        log::info!("reloaded");
                    }
                    Err(e) => {
                        log::error!("reload failed: {e:#}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            _ => {
                log::info!(
                    "{}: stopping (waiting up to {} s for running pollsters and the publisher)",
                    if signal == SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    },
                    timeout.as_secs()
                );
                let report = running.shutdown(timeout);
                log_shutdown(&report);
                return Ok(if report.publisher.is_ok() && report.cycles_finished {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn log_shutdown(report: &longshore_polling::ShutdownReport) {
    if !report.cycles_finished {
        log::warn!(
            "stopped with {} plugin call(s) abandoned while still running",
            report.abandoned_calls
        );
    }
    match &report.publisher {
        Ok(()) => log::info!("stopped; everything published was delivered"),
        Err(e) => log::error!("stopped; the publisher could not deliver everything: {e}"),
    }
}
