//! IKE message fragmentation (RFC 7383): splitting the plaintext inner payloads of an SK
//! message into the chunks that the engine encrypts as SKF payloads (section 2.5), and
//! reassembling the decrypted chunks of a received message (section 2.6).
//!
//! Both sides work on plaintext: each SKF payload is encrypted and authenticated on its own,
//! so the engine decrypts a fragment (and drops it when its ICV fails) before it reaches a
//! [`Reassembly`]. Timing is the caller's: RFC 7383 section 2.6 leaves to the implementation
//! how long incomplete fragments are kept, so the engine keeps one [`Reassembly`] per (IKE
//! SA, message ID) and drops it when that message ID leaves the window, when the IKE SA
//! goes, or at a deadline of its own; this module reads no clock.

use dmvpn_wire::ikev2::PayloadType;

/// IPv4 header without options (RFC 791).
pub const IPV4_HEADER_LEN: usize = 20;
/// IPv6 header without extension headers (RFC 8200).
pub const IPV6_HEADER_LEN: usize = 40;
/// UDP header (RFC 768).
pub const UDP_HEADER_LEN: usize = 8;
/// The non-ESP marker before IKE messages on port 4500 (RFC 3948 section 2.2).
pub const NON_ESP_MARKER_LEN: usize = 4;
/// IKE header (RFC 7296 section 3.1).
pub const IKE_HEADER_LEN: usize = 28;
/// SKF payload header: generic payload header and the two fragment numbers (RFC 7383
/// section 2.5).
pub const SKF_HEADER_LEN: usize = 8;

/// Default size of the IPv4 datagrams that carry fragments, IP header included: the 576
/// bytes RFC 7383 section 2.5.1 recommends for IPv4.
pub const DEFAULT_MAX_DATAGRAM_V4: usize = 576;
/// Default size of the IPv6 datagrams that carry fragments, IP header included: the 1280
/// bytes (the IPv6 minimum MTU) RFC 7383 section 2.5.1 recommends for IPv6.
pub const DEFAULT_MAX_DATAGRAM_V6: usize = 1280;

/// How an SKF message is framed on the wire: what surrounds the plaintext chunk in one
/// datagram (RFC 7383 section 2.5.1 counts the whole IP datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkfFraming {
    /// IPv6 (40-byte header) rather than IPv4 (20).
    pub ipv6: bool,
    /// The message goes to port 4500 behind a non-ESP marker.
    pub non_esp_marker: bool,
    /// Length of the cipher's IV in the SKF payload (8 for AES-GCM and ChaCha20-Poly1305,
    /// RFC 5282 section 3, RFC 7634 section 2).
    pub iv_len: usize,
    /// Length of the integrity check value (16 for the AEADs above).
    pub icv_len: usize,
    /// The block size plaintext, padding and pad length are aligned to (1 for no
    /// alignment; RFC 7296 section 3.14).
    pub block_len: usize,
}

impl SkfFraming {
    /// The framing of the engine's SK ciphers (AES-GCM-16 and ChaCha20-Poly1305: 8-byte IV,
    /// 16-byte ICV, no alignment; RFC 5282 section 3, RFC 7634 section 2).
    pub fn for_aead(ipv6: bool, non_esp_marker: bool) -> Self {
        SkfFraming {
            ipv6,
            non_esp_marker,
            iv_len: crate::crypto::sk::IV_LEN,
            icv_len: crate::crypto::sk::ICV_LEN,
            block_len: 1,
        }
    }

    /// The size of the IP datagram that carries an IKE message of `message_len` bytes with
    /// this framing: IP and UDP headers, the non-ESP marker if any, and the message.
    pub fn datagram_len(&self, message_len: usize) -> usize {
        let ip = if self.ipv6 {
            IPV6_HEADER_LEN
        } else {
            IPV4_HEADER_LEN
        };
        let marker = if self.non_esp_marker {
            NON_ESP_MARKER_LEN
        } else {
            0
        };
        ip + UDP_HEADER_LEN + marker + message_len
    }

