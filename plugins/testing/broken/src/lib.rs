//! A deliberately broken plugin: a genuine longshore plugin library (right ABI, right
//! version) whose registration function panics, so the library's initialisation fails
//! as a whole. The host must report every entry point naming it and keep running.

use longshore_plugin_api::{export_plugin_library, PluginRegistry};

fn register(_plugins: &mut PluginRegistry) {
    log::error!("test_broken is about to fail its registration");
    panic!("test_broken: registration always panics");
}

export_plugin_library!(register);
