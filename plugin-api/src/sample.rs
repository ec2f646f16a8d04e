//! What pollsters produce (`Sample`) and what discoveries find (`Resource`), in the
//! shape of Ceilometer's `Sample` and of the objects its discoveries return.

use std::fmt;

use abi_stable::std_types::{RArc, ROption, RString};
use abi_stable::StableAbi;

use crate::text::Text;
use crate::value::{Map, Value};

/// Ceilometer's three sample types.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleType {
    Gauge,
    Delta,
    Cumulative,
}

impl SampleType {
    /// The wire spelling (`gauge`, `delta`, `cumulative`).
    pub fn as_str(self) -> &'static str {
        match self {
            SampleType::Gauge => "gauge",
            SampleType::Delta => "delta",
            SampleType::Cumulative => "cumulative",
        }
    }
}

impl fmt::Display for SampleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SampleType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gauge" => Ok(SampleType::Gauge),
            "delta" => Ok(SampleType::Delta),
            "cumulative" => Ok(SampleType::Cumulative),
            other => Err(format!(
                "unsupported sample type {other:?} (expected gauge, delta or cumulative)"
            )),
        }
    }
}

/// One measurement, as Ceilometer's `ceilometer.sample.Sample`.
///
/// The host fills what the pollster leaves unset: `timestamp` (one per pollster run),
/// `source` (`[DEFAULT] sample_source`) and the message id.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Sample {
    // The short fields are inline (Text): making a sample then allocates nothing for
    // them, and the host reads them without touching other memory.
    name: Text,
    kind: SampleType,
    unit: Text,
    volume: Value,
    user_id: ROption<Text>,
    project_id: ROption<Text>,
    resource_id: Text,
    resource_metadata: Map,
    timestamp: ROption<RString>,
    monotonic_time: ROption<f64>,
    source: ROption<RString>,
}

impl Sample {
    /// A sample with no owner and no metadata; chain the `with_*` setters for the rest.
    pub fn new(
        name: impl AsRef<str>,
        kind: SampleType,
        unit: impl AsRef<str>,
        volume: impl Into<Value>,
        resource_id: impl AsRef<str>,
    ) -> Sample {
        Sample {
            name: Text::new(name.as_ref()),
            kind,
            unit: Text::new(unit.as_ref()),
            volume: volume.into(),
            user_id: ROption::RNone,
            project_id: ROption::RNone,
            resource_id: Text::new(resource_id.as_ref()),
            resource_metadata: Map::new(),
            timestamp: ROption::RNone,
            monotonic_time: ROption::RNone,
            source: ROption::RNone,
        }
    }

    /// A sample about `resource`: its id, owner and metadata are copied (Ceilometer's
    /// `make_sample_from_instance`). Use [`Sample::with_resource_id`] for per-device ids
    /// and [`Sample::with_metadata`] for the pollster's additional metadata.
    pub fn from_resource(
        resource: &Resource,
        name: impl AsRef<str>,
        kind: SampleType,
        unit: impl AsRef<str>,
        volume: impl Into<Value>,
    ) -> Sample {
        let r = &*resource.0;
        Sample {
            name: Text::new(name.as_ref()),
            kind,
            unit: Text::new(unit.as_ref()),
            volume: volume.into(),
            user_id: r.user_id.clone(),
            project_id: r.project_id.clone(),
            resource_id: r.id.clone(),
            resource_metadata: r.metadata.clone(),
            timestamp: ROption::RNone,
            monotonic_time: ROption::RNone,
            source: ROption::RNone,
        }
    }

    pub fn with_resource_id(mut self, id: impl AsRef<str>) -> Sample {
        self.resource_id = Text::new(id.as_ref());
        self
    }
    pub fn with_user_id(mut self, id: Option<impl AsRef<str>>) -> Sample {
        self.user_id = id.map(|s| Text::new(s.as_ref())).into();
        self
    }
    pub fn with_project_id(mut self, id: Option<impl AsRef<str>>) -> Sample {
        self.project_id = id.map(|s| Text::new(s.as_ref())).into();
        self
    }
    /// Replace the whole resource metadata.
    pub fn with_resource_metadata(mut self, metadata: Map) -> Sample {
        self.resource_metadata = metadata;
        self
    }
    /// Set one metadata key (Python's `dict.update` of additional metadata).
    pub fn with_metadata(mut self, key: &str, value: impl Into<Value>) -> Sample {
        self.resource_metadata.insert(key, value);
        self
    }
    pub fn with_monotonic_time(mut self, t: f64) -> Sample {
        self.monotonic_time = ROption::RSome(t);
        self
    }
    /// Normally left to the host, which stamps every sample of a pollster run alike.
    pub fn with_timestamp(mut self, ts: impl Into<String>) -> Sample {
        self.timestamp = ROption::RSome(RString::from(ts.into()));
        self
    }
    pub fn with_source(mut self, source: impl Into<String>) -> Sample {
        self.source = ROption::RSome(RString::from(source.into()));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> SampleType {
        self.kind
    }
    pub fn unit(&self) -> &str {
        &self.unit
    }
    pub fn volume(&self) -> &Value {
        &self.volume
    }
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_ref().map(|s| s.as_str()).into_option()
    }
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_ref().map(|s| s.as_str()).into_option()
    }
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }
    pub fn resource_metadata(&self) -> &Map {
        &self.resource_metadata
    }
    pub fn resource_metadata_mut(&mut self) -> &mut Map {
        &mut self.resource_metadata
    }
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_ref().map(|s| s.as_str()).into_option()
    }
    pub fn monotonic_time(&self) -> Option<f64> {
        self.monotonic_time.into_option()
    }
    pub fn source(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.as_str()).into_option()
    }
    /// Host side: stamp the pollster run's timestamp (overrides any plugin value, as
    /// Ceilometer's `set_timestamp` does).
    pub fn set_timestamp(&mut self, ts: &str) {
        self.timestamp = ROption::RSome(RString::from(ts));
    }
    pub fn set_source_if_unset(&mut self, source: &str) {
        if self.source.is_rnone() {
            self.source = ROption::RSome(RString::from(source));
        }
    }
}

