//! Shared by the polling_* tests: the real synthetic plugin library, pollsters and
//! discoveries built from it, an agent over a polling.yaml text, a publisher that keeps
//! batches (batch boundaries are what several tests check), and a log capture.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use longshore_plugin_api::host::{DiscoveryHandle, Library, PollsterHandle};
use longshore_plugin_api::{Config, Map, Value};
use longshore_polling::{AgentManager, PollingDefinition, PollingOptions};
use longshore_publisher::{Batch, PublishError, Publisher};

pub fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        // Before loading: the library reads the host's log level once.
        logs();
        longshore_tests::build_plugins(&["longshore-plugin-synthetic"]);
        Library::open(&longshore_tests::built_library("test_synthetic")).expect("load synthetic")
    })
}

/// `(entry-point name, plugin name)` pairs → constructed pollsters.
pub fn pollsters(cfg: &Config, entries: &[(&str, &str)]) -> Vec<(String, Arc<PollsterHandle>)> {
    entries
        .iter()
        .map(|(name, plugin)| {
            let h = library()
                .new_pollster(plugin, cfg)
                .unwrap_or_else(|e| panic!("pollster {plugin}: {e}"));
            (name.to_string(), Arc::new(h))
        })
        .collect()
}

/// Discoveries by their plugin names.
pub fn discoveries(cfg: &Config, names: &[&str]) -> HashMap<String, Arc<DiscoveryHandle>> {
    names
        .iter()
        .map(|name| {
            let h = library()
                .new_discovery(name, cfg)
                .unwrap_or_else(|e| panic!("discovery {name}: {e}"));
            (name.to_string(), Arc::new(h))
        })
        .collect()
}

pub fn definition(yaml: &str) -> PollingDefinition {
    PollingDefinition::parse(yaml, Path::new("test-polling.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// Every synthetic discovery.
pub const ALL_DISCOVERIES: &[&str] = &["fixed", "counted", "failing", "instances"];

/// An agent over `yaml` with the given pollsters and every synthetic discovery.
pub fn agent(
    cfg: &Config,
    yaml: &str,
    entries: &[(&str, &str)],
) -> (AgentManager, Arc<RecordingPublisher>) {
    let options = PollingOptions::from_config(cfg).expect("options");
    let publisher = Arc::new(RecordingPublisher::default());
    let agent = AgentManager::new(
        options,
        &definition(yaml),
        pollsters(cfg, entries),
        discoveries(cfg, ALL_DISCOVERIES),
        publisher.clone(),
    );
    (agent, publisher)
}

/// Keeps every batch; optionally notifies a channel of each one.
#[derive(Default)]
pub struct RecordingPublisher {
    batches: Mutex<Vec<Batch>>,
    notify: Mutex<Option<Sender<Batch>>>,
    closed: Mutex<bool>,
}

impl RecordingPublisher {
    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }
    pub fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
    pub fn messages(&self) -> Vec<Map> {
        self.batches()
            .into_iter()
            .flat_map(|b| b.messages.into_iter())
            .map(|m| m.to_map())
            .collect()
    }
    /// How many published messages have each `counter_name`.
    pub fn count_by_meter(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for m in self.messages() {
            *counts
                .entry(str_field(&m, "counter_name").to_string())
                .or_default() += 1;
        }
        counts
    }
    pub fn subscribe(&self) -> Receiver<Batch> {
        let (tx, rx) = crossbeam_channel::unbounded();
        *self.notify.lock().unwrap() = Some(tx);
        rx
    }
    pub fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap()
    }
}

impl Publisher for RecordingPublisher {
    fn describe(&self) -> String {
        "recording://".to_string()
    }
    fn publish(&self, batch: Batch) -> Result<(), PublishError> {
        if *self.closed.lock().unwrap() {
            return Err(PublishError::Closed(self.describe()));
        }
        if let Some(tx) = self.notify.lock().unwrap().as_ref() {
            let _ = tx.send(batch.clone());
        }
        self.batches.lock().unwrap().push(batch);
        Ok(())
    }
    fn flush(&self, _timeout: Duration) -> Result<(), PublishError> {
        Ok(())
    }
    fn close(&self, _timeout: Duration) -> Result<(), PublishError> {
        *self.closed.lock().unwrap() = true;
        Ok(())
    }
}

pub fn str_field<'a>(m: &'a Map, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub fn metadata<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.get("resource_metadata")?.as_map()?.get(key)
}

/// Log records captured process-wide: (level, message).
pub fn logs() -> &'static Mutex<Vec<(log::Level, String)>> {
    static LOGS: OnceLock<Mutex<Vec<(log::Level, String)>>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        struct Capture;
        impl log::Log for Capture {
            fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                true
            }
            fn log(&self, r: &log::Record<'_>) {
                logs()
                    .lock()
                    .unwrap()
                    .push((r.level(), r.args().to_string()));
            }
            fn flush(&self) {}
        }
        let _ = log::set_boxed_logger(Box::new(Capture));
        log::set_max_level(log::LevelFilter::Debug);
    });
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Captured messages at `level` containing `needle`.
pub fn logged(level: log::Level, needle: &str) -> Vec<String> {
    logs()
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .map(|(_, m)| m.clone())
        .collect()
}
