//! `HookManager`: every implementation of one name (several entry points may share
//! it), all called.

use std::ops::Deref;

use crate::entry_points::Registry;
use crate::error::ManagerError;
use crate::extension::{Extension, PluginHandle};
use crate::manager::{ExtensionManager, Options, Selection};

/// Loads every entry point of a namespace named `name`.
#[derive(Debug)]
pub struct HookManager<H> {
    inner: ExtensionManager<H>,
    name: String,
}

impl<H: PluginHandle> HookManager<H> {
    /// Load every entry point of `namespace` named `name`. Other entry points are
    /// never opened; a missing name is not reported unless a callback asks.
    pub fn new(
        registry: &Registry,
        namespace: &str,
        name: &str,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let names = [name.to_string()];
        let selection = Selection {
            names: Some(&names),
            warn_missing: false,
            ..Selection::all()
        };
        Ok(HookManager {
            inner: ExtensionManager::load(registry, namespace, options, selection)?,
            name: name.to_string(),
        })
    }

    /// A hook around in-memory extensions; its name is the first extension's.
    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let name = extensions
            .first()
            .map(|e| e.name().to_string())
            .unwrap_or_default();
        Ok(HookManager {
            inner: ExtensionManager::make_test_instance(extensions, namespace, options)?,
            name,
        })
    }
}

impl<H> HookManager<H> {
    /// The hook's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every extension named `name`, in load order; `None` unless `name` is the hook's.
    pub fn get(&self, name: &str) -> Option<Vec<&Extension<H>>> {
        (name == self.name).then(|| self.inner.iter().filter(|e| e.name() == name).collect())
    }

    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for HookManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}
