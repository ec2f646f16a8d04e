//! `local_instances` (Ceilometer's `InstanceDiscovery` with `libvirt_metadata`, §5.2) and
//! `local_node` (§5.5): every Nova instance libvirt knows, as a resource carrying the
//! resource_metadata base of its samples (§8.1), in Ceilometer's key order.
//!
//! Unlike Ceilometer, a domain without Nova metadata or with broken metadata (a missing
//! element *or attribute*, a non-integer flavor field) is skipped with one WARNING per
//! domain (then DEBUG) and never aborts the discovery of the others (§13.14, §13.15).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use longshore_plugin_api::{
    Config, Discovery, Map, PluginError, PollContext, PollError, Resource, Value,
};
use sha2::{Digest, Sha224};

use crate::config::{opt_str, ComputeConfig};
use crate::domxml::{self, Flavor, NovaInstance, NovaMeta};
use crate::inspector::{hypervisor, Devices, Hypervisor};

pub struct InstanceDiscovery {
    hv: Arc<Hypervisor>,
    host: String,
    /// What the previous pass built per domain, reused while the domain's XML and state
    /// are unchanged (most cycles): only `virDomainGetXMLDesc` is repeated, not the
    /// parse and the metadata building.
    known: Mutex<HashMap<String, Known>>,
    /// The nested dicts instances have in common (`flavor`, `image`, `image_meta`), one
    /// shared map each: a thousand instances of a few flavors hold a few flavor maps.
    shared: Mutex<SharedDicts>,
}

/// Shared (`Map::into_shared`) dict values by what they are built from. A value nothing
/// but this table holds any more is dropped at the end of a discovery.
#[derive(Default)]
struct SharedDicts {
    flavors: HashMap<Flavor, Value>,
    images: HashMap<Option<String>, Value>,
    image_metas: HashMap<Vec<(String, String)>, Value>,
}

impl SharedDicts {
    fn get<K: Eq + Hash + Clone>(
        table: &mut HashMap<K, Value>,
        key: &K,
        build: impl FnOnce() -> Map,
    ) -> Value {
        if let Some(v) = table.get(key) {
            return v.clone();
        }
        let v = Value::from(build().into_shared());
        table.insert(key.clone(), v.clone());
        v
    }

    /// Drop the values no resource holds any more.
    fn prune(&mut self) {
        fn in_use(v: &Value) -> bool {
            // This table's reference, plus the handle asked for.
            v.as_map()
                .and_then(Map::shared_entries)
                .is_some_and(|e| e.share_count() > 2)
        }
        self.flavors.retain(|_, v| in_use(v));
        self.images.retain(|_, v| in_use(v));
        self.image_metas.retain(|_, v| in_use(v));
    }
}

struct Known {
    xml_hash: u64,
    state: i32,
    /// `None` for a skipped (non-Nova or broken) domain.
    built: Option<(Resource, Arc<Devices>)>,
}

fn xml_hash(xml: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    xml.hash(&mut h);
    h.finish()
}

impl InstanceDiscovery {
    pub fn new(cfg: &Config) -> Result<InstanceDiscovery, PluginError> {
        let c = ComputeConfig::from_config(cfg)?;
        c.check_discovery_method()?;
        Ok(InstanceDiscovery {
            hv: hypervisor(&c.libvirt_uri, c.keepalive),
            host: c.host,
            known: Mutex::new(HashMap::new()),
            shared: Mutex::new(SharedDicts::default()),
        })
    }
}

