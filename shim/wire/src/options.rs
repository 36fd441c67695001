//! The settings the CLI hands the shim: a [`ShimOptions`] value, encoded by the CLI into
//! `MEMCHECK_OPTIONS` ([`crate::ENV_OPTIONS`]) as `key=value` pairs separated by commas, and
//! parsed back by the shim.
//!
//! Every key is spelled once, in [`Key::name`]. Encoding and parsing both walk [`Key::ALL`] and
//! match every key exhaustively, so a key cannot exist on one side only; the CLI builds a typed
//! value, so it cannot write an unknown key or a bad value. The shim reports what it cannot read
//! (another build's keys, a hand-written variable) instead of guessing. Nothing here allocates.
use core::fmt::{self, Write};

/// The leak check at exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LeakCheck {
    /// No check.
    No = 0,
    /// Totals only.
    Summary = 1,
    /// Each leak with its stack.
    #[default]
    Full = 2,
}

impl LeakCheck {
    pub const ALL: [LeakCheck; 3] = [LeakCheck::No, LeakCheck::Summary, LeakCheck::Full];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
    /// The name on the command line and in `MEMCHECK_OPTIONS`.
    pub fn name(self) -> &'static str {
        match self {
            LeakCheck::No => "no",
            LeakCheck::Summary => "summary",
            LeakCheck::Full => "full",
        }
    }
    pub fn from_name(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name().as_bytes() == s)
    }
}

/// Guard mode: where a guarded block's PROT_NONE page sits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GuardMode {
    /// No guard pages: every block gets canary redzones.
    #[default]
    Off = 0,
    /// The block's end flush with a guard page after it.
    Overflow = 1,
    /// The block's start right after a guard page.
    Underflow = 2,
    /// Each allocation site alternates: its first block overflow-side, its next underflow-side.
    Both = 3,
}

impl GuardMode {
    pub const ALL: [GuardMode; 4] = [
        GuardMode::Off,
        GuardMode::Overflow,
        GuardMode::Underflow,
        GuardMode::Both,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
}

/// Which stacks the shim keeps for a block (`--keep-stacktraces`, Valgrind's option and values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeepStacks {
    /// The allocation stack only: no walk at free.
    Alloc = 0,
    /// The free stack only: no walk at allocation.
    Free = 1,
    /// Both.
    #[default]
    AllocAndFree = 2,
    /// The allocation stack until the block is freed, then the free stack instead of it.
    AllocThenFree = 3,
    /// Neither.
    None = 4,
}

impl KeepStacks {
    pub const ALL: [KeepStacks; 5] = [
        KeepStacks::Alloc,
        KeepStacks::Free,
        KeepStacks::AllocAndFree,
        KeepStacks::AllocThenFree,
        KeepStacks::None,
    ];
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(v as usize).copied()
    }
    /// The name on the command line and in `MEMCHECK_OPTIONS`.
    pub fn name(self) -> &'static str {
        match self {
            KeepStacks::Alloc => "alloc",
            KeepStacks::Free => "free",
            KeepStacks::AllocAndFree => "alloc-and-free",
            KeepStacks::AllocThenFree => "alloc-then-free",
            KeepStacks::None => "none",
        }
    }
    pub fn from_name(s: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name().as_bytes() == s)
    }
    /// Whether an allocation captures its stack.
    pub fn alloc(self) -> bool {
        matches!(
            self,
            KeepStacks::Alloc | KeepStacks::AllocAndFree | KeepStacks::AllocThenFree
        )
    }
    /// Whether a free captures its stack.
    pub fn free(self) -> bool {
        matches!(
            self,
            KeepStacks::Free | KeepStacks::AllocAndFree | KeepStacks::AllocThenFree
        )
    }
}

/// A fill byte written into blocks, or an explicit "no fill".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fill {
    Byte(u8),
    None,
}