/// Something a pollster measures: an instance, a host, a static URL from polling.yaml.
///
/// A cheap handle (reference counted): cloning it does not copy the metadata. Two
/// resources are the same resource when their ids are equal (Ceilometer compares
/// `NovaLikeServer`s by id), which is what per-cycle dedup and blacklists use.
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct Resource(RArc<ResourceData>);

#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct ResourceData {
    // Inline like a sample's: a sample copies them from here (see Sample::from_resource).
    id: Text,
    name: RString,
    user_id: ROption<Text>,
    project_id: ROption<Text>,
    metadata: Map,
    attributes: Map,
}

impl Resource {
    /// A resource with just an id (its display name is the id too).
    pub fn new(id: impl AsRef<str>) -> Resource {
        Resource::builder(id).build()
    }

    /// Start building a resource with owner, metadata and private attributes.
    pub fn builder(id: impl AsRef<str>) -> ResourceBuilder {
        let id = id.as_ref();
        ResourceBuilder {
            data: ResourceData {
                name: RString::from(id),
                id: Text::new(id),
                user_id: ROption::RNone,
                project_id: ROption::RNone,
                metadata: Map::new(),
                attributes: Map::new(),
            },
        }
    }

    /// The identity (an instance's uuid, a static resource's URL).
    pub fn id(&self) -> &str {
        &self.0.id
    }
    /// A human-readable name, for logs (Ceilometer's `str(resource)`).
    pub fn name(&self) -> &str {
        &self.0.name
    }
    pub fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_ref().map(|s| s.as_str()).into_option()
    }
    pub fn project_id(&self) -> Option<&str> {
        self.0.project_id.as_ref().map(|s| s.as_str()).into_option()
    }
    /// The resource metadata every sample about this resource starts from.
    pub fn metadata(&self) -> &Map {
        &self.0.metadata
    }
    /// Facts for pollsters that are not sample metadata (a libvirt domain name, a state).
    pub fn attributes(&self) -> &Map {
        &self.0.attributes
    }
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.0.attributes.get(key)
    }
}

/// Host side: start loading into the CPU's caches what [`Sample::from_resource`] reads of
/// each of `resources` (the resource, then its shared metadata's reference count), before
/// a per-resource pollster walks them: over thousands of resources each is otherwise two
/// cache misses in a row per sample; requested together, the loads overlap.
pub fn prefetch_resources(resources: &[Resource]) {
    for r in resources {
        crate::host::prefetch(
            (&*r.0 as *const ResourceData).cast(),
            std::mem::size_of::<ResourceData>(),
        );
    }
    for r in resources {
        if let Some(id) = r.0.metadata.shared_id() {
            // The reference count sits just before the shared data.
            crate::host::prefetch((id as *const u8).wrapping_sub(16), 64);
        }
    }
}

impl PartialEq for Resource {
    fn eq(&self, other: &Resource) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Resource {}
impl std::hash::Hash for Resource {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.as_str().hash(state)
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Resource {} ({})>", self.0.id, self.0.name)
    }
}

/// Builder for [`Resource`].
pub struct ResourceBuilder {
    data: ResourceData,
}

impl ResourceBuilder {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.data.name = RString::from(name.into());
        self
    }
    pub fn user_id(mut self, id: Option<impl AsRef<str>>) -> Self {
        self.data.user_id = id.map(|s| Text::new(s.as_ref())).into();
        self
    }
    pub fn project_id(mut self, id: Option<impl AsRef<str>>) -> Self {
        self.data.project_id = id.map(|s| Text::new(s.as_ref())).into();
        self
    }
    /// The resource metadata every sample about the resource starts from (shared:
    /// samples do not copy it).
    pub fn metadata(mut self, metadata: Map) -> Self {
        self.data.metadata = metadata.into_shared();
        self
    }
    pub fn attributes(mut self, attributes: Map) -> Self {
        self.data.attributes = attributes;
        self
    }
    pub fn attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.attributes.insert(key, value);
        self
    }
    pub fn build(self) -> Resource {
        Resource(RArc::new(self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_from_resource_copies_owner_and_metadata() {
        let r = Resource::builder("u-1")
            .name("vm1")
            .user_id(Some("user"))
            .project_id(Some("proj"))
            .metadata(Map::new().with("display_name", "vm1"))
            .build();
        let s = Sample::from_resource(&r, "cpu", SampleType::Cumulative, "ns", 5)
            .with_metadata("cpu_number", 1);
        assert_eq!(s.resource_id(), "u-1");
        assert_eq!(s.user_id(), Some("user"));
        assert_eq!(s.project_id(), Some("proj"));
        assert_eq!(
            s.resource_metadata().keys().collect::<Vec<_>>(),
            ["display_name", "cpu_number"]
        );
        // the resource's own metadata is untouched
        assert_eq!(r.metadata().len(), 1);
    }

    #[test]
    fn resources_are_equal_by_id() {
        let a = Resource::builder("x").name("one").build();
        let b = Resource::builder("x").name("two").build();
        assert_eq!(a, b);
    }
}
