//! A thin safe layer over the libvirt C API (through `virt::sys`) for exactly the calls
//! the inspector makes, with libvirt errors as values that can be classified
//! (disconnected, domain gone, unsupported).
//!
//! Own wrappers rather than `virt`'s safe types: virt 0.5 panics in `Drop` when a close
//! fails, ignores `virDomainGetBlockInfo` failures (returning uninitialised memory) and
//! leaks the records of `virConnectGetAllDomainStats`.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::fmt;
use std::ptr;
use std::sync::OnceLock;

use virt::sys;

/// A libvirt error, copied out of libvirt's thread-local last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtError {
    pub code: i32,
    pub domain: i32,
    pub message: String,
}

impl LibvirtError {
    fn last() -> LibvirtError {
        // SAFETY: virGetLastError returns the calling thread's error object (or null);
        // we copy what we need before resetting it.
        unsafe {
            let e = sys::virGetLastError();
            let err = if e.is_null() {
                LibvirtError {
                    code: sys::VIR_ERR_INTERNAL_ERROR as i32,
                    domain: 0,
                    message: "unknown libvirt error".to_string(),
                }
            } else {
                let message = if (*e).message.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr((*e).message).to_string_lossy().into_owned()
                };
                LibvirtError {
                    code: (*e).code,
                    domain: (*e).domain,
                    message,
                }
            };
            sys::virResetLastError();
            err
        }
    }

    fn other(message: impl Into<String>) -> LibvirtError {
        LibvirtError {
            code: sys::VIR_ERR_INTERNAL_ERROR as i32,
            domain: 0,
            message: message.into(),
        }
    }

    /// The connection is gone (Ceilometer's `is_disconnection_exception`, plus the
    /// codes libvirt uses for a closed connection object).
    pub fn is_disconnect(&self) -> bool {
        let code = self.code as u32;
        let domain = self.domain as u32;
        ((code == sys::VIR_ERR_SYSTEM_ERROR || code == sys::VIR_ERR_INTERNAL_ERROR)
            && (domain == sys::VIR_FROM_REMOTE || domain == sys::VIR_FROM_RPC))
            || (domain == sys::VIR_FROM_RPC && self.code == libc::EPIPE)
            || code == sys::VIR_ERR_NO_CONNECT
            || code == sys::VIR_ERR_INVALID_CONN
    }

    /// The domain does not exist (any more).
    pub fn is_no_domain(&self) -> bool {
        let code = self.code as u32;
        code == sys::VIR_ERR_NO_DOMAIN || code == sys::VIR_ERR_INVALID_DOMAIN
    }

    /// The driver does not implement the call (or this flag/argument of it).
    pub fn is_unsupported(&self) -> bool {
        let code = self.code as u32;
        code == sys::VIR_ERR_NO_SUPPORT
            || code == sys::VIR_ERR_OPERATION_UNSUPPORTED
            || code == sys::VIR_ERR_ARGUMENT_UNSUPPORTED
    }

    /// The call needs a running domain and this one is not (it stopped mid-cycle).
    pub fn is_not_running(&self) -> bool {
        self.code as u32 == sys::VIR_ERR_OPERATION_INVALID
    }
}

impl fmt::Display for LibvirtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [libvirt error code {}, domain {}]",
            self.message, self.code, self.domain
        )
    }
}

impl std::error::Error for LibvirtError {}

pub type Result<T> = std::result::Result<T, LibvirtError>;

extern "C" fn silent_error_handler(_data: *mut c_void, _error: sys::virErrorPtr) {}

/// libvirt prints every error to stderr unless a handler is installed; errors are
/// returned as values here and logged by the caller.
///
/// With `event_loop` (on the first call: libvirt wants it before any connection opens),
/// it also registers libvirt's default event loop and runs it on a thread of its own,
/// which keepalive needs. Only then: with an event loop, every RPC to a daemon also
/// wakes that thread (measured: +55 % agent CPU for a remote cycle at N=1000).
/// Returns whether the event loop runs.
fn init_libvirt(event_loop: bool, uri: &str) -> bool {
    static INIT: OnceLock<bool> = OnceLock::new();
    *INIT.get_or_init(|| {
        // Only for a URI that names its transport, and not libssh2's: an alias or an
        // empty URI (libvirt's default) could resolve to one that uses it.
        if uri.contains("://") && !uri.contains("libssh2") {
            spare_openssl_initialisation();
        }
        // SAFETY: plain library initialisation calls with valid arguments.
        unsafe {
            sys::virInitialize();
            sys::virSetErrorFunc(ptr::null_mut(), Some(silent_error_handler));
        }
        event_loop && start_event_loop()
    })
}

