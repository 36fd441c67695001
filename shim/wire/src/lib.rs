//! The record format between the shim (writer) and the CLI (reader).
//!
//! A record file starts with a [`FileHeader`] (magic, format version, pointer width) and continues
//! with records `tag: u32, len: u32, payload[len]`, all little-endian. Encoding never allocates: it
//! writes into a caller-provided buffer, so the shim can use it on any path. A reader refuses a file
//! of another version with [`DecodeError::Version`], never guessing at a layout it does not know.
#![forbid(unsafe_code)]
#![no_std]

/// The first eight bytes of every record file.
pub const MAGIC: [u8; 8] = *b"MCHKREC\0";
/// Bumped on every incompatible change of any record below.
pub const VERSION: u32 = 1;
/// Size of the file header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of a record's tag + length prefix.
pub const RECORD_PREFIX: usize = 8;
/// The most frames a stack record carries.
pub const MAX_FRAMES: usize = 128;

/// Record tags.
pub mod tag {
    pub const PROCESS: u32 = 1;
    pub const MODULE: u32 = 2;
    pub const STACK: u32 = 3;
    pub const LEAK: u32 = 4;
    pub const LEAK_SUMMARY: u32 = 5;
    pub const ERROR: u32 = 6;
    pub const EXIT: u32 = 7;
    pub const NOTE: u32 = 8;
}

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
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
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
        }
    }
    /// Warnings report a call that a correct program may make on purpose; they keep glibc's answer
    /// and do not count as errors unless the user asks.
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            ErrorKind::CallocOverflow | ErrorKind::AllocationSizeTooBig | ErrorKind::InvalidAlignment
        )
    }
}

/// How a block was allocated (and so how it must be released).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
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

/// Why a buffer could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The file does not start with [`MAGIC`].
    Magic,
    /// The file was written by another format version.
    Version(u32),
    /// The buffer ends inside a record (a process that died while writing).
    Truncated,
    /// A field holds a value no writer produces.
    Invalid(&'static str),
}

/// Writes little-endian fields into a fixed buffer. Overflowing the buffer is recorded, not a
/// panic: [`Enc::finish`] then returns `None`.
pub struct Enc<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'a> Enc<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Enc {
            buf,
            pos: 0,
            overflow: false,
        }
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let end = self.pos + b.len();
        if end > self.buf.len() {
            self.overflow = true;
        } else {
            self.buf[self.pos..end].copy_from_slice(b);
            self.pos = end;
        }
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes(&[v])
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    /// A length-prefixed (u32) byte string, cut to what fits in `max` bytes.
    pub fn str(&mut self, s: &[u8], max: usize) -> &mut Self {
        let s = &s[..s.len().min(max)];
        self.u32(s.len() as u32).bytes(s)
    }
    pub fn len(&self) -> usize {
        self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
    pub fn finish(&self) -> Option<usize> {
        (!self.overflow).then_some(self.pos)
    }
}

/// Reads little-endian fields from a slice.
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub fn str(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Encodes the file header into `buf` (at least [`HEADER_LEN`] bytes).
pub fn encode_header(buf: &mut [u8]) -> usize {
    let mut e = Enc::new(buf);
    e.bytes(&MAGIC).u32(VERSION).u32(core::mem::size_of::<usize>() as u32);
    e.finish().unwrap_or(0)
}

/// Checks a file header and returns the bytes after it.
pub fn check_header(file: &[u8]) -> Result<&[u8], DecodeError> {
    if file.len() < 8 || file[..8] != MAGIC {
        return Err(DecodeError::Magic);
    }
    let mut d = Dec::new(&file[8..]);
    let version = d.u32()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let _ptr_width = d.u32()?;
    Ok(&file[HEADER_LEN..])
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
    /// The size or alignment argument of a suspicious call (warnings), else 0.
    pub arg1: u64,
    pub arg2: u64,
    /// The first frame of `stack` is the exact faulting instruction, not a return address.
    pub exact_pc: bool,
}

/// A free-form message from the shim (a degraded mode, a limit reached).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note<'a> {
    pub text: &'a [u8],
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
                    .u8(r.exact_pc as u8);
            }
            Record::Exit(x) => {
                e.i32(x.code);
            }
            Record::Note(n) => {
                e.str(n.text, 1024);
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
                let alloc_family = Family::from_u8(d.u8()?).ok_or(DecodeError::Invalid("family"))?;
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
                })
            }
            tag::EXIT => Record::Exit(Exit { code: d.i32()? }),
            tag::NOTE => Record::Note(Note { text: d.str()? }),
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
extern crate std;

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
        }));
        roundtrip(Record::Exit(Exit { code: -3 }));
        roundtrip(Record::Note(Note { text: b"hello" }));
    }

    #[test]
    fn header_and_version_are_checked() {
        let mut buf = [0u8; HEADER_LEN];
        assert_eq!(encode_header(&mut buf), HEADER_LEN);
        assert_eq!(check_header(&buf), Ok(&[][..]));
        buf[8] = 99;
        assert_eq!(check_header(&buf), Err(DecodeError::Version(99)));
        assert_eq!(check_header(b"garbage!garbage!"), Err(DecodeError::Magic));
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
    fn kind_names_are_the_contract() {
        let names: [&str; 10] = ErrorKind::ALL.map(|k| k.name());
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
                "invalid-alignment"
            ]
        );
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(ErrorKind::from_u8(i as u8), Some(*k));
        }
    }
}

/// The live statistics page: a file the shim maps shared (`MEMCHECK_DIR/PID-STARTNS.mcstats`) and
/// updates in place, which `memcheck stats PID` reads without stopping or signalling the process.
/// Every field is a little-endian u64 at a fixed offset (field index times 8).
pub mod stats {
    use core::sync::atomic::AtomicU64;

