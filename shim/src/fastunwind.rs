//! Fast stack capture for x86_64: DWARF CFI rules (from each object's `.eh_frame_hdr` and
//! `.eh_frame`, decoded with gimli) are computed once per return address and cached in a
//! lock-free table, so a capture is a few loads per frame instead of libgcc's full CFI
//! interpretation. Frames whose rules are not "CFA = rsp/rbp + k, return address at CFA-8, rbp
//! saved at CFA+k or untouched" (signal trampolines, DWARF expressions) make the capture fall back
//! to libgcc. A return address outside every known object (JIT code) ends the stack.
use crate::spin::SpinLock;
use core::sync::atomic::{AtomicU64, Ordering};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};
use rust_alloc::boxed::Box;
use rust_alloc::vec::Vec;

/// A cached rule: `OK | cfa-from-rbp << 1 | rbp-saved << 2 | rbp_off << 16 | cfa_off << 32`.
const OK: u64 = 1;
const CFA_RBP: u64 = 2;
const RBP_SAVED: u64 = 4;
const END: u64 = 8;
/// No usable rule: fall back to libgcc.
const UNSUPPORTED: u64 = 16;

const CACHE: usize = 1 << 16;
/// `(key, rule)` pairs side by side, so a lookup touches one cache line.
#[repr(C, align(16))]
struct Slot {
    key: AtomicU64,
    rule: AtomicU64,
}
static SLOTS: [Slot; CACHE] = [const {
    Slot {
        key: AtomicU64::new(0),
        rule: AtomicU64::new(0),
    }
}; CACHE];

struct Object {
    start: usize,
    end: usize,
    eh_frame_hdr: usize,
    /// End of the segment holding the sections (bounds the slices given to gimli).
    seg_end: usize,
}

struct Objects {
    list: Vec<Object>,
    ctx: Option<Box<UnwindContext<usize>>>,
}

static OBJECTS: SpinLock<Objects> = SpinLock::new(Objects {
    list: Vec::new(),
    ctx: None,
});

extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: data is the Vec passed by `refresh`; info is valid during the callback.
    let (out, info) = unsafe { (&mut *(data as *mut Vec<Object>), &*info) };
    let bias = info.dlpi_addr as usize;
    let mut hdr = 0;
    let (mut start, mut end) = (usize::MAX, 0);
    let mut loads = Vec::new();
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr holds dlpi_phnum headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let s = bias + ph.p_vaddr as usize;
        let e = s + ph.p_memsz as usize;
        if ph.p_type == libc::PT_LOAD {
            loads.push((s, e));
            if ph.p_flags & libc::PF_X != 0 {
                start = start.min(s);
                end = end.max(e);
            }
        } else if ph.p_type == libc::PT_GNU_EH_FRAME {
            hdr = s;
        }
    }
    if hdr != 0 && end > start {
        let seg_end = loads
            .iter()
            .find(|&&(s, e)| hdr >= s && hdr < e)
            .map_or(hdr, |&(_, e)| e);
        out.push(Object {
            start,
            end,
            eh_frame_hdr: hdr,
            seg_end,
        });
    }
    0
}

fn refresh(objs: &mut Objects) {
    let mut list: Vec<Object> = Vec::new();
    // SAFETY: collect matches the callback type and only touches `list`.
    unsafe { libc::dl_iterate_phdr(Some(collect), &mut list as *mut Vec<Object> as *mut _) };
    objs.list = list;
}

/// Computes the rule for `addr` (a PC inside a function) from the object's CFI.
fn compute(addr: usize) -> u64 {
    let mut objs = OBJECTS.lock();
    let find = |o: &Objects| o.list.iter().position(|m| addr >= m.start && addr < m.end);
    let idx = match find(&objs) {
        Some(i) => i,
        None => {
            refresh(&mut objs);
            match find(&objs) {
                Some(i) => i,
                None => return END, // not code of any object: JIT code or garbage
            }
        }
    };
    let (hdr, seg_end) = (objs.list[idx].eh_frame_hdr, objs.list[idx].seg_end);
    let ctx = objs
        .ctx
        .get_or_insert_with(|| Box::new(UnwindContext::new()));
    rule_from_cfi(hdr, seg_end, addr, ctx).unwrap_or(UNSUPPORTED)
}