impl Discovery for InstanceDiscovery {
    fn discover(
        &self,
        ctx: &PollContext<'_>,
        _param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        let domains = self.hv.domains(ctx)?;
        let mut out = Vec::with_capacity(domains.order.len());
        let mut alive: HashSet<&str> = HashSet::with_capacity(domains.order.len());
        for e in &domains.order {
            if ctx.is_cancelled() {
                return Err(PollError::transient(
                    "instance discovery cancelled by the host",
                ));
            }
            alive.insert(&e.uuid);
            let xml = match e.dom.xml_desc() {
                Ok(x) => x,
                Err(err) if err.is_no_domain() => {
                    log::debug!("domain {} disappeared during discovery", e.uuid);
                    continue;
                }
                Err(err) if err.is_disconnect() => {
                    return Err(PollError::transient(format!(
                        "libvirt connection to {} lost during instance discovery: {err}",
                        self.hv.masked_uri()
                    )))
                }
                Err(err) => {
                    log::warn!("cannot read the XML of domain {}: {err}; skipped", e.uuid);
                    continue;
                }
            };
            let hash = xml_hash(&xml);
            let reused = {
                let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                match known.get(&e.uuid) {
                    Some(k) if k.xml_hash == hash && k.state == e.state => Some(k.built.clone()),
                    _ => None,
                }
            };
            let built = match reused {
                Some(built) => {
                    if built.is_none() {
                        log::debug!("domain {} skipped (unchanged since the warning)", e.uuid);
                    }
                    built
                }
                None => {
                    let built = self.build(&e.uuid, e.state, &xml);
                    self.known.lock().unwrap_or_else(|p| p.into_inner()).insert(
                        e.uuid.clone(),
                        Known {
                            xml_hash: hash,
                            state: e.state,
                            built: built.clone(),
                        },
                    );
                    built
                }
            };
            if let Some((resource, devices)) = built {
                out.push(resource);
                self.hv.seed_devices(e, devices);
            }
        }
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|uuid, _| alive.contains(uuid.as_str()));
        self.hv.retain_vnic_state(&alive);
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .prune();
        Ok(out)
    }

    fn group_id(&self) -> Option<String> {
        Some(self.host.clone())
    }
}

impl InstanceDiscovery {
    /// Parse a domain's XML into its resource and devices, or log why it is skipped.
    fn build(&self, uuid: &str, state: i32, xml: &str) -> Option<(Resource, Arc<Devices>)> {
        let parsed = match domxml::parse_domain(xml) {
            Ok(p) => p,
            Err(why) => {
                self.skip(uuid, "", &why);
                return None;
            }
        };
        let instance = match &parsed.nova {
            NovaMeta::Instance(i) => i,
            NovaMeta::Missing => {
                self.skip(
                    uuid,
                    &parsed.name,
                    "it has no Nova metadata (nova/1.1 or nova/1.0 namespace): not an OpenStack instance",
                );
                return None;
            }
            NovaMeta::Broken(why) => {
                self.skip(
                    uuid,
                    &parsed.name,
                    &format!("its Nova metadata is broken: {why}"),
                );
                return None;
            }
        };
        let resource = {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            instance_resource(&self.host, uuid, &parsed.name, state, instance, &mut shared)
        };
        let devices = Devices::new(uuid, &parsed.name, parsed.disks, parsed.interfaces);
        Some((resource, Arc::new(devices)))
    }

    fn skip(&self, uuid: &str, name: &str, why: &str) {
        let msg = format!("domain {uuid} ({name}) skipped: {why}");
        if self.hv.first_time(format!("discovery:{uuid}:{why}")) {
            log::warn!("{msg} (logged once per domain; later cycles at debug level)");
        } else {
            log::debug!("{msg}");
        }
    }
}

/// Ceilometer's libvirt state → (`OS-EXT-STS:vm_state`, `status`).
pub fn vm_state(state: i32) -> (&'static str, &'static str) {
    match state {
        1 | 2 => ("running", "active"),
        3 => ("paused", "paused"),
        4 | 5 => ("shutdown", "stopped"),
        6 => ("crashed", "error"),
        7 => ("suspended", "suspended"),
        _ => ("pending", "building"),
    }
}

/// Nova's `hostId` as Ceilometer computes it: sha224(project_id + host).
pub fn host_id(project_id: &str, host: &str) -> String {
    let mut h = Sha224::new();
    h.update(project_id.as_bytes());
    h.update(host.as_bytes());
    hex::encode(h.finalize())
}

