//! `dmvpnctl pcap`: decodes a capture of underlay or tunnel traffic layer by layer, the way an
//! engineer reads `debug nhrp packet`, and proves that every layer we understand emits back to
//! the same bytes. With a key log (issue 4) it decrypts ESP and IKE too.

mod capture;
mod debug_ikev2;
mod debug_nhrp;
mod decode;
mod decrypt;
pub mod keylog;
mod render;

pub use capture::{CaptureError, LinkType, RawFrame, read_capture};
pub use decode::{Frame, Layer, Roundtrip, decode_frame, decode_frame_with_keys};
pub use keylog::{KeyLog, KeyLogError};
pub use render::render_text;
