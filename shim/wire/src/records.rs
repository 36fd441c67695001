//! The records a shim writes and the CLI reads, and the small enums their fields use. A record is
//! encoded with its prefix into a caller's buffer ([`Record::encode`]) and decoded from a borrowed
//! slice ([`Record::decode`], [`Records`]); nothing here allocates.
use crate::codec::{tag, Dec, DecodeError, Enc, RECORD_PREFIX};

/// The most frames a stack record carries.
pub const MAX_FRAMES: usize = 128;

/// Leak kinds, Valgrind's categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LeakKind {
    Definite = 0,
    Indirect = 1,
    Possible = 2,
    Reachable = 3,
}

impl LeakKind {
    pub const ALL: [LeakKind; 4] = [
        LeakKind::Definite,
        LeakKind::Indirect,
        LeakKind::Possible,
        LeakKind::Reachable,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LeakKind::Definite => "definite",
            LeakKind::Indirect => "indirect",
            LeakKind::Possible => "possible",
            LeakKind::Reachable => "reachable",
        }
    }
}

/// Kinds of heap errors and warnings. The names are part of the JSON contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ErrorKind {
    HeapBufferOverflow = 0,
    HeapBufferUnderflow = 1,
    UseAfterFree = 2,
    DoubleFree = 3,
    InvalidFree = 4,
    AllocDeallocMismatch = 5,
    InvalidRealloc = 6,
    CallocOverflow = 7,
    AllocationSizeTooBig = 8,
    InvalidAlignment = 9,
    /// A fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) that no guard page explains and no handler of the
    /// program's takes: `addr` is the signal's address, `arg1` the signal, `arg2` its `si_code`.
    Crash = 10,
    /// A memory or string function given overlapping source and destination where its contract
    /// forbids it: `addr`/`access_size` the destination range, `arg1`/`arg2` the source range,
    /// `func` the function.
    ParamOverlap = 11,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::HeapBufferOverflow,
        ErrorKind::HeapBufferUnderflow,
        ErrorKind::UseAfterFree,
        ErrorKind::DoubleFree,
        ErrorKind::InvalidFree,
        ErrorKind::AllocDeallocMismatch,
        ErrorKind::InvalidRealloc,
        ErrorKind::CallocOverflow,
        ErrorKind::AllocationSizeTooBig,
        ErrorKind::InvalidAlignment,
        ErrorKind::Crash,
        ErrorKind::ParamOverlap,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::HeapBufferOverflow => "heap-buffer-overflow",
            ErrorKind::HeapBufferUnderflow => "heap-buffer-underflow",
            ErrorKind::UseAfterFree => "use-after-free",
            ErrorKind::DoubleFree => "double-free",
            ErrorKind::InvalidFree => "invalid-free",
            ErrorKind::AllocDeallocMismatch => "alloc-dealloc-mismatch",
            ErrorKind::InvalidRealloc => "invalid-realloc",
            ErrorKind::CallocOverflow => "calloc-overflow",
            ErrorKind::AllocationSizeTooBig => "allocation-size-too-big",
            ErrorKind::InvalidAlignment => "invalid-alignment",
            ErrorKind::Crash => "crash",
            ErrorKind::ParamOverlap => "param-overlap",
        }
    }
    /// Warnings report a call that a correct program may make on purpose; they keep glibc's answer
    /// and do not count as errors unless the user asks.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            ErrorKind::CallocOverflow
                | ErrorKind::AllocationSizeTooBig
                | ErrorKind::InvalidAlignment
        )
    }
}

/// How a block was allocated (and so how it must be released).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    #[default]
    Malloc = 0,
    New = 1,
    NewArray = 2,
}

impl Family {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Family::Malloc),
            1 => Some(Family::New),
            2 => Some(Family::NewArray),
            _ => None,
        }
    }
    /// The allocating call, as a report names it.
    pub fn alloc_name(self) -> &'static str {
        match self {
            Family::Malloc => "malloc",
            Family::New => "operator new",
            Family::NewArray => "operator new[]",
        }
    }
    /// The matching release call.
    pub fn free_name(self) -> &'static str {
        match self {
            Family::Malloc => "free",
            Family::New => "operator delete",
            Family::NewArray => "operator delete[]",
        }
    }
}

