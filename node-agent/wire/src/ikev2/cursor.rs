//! Bounds-checked reading and writing of big-endian fields, shared by the IKEv2 payload codecs.

use crate::{Error, Result};

/// Reads fields off the front of a byte slice; every read checks the bytes left, so a short
/// buffer is an [`Error::Truncated`], never a panic.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) const fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next `n` bytes.
    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.bytes(N)?.try_into().map_err(|_| Error::Truncated)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// The bytes not read yet.
    pub(super) const fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

/// Writes fields one after the other into a buffer that the caller sized with the matching
/// `wire_len`, the contract of [`crate::Element::emit_one`].
#[derive(Debug)]
pub(super) struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl<'b> Writer<'b> {
    pub(super) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, at: 0 }
    }

    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(super) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// The unwritten rest of the buffer, for a nested emitter; `advance` then moves past
    /// what it wrote.
    pub(super) fn tail(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..]
    }

    pub(super) fn advance(&mut self, n: usize) {
        self.at += n;
    }
}

/// Converts a length to its 16-bit field.
///
/// # Errors
/// [`Error::Unrepresentable`] above 65535.
pub(super) fn len16(len: usize) -> Result<u16> {
    u16::try_from(len).map_err(|_| Error::Unrepresentable)
}
