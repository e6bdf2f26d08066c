//! The codec error type shared by every format.

use core::fmt;

/// Why a codec refused some bytes.
///
/// The variants are coarse on purpose (smoltcp style): engines turn them into their own
/// "peer misbehaved" reasons and metric labels. Each carries no data from the packet, so an
/// error can be logged without leaking secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Error {
    /// The buffer ends before a field or a length that a header announces.
    Truncated,
    /// A length field disagrees with the bytes present or with another length field.
    BadLength,
    /// A checksum (NHRP `ar$chksum`, IPv4 header checksum, GRE checksum) does not verify.
    BadChecksum,
    /// An offset field (NHRP `ar$extoff`, error offset) points outside its packet.
    BadOffset,
    /// A version field names a version this codec does not speak.
    BadVersion,
    /// A field holds a value the format forbids (reserved bits set where they must be zero,
    /// padding not in the RFC 4303 pattern, an extension after End, ...).
    Malformed,
    /// An element marked critical (IKEv2 payload with the critical bit, NHRP extension with
    /// the compulsory bit) has a type this codec does not know. The type is kept so that the
    /// engine can answer with the RFC's error (UNSUPPORTED_CRITICAL_PAYLOAD, NHRP error code 1).
    UnknownCritical(u16),
    /// The output buffer is smaller than `buffer_len()`.
    BufferTooSmall,
    /// A value does not fit its field when emitting (an address longer than 63 bytes, a
    /// message longer than 65535 bytes, ...).
    Unrepresentable,
}

/// Result of a codec operation.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated: the packet ends before a field it announces"),
            Error::BadLength => f.write_str("inconsistent length field"),
            Error::BadChecksum => f.write_str("bad checksum"),
            Error::BadOffset => f.write_str("offset field out of range"),
            Error::BadVersion => f.write_str("unsupported version"),
            Error::Malformed => f.write_str("malformed field"),
            Error::UnknownCritical(t) => write!(f, "unknown critical element type {t}"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::Unrepresentable => f.write_str("value does not fit its field"),
        }
    }
}

impl core::error::Error for Error {}
