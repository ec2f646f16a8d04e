//! `longshore check`: validate the configuration, entry_points.toml and polling.yaml,
//! load (and construct) every plugin, print every problem, exit non-zero on any.
//! `check` is always strict about load failures.

use std::process::ExitCode;

use longshore_extension::{load_namespace, pollster_namespace, EntryStatus, LoadSettings};

use super::GlobalArgs;
use crate::config::Settings;
use crate::plugins::{open_registry, validate_plugin_options};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(global: &GlobalArgs, _args: &Args) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let mut settings = match global.settings() {
        Ok(s) => s,
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            return Ok(finish(&problems, 0, 0));
        }
    };
    let registry = match open_registry(&settings) {
        Ok(r) => r,
        Err(e) => {
            problems.extend(e.problems().into_iter().map(|(loc, msg)| match loc {
                Some(loc) => format!("{loc}: {msg}"),
                None => msg,
            }));
            return Ok(finish(&problems, 0, 0));
        }
    };
    problems.extend(check_polling_file(&settings));

    let namespaces: Vec<String> = registry.namespaces().map(str::to_string).collect();
    for group in settings.polling_namespaces() {
        let ns = pollster_namespace(&group);
        if registry.entry_points(&ns).is_empty() {
            problems.push(format!(
                "[DEFAULT] polling_namespaces has {group:?} but {} has no {ns} entry points: no pollsters can be loaded for it",
                settings.entry_points_file().display()
            ));
        }
    }
    for p in validate_plugin_options(&mut settings, &registry, &namespaces) {
        if p.is_warning() {
            println!("warning: {p}");
        } else {
            problems.push(p.to_string());
        }
    }

    let load = LoadSettings {
        config: settings.config(),
        strict: false,
        allow_insecure_plugins: settings.allow_insecure_plugins(),
        log_failures: false,
    };
    let (mut loaded, mut skipped) = (0, 0);
    for ns in &namespaces {
        for e in load_namespace(&registry, ns, &load).entries {
            match e.status {
                EntryStatus::Loaded => loaded += 1,
                EntryStatus::Skipped(reason) => {
                    skipped += 1;
                    println!("skipped: {} in {ns}: {reason}", e.entry_point.name());
                }
                EntryStatus::Failed(f) => problems.push(f.to_string()),
                EntryStatus::NotRequested | EntryStatus::Rejected => {}
            }
        }
    }
    Ok(finish(&problems, loaded, skipped))
}

/// The polling definitions file (every rule, errors naming file, line and source) and
/// the polling options.
fn check_polling_file(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    match crate::agent::load_definition(settings) {
        Ok(definition) => println!(
            "polling definitions: {} ({} source(s))",
            definition.path().display(),
            definition.sources().len()
        ),
        Err(e) => problems.push(format!("{e:#}")),
    }
    if let Err(e) = longshore_polling::PollingOptions::from_config(&settings.config()) {
        problems.push(e.to_string());
    }
    problems
}

fn finish(problems: &[String], loaded: usize, skipped: usize) -> ExitCode {
    for p in problems {
        println!("error: {p}");
    }
    if problems.is_empty() {
        println!("check: OK ({loaded} plugins loaded, {skipped} skipped)");
        ExitCode::SUCCESS
    } else {
        println!("check: {} problem(s)", problems.len());
        ExitCode::FAILURE
    }
}
