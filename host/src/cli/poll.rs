//! `longshore poll --once`: run every interval task once and print the samples as JSON
//! lines (the operator's "what would you send?", like `collectd -T`). Exits non-zero if
//! any pollster or discovery failed.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use longshore_polling::Outcome;
use longshore_publisher::{FilePublisher, Publisher};

use super::GlobalArgs;
use crate::agent::assemble;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Poll once and exit (the only mode of `poll`; accepted for clarity).
    #[arg(long)]
    pub once: bool,
    /// Namespace groups to poll (e.g. `compute`); default [DEFAULT] polling_namespaces.
    #[arg(long = "namespace", value_name = "GROUP")]
    pub namespaces: Vec<String>,
    /// Where the JSON lines go: `-` (stdout, the default) or a file path.
    #[arg(long, default_value = "-", value_name = "FILE")]
    pub output: String,
}

pub fn run(global: &GlobalArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let mut settings = global.settings_or_bail()?;
    let groups = (!args.namespaces.is_empty()).then_some(args.namespaces.as_slice());
    let parts = assemble(&mut settings, groups, global.strict)?;
    let timeout = parts.options.shutdown_timeout;
    let publisher: Arc<dyn Publisher> = Arc::new(
        FilePublisher::from_url(&args.output)
            .with_context(|| format!("--output {}", args.output))?,
    );
    let agent = parts.into_agent(publisher);
    let report = agent.poll_once();
    agent.close(timeout).context("writing the samples")?;

    let failed: Vec<String> = report
        .failed_pollsters()
        .map(|p| match &p.outcome {
            Outcome::Failed(f) => format!("pollster {} (source {}): {f}", p.pollster, p.source),
            other => format!("pollster {} (source {}): {other:?}", p.pollster, p.source),
        })
        .chain(report.failed_discoveries().map(|d| {
            format!(
                "discovery {}: {}",
                d.url,
                d.error.as_deref().unwrap_or("failed")
            )
        }))
        .collect();
    log::info!(
        "polled once: {} sample(s) from {} pollster run(s), {} failure(s)",
        report.samples(),
        report.pollsters().count(),
        failed.len()
    );
    for f in &failed {
        log::error!("failed: {f}");
    }
    if let Some(e) = &report.flush_error {
        log::error!("publisher: {e}");
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
