//! [`Seq`]: a list of wire elements that is either still on the wire or built by the caller,
//! so that parsing allocates nothing and emitting needs no conversion.

use crate::{Error, Result};

/// One element of a list that is encoded back to back on the wire (NHRP CIEs and extensions,
/// IKEv2 proposals, transforms, traffic selectors, payloads...).
pub trait Element<'a>: Sized {
    /// Parses the element at the start of `buf` and returns it with the number of bytes it
    /// took. Must check every length against `buf`.
    ///
    /// # Errors
    /// Any [`Error`] of the element's format.
    fn parse_one(buf: &'a [u8]) -> Result<(Self, usize)>;

    /// Checks the element at the start of `buf` as [`Element::parse_one`] does, with the same
    /// error, and returns the number of bytes it takes, for [`Seq::parse`], which validates
    /// a list that is parsed again when iterated. The default parses; an element may only
    /// walk its lengths.
    ///
    /// # Errors
    /// The error [`Element::parse_one`] returns for `buf`.
    fn validate(buf: &'a [u8]) -> Result<usize> {
        Self::parse_one(buf).map(|(_, used)| used)
    }

    /// Parses the element at the start of bytes that [`Seq::parse`] already validated, for
    /// iteration. An element that holds a list of its own may skip validating it again (the
    /// NHRP extensions holding CIEs): the default parses as [`Element::parse_one`]. Must
    /// still check every length against `buf`, so that unvalidated bytes never panic.
    ///
    /// # Errors
    /// Any [`Error`] of the element's format.
    fn parse_validated(buf: &'a [u8]) -> Result<(Self, usize)> {
        Self::parse_one(buf)
    }

    /// The number of bytes [`Element::emit_one`] writes.
    fn wire_len(&self) -> usize;

    /// Writes the element at the start of `buf`, which is at least [`Element::wire_len`] long.
    fn emit_one(&self, buf: &mut [u8]);

    /// Writes the element like [`Element::emit_one`] and returns [`Element::wire_len`]; an
    /// element whose length takes a walk over its parts may count them as it writes them.
    fn emit_len(&self, buf: &mut [u8]) -> usize {
        self.emit_one(buf);
        self.wire_len()
    }
}

/// A list of elements: `Wire` holds bytes that [`Seq::parse`] validated completely, `Items`
/// holds elements the caller built. Both iterate the same way and compare equal when their
/// elements do, so `Repr::parse(emit(repr)) == repr` holds whichever form `repr` used.
///
/// `Debug` lists the elements, never the raw bytes, so an element that redacts a secret
/// (the NHRP authentication data) stays redacted whichever form the list has. Construct the
/// `Wire` form only through [`Seq::parse`]: bytes that are not whole elements would emit as
/// they are but iterate short.
#[derive(Clone, Copy)]
pub enum Seq<'a, T> {
    /// Validated wire bytes holding zero or more whole elements.
    Wire(&'a [u8]),
    /// Elements built by the caller.
    Items(&'a [T]),
}

impl<'a, T: Element<'a> + Clone> Seq<'a, T> {
    /// Validates that `buf` is exactly a sequence of whole elements.
    ///
    /// # Errors
    /// The first element's error, or [`Error::Truncated`] for trailing bytes that do not form
    /// an element.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let mut rest = buf;
        while !rest.is_empty() {
            let used = T::validate(rest)?;
            if used == 0 || used > rest.len() {
                return Err(Error::BadLength);
            }
            rest = &rest[used..];
        }
        Ok(Seq::Wire(buf))
    }

    /// An empty list.
    pub const fn empty() -> Self {
        Seq::Items(&[])
    }

    /// Iterates over the elements.
    pub fn iter(&self) -> SeqIter<'a, T> {
        match *self {
            Seq::Wire(buf) => SeqIter::Wire(buf),
            Seq::Items(items) => SeqIter::Items(items.iter()),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Seq::Wire(_) => self.iter().count(),
            Seq::Items(items) => items.len(),
        }
    }

    /// Whether the list has no element.
    pub fn is_empty(&self) -> bool {
        match self {
            Seq::Wire(buf) => buf.is_empty(),
            Seq::Items(items) => items.is_empty(),
        }
    }

    /// The first element, if any.
    pub fn first(&self) -> Option<T> {
        self.iter().next()
    }

    /// The number of bytes the elements take on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Seq::Wire(buf) => buf.len(),
            Seq::Items(items) => items.iter().map(Element::wire_len).sum(),
        }
    }

    /// Writes the elements back to back at the start of `buf` and returns the bytes written.
    /// `buf` must be at least [`Seq::wire_len`] long.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        match self {
            Seq::Wire(bytes) => {
                buf[..bytes.len()].copy_from_slice(bytes);
                bytes.len()
            }
            Seq::Items(items) => {
                let mut at = 0;
                for item in *items {
                    at += item.emit_len(&mut buf[at..]);
                }
                at
            }
        }
    }
}

impl<'a, T: Element<'a> + Clone + core::fmt::Debug> core::fmt::Debug for Seq<'a, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Element<'a> + Clone> Default for Seq<'a, T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<'a, T: Element<'a> + Clone + PartialEq> PartialEq for Seq<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: Element<'a> + Clone + Eq> Eq for Seq<'a, T> {}

impl<'a, T: Element<'a> + Clone + serde::Serialize> serde::Serialize for Seq<'a, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'a, T: Element<'a> + Clone> IntoIterator for Seq<'a, T> {
    type Item = T;
    type IntoIter = SeqIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`Seq`]; its `Debug` shows only how many bytes or items are left.
#[derive(Clone)]
pub enum SeqIter<'a, T> {
    /// Parsing validated bytes one element at a time.
    Wire(&'a [u8]),
    /// Cloning caller-built elements.
    Items(core::slice::Iter<'a, T>),
}

impl<T> core::fmt::Debug for SeqIter<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SeqIter::Wire(buf) => write!(f, "SeqIter(<{} bytes left>)", buf.len()),
            SeqIter::Items(items) => write!(f, "SeqIter(<{} items left>)", items.len()),
        }
    }
}

impl<'a, T: Element<'a> + Clone> Iterator for SeqIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            SeqIter::Wire(buf) => {
                if buf.is_empty() {
                    return None;
                }
                // The bytes were validated by `Seq::parse`, so this cannot fail; if it ever
                // did, ending the iteration is the safe answer.
                match T::parse_validated(buf) {
                    Ok((item, used)) if used > 0 && used <= buf.len() => {
                        *buf = &buf[used..];
                        Some(item)
                    }
                    _ => {
                        *buf = &[];
                        None
                    }
                }
            }
            SeqIter::Items(items) => items.next().cloned(),
        }
    }
}
