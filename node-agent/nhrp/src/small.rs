//! [`SmallList`]: the short lists of CIEs and extensions that the engine builds for each
//! reply, kept on the stack so that answering a request allocates nothing.

/// A list of `Copy` items held inline up to `N` and on the heap beyond.
#[derive(Debug, Clone)]
pub(crate) struct SmallList<T: Copy, const N: usize> {
    /// The first `len` items, while the list fits.
    inline: [T; N],
    len: usize,
    /// Every item, once the list outgrew `inline`.
    heap: Vec<T>,
}

impl<T: Copy, const N: usize> SmallList<T, N> {
    /// An empty list; `fill` only initializes the unused inline slots.
    pub(crate) fn new(fill: T) -> Self {
        SmallList {
            inline: [fill; N],
            len: 0,
            heap: Vec::new(),
        }
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: T) {
        if !self.heap.is_empty() {
            self.heap.push(item);
        } else if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = item;
            self.len += 1;
        } else {
            self.heap.reserve(2 * N.max(1));
            self.heap.extend_from_slice(&self.inline);
            self.heap.push(item);
        }
    }

    /// The items.
    pub(crate) fn as_slice(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    /// The items, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

impl<T: Copy, const N: usize> Extend<T> for SmallList<T, N> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        items.into_iter().for_each(|item| self.push(item));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_the_heap_in_order() {
        let mut list: SmallList<u32, 3> = SmallList::new(0);
        assert!(list.as_slice().is_empty());
        list.extend(1..=3);
        assert_eq!(list.as_slice(), &[1, 2, 3]);
        assert!(list.heap.is_empty());
        list.extend(4..=7);
        assert_eq!(list.as_slice(), &[1, 2, 3, 4, 5, 6, 7]);
        list.as_mut_slice()[6] = 70;
        assert_eq!(list.as_slice().last(), Some(&70));
        let mut empty: SmallList<u8, 0> = SmallList::new(0);
        empty.push(9);
        assert_eq!(empty.as_slice(), &[9]);
    }
}
