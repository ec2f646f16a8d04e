//! `DispatchExtensionManager` (call only the extensions a filter selects) and
//! `NameDispatchExtensionManager` (call extensions by name, ignoring unknown names).

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;

use crate::enabled::EnabledExtensionManager;
use crate::entry_points::Registry;
use crate::error::{ManagerError, MapError};
use crate::extension::{Extension, PluginHandle};
use crate::manager::{ExtensionManager, Options};

/// An enabled-extension manager whose `map` takes a filter.
#[derive(Debug)]
pub struct DispatchExtensionManager<H> {
    inner: ExtensionManager<H>,
}

impl<H: PluginHandle> DispatchExtensionManager<H> {
    /// Load like [`EnabledExtensionManager`](crate::EnabledExtensionManager).
    pub fn new(
        registry: &Registry,
        namespace: &str,
        check: impl Fn(&Extension<H>) -> bool,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(DispatchExtensionManager {
            inner: EnabledExtensionManager::new(registry, namespace, check, options)?.into_inner(),
        })
    }

    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(DispatchExtensionManager {
            inner: EnabledExtensionManager::make_test_instance(extensions, namespace, options)?
                .into_inner(),
        })
    }
}

impl<H> DispatchExtensionManager<H> {
    /// Call `func` on the extensions for which `filter` is true (`filter` is called
    /// for every extension). An empty manager is `NoMatches`.
    pub fn map<R, E, P, F>(&self, mut filter: P, func: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        P: FnMut(&Extension<H>) -> bool,
        F: FnMut(&Extension<H>) -> Result<R, E>,
    {
        if self.inner.is_empty() {
            return Err(MapError::NoMatches {
                namespace: self.inner.namespace().to_string(),
            });
        }
        let selected: Vec<&Extension<H>> = self.inner.iter().filter(|e| filter(e)).collect();
        self.inner.map_over(selected.into_iter(), func)
    }

    /// `map` over the objects of the extensions `filter` selects.
    pub fn map_method<R, E, P, F>(&self, mut filter: P, func: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        P: FnMut(&Extension<H>) -> bool,
        F: FnMut(&H) -> Result<R, E>,
    {
        if self.inner.is_empty() {
            return Err(MapError::NoMatches {
                namespace: self.inner.namespace().to_string(),
            });
        }
        let selected: Vec<&Extension<H>> = self.inner.iter().filter(|e| filter(e)).collect();
        self.inner.map_method_over(selected.into_iter(), func)
    }

    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for DispatchExtensionManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}

/// An enabled-extension manager whose `map` takes the names to call.
#[derive(Debug)]
pub struct NameDispatchExtensionManager<H> {
    inner: ExtensionManager<H>,
    /// Name → index; the last extension of a name wins.
    by_name: HashMap<String, usize>,
}

impl<H: PluginHandle> NameDispatchExtensionManager<H> {
    /// Load like [`EnabledExtensionManager`](crate::EnabledExtensionManager).
    pub fn new(
        registry: &Registry,
        namespace: &str,
        check: impl Fn(&Extension<H>) -> bool,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(Self::wrap(
            EnabledExtensionManager::new(registry, namespace, check, options)?.into_inner(),
        ))
    }

    pub fn make_test_instance(
        extensions: Vec<Extension<H>>,
        namespace: Option<&str>,
        options: Options<H>,
    ) -> Result<Self, ManagerError> {
        Ok(Self::wrap(
            EnabledExtensionManager::make_test_instance(extensions, namespace, options)?
                .into_inner(),
        ))
    }

    fn wrap(inner: ExtensionManager<H>) -> Self {
        let by_name = inner
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name().to_string(), i))
            .collect();
        NameDispatchExtensionManager { inner, by_name }
    }
}

impl<H> NameDispatchExtensionManager<H> {
    /// Every name with its extension (the last one loaded for a shared name).
    pub fn by_name(&self) -> HashMap<&str, &Extension<H>> {
        self.by_name
            .iter()
            .map(|(n, i)| (n.as_str(), &self.inner.extensions()[*i]))
            .collect()
    }

    fn select<'a>(&'a self, names: &[&str]) -> Vec<&'a Extension<H>> {
        names
            .iter()
            .filter_map(|name| match self.by_name.get(*name) {
                Some(i) => Some(&self.inner.extensions()[*i]),
                None => {
                    log::debug!("Missing extension {name:?} being ignored");
                    None
                }
            })
            .collect()
    }

    /// Call `func` on the extensions named in `names`, in that order; unknown names
    /// are ignored. Nothing to call is not an error.
    pub fn map<R, E, F>(&self, names: &[&str], func: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        F: FnMut(&Extension<H>) -> Result<R, E>,
    {
        self.inner.map_over(self.select(names).into_iter(), func)
    }

    /// `map` over the objects of the extensions named in `names`.
    pub fn map_method<R, E, F>(&self, names: &[&str], func: F) -> Result<Vec<R>, MapError<E>>
    where
        E: fmt::Display,
        F: FnMut(&H) -> Result<R, E>,
    {
        self.inner
            .map_method_over(self.select(names).into_iter(), func)
    }

    pub fn into_inner(self) -> ExtensionManager<H> {
        self.inner
    }
}

impl<H> Deref for NameDispatchExtensionManager<H> {
    type Target = ExtensionManager<H>;
    fn deref(&self) -> &ExtensionManager<H> {
        &self.inner
    }
}
