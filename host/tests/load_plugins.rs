//! `longshore::plugins::load_plugins`, the entry point `poll` and `run` use: real
//! libraries, the configuration checked against the options they declare, and the
//! pollsters and discoveries of the polling namespace groups.

use longshore::config::Settings;
use longshore::plugins::load_plugins;

fn setup(extra_config: &str) -> (tempfile::TempDir, Settings) {
    longshore_tests::build_plugins(&["longshore-plugin-synthetic"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        longshore_tests::built_library("test_synthetic"),
        dir.path().join("plugins/libtest_synthetic.so"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("entry_points.toml"),
        "[ceilometer.poll.synth]\ncounter = \"test_synthetic:counter\"\nbroken = \"test_synthetic:ctor_error\"\n\
         [ceilometer.discover.synth]\nfixed = \"test_synthetic:fixed\"\n",
    )
    .unwrap();
    let config = dir.path().join("longshore.toml");
    std::fs::write(
        &config,
        format!("[DEFAULT]\npolling_namespaces = [\"synth\"]\n[entry_points]\nfile = \"entry_points.toml\"\n{extra_config}"),
    )
    .unwrap();
    let settings = Settings::load(Some(&config), vec![], vec![]).expect("valid configuration");
    (dir, settings)
}

#[test]
fn loads_the_groups_pollsters_and_discoveries_with_the_configuration() {
    let (_dir, mut settings) = setup("[synthetic]\nresources = 4\n");
    let loaded = load_plugins(&mut settings, None, false).unwrap();
    let names: Vec<&str> = loaded
        .plugins
        .pollsters
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["counter"]);
    assert_eq!(loaded.plugins.discoveries[0].name, "fixed");
    assert_eq!(
        loaded.plugins.failures().count(),
        1,
        "ctor_error is reported and skipped"
    );
    // The plugins were built with the file's values.
    assert_eq!(
        loaded.config.i64("synthetic", "resources").unwrap(),
        Some(4)
    );
    let found = loaded.plugins.discoveries[0]
        .handle
        .discover(&Default::default(), None);
    assert_eq!(found.resources.len(), 4);
}

#[test]
fn strict_makes_load_failures_fatal() {
    let (_dir, mut settings) = setup("");
    let err = load_plugins(&mut settings, None, true).unwrap_err();
    assert!(format!("{err:#}").contains("ctor_error refuses"), "{err:#}");
}

#[test]
fn unknown_plugin_options_are_errors_naming_the_line() {
    let (_dir, mut settings) = setup("[synthetic]\nresources = 2\nresourcez = 3\n");
    let err = load_plugins(&mut settings, None, false).unwrap_err();
    assert!(
        format!("{err:#}").contains("longshore.toml:7:1: unknown option [synthetic] resourcez"),
        "{err:#}"
    );
}

#[test]
fn explicit_groups_override_polling_namespaces() {
    let (_dir, mut settings) = setup("");
    let loaded = load_plugins(&mut settings, Some(&["nothing".to_string()]), false).unwrap();
    assert!(loaded.plugins.pollsters.is_empty());
}