    /// The largest plaintext chunk that fits an SKF message in a datagram of
    /// `max_datagram` bytes (IP header included, RFC 7383 section 2.5.1), leaving room for
    /// the pad length octet and the padding to `block_len` (RFC 7296 section 3.14).
    ///
    /// # Errors
    /// [`FragmentError::DatagramTooSmall`] when not one plaintext octet fits, or
    /// `block_len` is 0.
    pub fn max_chunk_len(&self, max_datagram: usize) -> Result<usize, FragmentError> {
        let ip = if self.ipv6 {
            IPV6_HEADER_LEN
        } else {
            IPV4_HEADER_LEN
        };
        let marker = if self.non_esp_marker {
            NON_ESP_MARKER_LEN
        } else {
            0
        };
        let overhead = ip + UDP_HEADER_LEN + marker + IKE_HEADER_LEN + SKF_HEADER_LEN;
        let room = max_datagram
            .checked_sub(overhead + self.iv_len + self.icv_len)
            .ok_or(FragmentError::DatagramTooSmall)?;
        // Plaintext, padding and the pad length octet fill whole blocks.
        let aligned = room
            .checked_div(self.block_len)
            .ok_or(FragmentError::DatagramTooSmall)?
            * self.block_len;
        match aligned.checked_sub(1) {
            Some(chunk) if chunk > 0 => Ok(chunk),
            _ => Err(FragmentError::DatagramTooSmall),
        }
    }
}

/// Bounds on fragments, for splitting and for reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentLimits {
    /// The most fragments one message may have.
    pub max_fragments: u16,
    /// The most plaintext bytes one reassembled message may have.
    pub max_bytes: usize,
}

impl Default for FragmentLimits {
    /// 32 fragments and 16 KiB: room for a certificate chain in 576-byte IPv4 datagrams
    /// (32 chunks of 483 bytes with AES-GCM), while a peer can make us hold at most 16 KiB
    /// per incomplete message.
    fn default() -> Self {
        FragmentLimits {
            max_fragments: 32,
            max_bytes: 16 * 1024,
        }
    }
}

/// Why a message was not split, or a fragment was refused. Each variant is one counter label
/// ([`FragmentError::label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// The datagram size leaves no room for plaintext.
    #[error("maximum datagram too small for an IKE fragment")]
    DatagramTooSmall,
    /// A chunk size of zero.
    #[error("fragment chunk size is zero")]
    EmptyChunk,
    /// The message needs, or a fragment announces, more fragments than the limit.
    #[error("{total} fragments, more than the limit")]
    TooManyFragments {
        /// The number of fragments needed or announced.
        total: usize,
    },
    /// The message is larger than the limit; a reassembly that would grow past it is
    /// dropped.
    #[error("message larger than the reassembly limit")]
    TooLarge,
    /// Fragment number 0 (RFC 7383 section 2.6).
    #[error("fragment number 0")]
    ZeroNumber,
    /// A fragment number above the total (RFC 7383 section 2.6).
    #[error("fragment {number} of {total}")]
    NumberAboveTotal {
        /// The fragment number.
        number: u16,
        /// The total fragments.
        total: u16,
    },
    /// A fragment other than the first names an inner payload (RFC 7383 section 2.5).
    #[error("fragment {0} has a Next Payload")]
    NextPayloadInLaterFragment(u16),
    /// A fragment with fewer total fragments than those being reassembled: discarded
    /// (RFC 7383 section 2.6).
    #[error("stale fragment: total {total}, reassembling {current}")]
    StaleTotal {
        /// The total of the discarded fragment.
        total: u16,
        /// The total of the fragments kept.
        current: u16,
    },
}