fn rule_from_cfi(
    hdr: usize,
    seg_end: usize,
    addr: usize,
    ctx: &mut UnwindContext<usize>,
) -> Option<u64> {
    // SAFETY: [hdr, seg_end) lies inside a loaded, readable segment of the object.
    let hdr_bytes = unsafe { core::slice::from_raw_parts(hdr as *const u8, seg_end - hdr) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr as u64);
    let parsed = EhFrameHdr::new(hdr_bytes, LittleEndian)
        .parse(&bases, 8)
        .ok()?;
    let eh_frame_addr = match parsed.eh_frame_ptr() {
        gimli::Pointer::Direct(a) => a as usize,
        gimli::Pointer::Indirect(_) => return None,
    };
    if eh_frame_addr < hdr.saturating_sub(64 << 20) || eh_frame_addr >= seg_end {
        return None;
    }
    // SAFETY: .eh_frame lies in the same read-only segment, before its end.
    let frame_bytes =
        unsafe { core::slice::from_raw_parts(eh_frame_addr as *const u8, seg_end - eh_frame_addr) };
    let eh_frame = EhFrame::new(frame_bytes, LittleEndian);
    let bases = bases.set_eh_frame(eh_frame_addr as u64);
    let table = parsed.table()?;
    let row = table
        .unwind_info_for_address(
            &eh_frame,
            &bases,
            ctx,
            addr as u64,
            EhFrame::cie_from_offset,
        )
        .ok()?;
    let mut rule = OK;
    match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RSP => {
            rule |= ((*offset as i32 as u32) as u64) << 32;
        }
        CfaRule::RegisterAndOffset { register, offset } if *register == X86_64::RBP => {
            rule |= CFA_RBP | ((*offset as i32 as u32) as u64) << 32;
        }
        _ => return None,
    }
    match row.register(X86_64::RA) {
        Some(RegisterRule::Offset(-8)) => {}
        Some(RegisterRule::Undefined) => return Some(END),
        _ => return None,
    }
    match row.register(X86_64::RBP) {
        None | Some(RegisterRule::SameValue) => {}
        Some(RegisterRule::Offset(o)) if (-32768..32768).contains(&o) => {
            rule |= RBP_SAVED | ((o as i16 as u16) as u64) << 16;
        }
        _ => return None,
    }
    Some(rule)
}

/// The cached rule for `addr`.
#[inline]
fn rule(addr: usize) -> u64 {
    let h = ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as usize & (CACHE - 1);
    let slot = &SLOTS[h];
    let k1 = slot.key.load(Ordering::Acquire);
    if k1 == addr as u64 {
        let r = slot.rule.load(Ordering::Acquire);
        if slot.key.load(Ordering::Acquire) == k1 && r != 0 {
            return r;
        }
    }
    let r = compute(addr);
    slot.key.store(0, Ordering::Release);
    slot.rule.store(r, Ordering::Release);
    slot.key.store(addr as u64, Ordering::Release);
    r
}

/// Captures return addresses into `out`, starting at the caller of this function's caller
/// frames; `skip(pc)` drops leading frames (the shim's own). Returns `None` when a frame has
/// no simple rule (the caller then uses libgcc).
#[inline(never)]
pub fn capture(out: &mut [u64], skip: impl Fn(usize) -> bool) -> Option<usize> {
    let (mut pc, mut sp, mut bp): (usize, usize, usize);
    // SAFETY: reads the instruction pointer, stack pointer and frame pointer; no memory access.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        );
    }
    let stack_base = sp;
    let mut n = 0;
    let mut first = true;
    let mut skipping = true;
    while n < out.len() {
        // Return addresses are looked up one byte back, inside the call instruction.
        let r = rule(if first { pc } else { pc - 1 });
        first = false;
        if r & UNSUPPORTED != 0 {
            return None;
        }
        if r & END != 0 {
            break;
        }
        let cfa_off = (r >> 32) as u32 as i32 as isize;
        let cfa = (if r & CFA_RBP != 0 { bp } else { sp }) as isize + cfa_off;
        let cfa = cfa as usize;
        // The stack only grows towards the caller; a CFA outside a sane window means bad rules.
        if cfa <= sp || cfa - stack_base > (256 << 20) {
            break;
        }
        // SAFETY: cfa-8 lies in this thread's stack above the current frame, per the rules.
        let ra = unsafe { *((cfa - 8) as *const usize) };
        if r & RBP_SAVED != 0 {
            let off = ((r >> 16) as u16 as i16) as isize;
            // SAFETY: as above: the saved rbp slot of this frame.
            bp = unsafe { *((cfa as isize + off) as *const usize) };
        }
        sp = cfa;
        pc = ra;
        if ra < 4096 {
            break;
        }
        if skipping && skip(ra) {
            continue;
        }
        skipping = false;
        out[n] = ra as u64;
        n += 1;
    }
    Some(n)
}

/// Fork handlers.
pub fn lock() {
    OBJECTS.raw_lock();
}
pub fn unlock() {
    OBJECTS.raw_unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn depth3(out: &mut [u64]) -> Option<usize> {
        let r = depth2(out);
        core::hint::black_box(r)
    }
    #[inline(never)]
    fn depth2(out: &mut [u64]) -> Option<usize> {
        let r = capture(out, |_| false);
        core::hint::black_box(r)
    }

    #[test]
    fn finds_the_callers_return_addresses() {
        let mut fast = [0u64; 16];
        let n = depth3(&mut fast).expect("simple rules");
        assert!(n >= 3, "{n}");
        // Frame 0 returns into depth2, frame 1 into depth3: each lies inside that function.
        let inside = |ra: u64, f: usize| ra as usize > f && (ra as usize) < f + 512;
        assert!(
            inside(fast[0], depth2 as *const () as usize),
            "{:x?}",
            &fast[..n]
        );
        assert!(
            inside(fast[1], depth3 as *const () as usize),
            "{:x?}",
            &fast[..n]
        );
    }
}
