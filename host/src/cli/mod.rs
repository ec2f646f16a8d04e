//! The command line: global options (configuration overrides shared by every
//! command) and one module per subcommand. Adding a command is one `Command` variant,
//! one match arm in [`run`] and one module.

mod check;
mod config;
mod list;
mod poll;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ConfigError, Override, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "longshore",
    version,
    about = "Telemetry polling agent and plugin host: a drop-in for ceilometer-polling",
    after_help = "Every option can also be set in the environment as LONGSHORE_<SECTION>__<OPTION> \
                  (e.g. LONGSHORE_POLLING__BATCH_SIZE=100). Precedence: command line > environment \
                  > configuration file > defaults (`longshore config --defaults`)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML, Ceilometer's section and option names).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "LONGSHORE_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// The entry points file ([entry_points] file).
    #[arg(long, global = true, value_name = "FILE")]
    pub entry_points: Option<PathBuf>,
    /// A directory searched for plugin libraries; repeat for several ([entry_points] plugin_dirs).
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// The polling definitions file ([polling] cfg_file).
    #[arg(long, global = true, value_name = "FILE")]
    pub polling_file: Option<PathBuf>,
    /// This node's name in samples ([DEFAULT] host).
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// libvirt connection URI ([compute] libvirt_uri).
    #[arg(long, global = true, value_name = "URI")]
    pub libvirt_uri: Option<String>,
    /// AMQP broker URL ([DEFAULT] transport_url).
    #[arg(long, global = true, value_name = "URL")]
    pub transport_url: Option<String>,
    /// Sample signing secret ([publisher] telemetry_secret). Visible to other local
    /// users in the process list: prefer the configuration file or the environment.
    #[arg(long, global = true, value_name = "SECRET")]
    pub telemetry_secret: Option<String>,
    /// Set any option: SECTION.OPTION=VALUE (VALUE is read as a TOML value, else as text).
    #[arg(long = "set", global = true, value_name = "SECTION.OPTION=VALUE")]
    pub sets: Vec<String>,
    /// Make any plugin load failure fatal.
    #[arg(long, global = true)]
    pub strict: bool,
    /// Load plugin files writable by others or owned by another user
    /// ([entry_points] allow_insecure_plugins).
    #[arg(long, global = true)]
    pub allow_insecure_plugins: bool,
}

impl GlobalArgs {
    /// The command-line overrides, in precedence order (later wins).
    pub fn overrides(&self) -> Result<Vec<Override>, ConfigError> {
        let path = |p: &PathBuf| p.display().to_string();
        let mut out = Vec::new();
        if let Some(p) = &self.entry_points {
            out.push(Override::flag(
                "--entry-points",
                "entry_points",
                "file",
                path(p),
            ));
        }
        if !self.plugin_dirs.is_empty() {
            // A TOML array, so directory names containing commas survive.
            let list = self
                .plugin_dirs
                .iter()
                .map(|p| format!("{:?}", path(p)))
                .collect::<Vec<_>>()
                .join(", ");
            out.push(Override::flag(
                "--plugin-dir",
                "entry_points",
                "plugin_dirs",
                format!("[{list}]"),
            ));
        }
        if let Some(p) = &self.polling_file {
            out.push(Override::flag(
                "--polling-file",
                "polling",
                "cfg_file",
                path(p),
            ));
        }
        if let Some(v) = &self.host {
            out.push(Override::flag("--host", "DEFAULT", "host", v.clone()));
        }
        if let Some(v) = &self.libvirt_uri {
            out.push(Override::flag(
                "--libvirt-uri",
                "compute",
                "libvirt_uri",
                v.clone(),
            ));
        }
        if let Some(v) = &self.transport_url {
            out.push(Override::flag(
                "--transport-url",
                "DEFAULT",
                "transport_url",
                v.clone(),
            ));
        }
        if let Some(v) = &self.telemetry_secret {
            out.push(Override::flag(
                "--telemetry-secret",
                "publisher",
                "telemetry_secret",
                v.clone(),
            ));
        }
        if self.allow_insecure_plugins {
            out.push(Override::flag(
                "--allow-insecure-plugins",
                "entry_points",
                "allow_insecure_plugins",
                "true",
            ));
        }
        for arg in &self.sets {
            out.push(Override::parse_set(arg)?);
        }
        Ok(out)
    }

    /// The configuration: defaults < file < environment < command line.
    pub fn settings(&self) -> Result<Settings, Vec<ConfigError>> {
        let env = Override::from_env(std::env::vars()).map_err(|e| vec![e])?;
        let cli = self.overrides().map_err(|e| vec![e])?;
        Settings::load(self.config.as_deref(), env, cli)
    }

    /// [`settings`](Self::settings), with every problem in one error.
    pub fn settings_or_bail(&self) -> anyhow::Result<Settings> {
        self.settings().map_err(|errors| {
            anyhow::anyhow!(
                "invalid configuration:\n  {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every entry point with its status: loaded, skipped or failed and why.
    List(list::Args),
    /// Validate the configuration, entry points and plugins; exit non-zero on any problem.
    Check(check::Args),
    /// Show the effective configuration (secrets masked), or every option's default.
    Config(config::Args),
    /// Run every polling task once and print the samples as JSON lines; exit non-zero
    /// if any pollster failed.
    Poll(poll::Args),
    /// Run the polling agent as a service (SIGTERM/SIGINT stop it, SIGHUP reloads).
    Run(run::Args),
}

/// Run the command; the exit code says whether it found problems.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::List(args) => list::run(&cli.global, &args),
        Command::Check(args) => check::run(&cli.global, &args),
        Command::Config(args) => config::run(&cli.global, &args),
        Command::Poll(args) => poll::run(&cli.global, &args),
        Command::Run(args) => run::run(&cli.global, &args),
    }
}