impl FragmentError {
    /// A short stable name for counters.
    pub fn label(&self) -> &'static str {
        match self {
            FragmentError::DatagramTooSmall => "datagram_too_small",
            FragmentError::EmptyChunk => "empty_chunk",
            FragmentError::TooManyFragments { .. } => "too_many_fragments",
            FragmentError::TooLarge => "too_large",
            FragmentError::ZeroNumber => "zero_number",
            FragmentError::NumberAboveTotal { .. } => "number_above_total",
            FragmentError::NextPayloadInLaterFragment(_) => "next_payload_in_later_fragment",
            FragmentError::StaleTotal { .. } => "stale_total",
        }
    }
}

/// One fragment's plaintext and numbers: the content of an SKF payload before encryption
/// or after decryption (RFC 7383 section 2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The fragment number, from 1.
    pub number: u16,
    /// The number of fragments of the message.
    pub total: u16,
    /// The SKF Next Payload field: the first inner payload in fragment 1, none in the others.
    pub first_inner: PayloadType,
    /// This fragment's part of the inner payloads.
    pub data: &'a [u8],
}

/// The fragments of one message, in order (see [`split`]).
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    first_inner: PayloadType,
    payloads: &'a [u8],
    chunk_len: usize,
    next: u16,
    total: u16,
}

impl<'a> Iterator for Fragments<'a> {
    type Item = Fragment<'a>;

    fn next(&mut self) -> Option<Fragment<'a>> {
        if self.next > self.total {
            return None;
        }
        let number = self.next;
        self.next += 1;
        let len = self.chunk_len.min(self.payloads.len());
        let (data, rest) = self.payloads.split_at(len);
        self.payloads = rest;
        Some(Fragment {
            number,
            total: self.total,
            first_inner: if number == 1 {
                self.first_inner
            } else {
                PayloadType::None
            },
            data,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.total.saturating_sub(self.next.saturating_sub(1)));
        (left, Some(left))
    }
}

impl ExactSizeIterator for Fragments<'_> {}

/// Splits the plaintext inner payloads of an SK message (its first payload type and the
/// payload chain) into chunks of at most `chunk_len` bytes, numbered 1 to N; only fragment 1
/// carries `first_inner` (RFC 7383 section 2.5). An empty chain is one empty fragment.
///
/// `chunk_len` comes from [`SkfFraming::max_chunk_len`]; on retransmission with a smaller
/// size the message is split again (RFC 7383 section 2.5.2).
///
/// # Errors
/// [`FragmentError::EmptyChunk`] for a zero `chunk_len`;
/// [`FragmentError::TooManyFragments`] or [`FragmentError::TooLarge`] past `limits`.
pub fn split(
    first_inner: PayloadType,
    payloads: &[u8],
    chunk_len: usize,
    limits: FragmentLimits,
) -> Result<Fragments<'_>, FragmentError> {
    if chunk_len == 0 {
        return Err(FragmentError::EmptyChunk);
    }
    if payloads.len() > limits.max_bytes {
        return Err(FragmentError::TooLarge);
    }
    let count = payloads.len().div_ceil(chunk_len).max(1);
    let total = u16::try_from(count)
        .ok()
        .filter(|&total| total <= limits.max_fragments)
        .ok_or(FragmentError::TooManyFragments { total: count })?;
    Ok(Fragments {
        first_inner,
        payloads,
        chunk_len,
        next: 1,
        total,
    })
}

/// A whole message put back together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// The first inner payload type (fragment 1's Next Payload).
    pub first_inner: PayloadType,
    /// The inner payload chain.
    pub payloads: Vec<u8>,
}

/// What a fragment did to a [`Reassembly`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Kept; more fragments are missing.
    Stored,
    /// Its total was larger than the fragments kept so far, which were dropped: the sender
    /// split the message again into smaller fragments (RFC 7383 section 2.6). Kept; more are
    /// missing.
    Restarted,
    /// A fragment number already received: ignored.
    Duplicate,
    /// The last missing fragment: here is the message, and the reassembly is empty again.
    Complete(Reassembled),
}