/// `virInitialize` initialises libcurl for libvirt's ESX and Hyper-V drivers, libcurl
/// initialises libssh2, and libssh2 has OpenSSL load its configuration and register
/// every algorithm: 1.3 MiB more resident library pages, and start-up time, in an agent
/// that talks to a local libvirtd. libssh2 skips that step for good when the first
/// `libssh2_init` asks it to (`LIBSSH2_INIT_NO_CRYPTO`), so make that first call before
/// libvirt does. Only libvirt's libssh2 transport hashes or encrypts through libssh2
/// (ESX and Hyper-V speak HTTPS through libcurl's own TLS), and callers skip this for
/// it: a libssh2 built on a library that must be initialised (libgcrypt, OpenSSL 1.0)
/// is then never used. A libvirt built without libcurl or libssh2 has nothing loaded
/// here, and nothing is done.
fn spare_openssl_initialisation() {
    const LIBSSH2_INIT_NO_CRYPTO: c_int = 0x0001;
    // SAFETY: RTLD_NOLOAD only finds a library already loaded (libvirt's dependency),
    // which is never unloaded while libvirt is; libssh2_init(int) -> int is its
    // documented signature. libssh2_init is not thread-safe: another plugin initialising
    // libvirt on another thread at this moment (memory.util's `virt` connection) could
    // race on its init counter, which at worst loses this saving (OpenSSL gets
    // initialised as before).
    unsafe {
        let lib = libc::dlopen(c"libssh2.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if lib.is_null() {
            return;
        }
        let init = libc::dlsym(lib, c"libssh2_init".as_ptr());
        if !init.is_null() {
            let init: unsafe extern "C" fn(c_int) -> c_int = std::mem::transmute(init);
            init(LIBSSH2_INIT_NO_CRYPTO);
        }
        // Drop the reference this dlopen took; libvirt's dependency keeps it loaded.
        libc::dlclose(lib);
    }
}

fn start_event_loop() -> bool {
    // SAFETY: called once, before any connection is opened.
    if unsafe { sys::virEventRegisterDefaultImpl() } < 0 {
        log::warn!(
            "cannot register libvirt's event loop ({}): no keepalive on libvirt connections",
            LibvirtError::last()
        );
        return false;
    }
    let spawned = std::thread::Builder::new()
        .name("libvirt-events".into())
        .spawn(|| loop {
            // SAFETY: the default implementation is registered above.
            if unsafe { sys::virEventRunDefaultImpl() } < 0 {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        log::warn!(
            "cannot start libvirt's event loop thread ({e}): no keepalive on libvirt connections"
        );
        return false;
    }
    true
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| LibvirtError::other(format!("{s:?} contains a NUL byte")))
}

/// Take ownership of a malloc'd C string returned by libvirt.
///
/// # Safety
/// `p` must be null or a NUL-terminated string allocated with malloc.
unsafe fn owned_string(p: *mut c_char) -> Result<String> {
    if p.is_null() {
        return Err(LibvirtError::last());
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    libc::free(p.cast());
    Ok(s)
}

/// A read-only libvirt connection. Thread-safe (libvirt locks internally).
pub struct Conn {
    ptr: sys::virConnectPtr,
}

// SAFETY: libvirt connection objects are thread-safe since libvirt 0.6.
unsafe impl Send for Conn {}
unsafe impl Sync for Conn {}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: we own one reference; a failing close leaves nothing to do.
        unsafe {
            sys::virConnectClose(self.ptr);
        }
    }
}

impl Conn {
    /// `virConnectOpenReadOnly(uri)`.
    /// Open `uri` read-only. `event_loop`: see [`init_libvirt`] (only the first
    /// connection of the process decides).
    pub fn open_read_only(uri: &str, event_loop: bool) -> Result<Conn> {
        init_libvirt(event_loop, uri);
        let c_uri = cstring(uri)?;
        // SAFETY: valid C string; a null result means failure with the error set.
        let ptr = unsafe { sys::virConnectOpenReadOnly(c_uri.as_ptr()) };
        if ptr.is_null() {
            Err(LibvirtError::last())
        } else {
            Ok(Conn { ptr })
        }
    }