/// The access that went wrong, where known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Access {
    Unknown = 0,
    Read = 1,
    Write = 2,
}

impl Access {
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Access::Read,
            2 => Access::Write,
            _ => Access::Unknown,
        }
    }
    pub fn name(self) -> Option<&'static str> {
        match self {
            Access::Unknown => None,
            Access::Read => Some("read"),
            Access::Write => Some("write"),
        }
    }
}

/// The memory and string functions the shim checks (`--check-mem-functions`), as
/// [`ErrorRec::func`] carries them (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemFn {
    Memset = 1,
    Bzero = 2,
    ExplicitBzero = 3,
    Memcmp = 4,
    Bcmp = 5,
    Memcpy = 6,
    Memmove = 7,
    Memccpy = 8,
    Mempcpy = 9,
    Bcopy = 10,
    Memchr = 11,
    Memrchr = 12,
    Rawmemchr = 13,
    Memmem = 14,
    Memfrob = 15,
    Strlen = 16,
    Strnlen = 17,
    Strcpy = 18,
    Strncpy = 19,
    Stpcpy = 20,
    Stpncpy = 21,
    Strcat = 22,
    Strncat = 23,
    Strcmp = 24,
    Strncmp = 25,
    Strchr = 26,
    Strrchr = 27,
    Strstr = 28,
    Strdup = 29,
    Strndup = 30,
    Puts = 31,
    Fputs = 32,
    MemcpyChk = 33,
    MemmoveChk = 34,
    MempcpyChk = 35,
    MemsetChk = 36,
    StrcpyChk = 37,
    StpcpyChk = 38,
    StrncpyChk = 39,
    StpncpyChk = 40,
    StrcatChk = 41,
    StrncatChk = 42,
    ExplicitBzeroChk = 43,
}

impl MemFn {
    pub const ALL: [MemFn; 43] = [
        MemFn::Memset,
        MemFn::Bzero,
        MemFn::ExplicitBzero,
        MemFn::Memcmp,
        MemFn::Bcmp,
        MemFn::Memcpy,
        MemFn::Memmove,
        MemFn::Memccpy,
        MemFn::Mempcpy,
        MemFn::Bcopy,
        MemFn::Memchr,
        MemFn::Memrchr,
        MemFn::Rawmemchr,
        MemFn::Memmem,
        MemFn::Memfrob,
        MemFn::Strlen,
        MemFn::Strnlen,
        MemFn::Strcpy,
        MemFn::Strncpy,
        MemFn::Stpcpy,
        MemFn::Stpncpy,
        MemFn::Strcat,
        MemFn::Strncat,
        MemFn::Strcmp,
        MemFn::Strncmp,
        MemFn::Strchr,
        MemFn::Strrchr,
        MemFn::Strstr,
        MemFn::Strdup,
        MemFn::Strndup,
        MemFn::Puts,
        MemFn::Fputs,
        MemFn::MemcpyChk,
        MemFn::MemmoveChk,
        MemFn::MempcpyChk,
        MemFn::MemsetChk,
        MemFn::StrcpyChk,
        MemFn::StpcpyChk,
        MemFn::StrncpyChk,
        MemFn::StpncpyChk,
        MemFn::StrcatChk,
        MemFn::StrncatChk,
        MemFn::ExplicitBzeroChk,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get((v as usize).wrapping_sub(1)).copied()
    }
    /// The C name, as the program called it.
    pub fn name(self) -> &'static str {
        match self {
            MemFn::Memset => "memset",
            MemFn::Bzero => "bzero",
            MemFn::ExplicitBzero => "explicit_bzero",
            MemFn::Memcmp => "memcmp",
            MemFn::Bcmp => "bcmp",
            MemFn::Memcpy => "memcpy",
            MemFn::Memmove => "memmove",
            MemFn::Memccpy => "memccpy",
            MemFn::Mempcpy => "mempcpy",
            MemFn::Bcopy => "bcopy",
            MemFn::Memchr => "memchr",
            MemFn::Memrchr => "memrchr",
            MemFn::Rawmemchr => "rawmemchr",
            MemFn::Memmem => "memmem",
            MemFn::Memfrob => "memfrob",
            MemFn::Strlen => "strlen",
            MemFn::Strnlen => "strnlen",
            MemFn::Strcpy => "strcpy",
            MemFn::Strncpy => "strncpy",
            MemFn::Stpcpy => "stpcpy",
            MemFn::Stpncpy => "stpncpy",
            MemFn::Strcat => "strcat",
            MemFn::Strncat => "strncat",
            MemFn::Strcmp => "strcmp",
            MemFn::Strncmp => "strncmp",
            MemFn::Strchr => "strchr",
            MemFn::Strrchr => "strrchr",
            MemFn::Strstr => "strstr",
            MemFn::Strdup => "strdup",
            MemFn::Strndup => "strndup",
            MemFn::Puts => "puts",
            MemFn::Fputs => "fputs",
            MemFn::MemcpyChk => "__memcpy_chk",
            MemFn::MemmoveChk => "__memmove_chk",
            MemFn::MempcpyChk => "__mempcpy_chk",
            MemFn::MemsetChk => "__memset_chk",
            MemFn::StrcpyChk => "__strcpy_chk",
            MemFn::StpcpyChk => "__stpcpy_chk",
            MemFn::StrncpyChk => "__strncpy_chk",
            MemFn::StpncpyChk => "__stpncpy_chk",
            MemFn::StrcatChk => "__strcat_chk",
            MemFn::StrncatChk => "__strncat_chk",
            MemFn::ExplicitBzeroChk => "__explicit_bzero_chk",
        }
    }
}