/// The decrypted fragments of one received message (one IKE SA and message ID) until all
/// have come (RFC 7383 section 2.6). Memory is bounded by [`FragmentLimits`]: at most
/// `max_fragments` slots and `max_bytes` of plaintext.
#[derive(Debug, Clone)]
pub struct Reassembly {
    limits: FragmentLimits,
    total: u16,
    first_inner: PayloadType,
    chunks: Vec<Option<Vec<u8>>>,
    received: u16,
    bytes: usize,
}

impl Reassembly {
    /// An empty reassembly.
    pub fn new(limits: FragmentLimits) -> Self {
        Reassembly {
            limits,
            total: 0,
            first_inner: PayloadType::None,
            chunks: Vec::new(),
            received: 0,
            bytes: 0,
        }
    }

    /// The total announced by the fragments kept, 0 before the first.
    pub fn total(&self) -> u16 {
        self.total
    }

    /// How many distinct fragments are kept.
    pub fn received(&self) -> u16 {
        self.received
    }

    /// The plaintext bytes kept.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    fn reset(&mut self) {
        *self = Reassembly::new(self.limits);
    }

    /// Takes one authenticated, decrypted fragment (RFC 7383 section 2.6).
    ///
    /// A fragment with a larger total than those kept drops them and starts over; one with
    /// a smaller total is refused. The fragment that completes the message returns it and
    /// empties the reassembly.
    ///
    /// # Errors
    /// [`FragmentError::ZeroNumber`], [`FragmentError::NumberAboveTotal`],
    /// [`FragmentError::NextPayloadInLaterFragment`], [`FragmentError::TooManyFragments`]
    /// and [`FragmentError::StaleTotal`] refuse the fragment and keep the others;
    /// [`FragmentError::TooLarge`] also drops everything kept, as the message can never fit.
    pub fn accept(&mut self, fragment: Fragment<'_>) -> Result<Progress, FragmentError> {
        let Fragment {
            number,
            total,
            first_inner,
            data,
        } = fragment;
        if number == 0 {
            return Err(FragmentError::ZeroNumber);
        }
        if number > total {
            return Err(FragmentError::NumberAboveTotal { number, total });
        }
        if number != 1 && first_inner != PayloadType::None {
            return Err(FragmentError::NextPayloadInLaterFragment(number));
        }
        if total > self.limits.max_fragments {
            return Err(FragmentError::TooManyFragments {
                total: usize::from(total),
            });
        }
        let restarted = self.total != 0 && total > self.total;
        if total < self.total {
            return Err(FragmentError::StaleTotal {
                total,
                current: self.total,
            });
        }
        if restarted || self.total == 0 {
            self.reset();
            self.total = total;
            self.chunks.resize(usize::from(total), None);
        }
        let index = usize::from(number - 1);
        let Some(slot) = self.chunks.get_mut(index) else {
            // Unreachable: chunks has `total` slots and number <= total.
            return Err(FragmentError::NumberAboveTotal { number, total });
        };
        if slot.is_some() {
            return Ok(Progress::Duplicate);
        }
        if data.len() > self.limits.max_bytes - self.bytes {
            self.reset();
            return Err(FragmentError::TooLarge);
        }
        *slot = Some(data.to_vec());
        self.bytes += data.len();
        self.received += 1;
        if number == 1 {
            self.first_inner = first_inner;
        }
        if self.received < self.total {
            return Ok(if restarted {
                Progress::Restarted
            } else {
                Progress::Stored
            });
        }
        let mut payloads = Vec::with_capacity(self.bytes);
        for chunk in self.chunks.iter().flatten() {
            payloads.extend_from_slice(chunk);
        }
        let first_inner = self.first_inner;
        self.reset();
        Ok(Progress::Complete(Reassembled {
            first_inner,
            payloads,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AEAD: SkfFraming = SkfFraming {
        ipv6: false,
        non_esp_marker: true,
        iv_len: 8,
        icv_len: 16,
        block_len: 1,
    };

    fn frag(number: u16, total: u16, data: &[u8]) -> Fragment<'_> {
        Fragment {
            number,
            total,
            first_inner: if number == 1 {
                PayloadType::IdI
            } else {
                PayloadType::None
            },
            data,
        }
    }

    #[test]
    fn chunk_sizes() {
        // 576 - 20 (IPv4) - 8 (UDP) - 4 (marker) - 28 (IKE) - 8 (SKF) - 8 (IV) - 16 (ICV)
        // - 1 (pad length) = 483.
        assert_eq!(AEAD.max_chunk_len(DEFAULT_MAX_DATAGRAM_V4), Ok(483));
        let v6 = SkfFraming {
            ipv6: true,
            non_esp_marker: false,
            ..AEAD
        };
        assert_eq!(
            v6.max_chunk_len(DEFAULT_MAX_DATAGRAM_V6),
            Ok(1280 - 40 - 8 - 28 - 8 - 25)
        );
        // AES-CBC-like: 16-byte IV and blocks, 16-byte ICV: room 576-68-32 = 476 -> 464 - 1.
        let cbc = SkfFraming {
            iv_len: 16,
            icv_len: 16,
            block_len: 16,
            ..AEAD
        };
        assert_eq!(cbc.max_chunk_len(576), Ok(463));
        assert_eq!(AEAD.max_chunk_len(93), Err(FragmentError::DatagramTooSmall));
        assert_eq!(AEAD.max_chunk_len(94), Ok(1));
        assert_eq!(AEAD.max_chunk_len(0), Err(FragmentError::DatagramTooSmall));
        let zero_block = SkfFraming {
            block_len: 0,
            ..AEAD
        };
        assert_eq!(
            zero_block.max_chunk_len(576),
            Err(FragmentError::DatagramTooSmall)
        );
    }

    #[test]
    fn split_numbers_and_next_payload() {
        let payloads: Vec<u8> = (0..=255).collect();
        let frags: Vec<_> = split(PayloadType::IdI, &payloads, 100, FragmentLimits::default())
            .unwrap()
            .collect();
        assert_eq!(frags.len(), 3);
        assert_eq!(frags[0], frag(1, 3, &payloads[..100]));
        assert_eq!(frags[1], frag(2, 3, &payloads[100..200]));
        assert_eq!(frags[2], frag(3, 3, &payloads[200..]));
        let empty: Vec<_> = split(PayloadType::None, &[], 100, FragmentLimits::default())
            .unwrap()
            .collect();
        assert_eq!(
            empty,
            [Fragment {
                number: 1,
                total: 1,
                first_inner: PayloadType::None,
                data: &[]
            }]
        );
        let limits = FragmentLimits {
            max_fragments: 2,
            max_bytes: 1000,
        };
        assert_eq!(
            split(PayloadType::IdI, &payloads, 100, limits).unwrap_err(),
            FragmentError::TooManyFragments { total: 3 }
        );
        assert_eq!(
            split(PayloadType::IdI, &payloads, 0, limits).unwrap_err(),
            FragmentError::EmptyChunk
        );
        assert_eq!(
            split(PayloadType::IdI, &[0; 1001], 1000, limits).unwrap_err(),
            FragmentError::TooLarge
        );
    }

    #[test]
    fn refuses_bad_numbers() {
        let mut r = Reassembly::new(FragmentLimits::default());
        assert_eq!(r.accept(frag(0, 3, b"x")), Err(FragmentError::ZeroNumber));
        assert_eq!(
            r.accept(frag(4, 3, b"x")),
            Err(FragmentError::NumberAboveTotal {
                number: 4,
                total: 3
            })
        );
        assert_eq!(
            r.accept(frag(33, 33, b"x")),
            Err(FragmentError::TooManyFragments { total: 33 })
        );
        let mut later = frag(2, 3, b"x");
        later.first_inner = PayloadType::Auth;
        assert_eq!(
            r.accept(later),
            Err(FragmentError::NextPayloadInLaterFragment(2))
        );
        assert_eq!(r.total(), 0);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn larger_total_restarts_smaller_is_stale() {
        let mut r = Reassembly::new(FragmentLimits::default());
        assert_eq!(r.accept(frag(1, 2, b"big-1")), Ok(Progress::Stored));
        assert_eq!(r.accept(frag(1, 2, b"other")), Ok(Progress::Duplicate));
        // Retransmitted in three smaller fragments (RFC 7383 section 2.5.2).
        assert_eq!(r.accept(frag(2, 3, b"b")), Ok(Progress::Restarted));
        assert_eq!(r.received(), 1);
        assert_eq!(
            r.accept(frag(2, 2, b"big-2")),
            Err(FragmentError::StaleTotal {
                total: 2,
                current: 3
            })
        );
        assert_eq!(r.accept(frag(3, 3, b"c")), Ok(Progress::Stored));
        assert_eq!(
            r.accept(frag(1, 3, b"a")),
            Ok(Progress::Complete(Reassembled {
                first_inner: PayloadType::IdI,
                payloads: b"abc".to_vec()
            }))
        );
        assert_eq!((r.total(), r.received(), r.buffered_bytes()), (0, 0, 0));
    }

    #[test]
    fn too_large_drops_everything() {
        let limits = FragmentLimits {
            max_fragments: 4,
            max_bytes: 10,
        };
        let mut r = Reassembly::new(limits);
        assert_eq!(r.accept(frag(1, 3, &[1; 6])), Ok(Progress::Stored));
        assert_eq!(r.accept(frag(2, 3, &[2; 5])), Err(FragmentError::TooLarge));
        assert_eq!((r.total(), r.buffered_bytes()), (0, 0));
    }

    fn deliver(r: &mut Reassembly, frags: &[Fragment<'_>], order: &[usize]) -> Option<Reassembled> {
        let mut done = None;
        for &i in order {
            match r.accept(frags[i % frags.len()]).unwrap() {
                Progress::Complete(message) => {
                    assert!(done.is_none(), "completed twice");
                    done = Some(message);
                    break;
                }
                Progress::Stored | Progress::Duplicate => {}
                Progress::Restarted => panic!("no restart with one total"),
            }
        }
        done
    }

    proptest! {
        #[test]
        fn split_reassemble_any_order(
            payloads in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk_len in 4usize..700, // at most 750 fragments: under max_fragments
            order in proptest::collection::vec(any::<usize>(), 0..64),
        ) {
            let limits = FragmentLimits { max_fragments: 1000, max_bytes: 4000 };
            let frags: Vec<_> =
                split(PayloadType::Cert, &payloads, chunk_len, limits).unwrap().collect();
            prop_assert_eq!(frags.len(), payloads.len().div_ceil(chunk_len).max(1));
            let mut r = Reassembly::new(limits);
            // Random order with duplicates, then every fragment once to finish.
            let all: Vec<usize> = order.iter().copied().chain(0..frags.len()).collect();
            let message = deliver(&mut r, &frags, &all).unwrap();
            prop_assert_eq!(message.first_inner, PayloadType::Cert);
            prop_assert_eq!(message.payloads, payloads);
        }

        #[test]
        fn hostile_fragments_stay_bounded(
            ops in proptest::collection::vec(
                (0u16..12, 0u16..12, any::<bool>(), 0usize..40), 0..200),
        ) {
            let limits = FragmentLimits { max_fragments: 8, max_bytes: 64 };
            let mut r = Reassembly::new(limits);
            let bytes = [0x5a; 40];
            for (number, total, named, len) in ops {
                let fragment = Fragment {
                    number,
                    total,
                    first_inner: if named { PayloadType::Auth } else { PayloadType::None },
                    data: &bytes[..len],
                };
                if let Ok(Progress::Complete(message)) = r.accept(fragment) {
                    prop_assert!(message.payloads.len() <= limits.max_bytes);
                }
                prop_assert!(r.total() <= limits.max_fragments);
                prop_assert!(r.received() <= r.total());
                prop_assert!(r.buffered_bytes() <= limits.max_bytes);
                prop_assert!(r.chunks.len() <= usize::from(limits.max_fragments));
            }
        }
    }
}
