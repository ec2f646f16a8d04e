//! The real `longshore` binary on a plugin directory holding good plugins and every
//! kind of broken one: `list` shows what loaded and why the rest did not (exit 0),
//! `check` and `--strict` exit non-zero; configuration errors name their place;
//! secrets are never printed.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_longshore");

/// The shipped entry points plus a namespace of every broken kind.
const BROKEN: &str = r#"
[test.poll.broken]
good = "t:counter"
missing = "nosuch:counter"
text = "text:counter"
empty = "empty:counter"
truncated = "truncated:counter"
system = "system:counter"
old_api = "old:counter"
bad_abi = "badabi:counter"
init_panics = "broken:counter"
no_such_plugin = "t:nonexistent"
wrong_kind = "t:fixed"
ctor_error = "t:ctor_error"
ctor_panic = "t:ctor_panic"

[test.discover.good]
fixed = "t:fixed"
"#;

const EXPECTED: &[(&str, &str, &str)] = &[
    ("good", "loaded", ""),
    ("missing", "failed", "libnosuch.so not found"),
    ("text", "failed", "no ELF header"),
    ("empty", "failed", "the file is empty"),
    ("truncated", "failed", "truncated"),
    ("system", "failed", "not a longshore plugin"),
    (
        "old_api",
        "failed",
        "built against longshore-plugin-api 0.0.1",
    ),
    ("bad_abi", "failed", "layout differs"),
    ("init_panics", "failed", "registration always panics"),
    (
        "no_such_plugin",
        "failed",
        "no plugin named \"nonexistent\"",
    ),
    ("wrong_kind", "failed", "is a discovery"),
    ("ctor_error", "failed", "refuses to be built"),
    ("ctor_panic", "failed", "constructor panicked"),
];

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(with_broken: bool) -> Setup {
        longshore_tests::build_plugins(&[
            "longshore-plugin-synthetic",
            "longshore-plugin-broken",
            "longshore-plugin-bad-abi",
            "longshore-plugin-old-api",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let built = longshore_tests::built_library;
        std::fs::copy(built("test_synthetic"), plugins.join("libt.so")).unwrap();
        let shipped =
            std::fs::read_to_string(longshore_tests::workspace_root().join("entry_points.toml"))
                .expect("the shipped entry_points.toml");
        let entry_points = if with_broken {
            std::fs::write(plugins.join("libtext.so"), "not a library\n").unwrap();
            std::fs::write(plugins.join("libempty.so"), "").unwrap();
            let elf = std::fs::read(built("test_synthetic")).unwrap();
            std::fs::write(plugins.join("libtruncated.so"), &elf[..8192]).unwrap();
            std::fs::copy(system_library(), plugins.join("libsystem.so")).unwrap();
            std::fs::copy(built("test_old_api"), plugins.join("libold.so")).unwrap();
            std::fs::copy(built("test_bad_abi"), plugins.join("libbadabi.so")).unwrap();
            std::fs::copy(built("test_broken"), plugins.join("libbroken.so")).unwrap();
            format!("{shipped}\n{BROKEN}")
        } else {
            "[ceilometer.poll.test]\ncounter = \"t:counter\"\n[ceilometer.discover.test]\nfixed = \"t:fixed\"\n"
                .to_string()
        };
        std::fs::write(dir.path().join("entry_points.toml"), entry_points).unwrap();
        std::fs::write(dir.path().join("polling.yaml"), "sources: []\n").unwrap();
        Setup { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .env_remove("LONGSHORE_CONFIG")
            .env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        // The good-only setup has no compute namespace: poll the test group.
        cmd.args(args)
            .args(["--set", "DEFAULT.polling_namespaces=[\"test\"]"]);
        cmd.output().expect("run longshore")
    }
}

fn system_library() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib64/libz.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("libz.so.1")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn list_shows_loaded_and_every_failure_cause_and_exits_zero() {
    let s = Setup::new(true);
    let out = s.run(&["list"], &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for (name, status, cause) in EXPECTED {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        let shown = if *status == "failed" {
            "FAILED"
        } else {
            status
        };
        assert!(line.trim_start().starts_with(shown), "{line}");
        assert!(
            text.contains(cause),
            "cause of {name} ({cause}) missing:\n{text}"
        );
    }
    // The shipped compute entries are listed too (their library is not in this dir).
    assert!(text.contains("ceilometer.poll.compute (pollster)"));
    assert!(text.contains("memory.util"));
    assert!(text.contains("ceilometer.discover.compute (discovery)"));

    let out = s.run(&["list", "test.poll.broken", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let entries = doc["namespaces"][0]["entry_points"].as_array().unwrap();
    assert_eq!(entries.len(), EXPECTED.len());
    for (entry, (name, status, cause)) in entries.iter().zip(EXPECTED) {
        assert_eq!(entry["name"], *name);
        assert_eq!(entry["status"], *status);
        if *status == "failed" {
            assert!(entry["cause"].as_str().unwrap().contains(cause), "{entry}");
            assert!(entry["class"].is_string(), "{entry}");
            assert!(entry["location"]
                .as_str()
                .unwrap()
                .contains("entry_points.toml:"));
        } else {
            assert!(entry["library"].as_str().unwrap().ends_with("libt.so"));
        }
    }
}

#[test]
fn check_and_strict_exit_non_zero_on_failures() {
    let s = Setup::new(true);
    let out = s.run(&["check", "--strict"], &[]);
    assert!(!out.status.success());
    let text = stdout(&out);
    for (_, status, cause) in EXPECTED {
        if *status == "failed" {
            assert!(text.contains(cause), "{cause} missing:\n{text}");
        }
    }
    assert!(text.contains("problem(s)"), "{text}");
    let out = s.run(&["check"], &[]);
    assert!(!out.status.success(), "check is always strict");
    let out = s.run(&["list", "--strict"], &[]);
    assert!(
        !out.status.success(),
        "list --strict fails on load failures"
    );
}

#[test]
fn check_passes_on_a_good_setup() {
    let s = Setup::new(false);
    let out = s.run(&["check"], &[]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("check: OK (2 plugins loaded"),
        "{}",
        stdout(&out)
    );
    let out = s.run(&["list", "--strict"], &[]);
    assert!(out.status.success());
}

#[test]
fn configuration_errors_name_the_file_line_and_flag() {
    let s = Setup::new(false);
    std::fs::write(
        s.path("longshore.toml"),
        "[polling]\nbatch_size = \"many\"\n",
    )
    .unwrap();
    let out = s.run(&["--config", "longshore.toml", "list"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("longshore.toml:2:1: [polling] batch_size must be an integer, found string"),
        "{}",
        stderr(&out)
    );

    let out = s.run(&["list", "--set", "polling.batch_size=lots"], &[]);
    assert!(
        stderr(&out).contains("command line --set polling.batch_size"),
        "{}",
        stderr(&out)
    );

    // An unknown option in a plugin section: named with its line by check.
    std::fs::write(
        s.path("longshore.toml"),
        "[synthetic]\nresources = 2\nresorces = 3\n",
    )
    .unwrap();
    let out = s.run(&["--config", "longshore.toml", "check"], &[]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("longshore.toml:3:1: unknown option [synthetic] resorces"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn overrides_follow_precedence_and_secrets_are_masked() {
    let s = Setup::new(false);
    std::fs::write(
        s.path("longshore.toml"),
        "[DEFAULT]\nhost = \"file-host\"\n[polling]\nbatch_size = 10\n[publisher]\ntelemetry_secret = \"file-secret\"\n",
    )
    .unwrap();
    let out = s.run(
        &[
            "--config",
            "longshore.toml",
            "config",
            "--host",
            "cli-host",
            "--telemetry-secret",
            "cli-secret",
        ],
        &[
            ("LONGSHORE_POLLING__BATCH_SIZE", "77"),
            ("LONGSHORE_DEFAULT__HOST", "env-host"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("host = \"cli-host\"    # command line --host"),
        "{text}"
    );
    assert!(
        text.contains("batch_size = 77    # environment variable LONGSHORE_POLLING__BATCH_SIZE"),
        "{text}"
    );
    assert!(text.contains("telemetry_secret = ****"), "{text}");
    assert!(
        !text.contains("secret\"") && !stderr(&out).contains("cli-secret"),
        "{text}"
    );
    // Plugin options (declared by the synthetic library) are listed with the host's.
    assert!(text.contains("[synthetic]"), "{text}");

    let out = s.run(&["config", "--defaults"], &[]);
    let text = stdout(&out);
    assert!(
        text.contains("| `[polling]` | `batch_size` | integer | `50` |"),
        "{text}"
    );
    assert!(
        text.contains("| `[publisher]` | `telemetry_secret` | string | `****` |"),
        "{text}"
    );
}

#[test]
fn plugin_dirs_and_entry_points_flags() {
    let s = Setup::new(false);
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(
        s.path("entry_points.toml"),
        elsewhere.path().join("ep.toml"),
    )
    .unwrap();
    let ep = elsewhere.path().join("ep.toml");
    let plugins = s.path("plugins");
    let out = s.run(
        &[
            "list",
            "--entry-points",
            ep.to_str().unwrap(),
            "--plugin-dir",
            "/nonexistent",
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 loaded, 0 skipped, 0 failed"),
        "{}",
        stdout(&out)
    );
}
