//! The Internet checksum (RFC 1071), used by IPv4, GRE (RFC 2784 section 2.5) and NHRP
//! (RFC 2332 section 5.2.0.1, `ar$chksum`).

/// Adds `data` to a running one's-complement sum of 16-bit big-endian words. An odd trailing
/// byte is padded with zero, as RFC 1071 section 4.1 prescribes.
///
/// Words are added two at a time into a 64-bit sum, folded once at the end (RFC 1071
/// section 2 (C): the sum may be deferred and carries folded later).
pub fn accumulate(sum: u32, data: &[u8]) -> u32 {
    let mut wide = u64::from(sum);
    let mut quads = data.chunks_exact(4);
    for quad in &mut quads {
        // A 64-bit sum of 32-bit values cannot overflow for any slice that fits in memory.
        wide += u64::from(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]));
    }
    let rest = quads.remainder();
    if let [a, b, ..] = rest {
        wide += u64::from(u16::from_be_bytes([*a, *b]));
    }
    if rest.len() % 2 == 1 {
        wide += u64::from(rest[rest.len() - 1]) << 8;
    }
    // Fold to 16 bits plus a carry, which fits the u32 running sum.
    while wide >> 32 != 0 {
        wide = (wide & 0xffff_ffff) + (wide >> 32);
    }
    let folded = (wide & 0xffff) + (wide >> 16);
    folded as u32
}

/// Folds a running sum and complements it: the value to store in a checksum field.
pub fn finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data`. Over data that contains a correct checksum field the
/// result is zero.
pub fn checksum(data: &[u8]) -> u16 {
    finish(accumulate(0, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    /// The word-at-a-time sum of RFC 1071 section 4.1, as a reference.
    fn reference(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn matches_the_word_at_a_time_sum() {
        let data: std::vec::Vec<u8> = (0..=255u8).cycle().take(3000).map(|b| b ^ 0x5a).collect();
        for len in (0..64).chain([1499, 1500, 2999, 3000]) {
            assert_eq!(
                checksum(&data[..len]),
                reference(&data[..len]),
                "length {len}"
            );
        }
        let ones = [0xffu8; 1001];
        assert_eq!(checksum(&ones), reference(&ones));
        // A running sum carries over between calls on even-length pieces.
        let split = finish(accumulate(accumulate(0, &data[..6]), &data[6..101]));
        assert_eq!(split, reference(&data[..101]));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), checksum(&[0xab, 0x00]));
    }

    #[test]
    fn verifies_to_zero() {
        let mut data = [
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }
}
