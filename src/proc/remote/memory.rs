//! Reading and writing a stopped (or running) process's memory with `process_vm_readv` /
//! `process_vm_writev`, which respect its page protections.

/// Reads `len` bytes of process memory.
pub(super) fn read_mem(tid: i32, addr: u64, len: usize) -> Result<Vec<u8>, nix::errno::Errno> {
    use nix::sys::uio::{process_vm_readv, RemoteIoVec};
    let mut buf = vec![0u8; len];
    let n = process_vm_readv(
        nix::unistd::Pid::from_raw(tid),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &[RemoteIoVec {
            base: addr as usize,
            len,
        }],
    )?;
    if n == len {
        Ok(buf)
    } else {
        Err(nix::errno::Errno::EFAULT)
    }
}

/// Writes process memory (respecting its page protections).
pub(super) fn write_mem(tid: i32, addr: u64, data: &[u8]) -> Result<(), nix::errno::Errno> {
    use nix::sys::uio::{process_vm_writev, RemoteIoVec};
    let n = process_vm_writev(
        nix::unistd::Pid::from_raw(tid),
        &[std::io::IoSlice::new(data)],
        &[RemoteIoVec {
            base: addr as usize,
            len: data.len(),
        }],
    )?;
    if n == data.len() {
        Ok(())
    } else {
        Err(nix::errno::Errno::EFAULT)
    }
}
