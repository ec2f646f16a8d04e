//! The ownership and permission check done before a plugin file is opened: whoever
//! can write a plugin file, or a directory above it, can run code inside the agent.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The override operators use to load a plugin that fails the check anyway.
pub const OVERRIDE_HINT: &str =
    "--allow-insecure-plugins (or [entry_points] allow_insecure_plugins = true)";

/// A plugin file that must not be loaded: it, or a directory above it, is writable by
/// group/others, or owned by a user other than root and the user running longshore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to load {path}: {offender} {reason}, so another user could replace the code longshore runs; fix it (e.g. `chmod go-w {offender}` or `chown`), or pass {OVERRIDE_HINT} to load it anyway")]
pub struct InsecurePlugin {
    /// The plugin file.
    pub path: PathBuf,
    /// The file or directory that fails the check.
    pub offender: PathBuf,
    pub reason: String,
}

/// Check `path` (resolved through symlinks) and every directory above it.
///
/// A directory writable by others is accepted when it is sticky (like `/tmp`): others
/// can create files there but not replace ours.
pub fn check_plugin_file(path: &Path) -> Result<(), InsecurePlugin> {
    let canonical = match path.canonicalize() {
        Ok(p) => p,
        // Opening will fail with a clearer error; nothing to protect yet.
        Err(_) => return Ok(()),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let refuse = |offender: &Path, reason: String| InsecurePlugin {
        path: path.to_path_buf(),
        offender: offender.to_path_buf(),
        reason,
    };
    let mut current: Option<&Path> = Some(&canonical);
    let mut is_file = true;
    while let Some(p) = current {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(_) => break,
        };
        let mode = meta.mode();
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && (is_file || !sticky) {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            };
            return Err(refuse(
                p,
                format!("is writable by {who} (mode {:04o})", mode & 0o7777),
            ));
        }
        let owner = meta.uid();
        if owner != 0 && owner != me {
            return Err(refuse(
                p,
                format!("is owned by uid {owner}, neither root nor the current user (uid {me})"),
            ));
        }
        current = p.parent();
        is_file = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn private_file_in_private_dir_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("libx.so");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o755);
        check_plugin_file(&f).unwrap();
    }

    #[test]
    fn group_or_world_writable_file_is_refused_with_the_override_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("libx.so");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o666);
        let err = check_plugin_file(&f).unwrap_err();
        assert_eq!(err.offender, f.canonicalize().unwrap());
        let text = err.to_string();
        assert!(
            text.contains("writable by group and others (mode 0666)"),
            "{text}"
        );
        assert!(text.contains("--allow-insecure-plugins"), "{text}");
    }

    #[test]
    fn writable_directory_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("plugins");
        std::fs::create_dir(&sub).unwrap();
        let f = sub.join("libx.so");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
        chmod(&sub, 0o775);
        let err = check_plugin_file(&f).unwrap_err();
        assert_eq!(err.offender, sub.canonicalize().unwrap());
        assert!(err.reason.contains("its group"), "{err}");
        chmod(&sub, 0o1777);
        check_plugin_file(&f).unwrap();
    }

    #[test]
    fn symlinks_are_checked_at_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("real.so");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o646);
        let link = dir.path().join("libx.so");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let err = check_plugin_file(&link).unwrap_err();
        assert_eq!(err.path, link);
        assert_eq!(err.offender, f.canonicalize().unwrap());
    }

    #[test]
    fn file_owned_by_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("libx.so");
        std::fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let err = check_plugin_file(&f).unwrap_err();
        assert!(err.reason.contains("owned by uid 65534"), "{err}");
    }
}