/// When a block's damage was found: at the bad access itself (guard mode's fault, or a call
/// given a bad pointer), or later by a check of its redzones or free fill. Carried in
/// [`ErrorRec::arg1`] of overflow, underflow and use-after-free records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum FoundAt {
    Access = 0,
    /// The check when the block was freed or reallocated.
    Free = 1,
    /// The check when the block left the quarantine.
    Eviction = 2,
    /// The check at exit.
    Exit = 3,
}

impl FoundAt {
    pub const ALL: [FoundAt; 4] = [
        FoundAt::Access,
        FoundAt::Free,
        FoundAt::Eviction,
        FoundAt::Exit,
    ];
    pub fn to_u64(self) -> u64 {
        self as u64
    }
    pub fn from_u64(v: u64) -> Option<Self> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }
}

/// The process a record file describes; always the first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process<'a> {
    pub pid: u32,
    pub ppid: u32,
    /// Wall-clock start in nanoseconds since the epoch, to order processes and exec images.
    pub start_ns: u64,
    /// The executable's path, as `/proc/self/exe` names it.
    pub exe: &'a [u8],
    /// The arguments, NUL-separated.
    pub cmdline: &'a [u8],
}

/// A loaded object: its path, its load bias and the address range its segments cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
    pub path: &'a [u8],
}

/// A deduplicated call stack: raw return addresses, innermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack<'a> {
    pub id: u32,
    /// `8 * n` bytes of little-endian addresses; see [`Stack::frames`].
    pub raw: &'a [u8],
}

impl<'a> Stack<'a> {
    pub fn frames(&self) -> impl Iterator<Item = u64> + 'a {
        self.raw.chunks_exact(8).map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        })
    }
}

/// Leaked blocks of one kind allocated at one stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leak {
    pub kind: LeakKind,
    pub bytes: u64,
    pub blocks: u64,
    pub stack: u32,
}

/// Totals of every leak kind, whether or not they are listed one by one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeakSummary {
    /// `(bytes, blocks)` indexed by `LeakKind as usize`.
    pub kinds: [(u64, u64); 4],
}

