//! `DriverManager`: exactly one implementation of a name. Unlike the other managers
//! it does not tolerate failure: a load failure, no match or several matches is an
//! error.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::entry_points::Registry;
use crate::error::{ManagerError, MapError};
use crate::extension::{Extension, Factory, PluginHandle};
use crate::manager::{error_on_conflict, ExtensionManager, Options, Selection};

/// The driver: the constructed object when invoked on load, else its factory.
#[derive(Debug)]
pub enum Driver<'a, H> {
    Instance(&'a Arc<H>),
    Factory(&'a Factory<H>),
}

/// Loads the one entry point of a namespace named `name`.
#[derive(Debug)]
pub struct DriverManager<H> {
    inner: ExtensionManager<H>,
}

impl<H: PluginHandle> DriverManager<H> {
    /// Load the driver `name` of `namespace`.
    ///
    /// Errors: the original load failure (`LoadFailed`), `NoMatches` when nothing is
    /// named so (or it asked to be skipped), `MultipleMatches` when several entry
    /// points share the name (unless another conflict resolver is given).
    pub fn new(
        registry: &Registry,
        namespace: &str,
        name: &str,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        let names = [name.to_string()];
        let selection = Selection {
            names: Some(&names),
            default_resolver: error_on_conflict,
            reraise_failures: true,
            ..Selection::all()
        };
        let mut inner = ExtensionManager::load(registry, namespace, options, selection)?;
        if inner.is_empty() {
            return Err(ManagerError::NoMatches {
                namespace: namespace.to_string(),
                name: Some(name.to_string()),
            });
        }
        inner.keep_resolved_only();
        Ok(DriverManager { inner })
    }

    /// A driver around one in-memory extension.
    pub fn make_test_instance(
        extension: Extension<H>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(DriverManager {
            inner: ExtensionManager::make_test_instance(vec![extension], namespace, options)?,
        })
    }
}

impl<H> DriverManager<H> {
    fn extension(&self) -> &Extension<H> {
        // Construction guarantees exactly one extension.
        &self.inner.extensions()[0]
    }

    /// The constructed driver, or its factory when not invoked on load.
    pub fn driver(&self) -> Driver<'_, H> {
        let ext = self.extension();
        match ext.obj() {
            Some(obj) => Driver::Instance(obj),
            None => Driver::Factory(ext.plugin()),
        }
    }

    /// Call `func` on the driver's extension and return its result (`None` when
    /// `func` failed and map errors do not propagate).
    pub fn call<R, E, F>(&self, func: F) -> Result<Option<R>, MapError<E>>
    where
        E: fmt::Display,
        F: FnMut(&Extension<H>) -> Result<R, E>,
    {
        Ok(self.inner.map(func)?.into_iter().next())
    }

    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for DriverManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}
