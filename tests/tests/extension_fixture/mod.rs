//! Shared fixtures of the extension tests: a fresh plugin directory per test holding
//! real libraries (good and broken of every kind), and an entry_points.toml next to it.
//! Every test gets its own copies, so the process-wide library cache never mixes tests.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use longshore_extension::Registry;

/// The plugin crates the extension tests load.
pub const PLUGIN_CRATES: &[&str] = &[
    "longshore-plugin-synthetic",
    "longshore-plugin-broken",
    "longshore-plugin-bad-abi",
    "longshore-plugin-old-api",
];

pub fn build() {
    longshore_tests::build_plugins(PLUGIN_CRATES);
}

/// A temp directory with `entry_points.toml` and `plugins/`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// `plugins/` holds `libt.so` (the synthetic test plugins) and nothing else.
    pub fn new() -> Fixture {
        build();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let f = Fixture { dir };
        f.add_built("test_synthetic", "libt.so");
        f
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn lib(&self, file: &str) -> PathBuf {
        self.plugins().join(file)
    }

    /// Copy the built `lib<name>.so` into plugins/ as `file`.
    pub fn add_built(&self, name: &str, file: &str) -> PathBuf {
        let to = self.lib(file);
        std::fs::copy(longshore_tests::built_library(name), &to)
            .unwrap_or_else(|e| panic!("copy lib{name}.so: {e}"));
        to
    }

    pub fn add_file(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let to = self.lib(file);
        std::fs::File::create(&to)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        to
    }

    /// Every kind of broken library, under the file names `broken_entry_points` uses.
    pub fn add_every_broken_kind(&self) {
        self.add_file("libtext.so", b"this is not a shared library\n");
        self.add_file("libempty.so", b"");
        let elf = std::fs::read(longshore_tests::built_library("test_synthetic")).unwrap();
        self.add_file("libtruncated.so", &elf[..4096.min(elf.len())]);
        std::fs::copy(system_library(), self.lib("libsystem.so")).unwrap();
        self.add_built("test_old_api", "libold.so");
        self.add_built("test_bad_abi", "libbadabi.so");
        self.add_built("test_broken", "libbroken.so");
    }

    /// Write entry_points.toml and parse it.
    pub fn registry(&self, entry_points: &str) -> Registry {
        let path = self.dir.path().join("entry_points.toml");
        std::fs::write(&path, entry_points).unwrap();
        Registry::load(&path).expect("valid entry_points.toml")
    }
}

/// A real shared library that is not a longshore plugin.
pub fn system_library() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib64/libz.so.1",
        "/usr/lib/libz.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("libz.so.1 in a standard library directory")
}

/// Entry points for each kind of load failure, plus two good ones (`good`, `good2`).
/// Expected failure class per name in `BROKEN_CLASSES`.
pub const BROKEN_ENTRY_POINTS: &str = r#"
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
good2 = "t:panic"
"#;

pub const BROKEN_CLASSES: &[(&str, &str)] = &[
    ("missing", "library-not-found"),
    ("text", "open"),
    ("empty", "open"),
    ("truncated", "open"),
    ("system", "not-a-plugin"),
    ("old_api", "incompatible-version"),
    ("bad_abi", "layout-mismatch"),
    ("init_panics", "init-failed"),
    ("no_such_plugin", "no-such-plugin"),
    ("wrong_kind", "wrong-kind"),
    ("ctor_error", "constructor-failed"),
    ("ctor_panic", "constructor-panicked"),
];

/// Whether `path` is mapped into this process (/proc/self/maps).
pub fn is_mapped(path: &Path) -> bool {
    let canonical = path.canonicalize().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .any(|l| l.ends_with(canonical.to_str().unwrap()))
}
