//! The process-wide library cache: each plugin library FILE is opened once (keyed by
//! its canonical path) however many entry points and managers name it, and is never
//! unloaded. A library that failed to load keeps failing the same way without being
//! opened again. Files are checked to be complete ELF shared objects before the
//! loader sees them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use longshore_plugin_api::host::{Library, LoadError};

type Slot = Result<Arc<Library>, LoadError>;

/// Canonical path → outcome of the one open.
type Cache = HashMap<PathBuf, Slot>;

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Open the library at `path` once per process; later calls (with any path naming the
/// same file) return the same `Library`, or the same error.
///
/// Callers check the file's security first ([`crate::security::check_plugin_file`]).
pub fn open(path: &Path) -> Result<Arc<Library>, LoadError> {
    let key = path.canonicalize().map_err(|e| LoadError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Held across the open so that two threads naming one file open it once.
    let mut cache = cache();
    if let Some(slot) = cache.get(&key) {
        return slot.clone();
    }
    log::debug!("opening plugin library {}", key.display());
    // A truncated file would be mapped past its end and crash the process on access.
    let slot = match crate::elf::check_shared_library(&key) {
        Ok(()) => Library::open(&key).map(Arc::new),
        Err(reason) => Err(LoadError::Open {
            path: key.clone(),
            reason,
        }),
    };
    cache.insert(key, slot.clone());
    slot
}

/// Whether the file at `path` has been opened by this process (successfully or not).
pub fn is_opened(path: &Path) -> bool {
    path.canonicalize()
        .map(|key| cache().contains_key(&key))
        .unwrap_or(false)
}

/// Every library loaded successfully so far (e.g. to collect their option specs).
pub fn loaded() -> Vec<Arc<Library>> {
    let mut libs: Vec<Arc<Library>> = cache().values().filter_map(|s| s.clone().ok()).collect();
    libs.sort_by(|a, b| a.path().cmp(b.path()));
    libs
}