    /// `virConnectSetKeepAlive`: true when keepalive runs; false when the other side
    /// does not support it; an error for drivers without it (the in-process ones).
    pub fn set_keep_alive(&self, interval: i32, count: u32) -> Result<bool> {
        // SAFETY: valid connection pointer.
        match unsafe { sys::virConnectSetKeepAlive(self.ptr, interval as c_int, count as c_uint) } {
            0 => Ok(true),
            1 => Ok(false),
            _ => Err(LibvirtError::last()),
        }
    }

    /// `virConnectIsAlive`: false when the connection is closed or broken.
    pub fn is_alive(&self) -> bool {
        // SAFETY: valid connection pointer.
        unsafe { sys::virConnectIsAlive(self.ptr) == 1 }
    }

    /// `virConnectGetAllDomainStats(stats, flags 0)`: every domain, active or not, with
    /// the requested stats groups (0 = every group the driver supports).
    pub fn all_domain_stats(&self, stats: u32) -> Result<Vec<StatsRecord>> {
        let mut records: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
        // SAFETY: out-pointer to a record list libvirt allocates; freed below.
        let n =
            unsafe { sys::virConnectGetAllDomainStats(self.ptr, stats as c_uint, &mut records, 0) };
        if n < 0 {
            return Err(LibvirtError::last());
        }
        let mut out = Vec::with_capacity(n as usize);
        // SAFETY: libvirt returned `n` valid records; each record's domain gets an
        // extra reference so it outlives the list, and the params are only read.
        unsafe {
            for i in 0..n as usize {
                let rec = *records.add(i);
                if rec.is_null() {
                    continue;
                }
                let dom = (*rec).dom;
                if sys::virDomainRef(dom) < 0 {
                    continue;
                }
                let params = if (*rec).params.is_null() || (*rec).nparams <= 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts((*rec).params, (*rec).nparams as usize)
                };
                out.push(StatsRecord {
                    dom: Dom { ptr: dom },
                    stats: DomStats::parse(params),
                });
            }
            if !records.is_null() {
                sys::virDomainStatsRecordListFree(records);
            }
        }
        Ok(out)
    }

    /// `virConnectListAllDomains(flags 0)`: active and inactive domains.
    pub fn list_all_domains(&self) -> Result<Vec<Dom>> {
        let mut doms: *mut sys::virDomainPtr = ptr::null_mut();
        // SAFETY: out-pointer to an array libvirt allocates; each element carries one
        // reference we take over, the array itself is freed here.
        unsafe {
            let n = sys::virConnectListAllDomains(self.ptr, &mut doms, 0);
            if n < 0 {
                return Err(LibvirtError::last());
            }
            let out = (0..n as usize).map(|i| Dom { ptr: *doms.add(i) }).collect();
            if !doms.is_null() {
                libc::free(doms.cast());
            }
            Ok(out)
        }
    }
}

/// One domain of a bulk stats call.
pub struct StatsRecord {
    pub dom: Dom,
    pub stats: DomStats,
}

/// `virDomainGetInfo`.
#[derive(Debug, Clone, Copy)]
pub struct DomInfo {
    /// KiB.
    pub max_mem: u64,
    pub nr_virt_cpu: u32,
    /// ns.
    pub cpu_time: u64,
}

/// `virDomainMemoryStats` (KiB), the keys Ceilometer reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemStats {
    pub actual: Option<u64>,
    pub available: Option<u64>,
    pub usable: Option<u64>,
    pub unused: Option<u64>,
    pub rss: Option<u64>,
    pub swap_in: Option<u64>,
    pub swap_out: Option<u64>,
}

/// `virDomainBlockStats`: (rd_req, rd_bytes, wr_req, wr_bytes, errs); -1 = unsupported.
#[derive(Debug, Clone, Copy)]
pub struct BlockStats {
    pub rd_req: i64,
    pub rd_bytes: i64,
    pub wr_req: i64,
    pub wr_bytes: i64,
}

