//! The loaded objects (`dl_iterate_phdr`): their paths, load biases and segment ranges, for the
//! CLI to symbolize return addresses, and the writable segments that are roots of the leak scan.
use rust_alloc::vec::Vec;

pub struct Module {
    pub start: usize,
    pub end: usize,
    pub bias: usize,
    /// Path; empty for the main program (see [`exe_path`]) and the vDSO.
    pub path: Vec<u8>,
    /// Writable PT_LOAD ranges (data and bss).
    pub writable: Vec<(usize, usize)>,
}

extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: data is the &mut Vec<Module> passed by `all`; info is valid during the callback.
    let (mods, info) = unsafe { (&mut *(data as *mut Vec<Module>), &*info) };
    let bias = info.dlpi_addr as usize;
    let path = if info.dlpi_name.is_null() {
        Vec::new()
    } else {
        // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { core::ffi::CStr::from_ptr(info.dlpi_name) }
            .to_bytes()
            .to_vec()
    };
    let mut start = usize::MAX;
    let mut end = 0;
    let mut writable = Vec::new();
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr holds dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type != libc::PT_LOAD {
            continue;
        }
        let s = bias + ph.p_vaddr as usize;
        let e = s + ph.p_memsz as usize;
        start = start.min(s);
        end = end.max(e);
        if ph.p_flags & libc::PF_W != 0 {
            writable.push((s, e));
        }
    }
    if end > start {
        mods.push(Module {
            start,
            end,
            bias,
            path,
            writable,
        });
    }
    0
}

/// Every loaded object, main program first.
pub fn all() -> Vec<Module> {
    let mut mods: Vec<Module> = Vec::new();
    // SAFETY: collect matches the callback signature and only touches `mods`.
    unsafe { libc::dl_iterate_phdr(Some(collect), &mut mods as *mut Vec<Module> as *mut _) };
    mods
}

/// The path of the running executable.
pub fn exe_path() -> Vec<u8> {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::readlink(c"/proc/self/exe".as_ptr(), buf.as_mut_ptr().cast(), 4096) };
    if n <= 0 {
        return Vec::new();
    }
    buf[..n as usize].to_vec()
}

/// The code range of the object containing `addr`.
pub fn range_containing(addr: usize) -> Option<(usize, usize)> {
    all()
        .into_iter()
        .find(|m| addr >= m.start && addr < m.end)
        .map(|m| (m.start, m.end))
}
