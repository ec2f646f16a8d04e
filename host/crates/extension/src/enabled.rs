//! `EnabledExtensionManager`: loads every entry point, then keeps the extensions a
//! check function accepts (the check runs after load and construction).

use std::ops::Deref;

use crate::entry_points::Registry;
use crate::error::ManagerError;
use crate::extension::{Extension, PluginHandle};
use crate::manager::{ExtensionManager, Options, Selection};

/// The extensions of a namespace that `check` accepts.
#[derive(Debug)]
pub struct EnabledExtensionManager<H> {
    inner: ExtensionManager<H>,
}

impl<H: PluginHandle> EnabledExtensionManager<H> {
    /// Load every entry point of `namespace`, keep those for which `check` is true.
    /// `check` sees the constructed object when invoking on load.
    pub fn new(
        registry: &Registry,
        namespace: &str,
        check: impl Fn(&Extension<H>) -> bool,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let selection = Selection {
            check: Some(&check),
            ..Selection::all()
        };
        Ok(EnabledExtensionManager {
            inner: ExtensionManager::load(registry, namespace, options, selection)?,
        })
    }

    /// A manager around in-memory extensions (no check is applied).
    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(EnabledExtensionManager {
            inner: ExtensionManager::make_test_instance(extensions, namespace, options)?,
        })
    }
}

impl<H> EnabledExtensionManager<H> {
    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for EnabledExtensionManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}
