//! `NamedExtensionManager`: loads only the requested names (filtered before any
//! library is opened), reports the requested names that did not load, and can keep
//! the requested order.

use std::ops::Deref;

use crate::entry_points::Registry;
use crate::error::ManagerError;
use crate::extension::{Extension, PluginHandle};
use crate::manager::{ExtensionManager, Options, Selection};

/// Loads the entry points of a namespace whose names are in `names`.
#[derive(Debug)]
pub struct NamedExtensionManager<H> {
    inner: ExtensionManager<H>,
    names: Vec<String>,
}

impl<H: PluginHandle> NamedExtensionManager<H> {
    /// Load the entry points of `namespace` named in `names`. Other entry points are
    /// never resolved or opened. Requested names that do not load are reported to the
    /// missing-entry-points callback (default: one WARN line).
    pub fn new<S: AsRef<str>>(
        registry: &Registry,
        namespace: &str,
        names: &[S],
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
        let selection = Selection {
            names: Some(&names),
            ..Selection::all()
        };
        let inner = ExtensionManager::load(registry, namespace, options, selection)?;
        Ok(NamedExtensionManager { inner, names })
    }

    /// A manager around in-memory extensions; their names are the requested names.
    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let names = extensions.iter().map(|e| e.name().to_string()).collect();
        let inner = ExtensionManager::make_test_instance(extensions, namespace, options)?;
        Ok(NamedExtensionManager { inner, names })
    }
}

impl<H> NamedExtensionManager<H> {
    /// The names this manager was asked for.
    pub fn requested_names(&self) -> &[String] {
        &self.names
    }

    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for NamedExtensionManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}
