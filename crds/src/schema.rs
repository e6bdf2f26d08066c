//! OpenAPI schemas for the types whose derived JSON schema a Kubernetes structural schema
//! cannot hold: `schemars` describes an IP address or prefix as a `oneOf` of the two
//! families, which the apiserver refuses below the root, so these are strings with a pattern,
//! a length bound and a CEL rule (the Kubernetes IP and CIDR libraries, since 1.30).

use schemars::{Schema, SchemaGenerator, json_schema};

/// Characters of an IPv4 or IPv6 address in text: a cheap first filter before the CEL rule.
const IP_PATTERN: &str = "^[0-9A-Fa-f:.]+$";
/// Characters of a prefix in text, with its length.
const PREFIX_PATTERN: &str = "^[0-9A-Fa-f:.]+/[0-9]{1,3}$";
/// The longest IPv6 address in text (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
const MAX_IP_LEN: u32 = 45;
/// The longest prefix in text: an address, `/` and three digits.
const MAX_PREFIX_LEN: u32 = MAX_IP_LEN + 4;

/// An IPv4 or IPv6 address.
pub(crate) fn ip_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": MAX_IP_LEN,
        "pattern": IP_PATTERN,
        "x-kubernetes-validations": [{
            "rule": "isIP(self)",
            "message": "must be an IPv4 or IPv6 address such as 198.18.0.1 or 2001:db8::1"
        }]
    })
}

/// An interface address with the subnet's prefix length, such as `10.1.1.1/24`.
pub(crate) fn interface_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": MAX_PREFIX_LEN,
        "pattern": PREFIX_PATTERN,
        "x-kubernetes-validations": [{
            "rule": "isCIDR(self)",
            "message": "must be an address with its prefix length such as 10.1.1.1/24"
        }]
    })
}

/// A network prefix without host bits, such as `192.168.1.0/24`.
pub(crate) fn prefix(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": MAX_PREFIX_LEN,
        "pattern": PREFIX_PATTERN,
        "x-kubernetes-validations": [{
            "rule": "isCIDR(self) && cidr(self) == cidr(self).masked()",
            "message": "must be a prefix without host bits such as 192.168.1.0/24"
        }]
    })
}

/// A list of network prefixes.
pub(crate) fn prefixes(g: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": MAX_LIST,
        "items": prefix(g)
    })
}

/// An optional list of network prefixes: absent and empty differ.
pub(crate) fn optional_prefixes(g: &mut SchemaGenerator) -> Schema {
    let mut s = prefixes(g);
    s.insert("nullable".into(), true.into());
    s
}

/// An address and TCP port, such as `0.0.0.0:9469` or `[::]:9469`.
pub(crate) fn listen_address(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": MAX_IP_LEN + 8,
        "pattern": "^([0-9.]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$"
    })
}

/// The most items a list of a CR holds: bounds the apiserver's CEL cost estimate.
pub(crate) const MAX_LIST: u32 = 64;
