//! The anti-replay window of an inbound SA (RFC 4303 section 3.4.3), kept as the ring of 64-bit
//! words of RFC 6479 so that sliding the window clears whole words instead of shifting bits,
//! and the inference of the untransmitted high half of extended sequence numbers (RFC 4303
//! Appendix A2).
//!
//! The receiver checks a sequence number against the window before it spends work on the
//! packet, and commits it only after the ICV verifies (RFC 4303 section 3.4.3), so a forged
//! packet can neither be accepted twice nor move the window.

/// Words in the bitmap ring (RFC 6479 section 2: a power of two, so indexing is a mask).
pub const WORDS: usize = 32;

/// Packets the window accepts behind the highest one received: the ring minus the word that
/// the top is filling (RFC 6479 section 2), 1984.
pub const WINDOW_SIZE: u64 = ((WORDS - 1) * 64) as u64;

// Issue 4 asks for at least 1024 packets.
const _: () = assert!(WINDOW_SIZE >= 1024);

const WORD_MASK: u64 = WORDS as u64 - 1;

/// Why the window refuses a sequence number; both are counted as replay drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplayError {
    /// The sequence number was already received.
    #[error("duplicate sequence number")]
    Duplicate,
    /// The sequence number is behind the window (or 0, which no sender uses: RFC 4303
    /// section 3.3.3 starts at 1).
    #[error("sequence number behind the anti-replay window")]
    TooOld,
}

