//! IKE fragment reassembly (RFC 7383 section 2.6) under hostile sequences: a [`Reassembly`]
//! fed `Arbitrary` fragments never panics and never holds more than its limits, and a
//! message split by [`split`] comes back whole whatever order and duplicates it arrives in.

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use dmvpn_ike::fragment::{Fragment, FragmentLimits, Progress, Reassembly, split};
use dmvpn_wire::ikev2::PayloadType;

/// The data fragments and messages are cut from: 64 KiB, enough for any `u16` length.
static BYTES: LazyLock<Vec<u8>> =
    LazyLock::new(|| (0..=u16::MAX).map(|i| i.to_le_bytes()[0] ^ 0xa5).collect());

/// The most operations run from one input.
const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
enum Op {
    /// Any fragment, its data a run of `len` bytes.
    Fragment {
        number: u16,
        total: u16,
        first_inner: u8,
        len: u16,
    },
    /// A message of `len` bytes split in chunks of `chunk_len`, delivered to a fresh
    /// reassembly in `order` (indices taken modulo the count), then in full.
    Message {
        len: u16,
        chunk_len: u16,
        order: Vec<u16>,
    },
}

/// The fuzz check.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((max_fragments, max_bytes)) = <(u8, u16)>::arbitrary(&mut u) else {
        return;
    };
    let limits = FragmentLimits {
        max_fragments: u16::from(max_fragments),
        max_bytes: usize::from(max_bytes),
    };
    let bytes = &*BYTES;
    let mut reassembly = Reassembly::new(limits);
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            return;
        }
        let Ok(op) = Op::arbitrary(&mut u) else {
            return;
        };
        match op {
            Op::Fragment {
                number,
                total,
                first_inner,
                len,
            } => {
                let fragment = Fragment {
                    number,
                    total,
                    first_inner: PayloadType::from(first_inner),
                    data: &bytes[..usize::from(len)],
                };
                if let Ok(Progress::Complete(message)) = reassembly.accept(fragment) {
                    assert!(message.payloads.len() <= limits.max_bytes);
                }
                assert!(reassembly.total() <= limits.max_fragments);
                assert!(reassembly.received() <= reassembly.total());
                assert!(reassembly.buffered_bytes() <= limits.max_bytes);
            }
            Op::Message {
                len,
                chunk_len,
                order,
            } => {
                let payloads = &bytes[..usize::from(len)];
                let Ok(fragments) =
                    split(PayloadType::Cert, payloads, usize::from(chunk_len), limits)
                else {
                    continue;
                };
                let fragments: Vec<_> = fragments.collect();
                let mut fresh = Reassembly::new(limits);
                let all = order
                    .iter()
                    .map(|&i| usize::from(i) % fragments.len())
                    .chain(0..fragments.len());
                let mut complete = None;
                for i in all {
                    match fresh.accept(fragments[i]).unwrap() {
                        Progress::Complete(message) => {
                            complete = Some(message);
                            break;
                        }
                        Progress::Stored | Progress::Duplicate => {}
                        Progress::Restarted => panic!("restart within one split"),
                    }
                }
                let message = complete.expect("every fragment delivered, message incomplete");
                assert_eq!(message.first_inner, PayloadType::Cert);
                assert_eq!(message.payloads, payloads);
            }
        }
    }
}
