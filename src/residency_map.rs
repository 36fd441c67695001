//! The compact residency map of `memcheck residency`: a line of characters, each standing for an
//! equal share of a file's or a region's pages: `O` all of them in memory, `o` some, `.` none.

/// Builds the compact residency map: `width` characters, each standing for an equal share of the
/// pages: `O` all of them resident, `o` some, `.` none.
#[derive(Debug, Clone)]
pub struct MapBuilder {
    pages: u64,
    buckets: Vec<(u32, u32)>,
}

impl MapBuilder {
    /// A map of `pages` pages, `width` characters wide (fewer when there are fewer pages).
    pub fn new(pages: u64, width: usize) -> MapBuilder {
        let width = (width as u64).min(pages) as usize;
        MapBuilder {
            pages,
            buckets: vec![(0, 0); width],
        }
    }

    /// Records page `index` (0-based, below `pages`).
    pub fn record(&mut self, index: u64, resident: bool) {
        if self.buckets.is_empty() {
            return;
        }
        let b = (index as u128 * self.buckets.len() as u128 / self.pages as u128) as usize;
        let slot = &mut self.buckets[b];
        slot.1 += 1;
        slot.0 += resident as u32;
    }

    pub fn finish(&self) -> String {
        self.buckets
            .iter()
            .map(|&(r, t)| match r {
                0 => '.',
                r if r == t => 'O',
                _ => 'o',
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_show_full_partial_and_empty_buckets() {
        let mut m = MapBuilder::new(8, 4);
        for (i, r) in [true, true, true, false, false, false, true, true]
            .into_iter()
            .enumerate()
        {
            m.record(i as u64, r);
        }
        assert_eq!(m.finish(), "Oo.O");
        // Fewer pages than columns: one column per page.
        let mut m = MapBuilder::new(2, 60);
        m.record(1, true);
        assert_eq!(m.finish(), ".O");
        assert_eq!(MapBuilder::new(0, 60).finish(), "");
        // Uneven split: every page lands in some bucket.
        let mut m = MapBuilder::new(10, 3);
        (0..10).for_each(|i| m.record(i, true));
        assert_eq!(m.finish(), "OOO");
    }
}
