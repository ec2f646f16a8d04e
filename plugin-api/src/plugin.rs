//! What a plugin author implements: the `Pollster` and `Discovery` traits, the
//! `PollContext` they are called with, and the `PluginRegistry` that names them.

use std::sync::Arc;

use abi_stable::erased_types::TD_Opaque;
use abi_stable::std_types::RResult;
use abi_stable::DynTrait;

use crate::config::{Config, OptionSpec};
use crate::error::{CallError, ErrorKind, PluginError, PollError};
use crate::ffi::{
    CacheItem, CacheItemInterface, FfiCacheInit, FfiCacheInit_TO, FfiContext, PluginKind,
};
use crate::sample::{Resource, Sample};

/// Produces samples of one meter for the resources it is given (Ceilometer's
/// `PollsterBase`).
pub trait Pollster: Send + Sync + 'static {
    /// The discovery to use when the polling source names neither static resources nor
    /// discoveries (Ceilometer's `default_discovery`), e.g. `local_instances`.
    fn default_discovery(&self) -> Option<String> {
        None
    }

    /// Whether the samples of a call are this pollster's samples of each resource alone,
    /// concatenated: nothing carried from one resource of the list to the next, nothing
    /// that depends on a resource's position in the list, nothing done once per call.
    /// The host may then call it on slices of a long resource list and publish each
    /// slice's samples while the resources' data are still in the CPU's caches; the
    /// samples, their order and the batches are then the same as from one call (the
    /// host reads the monotonic time it stamps per slice). The host may interleave
    /// these calls with other per-resource pollsters' of the same source, slice by
    /// slice: what they share goes through the cycle cache, never through one
    /// pollster's run having finished before another's starts. An error other than a
    /// permanent one naming resources ends the run: later slices are not polled this
    /// cycle. False by default: a pollster that ignores its resources (one that lists
    /// everything itself) must leave it so, or it would be called, and publish
    /// everything, once per slice.
    fn per_resource(&self) -> bool {
        false
    }

    /// Push one sample per measurable resource onto `out`.
    ///
    /// Samples pushed before an error (or a panic) are kept and published. Return
    /// `PollError::Permanent` with the failed resource ids to have them blacklisted.
    fn get_samples(
        &self,
        ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError>;
}

/// Finds the resources pollsters measure (Ceilometer's `DiscoveryBase`).
pub trait Discovery: Send + Sync + 'static {
    /// `param` is what follows `name://` in polling.yaml's `discovery:` entry.
    fn discover(
        &self,
        ctx: &PollContext<'_>,
        param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError>;

    /// The partitioning group of this discovery's resources, if any.
    fn group_id(&self) -> Option<String> {
        None
    }
}

/// The host's services during one call: cancellation and the per-cycle cache.
pub struct PollContext<'a> {
    inner: FfiContext<'a>,
}

impl<'a> PollContext<'a> {
    pub(crate) fn new(inner: FfiContext<'a>) -> PollContext<'a> {
        PollContext { inner }
    }

    /// True once the host has given up on this call (it timed out or the agent is
    /// stopping): return what you have.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// The per-cycle cache shared by every pollster of this library in the same cycle:
    /// pollsters that need the same inspection of a resource make one hypervisor call.
    /// `init` runs once per key per cycle (errors are not cached; the next caller
    /// retries).
    ///
    /// Do not call `cached` for the same key from inside its own `init`.
    pub fn cached<T, F>(&self, key: &str, init: F) -> Result<Arc<T>, PollError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Result<T, PollError>,
    {
        let mut slot = InitSlot::<T, F> {
            init: Some(init),
            _t: std::marker::PhantomData,
        };
        let result = self
            .inner
            .cache_get_or_init(key.into(), FfiCacheInit_TO::from_ptr(&mut slot, TD_Opaque));
        match result {
            RResult::ROk(item) => match item.downcast_as::<Arc<T>>() {
                Ok(arc) => Ok(arc.clone()),
                // Same key, other type: a plugin bug, but not worth failing the poll.
                Err(_) => Err(PollError::transient(format!(
                    "cache key {key:?} holds a value of another type"
                ))),
            },
            RResult::RErr(e) => Err(match e.kind() {
                ErrorKind::Permanent => PollError::Permanent {
                    message: e.message().to_string(),
                    resources: e.resources().map(str::to_string).collect(),
                },
                _ => PollError::Transient(e.to_string()),
            }),
        }
    }
}

struct InitSlot<T, F> {
    init: Option<F>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T, F> FfiCacheInit for InitSlot<T, F>
where
    T: Send + Sync + 'static,
    F: FnOnce() -> Result<T, PollError>,
{
    fn init(&mut self) -> RResult<CacheItem, CallError> {
        let Some(init) = self.init.take() else {
            return RResult::RErr(CallError::new(ErrorKind::Failed, "cache init called twice"));
        };
        match crate::export::guard(init) {
            Ok(Ok(value)) => {
                RResult::ROk(DynTrait::from_value(Arc::new(value)).interface(CacheItemInterface))
            }
            Ok(Err(e)) => RResult::RErr(e.into()),
            Err(panic) => RResult::RErr(panic),
        }
    }
}

type PollsterCtor =
    Box<dyn Fn(&Config) -> Result<crate::ffi::PollsterBox, PluginError> + Send + Sync>;
type DiscoveryCtor =
    Box<dyn Fn(&Config) -> Result<crate::ffi::DiscoveryBox, PluginError> + Send + Sync>;

/// The plugins a library provides, by name. Filled by the function given to
/// [`export_plugin_library!`](crate::export_plugin_library).
#[derive(Default)]
pub struct PluginRegistry {
    pub(crate) entries: Vec<RegistryEntry>,
    pub(crate) options: Vec<OptionSpec>,
}

pub(crate) struct RegistryEntry {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) ctor: Ctor,
}

pub(crate) enum Ctor {
    Pollster(PollsterCtor),
    Discovery(DiscoveryCtor),
}

impl RegistryEntry {
    pub(crate) fn kind(&self) -> PluginKind {
        match self.ctor {
            Ctor::Pollster(_) => PluginKind::Pollster,
            Ctor::Discovery(_) => PluginKind::Discovery,
        }
    }
}

impl PluginRegistry {
    /// Register a pollster under `name` (the name entry_points.toml refers to after
    /// `library:`). `ctor` receives the host configuration.
    pub fn pollster<P, F>(&mut self, name: &str, description: &str, ctor: F) -> &mut Self
    where
        P: Pollster,
        F: Fn(&Config) -> Result<P, PluginError> + Send + Sync + 'static,
    {
        self.entries.push(RegistryEntry {
            name: name.to_string(),
            description: description.to_string(),
            ctor: Ctor::Pollster(Box::new(move |cfg| {
                ctor(cfg).map(crate::export::pollster_box)
            })),
        });
        self
    }

    /// Register a discovery under `name`.
    pub fn discovery<D, F>(&mut self, name: &str, description: &str, ctor: F) -> &mut Self
    where
        D: Discovery,
        F: Fn(&Config) -> Result<D, PluginError> + Send + Sync + 'static,
    {
        self.entries.push(RegistryEntry {
            name: name.to_string(),
            description: description.to_string(),
            ctor: Ctor::Discovery(Box::new(move |cfg| {
                ctor(cfg).map(crate::export::discovery_box)
            })),
        });
        self
    }

    /// Declare an option the library reads, so the host validates and lists it.
    pub fn option(&mut self, spec: OptionSpec) -> &mut Self {
        self.options.push(spec);
        self
    }
}
