//! Test plugins with scripted behaviour, for the host's end-to-end tests and the
//! engine benchmark. Everything here is a real plugin loaded through the real ABI.

use longshore_plugin_api::{
    export_plugin_library, Config, Discovery, PluginError, PluginRegistry, PollContext, PollError,
    Pollster, Resource, Sample, SampleType,
};

/// One gauge sample per resource, value = the index of the resource.
struct Counter;

impl Pollster for Counter {
    fn default_discovery(&self) -> Option<String> {
        Some("fixed".to_string())
    }
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        log::info!("polling {} resources", resources.len());
        for (i, r) in resources.iter().enumerate() {
            out.push(Sample::from_resource(
                r,
                "test.counter",
                SampleType::Gauge,
                "item",
                i as i64,
            ));
        }
        Ok(())
    }
}

/// Panics after producing one sample.
struct Panicker;

impl Pollster for Panicker {
    fn get_samples(
        &self,
        _ctx: &PollContext<'_>,
        resources: &[Resource],
        out: &mut Vec<Sample>,
    ) -> Result<(), PollError> {
        if let Some(r) = resources.first() {
            out.push(Sample::from_resource(
                r,
                "test.panic",
                SampleType::Gauge,
                "",
                1,
            ));
        }
        panic!("test.panic always panics");
    }
}

/// A fixed set of resources: `count` from `[synthetic] resources` (default 3).
struct Fixed {
    count: i64,
}

impl Discovery for Fixed {
    fn discover(
        &self,
        _ctx: &PollContext<'_>,
        param: Option<&str>,
    ) -> Result<Vec<Resource>, PollError> {
        let prefix = param.unwrap_or("res");
        Ok((0..self.count)
            .map(|i| Resource::new(format!("{prefix}-{i}")))
            .collect())
    }
}

fn register(plugins: &mut PluginRegistry) {
    plugins
        .pollster("counter", "One gauge per resource", |_: &Config| {
            Ok(Counter)
        })
        .pollster("panic", "Panics in get_samples", |_: &Config| Ok(Panicker))
        .discovery("fixed", "N fixed resources", |cfg: &Config| {
            Ok(Fixed {
                count: cfg.i64("synthetic", "resources")?.unwrap_or(3),
            })
        })
        .pollster(
            "ctor_error",
            "Constructor returns an error",
            |_: &Config| Err::<Counter, _>(PluginError::failed("ctor_error refuses to be built")),
        )
        .pollster(
            "ctor_panic",
            "Constructor panics",
            |_: &Config| -> Result<Counter, PluginError> {
                panic!("ctor_panic panics in its constructor")
            },
        );
}

export_plugin_library!(register);