/// One heap error or warning, written the moment it is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorRec {
    pub kind: ErrorKind,
    pub access: Access,
    /// Thread id (gettid) of the thread that made the bad access or call.
    pub tid: u32,
    /// The faulting address or the pointer passed.
    pub addr: u64,
    /// Size of the access, 0 where unknown.
    pub access_size: u64,
    /// Whether the block fields below describe a block.
    pub has_block: bool,
    pub block_addr: u64,
    pub block_size: u64,
    /// Family that allocated the block.
    pub alloc_family: Family,
    /// Family of the release call (for mismatches).
    pub free_family: Family,
    /// Stack ids; 0 where there is none.
    pub stack: u32,
    pub alloc_stack: u32,
    pub free_stack: u32,
    /// The size or alignment argument of a suspicious call (warnings); for a block's damage, when
    /// it was found ([`FoundAt`] as u64); else 0.
    pub arg1: u64,
    pub arg2: u64,
    /// The first frame of `stack` is the exact faulting instruction, not a return address.
    pub exact_pc: bool,
    /// The checked memory or string function the error was found in ([`MemFn`] as u8), 0 for
    /// none.
    pub func: u8,
}

/// A free-form message from the shim (a degraded mode, a limit reached).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    pub text: &'a [u8],
}

/// The allocation calls made at one stack since the process image started (freed blocks
/// included): only in the answer to a live sites request (`live::SITES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocs {
    pub stack: u32,
    pub calls: u64,
}

/// How a process ended, as the shim saw it from `exit()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
}

