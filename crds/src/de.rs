//! Deserializers whose errors say what to write: serde's own messages for addresses ("invalid
//! IP address syntax") and integers ("expected u16") name neither the form nor an example.

use core::fmt;
use core::marker::PhantomData;
use core::net::{IpAddr, SocketAddr};
use core::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// A value written as a YAML string and parsed with `FromStr`.
pub(crate) trait Textual {
    /// The parsed type.
    type Value: FromStr;
    /// What to write, with an example: the end of "expected ..." in the error.
    const EXPECTED: &'static str;
}

/// An IP address (`ip nhrp nhs 10.1.1.1`, `tunnel source 202.1.1.1`).
pub(crate) struct Address;
impl Textual for Address {
    type Value = IpAddr;
    const EXPECTED: &'static str = "an IPv4 or IPv6 address such as 198.18.0.1 or 2001:db8::1";
}

/// An interface address with the subnet's prefix length (`ip address 10.1.1.1 255.255.255.0`).
pub(crate) struct Interface;
impl Textual for Interface {
    type Value = IpNet;
    const EXPECTED: &'static str =
        "an address with its prefix length such as 10.1.1.1/24 or 2001:db8:1::1/64";
}

/// A routed prefix (`ip route 192.168.2.0 255.255.255.0 ...`).
pub(crate) struct Prefix;
impl Textual for Prefix {
    type Value = IpNet;
    const EXPECTED: &'static str = "a prefix such as 192.168.1.0/24 or 2001:db8:2::/48";
}

/// A TCP listen address.
pub(crate) struct Listen;
impl Textual for Listen {
    type Value = SocketAddr;
    const EXPECTED: &'static str = "an address and port such as 127.0.0.1:9469 or [::1]:9469";
}

struct Text<T: Textual>(T::Value);

impl<'de, T: Textual> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: Textual> Visitor<'_> for V<T> {
            type Value = Text<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<T>, E> {
                v.trim()
                    .parse()
                    .map(Text)
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// Deserializes one [`Textual`] value.
pub(crate) fn text<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<T::Value, D::Error> {
    Text::<T>::deserialize(d).map(|t| t.0)
}

/// Deserializes a list of [`Textual`] values.
pub(crate) fn texts<'de, D: Deserializer<'de>, T: Textual>(
    d: D,
) -> Result<Vec<T::Value>, D::Error> {
    Vec::<Text<T>>::deserialize(d).map(|v| v.into_iter().map(|t| t.0).collect())
}

/// An integer field with its range and what it means.
pub(crate) trait Bounded {
    /// The smallest value accepted.
    const MIN: u64;
    /// The largest value accepted.
    const MAX: u64;
    /// What to write, with the range and an example: the end of "expected ..." in the error.
    const EXPECTED: &'static str;
}

struct Int<B>(u64, PhantomData<B>);

impl<'de, B: Bounded> Deserialize<'de> for Int<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(PhantomData<B>);
        impl<B: Bounded> Visitor<'_> for V<B> {
            type Value = Int<B>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(B::EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<B>, E> {
                if (B::MIN..=B::MAX).contains(&v) {
                    Ok(Int(v, PhantomData))
                } else {
                    Err(E::invalid_value(Unexpected::Unsigned(v), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<B>, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
        }
        // `any`, not `u64`: a negative or non-numeric value then reaches the visitor, whose
        // error names the range, instead of the YAML crate's bare "invalid u64".
        d.deserialize_any(V(PhantomData))
    }
}

fn narrow<E: de::Error, B: Bounded, T: TryFrom<u64>>(v: Int<B>) -> Result<T, E> {
    // The range check keeps every value in T; the error is for a `Bounded` wider than T.
    T::try_from(v.0).map_err(|_| E::invalid_value(Unexpected::Unsigned(v.0), &B::EXPECTED))
}

/// Deserializes a [`Bounded`] integer.
pub(crate) fn int<'de, D: Deserializer<'de>, B: Bounded, T: TryFrom<u64>>(
    d: D,
) -> Result<T, D::Error> {
    narrow(Int::<B>::deserialize(d)?)
}

/// Deserializes an optional [`Bounded`] integer (`~` or `null` is `None`).
pub(crate) fn opt_int<'de, D: Deserializer<'de>, B: Bounded, T: TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<Int<B>>::deserialize(d)?.map(narrow).transpose()
}
