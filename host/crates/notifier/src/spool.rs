//! The optional disk spool: every notification is written to `<dir>/<seq>.msg` (temp file
//! then rename, so a crash never leaves a half file under a real name) before `publish()`
//! returns, removed once the broker confirms it (or it is dropped), and replayed in order
//! when a notifier starts on the same directory. Only one notifier may use a directory at a
//! time: it holds an exclusive `flock` on `<dir>/.lock` until it stops.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &str = "longshore-spool/1";

/// A notification read back from the spool.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub seq: u64,
    pub routing_key: Arc<str>,
    pub samples: usize,
    pub body: Arc<Vec<u8>>,
}

pub(crate) struct Spool {
    dir: PathBuf,
    fsync: bool,
    /// Holds the directory's lock until the notifier stops.
    lock: std::sync::Mutex<Option<fs::File>>,
}

impl Spool {
    /// Open (create) the directory and read back what a previous run left, in order.
    /// Unreadable files are renamed `*.corrupt` (kept for inspection) and reported.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<(Spool, Vec<Spooled>, Vec<String>)> {
        fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for ent in fs::read_dir(dir)? {
            let ent = ent?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let path = ent.path();
            if name.ends_with(".tmp") {
                // A write that never completed: publish() had not returned, nothing lost.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".msg")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            match read_entry(&path, seq) {
                Ok(s) => found.push(s),
                Err(e) => {
                    let bad = path.with_extension("corrupt");
                    let _ = fs::rename(&path, &bad);
                    problems.push(format!(
                        "{}: {e} (moved to {})",
                        path.display(),
                        bad.display()
                    ));
                }
            }
        }
        found.sort_by_key(|s| s.seq);
        // Check that the directory is writable now rather than at the first publish.
        let probe = dir.join(".probe.tmp");
        fs::write(&probe, b"")?;
        fs::remove_file(&probe)?;
        Ok((
            Spool {
                dir: dir.to_path_buf(),
                fsync,
                lock: std::sync::Mutex::new(Some(lock)),
            },
            found,
            problems,
        ))
    }

    /// Let another notifier use the directory (this one has stopped).
    pub fn release(&self) {
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.msg"))
    }

    pub fn write(
        &self,
        seq: u64,
        routing_key: &str,
        samples: usize,
        body: &[u8],
    ) -> io::Result<()> {
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        let res = (|| {
            writeln!(f, "{MAGIC} {samples} {} {routing_key}", body.len())?;
            f.write_all(body)?;
            if self.fsync {
                f.sync_data()?;
            }
            fs::rename(&tmp, self.path(seq))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    pub fn remove(&self, seq: u64) -> io::Result<()> {
        match fs::remove_file(self.path(seq)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
}

/// Take the directory's exclusive lock, or fail at once if another process (or notifier)
/// holds it: two notifiers replaying and deleting the same files would send duplicates.
fn lock_dir(dir: &Path) -> io::Result<fs::File> {
    use std::os::fd::AsRawFd;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "already in use by another notifier (lock on .lock is held)",
            ));
        }
        return Err(e);
    }
    Ok(f)
}

fn read_entry(path: &Path, seq: u64) -> Result<Spooled, String> {
    let data = fs::read(path).map_err(|e| e.to_string())?;
    let nl = data
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&data[..nl]).map_err(|_| "header is not UTF-8")?;
    let mut parts = header.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(format!("not a {MAGIC} file"));
    }
    let samples: usize = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad sample count")?;
    let len: usize = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad body length")?;
    let routing_key = parts
        .next()
        .filter(|r| !r.is_empty())
        .ok_or("no routing key")?;
    let body = &data[nl + 1..];
    if body.len() != len {
        return Err(format!("truncated body ({} of {len} bytes)", body.len()));
    }
    Ok(Spooled {
        seq,
        routing_key: Arc::from(routing_key),
        samples,
        body: Arc::new(body.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let (s, found, problems) = Spool::open(dir.path(), false).unwrap();
        assert!(found.is_empty() && problems.is_empty());
        s.write(7, "notifications.sample", 3, b"{\"a\": 1}\n")
            .unwrap();
        s.write(2, "other.sample", 1, b"x").unwrap();
        fs::write(dir.path().join("00000000000000000009.msg"), b"garbage").unwrap();
        fs::write(dir.path().join("00000000000000000010.tmp"), b"half").unwrap();
        drop(s);
        let (s, found, problems) = Spool::open(dir.path(), true).unwrap();
        assert_eq!(found.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![2, 7]);
        assert_eq!(&*found[1].routing_key, "notifications.sample");
        assert_eq!(found[1].samples, 3);
        assert_eq!(&*found[1].body, b"{\"a\": 1}\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(dir.path().join("00000000000000000009.corrupt").exists());
        assert!(!dir.path().join("00000000000000000010.tmp").exists());
        s.remove(7).unwrap();
        s.remove(7).unwrap();
        let busy = Spool::open(dir.path(), false)
            .err()
            .expect("directory is locked");
        assert!(busy.to_string().contains("already in use"), "{busy}");
        drop(s);
        let (_, found, _) = Spool::open(dir.path(), false).unwrap();
        assert_eq!(found.len(), 1);
    }
}