/// Any record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Process(Process<'a>),
    Module(Module<'a>),
    Stack(Stack<'a>),
    Leak(Leak),
    LeakSummary(LeakSummary),
    Error(ErrorRec),
    Exit(Exit),
    Note(Note<'a>),
    Allocs(Allocs),
}

const PATH_MAX: usize = 4096;

impl<'a> Record<'a> {
    fn tag(&self) -> u32 {
        match self {
            Record::Process(_) => tag::PROCESS,
            Record::Module(_) => tag::MODULE,
            Record::Stack(_) => tag::STACK,
            Record::Leak(_) => tag::LEAK,
            Record::LeakSummary(_) => tag::LEAK_SUMMARY,
            Record::Error(_) => tag::ERROR,
            Record::Exit(_) => tag::EXIT,
            Record::Note(_) => tag::NOTE,
            Record::Allocs(_) => tag::ALLOCS,
        }
    }

    /// Encodes the record with its prefix into `buf`; `None` if it does not fit.
    pub fn encode(&self, buf: &mut [u8]) -> Option<usize> {
        if buf.len() < RECORD_PREFIX {
            return None;
        }
        let (prefix, body) = buf.split_at_mut(RECORD_PREFIX);
        let mut e = Enc::new(body);
        match self {
            Record::Process(p) => {
                e.u32(p.pid)
                    .u32(p.ppid)
                    .u64(p.start_ns)
                    .str(p.exe, PATH_MAX)
                    .str(p.cmdline, 2 * PATH_MAX);
            }
            Record::Module(m) => {
                e.u64(m.start).u64(m.end).u64(m.bias).str(m.path, PATH_MAX);
            }
            Record::Stack(s) => {
                let n = (s.raw.len() / 8).min(MAX_FRAMES);
                e.u32(s.id).u32(n as u32).bytes(&s.raw[..n * 8]);
            }
            Record::Leak(l) => {
                e.u8(l.kind as u8).u64(l.bytes).u64(l.blocks).u32(l.stack);
            }
            Record::LeakSummary(s) => {
                for (bytes, blocks) in s.kinds {
                    e.u64(bytes).u64(blocks);
                }
            }
            Record::Error(r) => {
                e.u8(r.kind as u8)
                    .u8(r.access as u8)
                    .u8(r.has_block as u8)
                    .u8(r.alloc_family as u8)
                    .u8(r.free_family as u8)
                    .u32(r.tid)
                    .u64(r.addr)
                    .u64(r.access_size)
                    .u64(r.block_addr)
                    .u64(r.block_size)
                    .u32(r.stack)
                    .u32(r.alloc_stack)
                    .u32(r.free_stack)
                    .u64(r.arg1)
                    .u64(r.arg2)
                    .u8(r.exact_pc as u8)
                    .u8(r.func);
            }
            Record::Exit(x) => {
                e.i32(x.code);
            }
            Record::Note(n) => {
                e.str(n.text, 1024);
            }
            Record::Allocs(a) => {
                e.u32(a.stack).u64(a.calls);
            }
        }
        let len = e.finish()?;
        let mut p = Enc::new(prefix);
        p.u32(self.tag()).u32(len as u32);
        Some(RECORD_PREFIX + len)
    }

    /// Decodes one record from the start of `buf`, returning it and the bytes it used.
    pub fn decode(buf: &'a [u8]) -> Result<(Record<'a>, usize), DecodeError> {
        let mut d = Dec::new(buf);
        let tag = d.u32()?;
        let len = d.u32()? as usize;
        let body = d.bytes(len)?;
        let mut d = Dec::new(body);
        let rec = match tag {
            tag::PROCESS => Record::Process(Process {
                pid: d.u32()?,
                ppid: d.u32()?,
                start_ns: d.u64()?,
                exe: d.str()?,
                cmdline: d.str()?,
            }),
            tag::MODULE => Record::Module(Module {
                start: d.u64()?,
                end: d.u64()?,
                bias: d.u64()?,
                path: d.str()?,
            }),
            tag::STACK => {
                let id = d.u32()?;
                let n = d.u32()? as usize;
                if n > MAX_FRAMES {
                    return Err(DecodeError::Invalid("stack depth"));
                }
                Record::Stack(Stack {
                    id,
                    raw: d.bytes(n * 8)?,
                })
            }
            tag::LEAK => Record::Leak(Leak {
                kind: LeakKind::from_u8(d.u8()?).ok_or(DecodeError::Invalid("leak kind"))?,
                bytes: d.u64()?,
                blocks: d.u64()?,
                stack: d.u32()?,
            }),
            tag::LEAK_SUMMARY => {
                let mut s = LeakSummary::default();
                for k in s.kinds.iter_mut() {
                    *k = (d.u64()?, d.u64()?);
                }
                Record::LeakSummary(s)
            }
            tag::ERROR => {
                let kind = ErrorKind::from_u8(d.u8()?).ok_or(DecodeError::Invalid("error kind"))?;
                let access = Access::from_u8(d.u8()?);
                let has_block = d.u8()? != 0;
                let alloc_family =
                    Family::from_u8(d.u8()?).ok_or(DecodeError::Invalid("family"))?;
                let free_family = Family::from_u8(d.u8()?).ok_or(DecodeError::Invalid("family"))?;
                Record::Error(ErrorRec {
                    kind,
                    access,
                    has_block,
                    alloc_family,
                    free_family,
                    tid: d.u32()?,
                    addr: d.u64()?,
                    access_size: d.u64()?,
                    block_addr: d.u64()?,
                    block_size: d.u64()?,
                    stack: d.u32()?,
                    alloc_stack: d.u32()?,
                    free_stack: d.u32()?,
                    arg1: d.u64()?,
                    arg2: d.u64()?,
                    exact_pc: d.u8()? != 0,
                    func: d.u8()?,
                })
            }
            tag::EXIT => Record::Exit(Exit { code: d.i32()? }),
            tag::NOTE => Record::Note(Note { text: d.str()? }),
            tag::ALLOCS => Record::Allocs(Allocs {
                stack: d.u32()?,
                calls: d.u64()?,
            }),
            _ => return Err(DecodeError::Invalid("record tag")),
        };
        Ok((rec, RECORD_PREFIX + len))
    }
}

/// Iterates over the records of a file body (after the header). A truncated last record ends
/// the iteration with `Err(Truncated)`.
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Records { rest: body }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Record::decode(self.rest) {
            Ok((r, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(r))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn roundtrip(r: Record) {
        let mut buf = [0u8; 512];
        let n = r.encode(&mut buf).expect("fits");
        let (back, used) = Record::decode(&buf[..n]).expect("decodes");
        assert_eq!(used, n);
        assert_eq!(back, r);
    }

    #[test]
    fn every_record_roundtrips() {
        roundtrip(Record::Process(Process {
            pid: 7,
            ppid: 1,
            start_ns: 99,
            exe: b"/bin/true",
            cmdline: b"true\0x",
        }));
        roundtrip(Record::Module(Module {
            start: 0x1000,
            end: 0x2000,
            bias: 0x400,
            path: b"/lib/libc.so.6",
        }));
        let raw = [1u8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        let s = Stack { id: 3, raw: &raw };
        assert_eq!(s.frames().collect::<Vec<_>>(), [1, 2]);
        roundtrip(Record::Stack(s));
        roundtrip(Record::Leak(Leak {
            kind: LeakKind::Indirect,
            bytes: 10,
            blocks: 2,
            stack: 4,
        }));
        roundtrip(Record::LeakSummary(LeakSummary {
            kinds: [(1, 2), (3, 4), (5, 6), (7, 8)],
        }));
        roundtrip(Record::Error(ErrorRec {
            kind: ErrorKind::AllocDeallocMismatch,
            access: Access::Write,
            tid: 5,
            addr: 6,
            access_size: 1,
            has_block: true,
            block_addr: 7,
            block_size: 8,
            alloc_family: Family::NewArray,
            free_family: Family::Malloc,
            stack: 1,
            alloc_stack: 2,
            free_stack: 3,
            arg1: 4,
            arg2: 5,
            exact_pc: true,
            func: MemFn::Strncat as u8,
        }));
        roundtrip(Record::Exit(Exit { code: -3 }));
        roundtrip(Record::Note(Note { text: b"hello" }));
        roundtrip(Record::Allocs(Allocs {
            stack: 7,
            calls: 1 << 40,
        }));
    }

    #[test]
    fn mem_fn_ids_roundtrip() {
        for f in MemFn::ALL {
            assert_eq!(MemFn::from_u8(f as u8), Some(f));
        }
        assert_eq!(MemFn::from_u8(0), None);
        assert_eq!(MemFn::StrncatChk.name(), "__strncat_chk");
    }

    #[test]
    fn truncated_record_is_reported_not_misread() {
        let mut buf = [0u8; 64];
        let n = Record::Exit(Exit { code: 1 }).encode(&mut buf).unwrap();
        let mut it = Records::new(&buf[..n - 1]);
        assert_eq!(it.next(), Some(Err(DecodeError::Truncated)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn encoding_into_a_small_buffer_fails_cleanly() {
        let mut buf = [0u8; 12];
        let r = Record::Module(Module {
            start: 0,
            end: 0,
            bias: 0,
            path: b"/long/path",
        });
        assert_eq!(r.encode(&mut buf), None);
    }

    #[test]
    fn found_at_codes_roundtrip() {
        for f in FoundAt::ALL {
            assert_eq!(FoundAt::from_u64(f.to_u64()), Some(f));
        }
        assert_eq!(FoundAt::from_u64(0), Some(FoundAt::Access));
        assert_eq!(FoundAt::from_u64(3), Some(FoundAt::Exit));
        assert_eq!(FoundAt::from_u64(4), None);
        assert_eq!(FoundAt::from_u64(u64::MAX), None);
    }

    #[test]
    fn kind_names_are_the_contract() {
        let names: [&str; 12] = ErrorKind::ALL.map(|k| k.name());
        assert_eq!(
            names,
            [
                "heap-buffer-overflow",
                "heap-buffer-underflow",
                "use-after-free",
                "double-free",
                "invalid-free",
                "alloc-dealloc-mismatch",
                "invalid-realloc",
                "calloc-overflow",
                "allocation-size-too-big",
                "invalid-alignment",
                "crash",
                "param-overlap"
            ]
        );
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(ErrorKind::from_u8(i as u8), Some(*k));
        }
    }
}
