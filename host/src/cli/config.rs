//! `longshore config [--defaults]`: the effective configuration with where each value
//! came from (secrets masked), or every option the host and the plugins declare with
//! its type, default and help, as a Markdown table.

use std::process::ExitCode;

use super::GlobalArgs;
use crate::plugins::{open_registry, validate_plugin_options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List every option with its type, default and help instead (Markdown).
    #[arg(long)]
    pub defaults: bool,
}

pub fn run(global: &GlobalArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let mut settings = global.settings_or_bail()?;
    let mut ok = true;
    // The plugins' own options are known once their libraries are open.
    match open_registry(&settings) {
        Ok(registry) => {
            let namespaces: Vec<String> = registry.namespaces().map(str::to_string).collect();
            for p in validate_plugin_options(&mut settings, &registry, &namespaces) {
                ok &= p.is_warning();
                eprintln!("{}: {p}", if p.is_warning() { "warning" } else { "error" });
            }
        }
        Err(e) => eprintln!("warning: plugin options not shown: {e}"),
    }
    let mut listing = settings.listing();
    // Group by section, sections in order of first appearance.
    let order: Vec<String> = listing.iter().fold(Vec::new(), |mut acc, l| {
        if !acc.contains(&l.section) {
            acc.push(l.section.clone());
        }
        acc
    });
    listing.sort_by_key(|l| order.iter().position(|s| *s == l.section));
    if args.defaults {
        println!("| Section | Option | Type | Default | Description |");
        println!("|---|---|---|---|---|");
        for l in &listing {
            let Some(kind) = l.kind else { continue };
            println!(
                "| `[{}]` | `{}` | {} | `{}` | {} |",
                l.section,
                l.option,
                kind.as_str(),
                l.default,
                l.help.replace('|', "\\|")
            );
        }
    } else {
        let mut section = "";
        for l in &listing {
            let Some(value) = &l.value else { continue };
            if l.section != section {
                section = &l.section;
                println!("[{section}]");
            }
            let origin = l
                .origin
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            println!("{} = {value}    # {origin}", l.option);
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
