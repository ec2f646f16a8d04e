//! Loading plugins for a command: the entry points file, the libraries it names (whose
//! option specs complete the configuration check), then the managers. `poll` and `run`
//! use [`load_plugins`]; `list` and `check` use the steps separately.

use anyhow::Context;
use longshore_extension::{
    discovery_namespace, pollster_namespace, preload_libraries, EntryPointsError, LoadSettings,
    PluginSet, Registry,
};
use longshore_plugin_api::Config;

use crate::config::{ConfigError, Settings};

/// The entry points file of `settings`, with its plugin directories.
pub fn open_registry(settings: &Settings) -> Result<Registry, EntryPointsError> {
    let registry = Registry::load(&settings.entry_points_file())?;
    Ok(match settings.plugin_dirs() {
        Some(dirs) => registry.with_plugin_dirs(dirs),
        None => registry,
    })
}

/// Open the libraries the `namespaces` name and check the configuration against
/// the options they declare. Returns every configuration problem (warnings too).
pub fn validate_plugin_options(
    settings: &mut Settings,
    registry: &Registry,
    namespaces: &[String],
) -> Vec<ConfigError> {
    let preloaded = preload_libraries(
        registry,
        namespaces.iter().map(String::as_str),
        settings.allow_insecure_plugins(),
    );
    settings.validate_plugin_options(&preloaded.option_specs(), preloaded.failed > 0)
}

/// What `poll` and `run` start from.
#[derive(Debug)]
pub struct LoadedPlugins {
    pub registry: Registry,
    /// The pollsters and discoveries, and the load report of every entry point.
    pub plugins: PluginSet,
    /// The configuration the plugins were built with (what the host uses too).
    pub config: Config,
}

/// Load the pollsters and discoveries of `groups` (default: `[DEFAULT]
/// polling_namespaces`) with the configuration: entry points, libraries, option
/// check (unknown options and wrong types are errors; warnings are logged), then
/// construction. Load failures are logged and skipped, or fatal with `strict`.
pub fn load_plugins(
    settings: &mut Settings,
    groups: Option<&[String]>,
    strict: bool,
) -> anyhow::Result<LoadedPlugins> {
    let groups: Vec<String> = match groups {
        Some(g) => g.to_vec(),
        None => settings.polling_namespaces(),
    };
    let registry = open_registry(settings)?;
    let namespaces: Vec<String> = groups
        .iter()
        .flat_map(|g| [pollster_namespace(g), discovery_namespace(g)])
        .collect();
    let problems = validate_plugin_options(settings, &registry, &namespaces);
    let (warnings, errors): (Vec<_>, Vec<_>) =
        problems.into_iter().partition(ConfigError::is_warning);
    for w in &warnings {
        log::warn!("{w}");
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "invalid configuration:\n  {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    let config = settings.config();
    let load = LoadSettings {
        config: config.clone(),
        strict,
        allow_insecure_plugins: settings.allow_insecure_plugins(),
        log_failures: true,
    };
    let plugins = PluginSet::load(&registry, &groups, &load).context("loading plugins")?;
    Ok(LoadedPlugins {
        registry,
        plugins,
        config,
    })
}
