//! Fast stack capture for x86_64: DWARF CFI rules (from each object's `.eh_frame_hdr` and
//! `.eh_frame`, decoded with gimli) are computed once per return address and cached in a
//! lock-free table of one word per slot ([`SLOTS`]), so a frame costs three loads (its slot, its
//! return address, its saved rbp if any) instead of libgcc's full CFI interpretation. Frames whose rules are not "CFA = rsp/rbp + k, return address at CFA-8, rbp
//! saved at CFA+k or untouched" (signal trampolines, DWARF expressions) make the capture fall back
//! to libgcc. A return address outside every known object (JIT code) ends the stack.
use crate::spin::SpinLock;
use core::sync::atomic::{fence, AtomicU64, Ordering};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, RegisterRule, UnwindContext,
    UnwindSection, X86_64,
};
use rust_alloc::boxed::Box;
use rust_alloc::vec::Vec;

/// A rule, as [`rule_from_cfi`] gives it (the wide form): `OK | CFA_RBP? | RBP_SAVED?`, the
/// saved-rbp offset (i16) at bit 16 and the CFA offset (i32) at bit 32; `END` and `UNSUPPORTED`
/// alone, without `OK`.
const OK: u64 = 1;
/// The CFA is rbp + offset (else rsp + offset).
const CFA_RBP: u64 = 2;
/// The caller's rbp is saved at CFA + offset (else rbp is unchanged).
const RBP_SAVED: u64 = 4;
/// The outermost frame (its return address undefined, or not code of any object): the stack ends.
const END: u64 = 8;
/// No usable rule: fall back to libgcc.
const UNSUPPORTED: u64 = 16;
const FLAGS: u64 = 31;

/// The rule cache: one word per slot, keyed by a return address `pc` (whose rule is looked up one
/// byte back, inside the call instruction), direct-mapped by its low 16 bits and holding
/// `(pc >> 16) << 32 | compact rule`. Index and tag give back `pc` exactly (user addresses have 48
/// bits, so the tag fits 32 bits; an address whose tag does not is never stored), and one load
/// reads a consistent slot. An empty slot (0), which an address of tag 0 matches, holds no rule
/// (every rule has a flag set) and sends the walk to the slow path. A rule whose offsets do not fit
/// the compact form lives in [`WIDE`] instead.
const CACHE: usize = 1 << 16;
static SLOTS: [AtomicU64; CACHE] = [const { AtomicU64::new(0) }; CACHE];

/// The compact form of a rule (32 bits): the flags in bits 0-4, bits 5-7 zero, the saved-rbp
/// offset / 8 (i6) in bits 8-13, the CFA offset (i18, ±128 KiB) in bits 14-31. `None` when the
/// offsets do not fit (a frame of more than 128 KiB, a saved rbp far from the CFA).
fn compact(r: u64) -> Option<u32> {
    let (cfa_off, rbp_off) = ((r >> 32) as u32 as i32, (r >> 16) as u16 as i16 as i32);
    if !(-(1 << 17)..1 << 17).contains(&cfa_off)
        || rbp_off % 8 != 0
        || !(-32..32).contains(&(rbp_off / 8))
    {
        return None;
    }
    Some((r & FLAGS) as u32 | ((rbp_off / 8) as u32 & 63) << 8 | (cfa_off as u32) << 14)
}

/// A rule decoded for the walk: offsets in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rule {
    flags: u64,
    cfa_off: isize,
    rbp_off: isize,
}

impl Rule {
    /// From a slot word: its low 32 bits, the compact rule (the tag above them shifted out).
    #[inline(always)]
    fn from_compact(w: u64) -> Rule {
        Rule {
            flags: w & FLAGS,
            cfa_off: ((w << 32) as i64 >> 46) as isize,
            // Bits 8-13 to bits 3-8, sign-extended; bits 5-7 (zero) fill bits 0-2.
            rbp_off: ((w << 50) as i64 >> 55) as isize,
        }
    }
    fn from_wide(r: u64) -> Rule {
        Rule {
            flags: r & FLAGS,
            cfa_off: (r >> 32) as u32 as i32 as isize,
            rbp_off: (r >> 16) as u16 as i16 as isize,
        }
    }
}

