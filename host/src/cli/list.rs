//! `longshore list [NAMESPACE] [--json]`: every entry point, loaded (constructed with
//! the configuration) or skipped or failed and why. Exits 0 even with failures,
//! unless `--strict`.

use std::process::ExitCode;

use anyhow::Context;
use longshore_extension::{load_namespace, EntryStatus, LoadReport, LoadSettings};
use serde_json::json;

use super::GlobalArgs;
use crate::plugins::{open_registry, validate_plugin_options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this namespace (e.g. ceilometer.poll.compute).
    pub namespace: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let mut settings = global.settings_or_bail()?;
    let registry = open_registry(&settings)?;
    let namespaces: Vec<String> = match &args.namespace {
        Some(ns) if registry.namespaces().any(|n| n == ns) => vec![ns.clone()],
        Some(ns) => anyhow::bail!(
            "namespace {ns:?} is not in {}; it has: {}",
            settings.entry_points_file().display(),
            registry.namespaces().collect::<Vec<_>>().join(", ")
        ),
        None => registry.namespaces().map(str::to_string).collect(),
    };
    let problems = validate_plugin_options(&mut settings, &registry, &namespaces);
    for p in &problems {
        if p.is_warning() {
            log::warn!("{p}");
        } else {
            log::error!("{p}");
        }
    }
    let load = LoadSettings {
        config: settings.config(),
        strict: false,
        allow_insecure_plugins: settings.allow_insecure_plugins(),
        // The listing itself reports every failure.
        log_failures: false,
    };
    let reports: Vec<LoadReport> = namespaces
        .iter()
        .map(|ns| load_namespace(&registry, ns, &load))
        .collect();

    if args.json {
        let doc = json!({
            "entry_points": settings.entry_points_file().display().to_string(),
            "plugin_dirs": registry.plugin_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
            "namespaces": reports.iter().map(report_json).collect::<Vec<_>>(),
            "config_problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).context("encoding JSON")?
        );
    } else {
        print_text(&reports);
    }

    let failed =
        reports.iter().any(LoadReport::has_failures) || problems.iter().any(|p| !p.is_warning());
    Ok(if global.strict && failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(reports: &[LoadReport]) {
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let kind = report.kind.map_or("unknown kind", |k| k.as_str());
        println!("{} ({kind})", report.namespace);
        let width = report
            .entries
            .iter()
            .map(|e| e.entry_point.name().len())
            .max()
            .unwrap_or(0);
        let target_width = report
            .entries
            .iter()
            .map(|e| e.entry_point.target().len())
            .max()
            .unwrap_or(0);
        for e in &report.entries {
            let ep = &e.entry_point;
            let status = match &e.status {
                EntryStatus::Failed(_) => "FAILED".to_string(),
                other => other.as_str().to_string(),
            };
            let library = e
                .library
                .as_ref()
                .map_or_else(|| "-".to_string(), |p| p.display().to_string());
            println!(
                "  {status:<8} {:<width$}  {:<target_width$}  {library}",
                ep.name(),
                ep.target()
            );
            match &e.status {
                EntryStatus::Loaded => {
                    if let Some(d) = e.description.as_deref().filter(|d| !d.is_empty()) {
                        println!("  {:<8} {:<width$}  -- {d}", "", "");
                    }
                }
                EntryStatus::Failed(f) => {
                    println!("  {:<8} {:<width$}  cause: {}", "", "", f.cause())
                }
                EntryStatus::Skipped(reason) => {
                    println!("  {:<8} {:<width$}  reason: {reason}", "", "")
                }
                EntryStatus::NotRequested | EntryStatus::Rejected => {}
            }
        }
    }
    let count = |pred: fn(&EntryStatus) -> bool| -> usize {
        reports
            .iter()
            .flat_map(|r| &r.entries)
            .filter(|e| pred(&e.status))
            .count()
    };
    println!(
        "\n{} loaded, {} skipped, {} failed",
        count(|s| matches!(s, EntryStatus::Loaded)),
        count(|s| matches!(s, EntryStatus::Skipped(_))),
        count(|s| matches!(s, EntryStatus::Failed(_))),
    );
}

fn report_json(report: &LoadReport) -> serde_json::Value {
    json!({
        "namespace": report.namespace,
        "kind": report.kind.map(|k| k.as_str()),
        "entry_points": report.entries.iter().map(|e| {
            let (class, cause) = match &e.status {
                EntryStatus::Failed(f) => (Some(f.cause().class()), Some(f.cause().to_string())),
                EntryStatus::Skipped(reason) => (Some("skipped"), Some(reason.clone())),
                _ => (None, None),
            };
            json!({
                "name": e.entry_point.name(),
                "target": e.entry_point.target(),
                "location": e.entry_point.location().map(ToString::to_string),
                "status": e.status.as_str(),
                "library": e.library.as_ref().map(|p| p.display().to_string()),
                "description": e.description,
                "class": class,
                "cause": cause,
            })
        }).collect::<Vec<_>>(),
    })
}