/// The `flavor` dict of an instance.
fn flavor_dict(f: &Flavor) -> Map {
    let mut flavor = Map::with_capacity(7 + usize::from(f.extra_specs.is_some()))
        .with("id", f.id.as_str())
        .with("name", f.name.as_str())
        .with("vcpus", f.vcpus)
        .with("ram", f.ram)
        .with("disk", f.disk)
        .with("ephemeral", f.ephemeral)
        .with("swap", f.swap);
    if let Some(specs) = &f.extra_specs {
        let mut m = Map::with_capacity(specs.len());
        for (k, v) in specs {
            m.insert(k.as_str(), opt_str(v));
        }
        flavor.insert("extra_specs", m);
    }
    flavor
}

/// The resource for one instance: `make_sample_from_instance`'s base metadata (§8.1).
/// Its nested dicts come from (and go to) `shared`.
fn instance_resource(
    host: &str,
    uuid: &str,
    instance_name: &str,
    state: i32,
    i: &NovaInstance,
    shared: &mut SharedDicts,
) -> Resource {
    let f = &i.flavor;
    let flavor = SharedDicts::get(&mut shared.flavors, f, || flavor_dict(f));
    let image_meta = i.image_meta.as_ref().filter(|m| !m.is_empty());
    let (vm_state, status) = vm_state(state);
    // Exactly the keys below: the map is the resource's for its lifetime.
    let mut md = Map::with_capacity(20 + usize::from(image_meta.is_some()));
    md.insert("display_name", opt_str(&i.display_name));
    md.insert("name", instance_name);
    md.insert("instance_id", uuid);
    md.insert("instance_type", f.name.as_str());
    md.insert("host", host_id(&i.project_id, host));
    md.insert("instance_host", host);
    md.insert("flavor", flavor);
    md.insert("status", status);
    md.insert("state", vm_state);
    md.insert("task_state", "");
    match &i.image {
        Some(id) => {
            let image = SharedDicts::get(&mut shared.images, id, || {
                Map::with_capacity(1).with("id", opt_str(id))
            });
            md.insert("image", image);
            md.insert("image_ref", opt_str(id));
        }
        None => {
            md.insert("image", Value::NULL);
            md.insert("image_ref", Value::NULL);
        }
    }
    md.insert("image_ref_url", Value::NULL);
    if let Some(meta) = image_meta {
        let m = SharedDicts::get(&mut shared.image_metas, meta, || {
            let mut m = Map::with_capacity(meta.len());
            for (k, v) in meta {
                m.insert(k.as_str(), v.as_str());
            }
            m
        });
        md.insert("image_meta", m);
    }
    md.insert("architecture", i.architecture.as_str());
    md.insert("os_type", opt_str(&i.os_type));
    md.insert("vcpus", f.vcpus);
    md.insert("memory_mb", f.ram);
    md.insert("disk_gb", f.disk);
    md.insert("ephemeral_gb", f.ephemeral);
    md.insert("root_gb", f.disk - f.ephemeral);
    debug_assert_eq!(md.len(), 20 + usize::from(image_meta.is_some()));
    Resource::builder(uuid)
        .name(i.display_name.clone().unwrap_or_else(|| uuid.to_string()))
        .user_id(Some(i.user_id.as_str()))
        .project_id(Some(i.project_id.as_str()))
        .metadata(md)
        .attributes(
            Map::with_capacity(2)
                .with("instance_name", instance_name)
                .with("power_state", state),
        )
        .build()
}

/// `local_node`: the host itself, for host-level pollsters.
pub struct LocalNodeDiscovery {
    host: String,
}

impl LocalNodeDiscovery {
    pub fn new(cfg: &Config) -> Result<LocalNodeDiscovery, PluginError> {
        Ok(LocalNodeDiscovery {
            host: ComputeConfig::from_config(cfg)?.host,
        })
    }
}

impl Discovery for LocalNodeDiscovery {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        _param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        Ok(vec![Resource::new(self.host.as_str())])
    }

    fn group_id(&self) -> Option<String> {
        Some(format!("LocalNode-{}", self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_id_matches_the_capture() {
        // project 4737819096da1dac72ff5d2a386ecbe0 on host peer-compute-0 (the
        // Ceilometer 27 capture).
        assert_eq!(
            host_id("4737819096da1dac72ff5d2a386ecbe0", "peer-compute-0"),
            "53eb93006ac3636d03c847b16c28924d917430fd093c94dabe6b2108"
        );
    }
}