/// Everything the CLI tells the shim. A fill of `None` means "not given": the shim then keeps its
/// default or what glibc's `MALLOC_PERTURB_` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShimOptions {
    pub leak_check: LeakCheck,
    /// Frames recorded per allocation (the shim clamps to 1..=[`crate::MAX_FRAMES`]).
    pub depth: u32,
    /// Bytes of canary redzone before each block (the shim clamps to 16..=4096 and rounds up to
    /// 16).
    pub redzone: u32,
    /// Bytes of freed blocks held back from reuse.
    pub quarantine: u64,
    /// Whether exec'd children keep the shim.
    pub trace_children: bool,
    /// Forked children write no report until they exec (`--child-silent-after-fork`).
    pub child_silent: bool,
    /// Abort after the first error report.
    pub abort_on_error: bool,
    pub guard: GuardMode,
    /// With guard mode, guard 1 block in N (0 or 1: every block).
    pub sample_rate: u64,
    /// Byte written into new blocks (not calloc's).
    pub malloc_fill: Option<Fill>,
    /// Byte written into freed blocks and checked when they leave the quarantine.
    pub free_fill: Option<Fill>,
    /// Guard mode: the alignment of every guarded block (a power of two up to 4096); 0: the
    /// largest power of two dividing the block's size, at most 16 (byte-exact ends).
    pub guard_align: u32,
    /// Requests above this many bytes are reported as `allocation-size-too-big`.
    pub max_allocation_size: u64,
    /// Check the ranges the memory and string functions touch (`--check-mem-functions`); `None`:
    /// not given, which is on except in production mode ([`ShimOptions::mem_checks`]).
    pub check_mem_functions: Option<bool>,
    /// Which stacks a block keeps (`--keep-stacktraces`).
    pub keep_stacks: KeepStacks,
}

impl ShimOptions {
    /// What the shim does when `MEMCHECK_OPTIONS` is absent or a key in it is not given.
    pub const DEFAULT: ShimOptions = ShimOptions {
        leak_check: LeakCheck::Full,
        depth: 16,
        redzone: 16,
        quarantine: 8 << 20,
        trace_children: false,
        child_silent: false,
        abort_on_error: false,
        guard: GuardMode::Off,
        sample_rate: 0,
        malloc_fill: None,
        free_fill: None,
        guard_align: 0,
        max_allocation_size: 1 << 40,
        check_mem_functions: None,
        keep_stacks: KeepStacks::AllocAndFree,
    };

    /// Production mode (`--leak-check=no --sample-rate=N`, N above 1, neither fill given): one
    /// block in N is guarded and recorded, every other one is glibc's own with nothing recorded.
    pub fn is_production(&self) -> bool {
        self.leak_check == LeakCheck::No
            && self.sample_rate > 1
            && self.guard != GuardMode::Off
            && self.malloc_fill.is_none()
            && self.free_fill.is_none()
    }

    /// Whether the memory and string functions are checked: as given, else on except in
    /// production mode (where only the sampled blocks are recorded, so a check of any other
    /// block finds nothing and costs a table search per call).
    pub fn mem_checks(&self) -> bool {
        self.check_mem_functions
            .unwrap_or_else(|| !self.is_production())
    }
}

