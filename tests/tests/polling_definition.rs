//! polling.yaml (spec §1): every validation rule of §1.3 (and the crashes Ceilometer has
//! instead of a rule), the error's file/line/source/rule, Ceilometer's coercions, the
//! meter truth table of §1.4, and the shipped files.

use std::path::Path;

use longshore_polling::{
    find_definition_file, DefinitionError, MeterFilter, PollingDefinition, Rule,
};

fn fixture(name: &str) -> std::path::PathBuf {
    longshore_tests::fixtures_dir().join("polling").join(name)
}

fn parse(yaml: &str) -> Result<PollingDefinition, DefinitionError> {
    PollingDefinition::parse(yaml, Path::new("/etc/longshore/polling.yaml"))
}

/// A minimal valid source, with `extra` lines appended (indented 4).
fn source(lines: &[&str]) -> String {
    let mut s = String::from("sources:\n  - name: s1\n");
    for l in lines {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

struct Case {
    yaml: String,
    line: Option<usize>,
    source: Option<&'static str>,
    rule: fn(&Rule) -> bool,
    text: &'static str,
}

fn case(
    yaml: impl Into<String>,
    line: Option<usize>,
    source: Option<&'static str>,
    rule: fn(&Rule) -> bool,
    text: &'static str,
) -> Case {
    Case {
        yaml: yaml.into(),
        line,
        source,
        rule,
        text,
    }
}

#[test]
fn every_rule_is_an_error_naming_file_line_source_and_rule() {
    let s1 = Some("s1");
    let cases = vec![
        // Ceilometer crashes with TypeError on an empty file.
        case(
            "",
            None,
            None,
            |r| matches!(r, Rule::Empty),
            "the file is empty",
        ),
        case(
            "# only a comment\n",
            None,
            None,
            |r| matches!(r, Rule::Empty),
            "empty",
        ),
        case(
            "- a\n",
            Some(1),
            None,
            |r| matches!(r, Rule::TopNotMapping { .. }),
            "top level must be a mapping",
        ),
        // Rule 1.
        case(
            "{}\n",
            Some(1),
            None,
            |r| matches!(r, Rule::SourcesMissing),
            "sources required",
        ),
        case(
            "sourcse:\n  - name: x\n",
            Some(1),
            None,
            |r| matches!(r, Rule::UnknownTopKey { suggestion: Some(s), .. } if s == "sources"),
            "unknown top-level key `sourcse` (did you mean `sources`?)",
        ),
        // Ceilometer: TypeError iterating None.
        case(
            "sources:\n",
            Some(1),
            None,
            |r| matches!(r, Rule::SourcesNotList { .. }),
            "`sources` must be a list of sources, found null",
        ),
        case(
            "sources:\n  name: x\n",
            Some(2),
            None,
            |r| matches!(r, Rule::SourcesNotList { .. }),
            "found a mapping",
        ),
        case(
            "sources:\n  - just_a_name\n",
            Some(2),
            None,
            |r| matches!(r, Rule::SourceNotMapping { index: 0, .. }),
            "source #1 must be a mapping",
        ),
        // Rule 2.
        case(
            "sources:\n  - interval: 5\n    meters: [cpu]\n",
            Some(2),
            None,
            |r| matches!(r, Rule::NameMissing),
            "Required field name not specified",
        ),
        case(
            "sources:\n  - name: [a]\n    interval: 5\n    meters: [cpu]\n",
            Some(2),
            None,
            |r| matches!(r, Rule::NameNotString { .. }),
            "`name` must be a string, found a list",
        ),
        case(
            "sources:\n  - name: ''\n    interval: 5\n    meters: [cpu]\n",
            Some(2),
            None,
            |r| matches!(r, Rule::NameEmpty),
            "must not be empty",
        ),
        // Unknown keys (Ceilometer ignores them silently).
        case(
            source(&["interval: 5", "meters: [cpu]", "intreval: 10"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::UnknownKey { key, suggestion: Some(s) } if key == "intreval" && s == "interval"),
            "unknown key `intreval` (did you mean `interval`?)",
        ),
        // Rule 3.
        case(
            source(&["interval: 5"]),
            Some(2),
            s1,
            |r| matches!(r, Rule::MetersMissing),
            "Missing meters value",
        ),
        // Rule 4: int() raises ValueError.
        case(
            source(&["interval: abc", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalInvalid { .. }),
            "Invalid interval value \"abc\"",
        ),
        case(
            source(&["interval: '1.5'", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalInvalid { .. }),
            "Invalid interval value \"1.5\"",
        ),
        // Python truncates int(1.9) to 1; longshore refuses a fractional interval.
        case(
            source(&["interval: 1.9", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalInvalid { .. }),
            "whole number of seconds",
        ),
        // Rule 5.
        case(
            source(&["meters: [cpu]"]),
            Some(2),
            s1,
            |r| matches!(r, Rule::IntervalMissing),
            "Missing interval value",
        ),
        // Ceilometer: TypeError from int(None) / int([]).
        case(
            source(&["interval:", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalWrongType { .. }),
            "found null",
        ),
        case(
            source(&["interval: [5]", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalWrongType { .. }),
            "found a list",
        ),
        case(
            source(&["interval: {a: 1}", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalWrongType { .. }),
            "found a mapping",
        ),
        case(
            source(&["interval: true", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalWrongType { .. }),
            "found the boolean true",
        ),
        // Rule 6.
        case(
            source(&["interval: 0", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalNotPositive { value: 0 }),
            "Interval value should > 0, found 0",
        ),
        case(
            source(&["interval: '-60'", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalNotPositive { value: -60 }),
            "found -60",
        ),
        case(
            source(&["interval: 99999999999", "meters: [cpu]"]),
            Some(3),
            s1,
            |r| matches!(r, Rule::IntervalTooLarge { .. }),
            "larger than",
        ),
        // Rule 7.
        case(
            source(&["interval: 5", "meters: [cpu]", "resources: snmp://h"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::ResourcesNotList { .. }),
            "Resources should be a list",
        ),
        case(
            source(&["interval: 5", "meters: [cpu]", "resources: [a, {b: 1}]"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::ResourceInvalid { index: 1, .. }),
            "resources entry #2 must be a string",
        ),
        // Rule 8.
        case(
            source(&["interval: 5", "meters: [cpu]", "discovery: local_instances"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::DiscoveryNotList { .. }),
            "Discovery should be a list",
        ),
        case(
            source(&["interval: 5", "meters: [cpu]", "discovery: ['']"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::DiscoveryInvalid { index: 0, .. }),
            "discovery entry #1 must be a non-empty string",
        ),
        case(
            source(&["interval: 5", "meters: [cpu]", "discovery: [7]"]),
            Some(5),
            s1,
            |r| matches!(r, Rule::DiscoveryInvalid { index: 0, .. }),
            "found the number 7",
        ),
        // Rule 9: meters falsy.
        case(
            source(&["interval: 5", "meters: []"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::MetersEmpty),
            "No meters specified",
        ),
        case(
            source(&["interval: 5", "meters:"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::MetersEmpty),
            "No meters specified",
        ),
        case(
            source(&["interval: 5", "meters: ''"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::MetersEmpty),
            "No meters specified",
        ),
        // Ceilometer reads `meters: cpu` character by character.
        case(
            source(&["interval: 5", "meters: cpu"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::MetersNotList { .. }),
            "must be a list of meter names",
        ),
        // Ceilometer: IndexError on "" and TypeError on a number.
        case(
            source(&["interval: 5", "meters: [cpu, '']"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::MeterEmpty { index: 1 }),
            "meters entry #2 is an empty string",
        ),
        case(
            source(&["interval: 5", "meters:", "  - cpu", "  - 5"]),
            Some(6),
            s1,
            |r| matches!(r, Rule::MeterNotString { index: 1, .. }),
            "meters entry #2 must be a string, found the number 5",
        ),
        case(
            source(&["interval: 5", "meters:", "  - cpu", "  - !disk.*"]),
            Some(6),
            s1,
            |r| matches!(r, Rule::MeterNotString { .. }),
            "quote exclusions",
        ),
        // Rule 10.
        case(
            source(&["interval: 5", "meters:", "  - cpu", "  - '!disk.*'"]),
            Some(6),
            s1,
            |r| matches!(r, Rule::IncludeAndExclude { .. }),
            "Both included and excluded meters specified (\"cpu\" and \"!disk.*\")",
        ),
        case(
            source(&["interval: 5", "meters: ['cpu*', '!cpu.delta']"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::IncludeAndExclude { .. }),
            "Both included and excluded",
        ),
        // Rule 11.
        case(
            source(&["interval: 5", "meters: ['*', cpu]"]),
            Some(4),
            s1,
            |r| matches!(r, Rule::WildcardWithIncludes { .. }),
            "Included meters specified with wildcard",
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        let err = match parse(&c.yaml) {
            Ok(_) => panic!("case {i}: accepted:\n{}", c.yaml),
            Err(e) => e,
        };
        let msg = err.to_string();
        let ctx = format!("case {i}: {msg}\n---\n{}", c.yaml);
        let DefinitionError::Invalid {
            path,
            location,
            source_name,
            rule,
        } = &err
        else {
            panic!("{ctx}: not an Invalid error");
        };
        assert_eq!(path, Path::new("/etc/longshore/polling.yaml"), "{ctx}");
        assert!((c.rule)(rule), "{ctx}: rule {rule:?}");
        assert_eq!(source_name.as_deref(), c.source, "{ctx}");
        if let Some(line) = c.line {
            assert_eq!(location.map(|l| l.line), Some(line), "{ctx}");
            assert!(
                msg.starts_with(&format!("/etc/longshore/polling.yaml:{line}:")),
                "{ctx}"
            );
        }
        if let Some(name) = c.source {
            assert!(msg.contains(&format!("source \"{name}\": ")), "{ctx}");
        }
        assert!(msg.contains(c.text), "{ctx}\n(expected {:?})", c.text);
    }
}

#[test]
fn ceilometer_coercions_and_falsy_values_are_accepted() {
    for (yaml_interval, want) in [
        ("300", 300),
        ("'300'", 300),
        ("' 300 '", 300),
        ("'+7'", 7),
        ("'1_000'", 1000),
        ("600.0", 600),
    ] {
        let d = parse(&source(&[
            &format!("interval: {yaml_interval}"),
            "meters: [cpu]",
        ]))
        .unwrap_or_else(|e| panic!("{yaml_interval}: {e}"));
        assert_eq!(d.sources()[0].interval(), want, "{yaml_interval}");
    }
    // Falsy resources / discovery mean "none" (Ceilometer's `or []`).
    for falsy in ["~", "''", "0", "{}", "[]", "false"] {
        let d = parse(&source(&[
            "interval: 5",
            "meters: [cpu]",
            &format!("resources: {falsy}"),
            &format!("discovery: {falsy}"),
        ]))
        .unwrap_or_else(|e| panic!("{falsy}: {e}"));
        assert!(d.sources()[0].resources().is_empty());
        assert!(d.sources()[0].discovery().is_empty());
    }
    // `*cpu` is neither an include nor an exclude for rule 10.
    parse(&source(&["interval: 5", "meters: ['*cpu', '!disk*']"])).unwrap();
    parse(&source(&["interval: 5", "meters: ['*', '!cpu*']"])).unwrap();
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let err = PollingDefinition::load(&fixture("error_syntax.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DefinitionError::Syntax { .. }), "{msg}");
    assert!(msg.contains("error_syntax.yaml:"), "{msg}");
    assert!(err.location().is_some(), "{msg}");
    assert!(msg.contains("not valid YAML"), "{msg}");
    // Two documents: Python's safe_load refuses them too.
    let err = parse("sources: []\n---\nsources: []\n").unwrap_err();
    assert!(matches!(err, DefinitionError::Syntax { .. }), "{err}");
    // A key twice in one mapping.
    let err = parse("sources:\n  - name: a\n    name: b\n").unwrap_err();
    assert!(matches!(err, DefinitionError::Syntax { .. }), "{err}");
}

#[test]
fn fixture_errors_point_at_the_offending_line() {
    let err = PollingDefinition::load(&fixture("error_duplicate_name.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err.rule(), Some(Rule::DuplicateName { first: Some(l) }) if l.line == 2),
        "{msg}"
    );
    assert_eq!(err.location().map(|l| l.line), Some(8), "{msg}");
    assert!(
        msg.contains("source \"compute\": duplicate source name (first used at line 2)"),
        "{msg}"
    );

    let err = PollingDefinition::load(&fixture("error_typo_key.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("error_typo_key.yaml:4:5: source \"compute\": unknown key `meter` (did you mean `meters`?)"), "{msg}");

    let err = PollingDefinition::load(&fixture("error_mixed_meters.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("error_mixed_meters.yaml:7:"), "{msg}");
    assert!(
        msg.contains("Both included and excluded meters specified"),
        "{msg}"
    );
}

#[test]
fn ignored_ceilometer_keys_are_warnings() {
    let d = PollingDefinition::load(&fixture("warnings.yaml")).unwrap();
    let w = d.warnings().join("\n");
    assert_eq!(d.warnings().len(), 3, "{w}");
    assert!(w.contains("warnings.yaml:5:5: source \"partitioned\": `group_id_coordination_expression` is ignored"), "{w}");
    assert!(w.contains("`sinks` is ignored"), "{w}");
    assert!(
        w.contains("warnings.yaml:8:1: `sinks` is a pipeline.yaml key"),
        "{w}"
    );
    let d = parse("sources: []\n").unwrap();
    assert!(d.sources().is_empty());
    assert!(d.warnings()[0].contains("nothing will be polled"));
}

#[test]
fn valid_files_load() {
    let d = PollingDefinition::load(&fixture("all_features.yaml")).unwrap();
    assert!(d.warnings().is_empty(), "{:?}", d.warnings());
    let names: Vec<&str> = d.sources().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["fast", "static", "nothing_optional"]);
    let [fast, stat, none] = d.sources() else {
        panic!()
    };
    assert_eq!(fast.interval(), 60);
    assert_eq!(fast.discovery(), ["local_instances"]);
    assert!(fast.support_meter("cpu"));
    assert!(!fast.support_meter("disk.device.read.bytes"));
    assert!(!fast.support_meter("network.incoming.bytes.rate"));
    assert!(fast.support_meter("network.incoming.bytes"));
    assert_eq!(stat.interval(), 600);
    assert_eq!(stat.resources(), ["snmp://10.0.0.1", "42"]);
    assert!(stat.support_meter("memory.usage"));
    assert!(stat.support_meter("disk.x"));
    assert!(stat.support_meter("nisk.y"));
    assert!(!stat.support_meter("disk.xy"));
    assert_eq!(none.interval(), 1200);
    assert!(none.support_meter("vcpu"));

    // Ceilometer's packaged file, the capture's file and longshore's own root file.
    let d = PollingDefinition::load(&fixture("ceilometer_default.yaml")).unwrap();
    assert_eq!(d.sources()[0].interval(), 300);
    assert!(d.sources()[0].support_meter("volume.size"));
    assert!(!d.sources()[0].support_meter("memory.util"));
    let d = PollingDefinition::load(&fixture("ceilometer_capture.yaml")).unwrap();
    assert!(d.sources()[0].support_meter("anything"));
    let root = longshore_tests::workspace_root().join("polling.yaml");
    let d = PollingDefinition::load(&root).unwrap();
    let s = &d.sources()[0];
    assert_eq!((s.name(), s.interval()), ("some_pollsters", 300));
    for m in [
        "power.state",
        "cpu",
        "memory.usage",
        "memory.util",
        "disk.device.write.requests",
        "volume.backup.size",
    ] {
        assert!(s.support_meter(m), "{m}");
    }
    assert_eq!(s.meters().entries().len(), 16);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = PollingDefinition::load(Path::new("/nonexistent/polling.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DefinitionError::NotFound { .. }));
    assert!(
        msg.starts_with("polling definition file /nonexistent/polling.yaml not found"),
        "{msg}"
    );
    assert!(msg.contains("[polling] cfg_file"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let err = find_definition_file(
        "longshore-test-no-such-polling.yaml",
        &[dir.path().to_path_buf()],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains("/etc/ceilometer/longshore-test-no-such-polling.yaml"),
        "{msg}"
    );
    // Found in a configuration directory.
    std::fs::write(dir.path().join("mine.yaml"), "sources: []\n").unwrap();
    let found = find_definition_file("mine.yaml", &[dir.path().to_path_buf()]).unwrap();
    assert_eq!(found, dir.path().join("mine.yaml"));
    // An existing path is used as given.
    let abs = fixture("all_features.yaml");
    assert_eq!(
        find_definition_file(abs.to_str().unwrap(), &[]).unwrap(),
        abs
    );
}

/// Spec §1.4, verified there against Ceilometer's code, through polling.yaml.
#[test]
fn meter_matching_truth_table() {
    let meters = ["cpu", "cpu.delta", "memory.usage", "disk.device.read.bytes"];
    let table: &[(&str, [bool; 4])] = &[
        ("['*']", [true, true, true, true]),
        ("['cpu', 'memory*']", [true, false, true, false]),
        ("['!cpu']", [false, true, true, true]),
        ("['*', '!cpu*']", [false, false, true, true]),
        ("['!*']", [false, false, false, false]),
        ("['*cpu', '!disk*']", [true, false, false, false]),
        ("['[cm]*']", [true, true, true, false]),
    ];
    for (list, want) in table {
        let d = parse(&source(&["interval: 5", &format!("meters: {list}")])).unwrap();
        for (m, w) in meters.iter().zip(want) {
            assert_eq!(d.sources()[0].support_meter(m), *w, "{list} vs {m}");
        }
    }
    // fnmatch details: `?`, negated sets, case-sensitivity.
    let f = MeterFilter::new(&["disk.device.?ead.*", "[!c]pu"]);
    assert!(f.is_supported("disk.device.read.bytes"));
    assert!(f.is_supported("vpu"));
    assert!(!f.is_supported("cpu"));
    assert!(!MeterFilter::new(&["CPU"]).is_supported("cpu"));
}
