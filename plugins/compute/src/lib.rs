//! longshore's compute plugin library (`libcompute.so`): the 36 libvirt meters of
//! Ceilometer 27's `ceilometer.poll.compute` namespace, the `local_instances` discovery
//! (Nova instances from their libvirt metadata) and `local_node`.
//!
//! Where this differs from Ceilometer (each a fix of a §13 bug or a meter Ceilometer
//! cannot produce; see README.md): `cpu`/`vcpus` fall back to `virDomainGetInfo` when the
//! driver's bulk stats lack vCPU data; disk read/write counters do not need
//! `virDomainBlockStatsFlags`; vNIC deltas are keyed by (instance, tap) and pruned; the
//! `network.*.bytes.rate` meters are computed from successive polls instead of
//! blacklisting every instance; a non-Nova or broken domain is skipped with one warning
//! instead of an error every cycle or an aborted discovery; an unreachable libvirt fails
//! polls transiently (and recovers) instead of disabling the pollsters for good.

mod config;
mod discovery;
mod domxml;
mod inspector;
mod libvirt;
mod meters;

use longshore_plugin_api::{export_plugin_library, PluginRegistry};

fn register(plugins: &mut PluginRegistry) {
    for spec in config::option_specs() {
        plugins.option(spec);
    }
    plugins.discovery(
        "local_instances",
        "Nova instances on this host, from Nova's metadata in the libvirt domains",
        discovery::InstanceDiscovery::new,
    );
    plugins.discovery(
        "local_node",
        "This host ([DEFAULT] host), for host-level pollsters",
        discovery::LocalNodeDiscovery::new,
    );
    for meter in meters::METERS {
        plugins.pollster(meter.name, meter.help, move |cfg| {
            meters::ComputePollster::new(meter, cfg)
        });
    }
}

export_plugin_library!(register);
