//! Serialization of byte strings as lower-case hex, for `dmvpnctl -o json`.

/// Serializes bytes as one lower-case hex string, without allocating.
pub(crate) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Hex(bytes))
}

/// Lower-case hex display of a byte string.
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Serializes only the length of a byte string (`"<57 bytes>"`), for data that may embed a
/// secret, such as the packet in error of an NHRP Error Indication.
pub(crate) fn serialize_length<S: serde::Serializer>(
    bytes: &[u8],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("<{} bytes>", bytes.len()))
}
