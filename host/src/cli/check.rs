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

/// The polling definitions file.
// TODO(lead): validate polling.yaml with longshore-polling's validator once it exists
// (grammar, meter patterns, intervals; problems naming file and line), e.g.
// `longshore_polling::PollingDefinitions::load(&path)`; until then only its presence
// is checked.
fn check_polling_file(settings: &Settings) -> Vec<String> {
    let path = settings.polling_file();
    if path.is_file() {
        Vec::new()
    } else {
        vec![format!(
            "{}: polling definitions file not found; set [polling] cfg_file or pass --polling-file",
            path.display()
        )]
    }
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
