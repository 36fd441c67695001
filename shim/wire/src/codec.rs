//! The framing of a record file: the file header (magic, format version, pointer width), the
//! `tag: u32, len: u32, payload[len]` prefix of every record, and the little-endian writer
//! ([`Enc`], into a caller's buffer, never allocating) and reader ([`Dec`]).

/// The first eight bytes of every record file.
pub const MAGIC: [u8; 8] = *b"MCHKREC\0";
/// Bumped on every incompatible change of any record below.
pub const VERSION: u32 = 1;
/// Size of the file header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of a record's tag + length prefix.
pub const RECORD_PREFIX: usize = 8;

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
    pub const ALLOCS: u32 = 9;
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
    e.bytes(&MAGIC)
        .u32(VERSION)
        .u32(core::mem::size_of::<usize>() as u32);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_version_are_checked() {
        let mut buf = [0u8; HEADER_LEN];
        assert_eq!(encode_header(&mut buf), HEADER_LEN);
        assert_eq!(check_header(&buf), Ok(&[][..]));
        buf[8] = 99;
        assert_eq!(check_header(&buf), Err(DecodeError::Version(99)));
        assert_eq!(check_header(b"garbage!garbage!"), Err(DecodeError::Magic));
    }
}