impl Default for ShimOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The keys of `MEMCHECK_OPTIONS`, one per field of [`ShimOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    LeakCheck,
    Depth,
    Redzone,
    Quarantine,
    TraceChildren,
    ChildSilent,
    AbortOnError,
    Guard,
    SampleRate,
    MallocFill,
    FreeFill,
    GuardAlign,
    MaxAllocationSize,
    CheckMemFunctions,
    KeepStacks,
}

impl Key {
    /// Every key, in the order [`ShimOptions::encode`] writes them.
    pub const ALL: [Key; 15] = [
        Key::LeakCheck,
        Key::Depth,
        Key::Redzone,
        Key::Quarantine,
        Key::TraceChildren,
        Key::ChildSilent,
        Key::AbortOnError,
        Key::Guard,
        Key::SampleRate,
        Key::MallocFill,
        Key::FreeFill,
        Key::GuardAlign,
        Key::MaxAllocationSize,
        Key::CheckMemFunctions,
        Key::KeepStacks,
    ];

    /// The key as written in `MEMCHECK_OPTIONS`: the one place it is spelled.
    pub fn name(self) -> &'static str {
        match self {
            Key::LeakCheck => "leak",
            Key::Depth => "depth",
            Key::Redzone => "redzone",
            Key::Quarantine => "quarantine",
            Key::TraceChildren => "children",
            Key::ChildSilent => "silent",
            Key::AbortOnError => "abort",
            Key::Guard => "guard",
            Key::SampleRate => "sample",
            Key::MallocFill => "mfill",
            Key::FreeFill => "ffill",
            Key::GuardAlign => "galign",
            Key::MaxAllocationSize => "maxalloc",
            Key::CheckMemFunctions => "memfn",
            Key::KeepStacks => "stacks",
        }
    }

    pub fn from_name(s: &[u8]) -> Option<Key> {
        Self::ALL.into_iter().find(|k| k.name().as_bytes() == s)
    }

    /// The values the key takes, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Key::LeakCheck => "no, summary or full",
            Key::Depth | Key::Redzone => "a decimal number below 2^32",
            Key::Quarantine | Key::SampleRate => "a decimal number below 2^64",
            Key::TraceChildren | Key::ChildSilent | Key::AbortOnError | Key::CheckMemFunctions => {
                "0 or 1"
            }
            Key::Guard => "0 (off), 1 (overflow), 2 (underflow) or 3 (both)",
            Key::GuardAlign => "0 or a power of two up to 4096",
            Key::MaxAllocationSize => "a decimal number below 2^64",
            Key::MallocFill | Key::FreeFill => "a byte 0-255 or none",
            Key::KeepStacks => "alloc, free, alloc-and-free, alloc-then-free or none",
        }
    }
}

/// A value as encoded.
enum Value {
    Num(u64),
    Name(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Name(s) => f.write_str(s),
        }
    }
}

fn fill_value(fill: Option<Fill>) -> Option<Value> {
    match fill? {
        Fill::Byte(b) => Some(Value::Num(b as u64)),
        Fill::None => Some(Value::Name("none")),
    }
}

fn num(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(n)
}

fn flag(v: &[u8]) -> Option<bool> {
    match v {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

fn fill(v: &[u8]) -> Option<Fill> {
    if v == b"none" {
        return Some(Fill::None);
    }
    Some(Fill::Byte(u8::try_from(num(v)?).ok()?))
}

/// Why an item of `MEMCHECK_OPTIONS` was not applied. Its `Display` is one line naming the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    /// A key no memcheck build of this format writes.
    UnknownKey(&'a [u8]),
    /// A known key with a value it cannot take.
    BadValue { key: Key, value: &'a [u8] },
    /// An item without `=`.
    NotKeyValue(&'a [u8]),
}

/// Bytes shown as text: printable ASCII as is, the rest as `\xNN`, cut after 64 bytes.
struct Shown<'a>(&'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for &b in self.0.iter().take(64) {
            if b.is_ascii_graphic() || b == b' ' {
                f.write_char(b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > 64 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let var = crate::ENV_OPTIONS;
        match *self {
            OptionError::UnknownKey(k) => write!(f, "{var}: unknown key `{}`", Shown(k)),
            OptionError::BadValue { key, value } => write!(
                f,
                "{var}: bad value `{}` for `{}` (expected {})",
                Shown(value),
                key.name(),
                key.expected()
            ),
            OptionError::NotKeyValue(item) => {
                write!(f, "{var}: `{}` is not key=value", Shown(item))
            }
        }
    }
}

/// A `fmt::Write` into a fixed buffer that fails when the buffer is full.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ShimOptions {
    /// The encoded value of `key`; `None` for a fill that was not given (the key is left out).
    fn value(&self, key: Key) -> Option<Value> {
        Some(match key {
            Key::LeakCheck => Value::Name(self.leak_check.name()),
            Key::Depth => Value::Num(self.depth as u64),
            Key::Redzone => Value::Num(self.redzone as u64),
            Key::Quarantine => Value::Num(self.quarantine),
            Key::TraceChildren => Value::Num(self.trace_children as u64),
            Key::ChildSilent => Value::Num(self.child_silent as u64),
            Key::AbortOnError => Value::Num(self.abort_on_error as u64),
            Key::Guard => Value::Num(self.guard as u64),
            Key::SampleRate => Value::Num(self.sample_rate),
            Key::MallocFill => return fill_value(self.malloc_fill),
            Key::FreeFill => return fill_value(self.free_fill),
            Key::GuardAlign => Value::Num(self.guard_align as u64),
            Key::MaxAllocationSize => Value::Num(self.max_allocation_size),
            Key::CheckMemFunctions => Value::Num(self.check_mem_functions? as u64),
            Key::KeepStacks => Value::Name(self.keep_stacks.name()),
        })
    }

    /// Sets the field of `key` from its encoded value; `None` if the value is not one it takes.
    fn set(&mut self, key: Key, v: &[u8]) -> Option<()> {
        match key {
            Key::LeakCheck => self.leak_check = LeakCheck::from_name(v)?,
            Key::Depth => self.depth = u32::try_from(num(v)?).ok()?,
            Key::Redzone => self.redzone = u32::try_from(num(v)?).ok()?,
            Key::Quarantine => self.quarantine = num(v)?,
            Key::TraceChildren => self.trace_children = flag(v)?,
            Key::ChildSilent => self.child_silent = flag(v)?,
            Key::AbortOnError => self.abort_on_error = flag(v)?,
            Key::Guard => self.guard = GuardMode::from_u8(u8::try_from(num(v)?).ok()?)?,
            Key::SampleRate => self.sample_rate = num(v)?,
            Key::MallocFill => self.malloc_fill = Some(fill(v)?),
            Key::FreeFill => self.free_fill = Some(fill(v)?),
            Key::GuardAlign => {
                let a = u32::try_from(num(v)?).ok()?;
                if a != 0 && (!a.is_power_of_two() || a > 4096) {
                    return None;
                }
                self.guard_align = a;
            }
            Key::MaxAllocationSize => self.max_allocation_size = num(v)?,
            Key::CheckMemFunctions => self.check_mem_functions = Some(flag(v)?),
            Key::KeepStacks => self.keep_stacks = KeepStacks::from_name(v)?,
        }
        Some(())
    }

    /// Writes `key=value,...` (the CLI side). Fills that were not given are left out.
    pub fn encode(&self, w: &mut impl Write) -> fmt::Result {
        let mut sep = "";
        for key in Key::ALL {
            if let Some(v) = self.value(key) {
                write!(w, "{sep}{}={v}", key.name())?;
                sep = ",";
            }
        }
        Ok(())
    }

    /// [`ShimOptions::encode`] into `buf`; the length written, or `None` if it does not fit.
    pub fn encode_into(&self, buf: &mut [u8]) -> Option<usize> {
        let mut w = SliceWriter { buf, len: 0 };
        self.encode(&mut w).ok()?;
        Some(w.len)
    }

    /// Reads `MEMCHECK_OPTIONS` (the shim side): the options, or the first item it cannot apply.
    pub fn parse(s: &[u8]) -> Result<ShimOptions, OptionError<'_>> {
        let mut first = None;
        let o = Self::parse_lenient(s, |e| {
            first.get_or_insert(e);
        });
        match first {
            Some(e) => Err(e),
            None => Ok(o),
        }
    }

    /// Reads `MEMCHECK_OPTIONS`, applying every item it can and handing each one it cannot to
    /// `bad`; a field whose item is bad or missing keeps its default. Empty items are skipped;
    /// of a key given twice the last wins.
    pub fn parse_lenient<'a>(s: &'a [u8], mut bad: impl FnMut(OptionError<'a>)) -> ShimOptions {
        let mut o = ShimOptions::DEFAULT;
        for item in s.split(|&b| b == b',').filter(|i| !i.is_empty()) {
            let Some(eq) = item.iter().position(|&b| b == b'=') else {
                bad(OptionError::NotKeyValue(item));
                continue;
            };
            let (k, value) = (&item[..eq], &item[eq + 1..]);
            match Key::from_name(k) {
                None => bad(OptionError::UnknownKey(k)),
                Some(key) => {
                    if o.set(key, value).is_none() {
                        bad(OptionError::BadValue { key, value });
                    }
                }
            }
        }
        o
    }
}

impl fmt::Display for ShimOptions {
    /// The encoded form, as [`ShimOptions::encode`] writes it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.encode(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn roundtrip(o: ShimOptions) {
        let s = o.to_string();
        assert_eq!(ShimOptions::parse(s.as_bytes()), Ok(o), "{s}");
        let mut buf = [0u8; 512];
        let n = o.encode_into(&mut buf).expect("fits");
        assert_eq!(&buf[..n], s.as_bytes());
    }

    #[test]
    fn options_roundtrip() {
        roundtrip(ShimOptions::DEFAULT);
        roundtrip(ShimOptions {
            leak_check: LeakCheck::No,
            depth: 1,
            redzone: 4096,
            quarantine: 0,
            trace_children: true,
            child_silent: true,
            abort_on_error: true,
            guard: GuardMode::Underflow,
            sample_rate: 1,
            malloc_fill: Some(Fill::None),
            free_fill: Some(Fill::Byte(0)),
            guard_align: 4096,
            max_allocation_size: 0,
            check_mem_functions: Some(false),
            keep_stacks: KeepStacks::None,
        });
        roundtrip(ShimOptions {
            leak_check: LeakCheck::Summary,
            depth: u32::MAX,
            redzone: u32::MAX,
            quarantine: u64::MAX,
            guard: GuardMode::Overflow,
            sample_rate: u64::MAX,
            malloc_fill: Some(Fill::Byte(255)),
            free_fill: Some(Fill::None),
            ..ShimOptions::DEFAULT
        });
        roundtrip(ShimOptions {
            malloc_fill: Some(Fill::Byte(0xbe)),
            ..ShimOptions::DEFAULT
        });
        for keep_stacks in KeepStacks::ALL {
            roundtrip(ShimOptions {
                keep_stacks,
                ..ShimOptions::DEFAULT
            });
        }
        for leak_check in LeakCheck::ALL {
            for guard in GuardMode::ALL {
                roundtrip(ShimOptions {
                    leak_check,
                    guard,
                    ..ShimOptions::DEFAULT
                });
            }
        }
    }

    #[test]
    fn the_encoding_is_stable_and_leaves_out_what_was_not_given() {
        assert_eq!(
            ShimOptions::DEFAULT.to_string(),
            "leak=full,depth=16,redzone=16,quarantine=8388608,children=0,silent=0,abort=0,guard=0,sample=0,galign=0,maxalloc=1099511627776,stacks=alloc-and-free"
        );
        let o = ShimOptions {
            free_fill: Some(Fill::None),
            ..ShimOptions::DEFAULT
        };
        assert!(
            o.to_string().ends_with(
                ",sample=0,ffill=none,galign=0,maxalloc=1099511627776,stacks=alloc-and-free"
            ),
            "{o}"
        );
        let o = ShimOptions {
            check_mem_functions: Some(false),
            ..ShimOptions::DEFAULT
        };
        assert!(o.to_string().contains(",memfn=0,"), "{o}");
        assert_eq!(ShimOptions::parse(b""), Ok(ShimOptions::DEFAULT));
    }

    #[test]
    fn production_mode_is_leak_check_no_with_sampling_and_no_fill() {
        assert!(ShimOptions::parse(b"leak=no,guard=1,sample=1000")
            .unwrap()
            .is_production());
        assert!(ShimOptions::parse(b"leak=no,guard=3,sample=2")
            .unwrap()
            .is_production());
        for not in [
            &b"leak=summary,guard=1,sample=1000"[..],
            b"leak=no,guard=1,sample=1",
            b"leak=no,guard=1,sample=0",
            b"leak=no,guard=0,sample=1000",
            b"leak=no,guard=1,sample=1000,mfill=7",
            b"leak=no,guard=1,sample=1000,ffill=none",
        ] {
            assert!(
                !ShimOptions::parse(not).unwrap().is_production(),
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn mem_checks_are_on_unless_production_mode_or_asked_otherwise() {
        let prod = ShimOptions {
            leak_check: LeakCheck::No,
            guard: GuardMode::Overflow,
            sample_rate: 1000,
            ..ShimOptions::DEFAULT
        };
        assert!(prod.is_production());
        assert!(!prod.mem_checks());
        for (given, want) in [(Some(true), true), (Some(false), false)] {
            let o = ShimOptions {
                check_mem_functions: given,
                ..prod
            };
            assert_eq!(o.mem_checks(), want);
        }
        assert!(ShimOptions::DEFAULT.mem_checks());
        let full = ShimOptions {
            free_fill: Some(Fill::Byte(0)),
            ..prod
        };
        assert!(!full.is_production());
        assert!(full.mem_checks());
    }

    #[test]
    fn keep_stacks_values_are_valgrinds_names_and_say_which_stacks_are_walked() {
        let names: Vec<&str> = KeepStacks::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(
            names,
            ["alloc", "free", "alloc-and-free", "alloc-then-free", "none"]
        );
        for k in KeepStacks::ALL {
            assert_eq!(KeepStacks::from_name(k.name().as_bytes()), Some(k));
            assert_eq!(KeepStacks::from_u8(k as u8), Some(k));
        }
        let walked: Vec<(bool, bool)> = KeepStacks::ALL
            .iter()
            .map(|k| (k.alloc(), k.free()))
            .collect();
        assert_eq!(
            walked,
            [
                (true, false),
                (false, true),
                (true, true),
                (true, true),
                (false, false)
            ]
        );
        assert_eq!(KeepStacks::default(), ShimOptions::DEFAULT.keep_stacks);
        assert_eq!(
            ShimOptions::parse(b"stacks=alloc").map(|o| o.keep_stacks),
            Ok(KeepStacks::Alloc)
        );
    }

    #[test]
    fn every_key_has_its_own_name() {
        for (i, a) in Key::ALL.iter().enumerate() {
            assert_eq!(Key::from_name(a.name().as_bytes()), Some(*a));
            for b in &Key::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn encoding_into_a_small_buffer_fails_cleanly() {
        let mut buf = [0u8; 20];
        assert_eq!(ShimOptions::DEFAULT.encode_into(&mut buf), None);
    }

    #[test]
    fn an_unknown_key_is_reported_by_name() {
        let e = ShimOptions::parse(b"leak=full,lek=summary").unwrap_err();
        assert_eq!(e, OptionError::UnknownKey(b"lek"));
        assert_eq!(e.to_string(), "MEMCHECK_OPTIONS: unknown key `lek`");
        assert_eq!(
            ShimOptions::parse(b"depth"),
            Err(OptionError::NotKeyValue(b"depth"))
        );
    }

    #[test]
    fn a_bad_value_is_reported_not_guessed() {
        let bad = |s: &'static [u8]| ShimOptions::parse(s).unwrap_err();
        assert_eq!(
            bad(b"leak=bogus"),
            OptionError::BadValue {
                key: Key::LeakCheck,
                value: b"bogus"
            }
        );
        assert_eq!(
            bad(b"leak=bogus").to_string(),
            "MEMCHECK_OPTIONS: bad value `bogus` for `leak` (expected no, summary or full)"
        );
        for s in [
            &b"depth=x"[..],
            b"depth=",
            b"depth=-1",
            b"depth=4294967296",
            b"quarantine=18446744073709551616",
            b"guard=4",
            b"galign=3",
            b"galign=8192",
            b"children=2",
            b"abort=yes",
            b"mfill=256",
            b"ffill=off",
            b"stacks=both",
            b"stacks=",
        ] {
            assert!(
                matches!(ShimOptions::parse(s), Err(OptionError::BadValue { .. })),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
        assert_eq!(
            bad(b"mfill=\x01\xff").to_string(),
            "MEMCHECK_OPTIONS: bad value `\\x01\\xff` for `mfill` (expected a byte 0-255 or none)"
        );
    }

    #[test]
    fn lenient_parsing_keeps_the_defaults_of_bad_items_and_applies_the_rest() {
        let mut errors = Vec::new();
        let o =
            ShimOptions::parse_lenient(b"leak=bogus,depth=7,,zzz=1,ffill=none", |e| errors.push(e));
        assert_eq!(
            o,
            ShimOptions {
                depth: 7,
                free_fill: Some(Fill::None),
                ..ShimOptions::DEFAULT
            }
        );
        assert_eq!(
            errors,
            [
                OptionError::BadValue {
                    key: Key::LeakCheck,
                    value: b"bogus"
                },
                OptionError::UnknownKey(b"zzz")
            ]
        );
    }
}
