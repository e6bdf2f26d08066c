//! `dmvpnctl pcap`: decodes a capture of underlay or tunnel traffic layer by layer, the way an
//! engineer reads `debug nhrp packet`, and proves that every layer we understand emits back to
//! the same bytes.

mod capture;
mod debug_ikev2;
mod debug_nhrp;
mod decode;
mod render;

pub use capture::{CaptureError, LinkType, RawFrame, read_capture};
pub use decode::{Frame, Layer, Roundtrip, decode_frame};
pub use render::render_text;
