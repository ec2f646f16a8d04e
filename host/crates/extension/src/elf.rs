//! A structural check of a plugin file before it is handed to the dynamic loader.
//! `dlopen` maps a library's segments without checking that the file holds them: a
//! truncated `.so` (an interrupted copy) is mapped past its end and the first access
//! kills the whole process with SIGBUS. Checking the ELF headers against the file
//! size turns that into an ordinary load error.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;

/// The ELF machine of this build, if known.
const fn host_machine() -> Option<u16> {
    if cfg!(target_arch = "x86_64") {
        Some(62)
    } else if cfg!(target_arch = "aarch64") {
        Some(183)
    } else if cfg!(target_arch = "riscv64") {
        Some(243)
    } else if cfg!(target_arch = "powerpc64") {
        Some(21)
    } else if cfg!(target_arch = "s390x") {
        Some(22)
    } else {
        None
    }
}

/// Check that `path` is a complete ELF shared object for this machine. The error is
/// a short reason, e.g. "the file is empty" or "truncated: …".
pub fn check_shared_library(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len == 0 {
        return Err("not a shared library: the file is empty".to_string());
    }
    let mut header = [0u8; 64];
    let n = read_up_to(&mut file, &mut header).map_err(|e| e.to_string())?;
    if n < 4 || header[..4] != *b"\x7fELF" {
        return Err("not a shared library: no ELF header (is it a text file?)".to_string());
    }
    // Deeper checks only for the 64-bit little-endian layout of the platforms we build
    // for; anything else is left to the loader.
    if !(cfg!(target_pointer_width = "64") && cfg!(target_endian = "little")) {
        return Ok(());
    }
    if n < 64 {
        return Err(format!(
            "truncated: {len} bytes, shorter than an ELF header"
        ));
    }
    if header[4] != 2 || header[5] != 1 {
        return Err("built for another platform (not a 64-bit little-endian ELF file)".to_string());
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at =
        |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u64_at =
        |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    if u16_at(&header, 16) != ET_DYN {
        return Err(
            "not a shared library (an ELF file of another type, e.g. an executable or object file)"
                .to_string(),
        );
    }
    let machine = u16_at(&header, 18);
    if let Some(host) = host_machine() {
        if machine != host {
            return Err(format!(
                "built for another architecture (ELF machine {machine}, this host is {host})"
            ));
        }
    }
    let phoff = u64_at(&header, 32);
    let shoff = u64_at(&header, 40);
    let phentsize = u64::from(u16_at(&header, 54));
    let phnum = u64::from(u16_at(&header, 56));
    let shentsize = u64::from(u16_at(&header, 58));
    let shnum = u64::from(u16_at(&header, 60));
    let truncated = |what: &str, end: u64| {
        Err(format!(
            "truncated: the {what} ends at byte {end} but the file has {len} bytes (an interrupted copy?)"
        ))
    };
    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if phentsize < 56 || ph_end > len {
        return truncated("program header table", ph_end);
    }
    if shoff != 0 {
        let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
        if sh_end > len {
            return truncated("section header table", sh_end);
        }
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    file.read_exact_at(&mut ph, phoff)
        .map_err(|e| e.to_string())?;
    for entry in ph.chunks_exact(phentsize as usize) {
        let kind = u32_at(entry, 0);
        if kind != PT_LOAD && kind != PT_DYNAMIC {
            continue;
        }
        let end = u64_at(entry, 8).saturating_add(u64_at(entry, 32));
        if end > len {
            return truncated("a loadable segment", end);
        }
    }
    Ok(())
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("libx.so");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    fn system_library() -> Option<std::path::PathBuf> {
        [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/lib64/libz.so.1",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
    }

    #[test]
    fn empty_text_and_truncated_files_are_refused() {
        let (_d, p) = write(b"");
        assert!(check_shared_library(&p).unwrap_err().contains("empty"));
        let (_d, p) = write(b"hello, I am text\n");
        assert!(check_shared_library(&p)
            .unwrap_err()
            .contains("no ELF header"));
        let (_d, p) = write(b"\x7fELF\x02\x01\x01");
        assert!(check_shared_library(&p).unwrap_err().contains("truncated"));
        if let Some(lib) = system_library() {
            let bytes = std::fs::read(&lib).unwrap();
            check_shared_library(&lib).unwrap();
            for cut in [64, 4096, bytes.len() / 2, bytes.len() - 1] {
                let (_d, p) = write(&bytes[..cut]);
                let err = check_shared_library(&p).unwrap_err();
                assert!(err.contains("truncated"), "cut at {cut}: {err}");
            }
        }
    }
}