/// `virDomainGetBlockInfo`, bytes.
#[derive(Debug, Clone, Copy)]
pub struct BlockInfo {
    pub capacity: u64,
    pub allocation: u64,
    pub physical: u64,
}

/// `virDomainInterfaceStats`; -1 = unsupported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IfStats {
    pub rx_bytes: i64,
    pub rx_packets: i64,
    pub rx_errs: i64,
    pub rx_drop: i64,
    pub tx_bytes: i64,
    pub tx_packets: i64,
    pub tx_errs: i64,
    pub tx_drop: i64,
}

/// A domain reference.
pub struct Dom {
    ptr: sys::virDomainPtr,
}

// SAFETY: libvirt domain objects are reference counted and thread-safe.
unsafe impl Send for Dom {}
unsafe impl Sync for Dom {}

impl Drop for Dom {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe {
            sys::virDomainFree(self.ptr);
        }
    }
}

impl Clone for Dom {
    fn clone(&self) -> Dom {
        // SAFETY: valid domain pointer; the new reference is owned by the clone.
        unsafe {
            sys::virDomainRef(self.ptr);
        }
        Dom { ptr: self.ptr }
    }
}

impl Dom {
    /// The UUID string (no hypervisor round trip: the object carries it).
    pub fn uuid_string(&self) -> Result<String> {
        let mut buf = [0 as c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
        // SAFETY: the buffer has the documented size.
        let rc = unsafe { sys::virDomainGetUUIDString(self.ptr, buf.as_mut_ptr()) };
        if rc < 0 {
            return Err(LibvirtError::last());
        }
        // SAFETY: libvirt NUL-terminated the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// `virDomainGetState`: the state int.
    pub fn state(&self) -> Result<i32> {
        let mut state: c_int = 0;
        let mut reason: c_int = 0;
        // SAFETY: valid out-pointers.
        let rc = unsafe { sys::virDomainGetState(self.ptr, &mut state, &mut reason, 0) };
        if rc < 0 {
            Err(LibvirtError::last())
        } else {
            Ok(state)
        }
    }

    pub fn info(&self) -> Result<DomInfo> {
        let mut info = std::mem::MaybeUninit::<sys::virDomainInfo>::zeroed();
        // SAFETY: valid out-pointer; read only on success.
        unsafe {
            if sys::virDomainGetInfo(self.ptr, info.as_mut_ptr()) < 0 {
                return Err(LibvirtError::last());
            }
            let info = info.assume_init();
            // c_ulong: 64 bits here, 32 on 32-bit targets.
            #[allow(clippy::unnecessary_cast)]
            let max_mem = info.maxMem as u64;
            Ok(DomInfo {
                max_mem,
                nr_virt_cpu: info.nrVirtCpu as u32,
                cpu_time: info.cpuTime,
            })
        }
    }

    /// `virDomainGetXMLDesc(flags 0)`.
    pub fn xml_desc(&self) -> Result<String> {
        // SAFETY: returns a malloc'd string or null.
        unsafe { owned_string(sys::virDomainGetXMLDesc(self.ptr, 0)) }
    }

    pub fn memory_stats(&self) -> Result<MemStats> {
        let mut stats = [sys::virDomainMemoryStatStruct { tag: 0, val: 0 };
            sys::VIR_DOMAIN_MEMORY_STAT_NR as usize];
        // SAFETY: the array holds VIR_DOMAIN_MEMORY_STAT_NR entries.
        let n = unsafe {
            sys::virDomainMemoryStats(
                self.ptr,
                stats.as_mut_ptr(),
                sys::VIR_DOMAIN_MEMORY_STAT_NR,
                0,
            )
        };
        if n < 0 {
            return Err(LibvirtError::last());
        }
        let mut out = MemStats::default();
        for s in stats.iter().take(n as usize) {
            let v = Some(s.val);
            match s.tag as u32 {
                sys::VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON => out.actual = v,
                sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE => out.available = v,
                sys::VIR_DOMAIN_MEMORY_STAT_USABLE => out.usable = v,
                sys::VIR_DOMAIN_MEMORY_STAT_UNUSED => out.unused = v,
                sys::VIR_DOMAIN_MEMORY_STAT_RSS => out.rss = v,
                sys::VIR_DOMAIN_MEMORY_STAT_SWAP_IN => out.swap_in = v,
                sys::VIR_DOMAIN_MEMORY_STAT_SWAP_OUT => out.swap_out = v,
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn block_stats(&self, dev: &str) -> Result<BlockStats> {
        let c_dev = cstring(dev)?;
        let mut s = std::mem::MaybeUninit::<sys::virDomainBlockStatsStruct>::zeroed();
        // SAFETY: valid out-pointer of the size passed.
        unsafe {
            if sys::virDomainBlockStats(
                self.ptr,
                c_dev.as_ptr(),
                s.as_mut_ptr(),
                std::mem::size_of::<sys::virDomainBlockStatsStruct>(),
            ) < 0
            {
                return Err(LibvirtError::last());
            }
            let s = s.assume_init();
            Ok(BlockStats {
                rd_req: s.rd_req,
                rd_bytes: s.rd_bytes,
                wr_req: s.wr_req,
                wr_bytes: s.wr_bytes,
            })
        }
    }

    /// `virDomainBlockStatsFlags(dev, 0)`: (rd_total_times, wr_total_times) in ns.
    pub fn block_stats_flags(&self, dev: &str) -> Result<(Option<u64>, Option<u64>)> {
        let c_dev = cstring(dev)?;
        let mut n: c_int = 0;
        // SAFETY: first call with nparams 0 asks for the number of parameters.
        unsafe {
            if sys::virDomainBlockStatsFlags(self.ptr, c_dev.as_ptr(), ptr::null_mut(), &mut n, 0)
                < 0
            {
                return Err(LibvirtError::last());
            }
        }
        if n <= 0 {
            return Ok((None, None));
        }
        // SAFETY: a zeroed typed parameter is a valid (empty) value.
        let mut params: Vec<sys::virTypedParameter> =
            vec![unsafe { std::mem::zeroed() }; n as usize];
        // SAFETY: `params` holds `n` entries; strings libvirt puts in are freed by
        // virTypedParamsClear.
        unsafe {
            if sys::virDomainBlockStatsFlags(
                self.ptr,
                c_dev.as_ptr(),
                params.as_mut_ptr(),
                &mut n,
                0,
            ) < 0
            {
                return Err(LibvirtError::last());
            }
            let used = &params[..(n.max(0) as usize).min(params.len())];
            let mut rd = None;
            let mut wr = None;
            for p in used {
                match field_name(p) {
                    b"rd_total_times" => rd = param_u64(p),
                    b"wr_total_times" => wr = param_u64(p),
                    _ => {}
                }
            }
            sys::virTypedParamsClear(params.as_mut_ptr(), n);
            Ok((rd, wr))
        }
    }

    pub fn block_info(&self, dev: &str) -> Result<BlockInfo> {
        let c_dev = cstring(dev)?;
        let mut s = std::mem::MaybeUninit::<sys::virDomainBlockInfo>::zeroed();
        // SAFETY: valid out-pointer; read only on success.
        unsafe {
            if sys::virDomainGetBlockInfo(self.ptr, c_dev.as_ptr(), s.as_mut_ptr(), 0) < 0 {
                return Err(LibvirtError::last());
            }
            let s = s.assume_init();
            Ok(BlockInfo {
                capacity: s.capacity,
                allocation: s.allocation,
                physical: s.physical,
            })
        }
    }

    pub fn interface_stats(&self, dev: &str) -> Result<IfStats> {
        let c_dev = cstring(dev)?;
        let mut s = std::mem::MaybeUninit::<sys::virDomainInterfaceStatsStruct>::zeroed();
        // SAFETY: valid out-pointer of the size passed.
        unsafe {
            if sys::virDomainInterfaceStats(
                self.ptr,
                c_dev.as_ptr(),
                s.as_mut_ptr(),
                std::mem::size_of::<sys::virDomainInterfaceStatsStruct>(),
            ) < 0
            {
                return Err(LibvirtError::last());
            }
            let s = s.assume_init();
            Ok(IfStats {
                rx_bytes: s.rx_bytes,
                rx_packets: s.rx_packets,
                rx_errs: s.rx_errs,
                rx_drop: s.rx_drop,
                tx_bytes: s.tx_bytes,
                tx_packets: s.tx_packets,
                tx_errs: s.tx_errs,
                tx_drop: s.tx_drop,
            })
        }
    }
}

fn field_name(p: &sys::virTypedParameter) -> &[u8] {
    // SAFETY: `field` is a fixed array; we stop at the first NUL or its end.
    let bytes = unsafe { &*(&p.field as *const [c_char] as *const [u8]) };
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn param_u64(p: &sys::virTypedParameter) -> Option<u64> {
    // SAFETY: the union member read matches the type tag.
    unsafe {
        match p.type_ as u32 {
            sys::VIR_TYPED_PARAM_INT => Some(p.value.i as i64 as u64),
            sys::VIR_TYPED_PARAM_UINT => Some(p.value.ui as u64),
            sys::VIR_TYPED_PARAM_LLONG => Some(p.value.l as u64),
            sys::VIR_TYPED_PARAM_ULLONG => Some(p.value.ul),
            sys::VIR_TYPED_PARAM_DOUBLE => Some(p.value.d as u64),
            sys::VIR_TYPED_PARAM_BOOLEAN => Some(p.value.b as u64),
            _ => None,
        }
    }
}

fn param_i64(p: &sys::virTypedParameter) -> Option<i64> {
    // SAFETY: as param_u64.
    unsafe {
        match p.type_ as u32 {
            sys::VIR_TYPED_PARAM_INT => Some(p.value.i as i64),
            sys::VIR_TYPED_PARAM_LLONG => Some(p.value.l),
            _ => param_u64(p).map(|v| v as i64),
        }
    }
}

fn param_string(p: &sys::virTypedParameter) -> Option<String> {
    // SAFETY: for string parameters `s` is a NUL-terminated string owned by the record.
    unsafe {
        if p.type_ as u32 == sys::VIR_TYPED_PARAM_STRING && !p.value.s.is_null() {
            Some(CStr::from_ptr(p.value.s).to_string_lossy().into_owned())
        } else {
            None
        }
    }
}

/// Per-vCPU times of the bulk `vcpu` group.
#[derive(Debug, Clone, Copy, Default)]
pub struct VcpuTimes {
    pub time: Option<u64>,
    pub wait: Option<u64>,
}

/// One `net.<n>.*` entry of the bulk stats.
#[derive(Debug, Clone, Default)]
pub struct NetBulk {
    pub name: Option<String>,
    pub stats: IfStats,
}

/// One `block.<n>.*` entry of the bulk stats.
#[derive(Debug, Clone, Default)]
pub struct BlockBulk {
    pub name: Option<String>,
    pub rd_reqs: Option<i64>,
    pub rd_bytes: Option<i64>,
    pub wr_reqs: Option<i64>,
    pub wr_bytes: Option<i64>,
    pub rd_times: Option<u64>,
    pub wr_times: Option<u64>,
    pub capacity: Option<u64>,
    pub allocation: Option<u64>,
    pub physical: Option<u64>,
}

/// The perf group (only present when perf events are enabled for the domain).
#[derive(Debug, Clone, Copy, Default)]
pub struct Perf {
    pub cpu_cycles: Option<u64>,
    pub instructions: Option<u64>,
    pub cache_references: Option<u64>,
    pub cache_misses: Option<u64>,
}

/// What `virConnectGetAllDomainStats` said about one domain. Groups the driver does not
/// report stay `None`/empty, which is how the inspector knows to fall back per call.
#[derive(Debug, Clone, Default)]
pub struct DomStats {
    pub state: Option<i32>,
    pub cpu_time: Option<u64>,
    pub vcpu_current: Option<u64>,
    pub vcpu_maximum: Option<u64>,
    pub vcpus: Vec<VcpuTimes>,
    /// Some when any `balloon.*` field was reported.
    pub balloon: Option<MemStats>,
    pub perf: Perf,
    /// Some when the `net` group was reported (`net.count`).
    pub nets: Option<Vec<NetBulk>>,
    /// Some when the `block` group was reported (`block.count`).
    pub blocks: Option<Vec<BlockBulk>>,
}

/// `prefix.<n>.rest` → (n, rest).
fn indexed<'a>(name: &'a [u8], prefix: &[u8]) -> Option<(usize, &'a [u8])> {
    let rest = name.strip_prefix(prefix)?;
    let dot = rest.iter().position(|b| *b == b'.')?;
    let n: usize = std::str::from_utf8(&rest[..dot]).ok()?.parse().ok()?;
    // Guard against absurd indexes growing the vectors.
    if n > 4096 {
        return None;
    }
    Some((n, &rest[dot + 1..]))
}

fn slot<T: Default>(v: &mut Vec<T>, n: usize) -> &mut T {
    if v.len() <= n {
        v.resize_with(n + 1, T::default);
    }
    &mut v[n]
}

impl DomStats {
    /// The bulk `block.<n>.*` stats of disk `dev`, if the driver reported them.
    pub fn block(&self, dev: &str) -> Option<&BlockBulk> {
        self.blocks
            .as_deref()?
            .iter()
            .find(|b| b.name.as_deref() == Some(dev))
    }

    /// The bulk `net.<n>.*` stats of interface `name`, if the driver reported them.
    pub fn net(&self, name: &str) -> Option<&NetBulk> {
        self.nets
            .as_deref()?
            .iter()
            .find(|n| n.name.as_deref() == Some(name))
    }

    fn parse(params: &[sys::virTypedParameter]) -> DomStats {
        let mut s = DomStats::default();
        for p in params {
            let name = field_name(p);
            match name {
                b"state.state" => s.state = param_i64(p).map(|v| v as i32),
                b"cpu.time" => s.cpu_time = param_u64(p),
                b"vcpu.current" => s.vcpu_current = param_u64(p),
                b"vcpu.maximum" => s.vcpu_maximum = param_u64(p),
                b"net.count" => {
                    s.nets.get_or_insert_with(Vec::new);
                }
                b"block.count" => {
                    s.blocks.get_or_insert_with(Vec::new);
                }
                b"perf.cpu_cycles" => s.perf.cpu_cycles = param_u64(p),
                b"perf.instructions" => s.perf.instructions = param_u64(p),
                b"perf.cache_references" => s.perf.cache_references = param_u64(p),
                b"perf.cache_misses" => s.perf.cache_misses = param_u64(p),
                _ => {
                    if let Some(field) = name.strip_prefix(b"balloon.") {
                        let b = s.balloon.get_or_insert_with(MemStats::default);
                        let v = param_u64(p);
                        match field {
                            b"current" => b.actual = v,
                            b"available" => b.available = v,
                            b"usable" => b.usable = v,
                            b"unused" => b.unused = v,
                            b"rss" => b.rss = v,
                            b"swap_in" => b.swap_in = v,
                            b"swap_out" => b.swap_out = v,
                            _ => {}
                        }
                    } else if let Some((n, field)) = indexed(name, b"vcpu.") {
                        match field {
                            b"time" => slot(&mut s.vcpus, n).time = param_u64(p),
                            b"wait" => slot(&mut s.vcpus, n).wait = param_u64(p),
                            _ => {}
                        }
                    } else if let Some((n, field)) = indexed(name, b"net.") {
                        let e = slot(s.nets.get_or_insert_with(Vec::new), n);
                        let v = param_i64(p).unwrap_or(-1);
                        match field {
                            b"name" => e.name = param_string(p),
                            b"rx.bytes" => e.stats.rx_bytes = v,
                            b"rx.pkts" => e.stats.rx_packets = v,
                            b"rx.errs" => e.stats.rx_errs = v,
                            b"rx.drop" => e.stats.rx_drop = v,
                            b"tx.bytes" => e.stats.tx_bytes = v,
                            b"tx.pkts" => e.stats.tx_packets = v,
                            b"tx.errs" => e.stats.tx_errs = v,
                            b"tx.drop" => e.stats.tx_drop = v,
                            _ => {}
                        }
                    } else if let Some((n, field)) = indexed(name, b"block.") {
                        let e = slot(s.blocks.get_or_insert_with(Vec::new), n);
                        match field {
                            b"name" => e.name = param_string(p),
                            b"rd.reqs" => e.rd_reqs = param_i64(p),
                            b"rd.bytes" => e.rd_bytes = param_i64(p),
                            b"wr.reqs" => e.wr_reqs = param_i64(p),
                            b"wr.bytes" => e.wr_bytes = param_i64(p),
                            b"rd.times" => e.rd_times = param_u64(p),
                            b"wr.times" => e.wr_times = param_u64(p),
                            b"capacity" => e.capacity = param_u64(p),
                            b"allocation" => e.allocation = param_u64(p),
                            b"physical" => e.physical = param_u64(p),
                            _ => {}
                        }
                    }
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, value: ParamValue) -> sys::virTypedParameter {
        // SAFETY: an all-zero typed parameter is valid; the fields are set below.
        let mut p: sys::virTypedParameter = unsafe { std::mem::zeroed() };
        for (dst, src) in p.field.iter_mut().zip(name.bytes()) {
            *dst = src as c_char;
        }
        match value {
            ParamValue::U(v) => {
                p.type_ = sys::VIR_TYPED_PARAM_ULLONG as c_int;
                p.value.ul = v;
            }
            ParamValue::I(v) => {
                p.type_ = sys::VIR_TYPED_PARAM_INT as c_int;
                p.value.i = v;
            }
            ParamValue::S(v) => {
                p.type_ = sys::VIR_TYPED_PARAM_STRING as c_int;
                p.value.s = v.as_ptr() as *mut c_char;
            }
        }
        p
    }

    enum ParamValue<'a> {
        U(u64),
        I(i32),
        S(&'a CStr),
    }

    #[test]
    fn parses_qemu_style_bulk_stats() {
        use ParamValue::*;
        let params = [
            param("state.state", I(1)),
            param("cpu.time", U(5000)),
            param("balloon.current", U(2048)),
            param("balloon.available", U(2000)),
            param("balloon.usable", U(500)),
            param("balloon.rss", U(900)),
            param("vcpu.current", U(2)),
            param("vcpu.maximum", U(2)),
            param("vcpu.0.time", U(10)),
            param("vcpu.0.wait", U(1)),
            param("vcpu.1.time", U(20)),
            param("vcpu.1.wait", U(2)),
            param("net.count", U(1)),
            param("net.0.name", S(c"tap1")),
            param("net.0.rx.bytes", U(100)),
            param("net.0.tx.pkts", U(7)),
            param("block.count", U(1)),
            param("block.0.name", S(c"vda")),
            param("block.0.rd.reqs", U(3)),
            param("block.0.wr.times", U(44)),
            param("block.0.capacity", U(1 << 30)),
            param("perf.cpu_cycles", U(123)),
        ];
        let s = DomStats::parse(&params);
        assert_eq!(s.state, Some(1));
        assert_eq!(s.cpu_time, Some(5000));
        let b = s.balloon.unwrap();
        assert_eq!(
            (b.actual, b.available, b.usable, b.rss, b.unused),
            (Some(2048), Some(2000), Some(500), Some(900), None)
        );
        assert_eq!((s.vcpu_current, s.vcpus.len()), (Some(2), 2));
        assert_eq!(s.vcpus[1].wait, Some(2));
        let nets = s.nets.unwrap();
        assert_eq!(nets[0].name.as_deref(), Some("tap1"));
        assert_eq!((nets[0].stats.rx_bytes, nets[0].stats.tx_packets), (100, 7));
        let blocks = s.blocks.unwrap();
        assert_eq!(blocks[0].name.as_deref(), Some("vda"));
        assert_eq!(
            (blocks[0].rd_reqs, blocks[0].wr_times, blocks[0].capacity),
            (Some(3), Some(44), Some(1 << 30))
        );
        assert_eq!(s.perf.cpu_cycles, Some(123));
        // The test driver: state only.
        let t = DomStats::parse(&[param("state.state", I(5)), param("state.reason", I(1))]);
        assert_eq!(t.state, Some(5));
        assert!(
            t.balloon.is_none()
                && t.nets.is_none()
                && t.blocks.is_none()
                && t.vcpu_current.is_none()
        );
    }

    #[test]
    fn indexed_names_split() {
        assert_eq!(indexed(b"vcpu.3.time", b"vcpu."), Some((3, &b"time"[..])));
        assert_eq!(
            indexed(b"net.0.rx.bytes", b"net."),
            Some((0, &b"rx.bytes"[..]))
        );
        assert_eq!(indexed(b"vcpu.current", b"vcpu."), None);
    }
}
