//! Residency of a live process's pages from `/proc/PID/pagemap`: for each page, present in RAM,
//! swapped out, or not present. Only the present and swapped bits are used, which the owner of
//! the process may read (page frame numbers, which need CAP_SYS_ADMIN, are never looked at).
use super::{convert, ProcError};
use crate::residency_map::MapBuilder;
use procfs::process::{PageInfo, PageMap};

/// Page counts of one range of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResidency {
    pub pages: u64,
    pub resident_pages: u64,
    pub swapped_pages: u64,
    /// One character per bucket of pages: see [`MapBuilder`].
    pub map: String,
}

impl RangeResidency {
    pub fn not_present_pages(&self) -> u64 {
        self.pages - self.resident_pages - self.swapped_pages
    }
}

/// An open `/proc/PID/pagemap`.
pub struct Pagemap {
    pid: i32,
    inner: PageMap,
}

/// Pages read from pagemap per call, to bound memory on huge regions.
const CHUNK_PAGES: usize = 1 << 16;

impl Pagemap {
    pub fn open(pid: i32) -> Result<Pagemap, ProcError> {
        let proc = super::process(pid)?;
        let inner = proc
            .pagemap()
            .map_err(|e| convert(e, pid, &format!("/proc/{pid}/pagemap")))?;
        Ok(Pagemap { pid, inner })
    }

    /// Residency of the pages of `[start, end)` (page-aligned), with a map `width` characters
    /// wide.
    pub fn range(
        &mut self,
        start: u64,
        end: u64,
        width: usize,
    ) -> Result<RangeResidency, ProcError> {
        let ps = super::page_size();
        let first = (start / ps) as usize;
        let last = end.div_ceil(ps) as usize;
        let pages = (last - first) as u64;
        let mut map = MapBuilder::new(pages, width);
        let mut out = RangeResidency {
            pages,
            ..Default::default()
        };
        let mut at = first;
        while at < last {
            let upto = (at + CHUNK_PAGES).min(last);
            let infos = self
                .inner
                .get_range_info(at..upto)
                .map_err(|e| convert(e, self.pid, &format!("/proc/{}/pagemap", self.pid)))?;
            for (i, info) in infos.iter().enumerate() {
                let present = match info {
                    PageInfo::MemoryPage(f) => {
                        f.contains(procfs::process::MemoryPageFlags::PRESENT)
                    }
                    PageInfo::SwapPage(_) => {
                        out.swapped_pages += 1;
                        false
                    }
                };
                if present {
                    out.resident_pages += 1;
                }
                map.record((at + i - first) as u64, present);
            }
            at = upto;
        }
        out.map = map.finish();
        Ok(out)
    }
}

/// Residency of a range known to hold no pages at all (smaps says Rss and Swap are 0), without
/// reading pagemap: huge reservations would otherwise cost 8 bytes of pagemap per page.
pub fn empty_range(start: u64, end: u64, width: usize) -> RangeResidency {
    let ps = super::page_size();
    let pages = (end.div_ceil(ps)) - start / ps;
    RangeResidency {
        pages,
        map: MapBuilder::new(pages, width).finish(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_touched_buffer_is_present_and_an_untouched_one_is_not() {
        let ps = super::super::page_size() as usize;
        // A page-aligned slice of a buffer we wrote to: every page present.
        let mut buf = vec![1u8; 16 * ps];
        for b in buf.iter_mut().step_by(ps) {
            *b = 2;
        }
        let addr = buf.as_ptr() as u64;
        let start = addr.div_ceil(ps as u64) * ps as u64;
        let end = start + 8 * ps as u64;
        let mut pm = Pagemap::open(std::process::id() as i32).unwrap();
        let r = pm.range(start, end, 8).unwrap();
        assert_eq!(r.pages, 8);
        assert_eq!(r.resident_pages, 8);
        assert_eq!(r.map, "OOOOOOOO");
        std::hint::black_box(&buf);
        let e = empty_range(0x1000, 0x5000, 4);
        assert_eq!(
            (e.pages, e.resident_pages, e.not_present_pages()),
            (4, 0, 4)
        );
    }
}