/// Rules without a compact form, keyed by return address (written under the `OBJECTS` lock; read
/// lock-free under each slot's sequence count, odd while written).
struct Wide {
    seq: AtomicU64,
    key: AtomicU64,
    rule: AtomicU64,
}
const WIDE_SLOTS: usize = 256;
static WIDE: [Wide; WIDE_SLOTS] = [const {
    Wide {
        seq: AtomicU64::new(0),
        key: AtomicU64::new(0),
        rule: AtomicU64::new(0),
    }
}; WIDE_SLOTS];

fn wide_slot(pc: usize) -> &'static Wide {
    &WIDE[((pc as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % WIDE_SLOTS]
}

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

/// The rule for return address `pc` when [`SLOTS`] does not hold it: from [`WIDE`], else
/// computed from the object's CFI and cached (in `SLOTS` when it has a compact form).
#[cold]
#[inline(never)]
fn slow(pc: usize) -> u64 {
    let w = wide_slot(pc);
    let s1 = w.seq.load(Ordering::Acquire);
    if s1 & 1 == 0 {
        let (k, r) = (
            w.key.load(Ordering::Relaxed),
            w.rule.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        if k == pc as u64 && w.seq.load(Ordering::Relaxed) == s1 {
            return r;
        }
    }
    let mut objs = OBJECTS.lock();
    let r = compute(&mut objs, pc - 1);
    let tag = (pc >> 16) as u64;
    match compact(r) {
        Some(c) if tag <= u32::MAX as u64 => {
            SLOTS[pc & (CACHE - 1)].store(tag << 32 | c as u64, Ordering::Relaxed)
        }
        _ => {
            // Writers are serialised by the lock held here.
            let s = w.seq.load(Ordering::Relaxed);
            w.seq.store(s + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            w.key.store(pc as u64, Ordering::Relaxed);
            w.rule.store(r, Ordering::Relaxed);
            w.seq.store(s + 2, Ordering::Release);
        }
    }
    r
}

/// Computes the rule for `addr` (a PC inside a function) from the object's CFI.
fn compute(objs: &mut Objects, addr: usize) -> u64 {
    let find = |o: &Objects| o.list.iter().position(|m| addr >= m.start && addr < m.end);
    let idx = match find(objs) {
        Some(i) => i,
        None => {
            refresh(objs);
            match find(objs) {
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

/// How far above the capture's own frame a CFA may lie: the stack only grows towards the caller,
/// and a CFA outside this window means bad rules.
const STACK_WINDOW: usize = 256 << 20;

/// Captures return addresses into `out`, starting at the caller of this function's caller,
/// leaving out every frame whose return address lies in `drop` (wherever it is in the stack).
/// Returns `None` when a frame has no simple rule (the caller then uses libgcc). `out` may start
/// uninitialised: the first `n` entries returned are written.
#[inline(never)]
pub fn capture(
    out: &mut [core::mem::MaybeUninit<u64>],
    drop: core::ops::Range<usize>,
) -> Option<usize> {
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
    let stack_limit = sp.saturating_add(STACK_WINDOW);
    let (drop_start, drop_len) = (drop.start, drop.end.saturating_sub(drop.start));
    // Return addresses are looked up one byte back, inside the call instruction; so is this one,
    // plus one: the lookup of the first frame is this very instruction's.
    pc += 1;
    let mut n = 0;
    let mut unsupported = false;
    while n < out.len() {
        let w = SLOTS[pc & (CACHE - 1)].load(Ordering::Relaxed);
        let step = if w >> 32 == (pc >> 16) as u64 {
            let r = Rule::from_compact(w);
            // SAFETY: `sp` and `bp` are this thread's registers in the frame `pc` returns into.
            match unsafe { frame(r, sp, bp, stack_limit) } {
                Some(f) => Step::Frame(f),
                // End and unsupported rules have no offset, so they land here, as does an empty
                // slot (a rule of 0) matched by an address of tag 0.
                None if r.flags & FLAGS == 0 => {
                    // SAFETY: as above.
                    unsafe { frame_slow(pc, sp, bp, stack_limit) }
                }
                None if r.flags & UNSUPPORTED != 0 => Step::Unsupported,
                None => Step::End,
            }
        } else {
            // SAFETY: as above.
            unsafe { frame_slow(pc, sp, bp, stack_limit) }
        };
        let ra;
        (sp, bp, ra) = match step {
            Step::Frame(f) => f,
            Step::End => break,
            Step::Unsupported => {
                unsupported = true;
                break;
            }
        };
        pc = ra;
        if ra < 4096 {
            break;
        }
        if ra.wrapping_sub(drop_start) < drop_len {
            continue;
        }
        out[n].write(ra as u64);
        n += 1;
    }
    (!unsupported).then_some(n)
}

/// One frame of the walk.
enum Step {
    /// The caller's stack pointer (the CFA), frame pointer and the return address.
    Frame((usize, usize, usize)),
    End,
    Unsupported,
}

/// Steps out of a frame by its rule `r`: `None` when the CFA lies outside the stack window (the
/// stack only grows towards the caller, so that means bad rules), as it does for a rule with the
/// CFA at rsp + 0: the end and unsupported rules.
///
/// # Safety
/// `sp` and `bp` are the stack and frame pointers of this thread in a frame that `r` describes.
#[inline(always)]
unsafe fn frame(
    r: Rule,
    sp: usize,
    mut bp: usize,
    stack_limit: usize,
) -> Option<(usize, usize, usize)> {
    let cfa = (if r.flags & CFA_RBP != 0 { bp } else { sp }).wrapping_add_signed(r.cfa_off);
    if cfa <= sp || cfa > stack_limit {
        return None;
    }
    // SAFETY: cfa-8 lies in this thread's stack above the current frame, per the rules.
    let ra = unsafe { *((cfa - 8) as *const usize) };
    if r.flags & RBP_SAVED != 0 {
        // SAFETY: as above: the saved rbp slot of this frame.
        bp = unsafe { *(cfa.wrapping_add_signed(r.rbp_off) as *const usize) };
    }
    Some((cfa, bp, ra))
}

/// [`frame`] for a return address `pc` whose rule [`SLOTS`] does not hold.
///
/// # Safety
/// As [`frame`], for the frame `pc` returns into.
#[cold]
#[inline(never)]
unsafe fn frame_slow(pc: usize, sp: usize, bp: usize, stack_limit: usize) -> Step {
    let r = Rule::from_wide(slow(pc));
    if r.flags & OK != 0 {
        // SAFETY: the caller's promise.
        match unsafe { frame(r, sp, bp, stack_limit) } {
            Some(f) => Step::Frame(f),
            None => Step::End,
        }
    } else if r.flags & UNSUPPORTED != 0 {
        Step::Unsupported
    } else {
        Step::End
    }
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
    fn depth4(out: &mut [u64], drop: core::ops::Range<usize>) -> Option<usize> {
        let r = depth3(out, drop);
        core::hint::black_box(r)
    }
    #[inline(never)]
    fn depth3(out: &mut [u64], drop: core::ops::Range<usize>) -> Option<usize> {
        let r = depth2(out, drop);
        core::hint::black_box(r)
    }
    #[inline(never)]
    fn depth2(out: &mut [u64], drop: core::ops::Range<usize>) -> Option<usize> {
        // SAFETY: MaybeUninit<u64> has u64's layout, and capture writes only initialised values.
        let out = unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) };
        let r = capture(out, drop);
        core::hint::black_box(r)
    }
    /// A frame of 256 KiB: its CFA offset has no compact form.
    #[inline(never)]
    fn big_frame(out: &mut [u64]) -> Option<usize> {
        let mut pad = [0u8; 256 << 10];
        core::hint::black_box(&mut pad);
        let r = depth2(out, 0..0);
        core::hint::black_box(&pad);
        r
    }

    /// Whether return address `ra` lies in the first `len` bytes of function `f`.
    fn inside(ra: u64, f: usize, len: usize) -> bool {
        ra as usize > f && (ra as usize) < f + len
    }

    #[test]
    fn finds_the_callers_return_addresses() {
        let mut fast = [0u64; 16];
        let n = depth3(&mut fast, 0..0).expect("simple rules");
        assert!(n >= 3, "{n}");
        // Frame 0 returns into depth2, frame 1 into depth3: each lies inside that function.
        assert!(
            inside(fast[0], depth2 as *const () as usize, 512),
            "{:x?}",
            &fast[..n]
        );
        assert!(
            inside(fast[1], depth3 as *const () as usize, 512),
            "{:x?}",
            &fast[..n]
        );
    }

    #[test]
    fn drops_a_frame_inside_the_stack() {
        let (mut all, mut some) = ([0u64; 128], [0u64; 128]);
        let mut n = [0; 2];
        let mut drop = 0..0;
        // Both captures from the same call sites, so with the same return addresses; the second
        // drops the frame returning into depth3 (as it drops a shim frame between glibc's strdup
        // and its caller).
        for (i, out) in [&mut all, &mut some].into_iter().enumerate() {
            n[i] = depth4(out, drop.clone()).expect("simple rules");
            drop = out[1] as usize..out[1] as usize + 1;
        }
        let (all, some) = (&all[..n[0]], &some[..n[1]]);
        assert!(all.len() >= 4 && all.len() < 128, "{all:x?}");
        assert!(
            inside(all[1], depth3 as *const () as usize, 512),
            "{all:x?}"
        );
        assert!(
            inside(all[2], depth4 as *const () as usize, 512),
            "{all:x?}"
        );
        let mut expected = all.to_vec();
        expected.remove(1);
        assert_eq!(some, &expected[..]);
    }

    #[test]
    fn a_rule_without_a_compact_form_still_unwinds() {
        let mut out = [0u64; 16];
        let n = big_frame(&mut out).expect("simple rules");
        assert!(n >= 3, "{n}");
        assert!(
            inside(out[0], depth2 as *const () as usize, 512),
            "{:x?}",
            &out[..n]
        );
        assert!(
            inside(out[1], big_frame as *const () as usize, 4096),
            "{:x?}",
            &out[..n]
        );
        let test = a_rule_without_a_compact_form_still_unwinds as fn() as usize;
        assert!(inside(out[2], test, 4096), "{:x?}", &out[..n]);
        // big_frame's rule is walkable but wide, so the walk took it from the side table.
        let pc = out[1] as usize;
        let rule = slow(pc);
        assert!(rule & OK != 0 && compact(rule).is_none(), "{rule:x}");
        assert_eq!(wide_slot(pc).key.load(Ordering::Relaxed), pc as u64);
    }

    fn wide(flags: u64, cfa_off: i32, rbp_off: i16) -> u64 {
        flags | ((rbp_off as u16) as u64) << 16 | ((cfa_off as u32) as u64) << 32
    }

    #[test]
    fn the_compact_form_keeps_the_rule_or_refuses_it() {
        let fits = [
            wide(OK, 8, 0),
            wide(OK | RBP_SAVED, 16, -16),
            wide(OK | CFA_RBP, 16, 0),
            wide(OK | CFA_RBP | RBP_SAVED, 16, -16),
            wide(OK | RBP_SAVED, (1 << 17) - 1, -256),
            wide(OK | RBP_SAVED, -(1 << 17), 248),
            END,
            UNSUPPORTED,
        ];
        for r in fits {
            let c = compact(r).unwrap_or_else(|| panic!("{r:x} has a compact form"));
            // Whatever the tag above it.
            let w = 0x1234_5678 << 32 | c as u64;
            assert_eq!(Rule::from_compact(w), Rule::from_wide(r), "{r:x}");
        }
        let wide_only = [
            wide(OK, 1 << 17, 0),
            wide(OK | CFA_RBP, -(1 << 17) - 1, 0),
            wide(OK | RBP_SAVED, 16, -264),
            wide(OK | RBP_SAVED, 16, 256),
            wide(OK | RBP_SAVED, 16, -12),
        ];
        for r in wide_only {
            assert_eq!(compact(r), None, "{r:x}");
        }
    }
}
