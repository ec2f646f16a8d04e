//! Assembling the polling agent from the configuration: plugins, options, the polling
//! definition and a publisher. `poll` and `run` (and a reload) start here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use longshore_plugin_api::host::{DiscoveryHandle, PollsterHandle};
use longshore_polling::{find_definition_file, AgentManager, PollingDefinition, PollingOptions};
use longshore_publisher::Publisher;

use crate::config::Settings;
use crate::plugins::{load_plugins, LoadedPlugins};

/// What an agent is built from, before the publisher is chosen.
pub struct Parts {
    pub options: PollingOptions,
    pub definition: PollingDefinition,
    pub pollsters: Vec<(String, Arc<PollsterHandle>)>,
    pub discoveries: HashMap<String, Arc<DiscoveryHandle>>,
}

/// The polling definition named by `[polling] cfg_file`: the path as given (relative
/// to the configuration file's directory), else Ceilometer's search directories.
pub fn load_definition(settings: &Settings) -> anyhow::Result<PollingDefinition> {
    let given = settings.polling_file();
    let config_dirs: Vec<PathBuf> = settings
        .file()
        .and_then(|f| f.parent())
        .map(|d| vec![d.to_path_buf()])
        .unwrap_or_default();
    let path = find_definition_file(&given.to_string_lossy(), &config_dirs)?;
    let definition = PollingDefinition::load(&path)?;
    for w in definition.warnings() {
        log::warn!("{w}");
    }
    Ok(definition)
}

/// Load plugins of `groups` (default `[DEFAULT] polling_namespaces`), the polling
/// options and the polling definition. Fails on invalid configuration or polling.yaml;
/// plugin load failures are reported and skipped unless `strict`.
pub fn assemble(
    settings: &mut Settings,
    groups: Option<&[String]>,
    strict: bool,
) -> anyhow::Result<Parts> {
    // polling.yaml first: a typo there should not cost a plugin load.
    let definition = load_definition(settings)?;
    let LoadedPlugins {
        plugins, config, ..
    } = load_plugins(settings, groups, strict)?;
    let options = PollingOptions::from_config(&config).context("polling options")?;
    let pollsters = plugins
        .pollsters
        .iter()
        .map(|p| (p.name.clone(), Arc::clone(&p.handle)))
        .collect();
    let discoveries = plugins
        .discoveries
        .iter()
        .map(|d| (d.name.clone(), Arc::clone(&d.handle)))
        .collect();
    Ok(Parts {
        options,
        definition,
        pollsters,
        discoveries,
    })
}

impl Parts {
    pub fn into_agent(self, publisher: Arc<dyn Publisher>) -> AgentManager {
        AgentManager::new(
            self.options,
            &self.definition,
            self.pollsters,
            self.discoveries,
            publisher,
        )
    }
}