/// The sliding window of one inbound SA: the highest sequence number received and a bitmap
/// of the [`WINDOW_SIZE`] numbers below it. Sequence numbers are full 64-bit values; with
/// 32-bit sequence numbers the high half stays zero.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest sequence number committed; 0 before the first.
    top: u64,
    /// Bit `s % 64` of word `(s / 64) % WORDS` marks `s` as received.
    bitmap: [u64; WORDS],
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .field("size", &WINDOW_SIZE)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every sequence number from 1 is new.
    pub const fn new() -> Self {
        ReplayWindow {
            top: 0,
            bitmap: [0; WORDS],
        }
    }

    /// The highest sequence number committed so far (0 before the first packet).
    pub const fn top(&self) -> u64 {
        self.top
    }

    const fn slot(seq: u64) -> (usize, u64) {
        (((seq >> 6) & WORD_MASK) as usize, 1 << (seq & 63))
    }

    /// Checks a sequence number without recording it (RFC 4303 section 3.4.3, the check
    /// before integrity verification).
    ///
    /// # Errors
    /// [`ReplayError::TooOld`] behind the window, [`ReplayError::Duplicate`] inside it and
    /// already received.
    #[inline]
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq > self.top {
            return Ok(());
        }
        if seq == 0 || self.top - seq >= WINDOW_SIZE {
            return Err(ReplayError::TooOld);
        }
        let (word, bit) = Self::slot(seq);
        if self.bitmap[word] & bit != 0 {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records a sequence number whose packet verified, sliding the window forward if it is
    /// the new highest (RFC 6479 section 2: the words passed over are cleared). A number the
    /// window would refuse is ignored.
    pub fn commit(&mut self, seq: u64) {
        if self.check(seq).is_ok() {
            self.accept(seq);
        }
    }

    /// Records a sequence number that [`ReplayWindow::check`] accepted, with no change to the
    /// window since: the inbound SA's path, which checks before the ICV and records after.
    #[inline]
    pub(crate) fn accept(&mut self, seq: u64) {
        if seq > self.top {
            let old_word = self.top >> 6;
            let new_word = seq >> 6;
            let passed = (new_word - old_word).min(WORDS as u64);
            // `passed` is at most WORDS, so the exclusive range cannot overflow.
            for i in 1..passed + 1 {
                self.bitmap[((old_word + i) & WORD_MASK) as usize] = 0;
            }
            self.top = seq;
        }
        let (word, bit) = Self::slot(seq);
        self.bitmap[word] |= bit;
    }

    /// The full 64-bit sequence number of a packet carrying `seq_lo`, with extended sequence
    /// numbers: the high half is the one that puts the packet in or ahead of the window (RFC
    /// 4303 Appendix A2.2). A wrong guess (after 2^32 lost packets) fails the ICV; this crate
    /// does not attempt the resynchronisation of Appendix A3.
    pub fn infer_esn(&self, seq_lo: u32) -> u64 {
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        // W - 1 in the RFC's formulas: the bottom of the window is Tl - W + 1.
        let w1 = (WINDOW_SIZE - 1) as u32;
        let seq_hi = if tl >= w1 {
            // Case A: the window lies within one 2^32 subspace.
            if seq_lo >= tl - w1 {
                th
            } else {
                th.saturating_add(1)
            }
        } else if seq_lo >= tl.wrapping_sub(w1) {
            // Case B, window spanning two subspaces: the packet is from the lower one. Before
            // the first 2^32 there is no lower one, so it is ahead in this one.
            th.saturating_sub(1)
        } else {
            th
        };
        (u64::from(seq_hi) << 32) | u64::from(seq_lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn accept(w: &mut ReplayWindow, seq: u64) -> Result<(), ReplayError> {
        w.check(seq)?;
        w.commit(seq);
        Ok(())
    }

    #[test]
    fn in_order_and_duplicates() {
        let mut w = ReplayWindow::new();
        assert_eq!(accept(&mut w, 0), Err(ReplayError::TooOld));
        for s in 1..=5000 {
            assert_eq!(accept(&mut w, s), Ok(()));
            assert_eq!(accept(&mut w, s), Err(ReplayError::Duplicate));
        }
        assert_eq!(w.top(), 5000);
        assert_eq!(
            accept(&mut w, 5000 - WINDOW_SIZE + 1),
            Err(ReplayError::Duplicate)
        );
        assert_eq!(accept(&mut w, 5000 - WINDOW_SIZE), Err(ReplayError::TooOld));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 3000).unwrap();
        // Every number in the window is new once, in any order.
        for s in (3001 - WINDOW_SIZE..3000).rev().step_by(3) {
            assert_eq!(accept(&mut w, s), Ok(()), "{s}");
        }
        for s in (3001 - WINDOW_SIZE..3000).rev().step_by(3) {
            assert_eq!(accept(&mut w, s), Err(ReplayError::Duplicate), "{s}");
        }
        assert_eq!(accept(&mut w, 3001 - WINDOW_SIZE + 1), Ok(()));
        assert_eq!(accept(&mut w, 3000 - WINDOW_SIZE), Err(ReplayError::TooOld));
    }

    #[test]
    fn large_jumps_slide_the_window() {
        let mut w = ReplayWindow::new();
        for s in 1..=100 {
            accept(&mut w, s).unwrap();
        }
        // A jump of more than the whole ring clears every word.
        let far = 100 + 10 * WINDOW_SIZE + 17;
        accept(&mut w, far).unwrap();
        for s in far - WINDOW_SIZE + 1..far {
            assert_eq!(w.check(s), Ok(()), "{s}");
        }
        assert_eq!(w.check(far), Err(ReplayError::Duplicate));
        assert_eq!(w.check(100), Err(ReplayError::TooOld));
        // A jump of a few words clears exactly the words passed over.
        let near = far + 200;
        accept(&mut w, near).unwrap();
        assert_eq!(w.check(far), Err(ReplayError::Duplicate));
        assert_eq!(w.check(far + 1), Ok(()));
        assert_eq!(w.check(near - 1), Ok(()));
        // Committing a refused number changes nothing.
        let before = w.clone();
        w.commit(1);
        w.commit(near);
        assert_eq!(w, before);
    }

    #[test]
    fn esn_inference_across_2_pow_32() {
        let mut w = ReplayWindow::new();
        // Fresh window: small numbers are in subspace 0, so are huge ones (ahead, not behind).
        assert_eq!(w.infer_esn(1), 1);
        assert_eq!(w.infer_esn(u32::MAX), u64::from(u32::MAX));
        let top = (1u64 << 32) - 10;
        accept(&mut w, top).unwrap();
        // Case A: a low number after the top wraps into the next subspace.
        assert_eq!(w.infer_esn(5), (1 << 32) + 5);
        assert_eq!(w.infer_esn(0), 1 << 32);
        assert_eq!(w.infer_esn(top as u32 - 100), top - 100);
        assert_eq!(w.infer_esn(u32::MAX), u64::from(u32::MAX));
        accept(&mut w, (1 << 32) + 5).unwrap();
        assert_eq!(w.top(), (1 << 32) + 5);
        // Case B: the window spans the boundary; a high number is a late packet from below.
        assert_eq!(w.infer_esn(u32::MAX - 3), (1 << 32) - 4);
        assert_eq!(w.infer_esn(3), (1 << 32) + 3);
        assert_eq!(w.infer_esn(1000), (1 << 32) + 1000);
        let late = w.infer_esn(u32::MAX - 3);
        assert_eq!(accept(&mut w, late), Ok(()));
        let old_top = w.infer_esn(top as u32);
        assert_eq!(accept(&mut w, old_top), Err(ReplayError::Duplicate));
        // Far below the window's bottom in case B: guessed as the current subspace (far ahead).
        let bottom = w.top() - WINDOW_SIZE + 1;
        assert_eq!(w.infer_esn(bottom as u32), bottom);
        assert_eq!(
            w.infer_esn(bottom as u32 - 1),
            ((bottom - 1) & 0xffff_ffff) + (1 << 32)
        );
    }

    /// Operations on the window: steps forward (small and large) and back.
    fn op() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -2100i64..64,
            1 => 64i64..5000,
            1 => Just(0i64),
        ]
    }

    proptest! {
        #[test]
        fn matches_reference_model(
            start in prop_oneof![Just(0u64), 1u64..1 << 40, Just((1u64 << 32) - 3000)],
            ops in proptest::collection::vec(op(), 1..600),
        ) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::new();
            let mut top = 0u64;
            let mut cursor = start;
            for delta in ops {
                let seq = cursor.saturating_add_signed(delta);
                let expected = if seq == 0 || (seq <= top && top - seq >= WINDOW_SIZE) {
                    Err(ReplayError::TooOld)
                } else if seen.contains(&seq) {
                    Err(ReplayError::Duplicate)
                } else {
                    Ok(())
                };
                prop_assert_eq!(w.check(seq), expected, "seq {} top {}", seq, top);
                if expected.is_ok() {
                    w.commit(seq);
                    seen.insert(seq);
                    top = top.max(seq);
                    cursor = top;
                }
                prop_assert_eq!(w.top(), top);
            }
        }

        #[test]
        fn esn_inference_recovers_numbers_near_the_top(
            top in 1u64..1 << 50,
            offset in -(WINDOW_SIZE as i64 - 1)..(1i64 << 31),
        ) {
            let mut w = ReplayWindow::new();
            w.commit(top);
            let seq = top.saturating_add_signed(offset);
            prop_assume!(seq >= 1);
            prop_assert_eq!(w.infer_esn(seq as u32), seq);
        }
    }
}