    pub const MAGIC: u64 = 0x3154_4154_534b_434d; // "MCKSTAT1"
    pub const VERSION: u64 = 1;
    pub const SHARDS: usize = 64;
    /// Size classes of the histogram: class i holds blocks of at most 16 << i bytes; the last
    /// class holds everything larger.
    pub const CLASSES: usize = 24;
    /// File name suffix of the page.
    pub const SUFFIX: &str = ".mcstats";

    /// The size class of a block.
    pub fn class_of(size: u64) -> usize {
        if size <= 16 {
            0
        } else {
            ((64 - (size - 1).leading_zeros()) as usize - 4).min(CLASSES - 1)
        }
    }

    /// Counters of one block-table shard, updated under that shard's lock.
    #[repr(C)]
    pub struct Shard {
        pub live_blocks: AtomicU64,
        pub live_bytes: AtomicU64,
        pub allocs: AtomicU64,
        pub frees: AtomicU64,
        pub alloc_bytes: AtomicU64,
        /// Live blocks by size class.
        pub hist: [AtomicU64; CLASSES],
    }

    /// The whole page.
    #[repr(C)]
    pub struct Page {
        pub magic: AtomicU64,
        pub version: AtomicU64,
        pub pid: AtomicU64,
        pub start_ns: AtomicU64,
        /// Highest live byte count seen (updated in batches of at most 64 KiB per thread).
        pub peak_bytes: AtomicU64,
        /// Live bytes as batched per thread (the exact figure is the sum of the shards).
        pub batched_live_bytes: AtomicU64,
        pub quarantine_bytes: AtomicU64,
        pub quarantine_blocks: AtomicU64,
        pub guard_blocks: AtomicU64,
        /// Bytes of pages committed for live guarded blocks (data pages; guard pages cost none).
        pub guard_bytes: AtomicU64,
        pub errors: AtomicU64,
        pub warnings: AtomicU64,
        pub reserved: [AtomicU64; 4],
        pub shards: [Shard; SHARDS],
    }

    pub const HEADER_FIELDS: usize = 16;
    pub const SHARD_FIELDS: usize = 5 + CLASSES;
    /// Bytes of the page.
    pub const PAGE_BYTES: usize = (HEADER_FIELDS + SHARDS * SHARD_FIELDS) * 8;

    /// A decoded page.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Snapshot {
        pub pid: u64,
        pub start_ns: u64,
        pub live_blocks: u64,
        pub live_bytes: u64,
        pub peak_bytes: u64,
        pub allocs: u64,
        pub frees: u64,
        pub alloc_bytes: u64,
        pub quarantine_bytes: u64,
        pub quarantine_blocks: u64,
        pub guard_blocks: u64,
        pub guard_bytes: u64,
        pub errors: u64,
        pub warnings: u64,
        pub hist: [u64; CLASSES],
    }

    /// Decodes a page read from the file.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, super::DecodeError> {
        if bytes.len() < PAGE_BYTES {
            return Err(super::DecodeError::Truncated);
        }
        let w = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        if w(0) != MAGIC {
            return Err(super::DecodeError::Magic);
        }
        if w(1) != VERSION {
            return Err(super::DecodeError::Version(w(1) as u32));
        }
        let mut s = Snapshot {
            pid: w(2),
            start_ns: w(3),
            peak_bytes: w(4),
            quarantine_bytes: w(6),
            quarantine_blocks: w(7),
            guard_blocks: w(8),
            guard_bytes: w(9),
            errors: w(10),
            warnings: w(11),
            ..Snapshot::default()
        };
        for sh in 0..SHARDS {
            let b = HEADER_FIELDS + sh * SHARD_FIELDS;
            s.live_blocks = s.live_blocks.wrapping_add(w(b));
            s.live_bytes = s.live_bytes.wrapping_add(w(b + 1));
            s.allocs += w(b + 2);
            s.frees += w(b + 3);
            s.alloc_bytes += w(b + 4);
            for c in 0..CLASSES {
                s.hist[c] = s.hist[c].wrapping_add(w(b + 5 + c));
            }
        }
        s.peak_bytes = s.peak_bytes.max(s.live_bytes);
        Ok(s)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn layout_matches_the_field_count() {
            assert_eq!(core::mem::size_of::<Page>(), PAGE_BYTES);
            assert_eq!(core::mem::size_of::<Shard>(), SHARD_FIELDS * 8);
        }

        #[test]
        fn classes_are_powers_of_two_from_16() {
            assert_eq!(class_of(0), 0);
            assert_eq!(class_of(16), 0);
            assert_eq!(class_of(17), 1);
            assert_eq!(class_of(32), 1);
            assert_eq!(class_of(33), 2);
            assert_eq!(class_of(u64::MAX), CLASSES - 1);
        }

        #[test]
        fn pages_decode_summing_shards() {
            let mut raw = [0u8; PAGE_BYTES];
            let mut put = |i: usize, v: u64| raw[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            put(0, MAGIC);
            put(1, VERSION);
            put(2, 42);
            put(HEADER_FIELDS, 3); // shard 0 live blocks
            put(HEADER_FIELDS + 1, 300);
            put(HEADER_FIELDS + SHARD_FIELDS, 2); // shard 1
            put(HEADER_FIELDS + SHARD_FIELDS + 1, 200);
            let s = decode(&raw).unwrap();
            assert_eq!((s.pid, s.live_blocks, s.live_bytes, s.peak_bytes), (42, 5, 500, 500));
            assert_eq!(decode(&raw[..10]), Err(crate::DecodeError::Truncated));
        }
    }
}
