//! An `Extension`: one loaded entry point (stevedore's `Extension(name, entry_point,
//! plugin, obj)`), its `Factory` (what the entry point resolved to, able to construct
//! the plugin), and the `PluginHandle` trait tying a manager to a plugin kind.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use longshore_plugin_api::host::{DiscoveryHandle, Library, PluginInfo, PollsterHandle};
use longshore_plugin_api::{CallError, Config, ErrorKind, PluginKind};

use crate::entry_points::EntryPoint;

/// A constructed plugin object of one kind; a manager is generic over it
/// (`ExtensionManager<PollsterHandle>`, `ExtensionManager<DiscoveryHandle>`).
pub trait PluginHandle: Send + Sync + Sized + 'static {
    /// The kind of plugin this handle holds; entry points naming a plugin of another
    /// kind fail to load.
    const KIND: PluginKind;

    /// Construct `plugin` from `library` with `config` (invoke-on-load).
    fn construct(library: &Library, plugin: &str, config: &Config) -> Result<Self, CallError>;
}

impl PluginHandle for PollsterHandle {
    const KIND: PluginKind = PluginKind::Pollster;

    fn construct(library: &Library, plugin: &str, config: &Config) -> Result<Self, CallError> {
        library.new_pollster(plugin, config)
    }
}

impl PluginHandle for DiscoveryHandle {
    const KIND: PluginKind = PluginKind::Discovery;

    fn construct(library: &Library, plugin: &str, config: &Config) -> Result<Self, CallError> {
        library.new_discovery(plugin, config)
    }
}

type LocalCtor<H> = Arc<dyn Fn(&Config) -> Result<H, CallError> + Send + Sync>;

/// What an entry point resolved to: a plugin inside a loaded library, or (for test
/// instances) an in-process constructor. Stevedore's `Extension.plugin`.
pub struct Factory<H> {
    inner: FactoryInner<H>,
}

enum FactoryInner<H> {
    Library {
        library: Arc<Library>,
        info: PluginInfo,
    },
    Local {
        description: String,
        ctor: LocalCtor<H>,
    },
}

impl<H> Clone for Factory<H> {
    fn clone(&self) -> Self {
        Factory {
            inner: match &self.inner {
                FactoryInner::Library { library, info } => FactoryInner::Library {
                    library: library.clone(),
                    info: info.clone(),
                },
                FactoryInner::Local { description, ctor } => FactoryInner::Local {
                    description: description.clone(),
                    ctor: ctor.clone(),
                },
            },
        }
    }
}

impl<H: PluginHandle> Factory<H> {
    pub(crate) fn from_library(library: Arc<Library>, info: PluginInfo) -> Factory<H> {
        Factory {
            inner: FactoryInner::Library { library, info },
        }
    }

    /// An in-process factory (for test instances).
    pub fn from_fn(
        description: &str,
        ctor: impl Fn(&Config) -> Result<H, CallError> + Send + Sync + 'static,
    ) -> Factory<H> {
        Factory {
            inner: FactoryInner::Local {
                description: description.to_string(),
                ctor: Arc::new(ctor),
            },
        }
    }

    /// Construct the plugin with `config`.
    pub fn construct(&self, config: &Config) -> Result<H, CallError> {
        match &self.inner {
            FactoryInner::Library { library, info } => H::construct(library, &info.name, config),
            FactoryInner::Local { ctor, .. } => ctor(config),
        }
    }

    /// The library the plugin lives in (`None` for in-process factories).
    pub fn library(&self) -> Option<&Arc<Library>> {
        match &self.inner {
            FactoryInner::Library { library, .. } => Some(library),
            FactoryInner::Local { .. } => None,
        }
    }

    /// The plugin's one-line description.
    pub fn description(&self) -> &str {
        match &self.inner {
            FactoryInner::Library { info, .. } => &info.description,
            FactoryInner::Local { description, .. } => description,
        }
    }
}

impl<H> fmt::Debug for Factory<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            FactoryInner::Library { library, info } => {
                write!(f, "Factory({}:{})", library.path().display(), info.name)
            }
            FactoryInner::Local { description, .. } => {
                write!(f, "Factory(<in-process> {description})")
            }
        }
    }
}

/// One loaded entry point.
pub struct Extension<H> {
    entry_point: Arc<EntryPoint>,
    plugin: Factory<H>,
    obj: Option<Arc<H>>,
}

impl<H> Clone for Extension<H> {
    fn clone(&self) -> Self {
        Extension {
            entry_point: self.entry_point.clone(),
            plugin: self.plugin.clone(),
            obj: self.obj.clone(),
        }
    }
}

impl<H: PluginHandle> Extension<H> {
    /// An extension from its parts (managers build these; tests may too).
    pub fn new(entry_point: Arc<EntryPoint>, plugin: Factory<H>, obj: Option<H>) -> Extension<H> {
        Extension {
            entry_point,
            plugin,
            obj: obj.map(Arc::new),
        }
    }

    /// An in-memory extension named `name` around an already constructed object, for
    /// `make_test_instance`. Its entry point is `name = "<in-process>:name"` in
    /// namespace `TESTING`.
    pub fn from_obj(name: &str, obj: H) -> Extension<H> {
        Extension::new(
            test_entry_point(name),
            Factory::from_fn("in-process test extension", |_| {
                Err(CallError::new(
                    ErrorKind::Failed,
                    "an in-process test extension cannot be constructed again",
                ))
            }),
            Some(obj),
        )
    }

    /// An in-memory extension named `name` that was not constructed (`obj` is `None`).
    pub fn from_factory(name: &str, plugin: Factory<H>) -> Extension<H> {
        Extension::new(test_entry_point(name), plugin, None)
    }
}

fn test_entry_point(name: &str) -> Arc<EntryPoint> {
    Arc::new(EntryPoint::from_parts(
        "TESTING",
        name,
        "<in-process>",
        name,
    ))
}

impl<H> Extension<H> {
    /// The extension's name (the entry point's key).
    pub fn name(&self) -> &str {
        self.entry_point.name()
    }

    pub fn entry_point(&self) -> &Arc<EntryPoint> {
        &self.entry_point
    }

    /// What the entry point resolved to (stevedore's `plugin`).
    pub fn plugin(&self) -> &Factory<H> {
        &self.plugin
    }

    /// The constructed object, when the manager invoked the plugin on load.
    pub fn obj(&self) -> Option<&Arc<H>> {
        self.obj.as_ref()
    }

    /// The library file the plugin lives in.
    pub fn library_path(&self) -> Option<&Path> {
        match &self.plugin.inner {
            FactoryInner::Library { library, .. } => Some(library.path()),
            FactoryInner::Local { .. } => None,
        }
    }

    /// The library part of the target (stevedore's `module_name`).
    pub fn module_name(&self) -> &str {
        self.entry_point.library()
    }

    /// The plugin part of the target (stevedore's `attr`).
    pub fn attr(&self) -> &str {
        self.entry_point.plugin()
    }

    /// `library:plugin` (stevedore's `entry_point_target`).
    pub fn entry_point_target(&self) -> String {
        self.entry_point.target()
    }
}

impl<H> fmt::Debug for Extension<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("name", &self.name())
            .field("target", &self.entry_point.target())
            .field("plugin", &self.plugin)
            .field("invoked", &self.obj.is_some())
            .finish()
    }
}
