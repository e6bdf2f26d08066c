//! IKE and ESP proposals (RFC 7296 sections 2.7, 3.3): written as strongSwan-style strings in
//! the configuration (`aes256gcm16-prfsha384-x25519`), offered as SA payloads, and selected
//! as responder (section 3.3.6: the first of the initiator's proposals we accept).
//!
//! Forbidden and deprecated algorithms (RFC 8247 for IKE, RFC 8221 for ESP) are refused at
//! configuration time with an error naming the modern replacement, as `dmvpn-esp` does for
//! ESP proposals.

use dmvpn_esp::{Algorithm, SequenceNumbers};
use dmvpn_wire::ikev2::{
    Attribute, EncrId, EsnId, IntegId, Proposal, ProtocolId, Transform, TransformId,
};

use crate::crypto::dh::Group;
use crate::crypto::prf::Prf;

/// Why a proposal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// An algorithm RFC 8247 or RFC 8221 forbids or deprecates; the message names what to use.
    #[error("`{token}` is refused ({reason}): use `{replacement}`")]
    Forbidden {
        /// The keyword as written.
        token: String,
        /// The requirement level and where it is written.
        reason: &'static str,
        /// The keyword to write instead.
        replacement: &'static str,
    },
    /// A keyword this engine does not implement.
    #[error("`{token}` is not implemented: use {hint}")]
    Unsupported {
        /// The keyword as written.
        token: String,
        /// What to write instead.
        hint: &'static str,
    },
    /// An integrity algorithm next to an AEAD, which carries its own (RFC 8247 section 2.2).
    #[error("`{token}` adds integrity to an AEAD, which has its own: drop it")]
    IntegrityWithAead {
        /// The keyword as written.
        token: String,
    },
    /// A required transform type is missing.
    #[error("the proposal names no {what}: add `{add}`")]
    Missing {
        /// The transform type.
        what: &'static str,
        /// A keyword to add.
        add: &'static str,
    },
}

/// IKE keywords refused by RFC 8247 (and the 3DES, MD5 and modp1024 of the seed), each with
/// the reason and the replacement.
const FORBIDDEN_IKE: &[(&str, &str, &str)] = &[
    ("des", "MUST NOT, RFC 8247 section 2.1", "aes256gcm16"),
    (
        "3des",
        "MAY, deprecated, RFC 8247 section 2.1",
        "aes256gcm16",
    ),
    ("blowfish", "not in RFC 8247 section 2.1", "aes256gcm16"),
    (
        "md5",
        "MUST NOT, RFC 8247 section 2.2",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "sha1",
        "MUST-, on its way out, RFC 8247 section 2.2",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    (
        "sha",
        "MUST-, on its way out, RFC 8247 section 2.2",
        "aes256gcm16 (an AEAD, no separate integrity)",
    ),
    ("prfmd5", "MUST NOT, RFC 8247 section 2.3", "prfsha256"),
    (
        "prfsha1",
        "MUST-, on its way out, RFC 8247 section 2.3",
        "prfsha256",
    ),
    ("modp768", "MUST NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024s160", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1536", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s224", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s256", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
];

/// Integrity keywords that are sound but pointless next to an AEAD.
const INTEGRITY: &[&str] = &["sha256", "sha384", "sha512", "aesxcbc", "aescmac"];

fn forbidden(token: &str) -> Option<ProposalError> {
    FORBIDDEN_IKE
        .iter()
        .find(|(t, _, _)| *t == token)
        .map(|&(_, reason, replacement)| ProposalError::Forbidden {
            token: token.to_owned(),
            reason,
            replacement,
        })
}

fn encryption(token: &str) -> Result<Algorithm, ProposalError> {
    token.parse::<Algorithm>().map_err(|e| match e {
        dmvpn_esp::ConfigError::Forbidden { token, replacement, .. } => {
            forbidden(&token).unwrap_or(ProposalError::Forbidden {
                token,
                reason: "RFC 8247 section 2.1",
                replacement,
            })
        }
        _ => ProposalError::Unsupported {
            token: token.to_owned(),
            hint: "aes256gcm16, aes128gcm16, chacha20poly1305, prfsha256/384/512, x25519, ecp256 or ecp384",
        },
    })
}

fn group(token: &str) -> Result<Group, ProposalError> {
    Group::from_keyword(token).ok_or_else(|| ProposalError::Unsupported {
        token: token.to_owned(),
        hint: "x25519, ecp256 or ecp384",
    })
}

/// An IKE SA proposal: the AEADs, PRFs and Diffie-Hellman groups it offers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal {
    /// Encryption (AEAD) transforms.
    pub encryption: Vec<Algorithm>,
    /// PRFs.
    pub prf: Vec<Prf>,
    /// Diffie-Hellman groups; the first is the one the initiator sends a KE for.
    pub groups: Vec<Group>,
}

impl IkeProposal {
    /// Parses a dash-separated strongSwan IKE proposal (`aes256gcm16-prfsha384-x25519`).
    ///
    /// # Errors
    /// [`ProposalError::Forbidden`] naming the replacement for a forbidden keyword (checked
    /// first), [`ProposalError::IntegrityWithAead`], [`ProposalError::Unsupported`], or
    /// [`ProposalError::Missing`].
    pub fn parse(s: &str) -> Result<Self, ProposalError> {
        let tokens: Vec<String> = s
            .split('-')
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if let Some(e) = tokens.iter().find_map(|t| forbidden(t)) {
            return Err(e);
        }
        let mut p = IkeProposal {
            encryption: Vec::new(),
            prf: Vec::new(),
            groups: Vec::new(),
        };
        for t in &tokens {
            if INTEGRITY.contains(&t.as_str()) {
                return Err(ProposalError::IntegrityWithAead { token: t.clone() });
            }
            if let Some(prf) = Prf::ALL.into_iter().find(|p| p.keyword() == t) {
                p.prf.push(prf);
            } else if let Some(g) = Group::from_keyword(t) {
                p.groups.push(g);
            } else if t.starts_with("modp")
                || t.starts_with("ecp")
                || t.starts_with("curve")
                || t.starts_with('x')
            {
                group(t)?;
            } else {
                p.encryption.push(encryption(t)?);
            }
        }
        if p.encryption.is_empty() {
            return Err(ProposalError::Missing {
                what: "encryption",
                add: "aes256gcm16",
            });
        }
        if p.prf.is_empty() {
            return Err(ProposalError::Missing {
                what: "PRF",
                add: "prfsha256",
            });
        }
        if p.groups.is_empty() {
            return Err(ProposalError::Missing {
                what: "Diffie-Hellman group",
                add: "x25519",
            });
        }
        Ok(p)
    }

    /// The transforms of this proposal (RFC 7296 section 3.3.2), AEADs without INTEG.
    pub(crate) fn transforms(&self) -> Vec<Transform<'static>> {
        let mut t: Vec<_> = self.encryption.iter().map(|a| encr_transform(*a)).collect();
        t.extend(
            self.prf
                .iter()
                .map(|p| Transform::new(TransformId::Prf(p.id()))),
        );
        t.extend(
            self.groups
                .iter()
                .map(|g| Transform::new(TransformId::Dh(g.id()))),
        );
        t
    }
}

/// An ESP proposal: AEADs, sequence number choices and (for PFS) Diffie-Hellman groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspProposal {
    /// Encryption (AEAD) transforms.
    pub encryption: Vec<Algorithm>,
    /// ESN choices.
    pub sequence_numbers: Vec<SequenceNumbers>,
    /// Groups for PFS in CREATE_CHILD_SA (RFC 7296 section 1.3.1); none = no PFS.
    pub groups: Vec<Group>,
}

impl EspProposal {
    /// Parses a strongSwan ESP proposal (`aes256gcm16-x25519-esn`) through
    /// [`dmvpn_esp::Proposal::parse`], which refuses the forbidden transforms.
    ///
    /// # Errors
    /// The ESP crate's refusal as [`ProposalError::Forbidden`] / [`ProposalError::Unsupported`],
    /// or an unimplemented PFS group.
    pub fn parse(s: &str) -> Result<Self, ProposalError> {
        let p = dmvpn_esp::Proposal::parse(s).map_err(|e| match e {
            dmvpn_esp::ConfigError::Forbidden {
                token,
                reason,
                replacement,
            } => ProposalError::Forbidden {
                token,
                reason,
                replacement,
            },
            dmvpn_esp::ConfigError::IntegrityWithAead { token } => {
                ProposalError::IntegrityWithAead { token }
            }
            dmvpn_esp::ConfigError::NoEncryption => ProposalError::Missing {
                what: "encryption",
                add: "aes256gcm16",
            },
            other => ProposalError::Unsupported {
                token: other.to_string(),
                hint: "aes256gcm16, aes128gcm16 or chacha20poly1305",
            },
        })?;
        let groups = p
            .dh_groups
            .iter()
            .map(|g| group(&g.to_ascii_lowercase()))
            .collect::<Result<_, _>>()?;
        Ok(EspProposal {
            encryption: p.encryption,
            sequence_numbers: p.sequence_numbers,
            groups,
        })
    }

    /// The transforms; DH groups only when `with_dh` (CREATE_CHILD_SA with PFS; IKE_AUTH
    /// carries none, RFC 7296 section 1.2).
    pub(crate) fn transforms(&self, with_dh: bool) -> Vec<Transform<'static>> {
        let mut t: Vec<_> = self.encryption.iter().map(|a| encr_transform(*a)).collect();
        if with_dh {
            t.extend(
                self.groups
                    .iter()
                    .map(|g| Transform::new(TransformId::Dh(g.id()))),
            );
        }
        t.extend(
            self.sequence_numbers
                .iter()
                .map(|s| Transform::new(TransformId::Esn(esn_id(*s)))),
        );
        t
    }
}

const KEY_128: [Attribute<'static>; 1] = [Attribute::KeyLength(128)];
const KEY_256: [Attribute<'static>; 1] = [Attribute::KeyLength(256)];

/// The ENCR transform of an AEAD, with its Key Length attribute for AES-GCM (RFC 5282
/// section 8).
pub(crate) fn encr_transform(a: Algorithm) -> Transform<'static> {
    match a {
        Algorithm::AesGcm16_128 => {
            Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), &KEY_128)
        }
        Algorithm::AesGcm16_256 => {
            Transform::with_key_length(TransformId::Encr(EncrId::AesGcm16), &KEY_256)
        }
        Algorithm::ChaCha20Poly1305 => Transform::new(TransformId::Encr(EncrId::Chacha20Poly1305)),
    }
}

fn esn_id(s: SequenceNumbers) -> EsnId {
    match s {
        SequenceNumbers::Short => EsnId::No,
        SequenceNumbers::Extended => EsnId::Yes,
    }
}

/// The AEAD of an ENCR transform, if implemented (AES-GCM needs its Key Length attribute,
/// RFC 5282 section 8).
pub(crate) fn encr_of(t: &Transform<'_>) -> Option<Algorithm> {
    match (t.id, t.key_length()) {
        (TransformId::Encr(EncrId::AesGcm16), Some(128)) => Some(Algorithm::AesGcm16_128),
        (TransformId::Encr(EncrId::AesGcm16), Some(256)) => Some(Algorithm::AesGcm16_256),
        (TransformId::Encr(EncrId::Chacha20Poly1305), None) => Some(Algorithm::ChaCha20Poly1305),
        _ => None,
    }
}

/// What a responder chose from an IKE proposal, or an initiator read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeChoice {
    /// The proposal number.
    pub number: u8,
    /// The AEAD.
    pub encryption: Algorithm,
    /// The PRF.
    pub prf: Prf,
    /// The group.
    pub group: Group,
    /// The sender's SPI in the proposal (empty for IKE_SA_INIT, 8 bytes for a rekey).
    pub spi: Option<u64>,
}

/// What a responder chose from an ESP proposal, or an initiator read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspChoice {
    /// The proposal number.
    pub number: u8,
    /// The AEAD.
    pub encryption: Algorithm,
    /// 32-bit or extended sequence numbers.
    pub sequence_numbers: SequenceNumbers,
    /// The PFS group, if any.
    pub group: Option<Group>,
    /// The sender's SPI.
    pub spi: u32,
}

/// Whether an INTEG transform is acceptable next to an AEAD: only NONE (RFC 7296 section
/// 3.3.2; RFC 5282 section 8).
fn integ_ok(t: &Transform<'_>) -> bool {
    !matches!(t.id, TransformId::Integ(id) if id != IntegId::None)
}

/// Picks, in the peer's order, the first transform of one type accepted by `accept`.
fn first<T>(p: &Proposal<'_>, mut accept: impl FnMut(&Transform<'_>) -> Option<T>) -> Option<T> {
    p.transforms.iter().find_map(|t| accept(&t))
}

/// Selects an IKE proposal as responder (RFC 7296 section 3.3.6): the first of `theirs` that
/// one of `ours` accepts, with, per transform type, the first of their transforms it has.
/// `prefer_group` picks the group of the initiator's KE payload when acceptable.
pub(crate) fn select_ike<'a>(
    ours: &[IkeProposal],
    theirs: impl Iterator<Item = Proposal<'a>>,
    prefer_group: Option<Group>,
) -> Option<IkeChoice> {
    for p in theirs {
        if p.protocol_id != ProtocolId::Ike || !p.transforms.iter().all(|t| integ_ok(&t)) {
            continue;
        }
        for o in ours {
            let encryption = first(&p, |t| encr_of(t).filter(|a| o.encryption.contains(a)));
            let prf = first(&p, |t| match t.id {
                TransformId::Prf(id) => Prf::from_id(id).filter(|x| o.prf.contains(x)),
                _ => None,
            });
            let offered = |g: Group| p.transforms.iter().any(|t| t.id == TransformId::Dh(g.id()));
            let group = prefer_group
                .filter(|g| o.groups.contains(g) && offered(*g))
                .or_else(|| {
                    first(&p, |t| match t.id {
                        TransformId::Dh(id) => Group::from_id(id).filter(|g| o.groups.contains(g)),
                        _ => None,
                    })
                });
            if let (Some(encryption), Some(prf), Some(group)) = (encryption, prf, group) {
                let spi = <[u8; 8]>::try_from(p.spi).ok().map(u64::from_be_bytes);
                return Some(IkeChoice {
                    number: p.number,
                    encryption,
                    prf,
                    group,
                    spi,
                });
            }
        }
    }
    None
}

/// Selects an ESP proposal as responder (RFC 7296 section 3.3.6). With `ke_group` (the
/// group of a KE payload in CREATE_CHILD_SA) the proposal must offer and we must accept that
/// group; without, DH transforms are ignored (IKE_AUTH).
pub(crate) fn select_esp<'a>(
    ours: &[EspProposal],
    theirs: impl Iterator<Item = Proposal<'a>>,
    ke_group: Option<Group>,
) -> Option<EspChoice> {
    for p in theirs {
        if p.protocol_id != ProtocolId::Esp || !p.transforms.iter().all(|t| integ_ok(&t)) {
            continue;
        }
        let Ok(spi) = <[u8; 4]>::try_from(p.spi).map(u32::from_be_bytes) else {
            continue;
        };
        for o in ours {
            let encryption = first(&p, |t| encr_of(t).filter(|a| o.encryption.contains(a)));
            let esn = first(&p, |t| {
                match t.id {
                    TransformId::Esn(EsnId::No) => Some(SequenceNumbers::Short),
                    TransformId::Esn(EsnId::Yes) => Some(SequenceNumbers::Extended),
                    _ => None,
                }
                .filter(|s| o.sequence_numbers.contains(s))
            });
            // RFC 7296 section 3.3.2: ESN is mandatory for ESP; treat a missing one as "no".
            let has_esn = p
                .transforms
                .iter()
                .any(|t| matches!(t.id, TransformId::Esn(_)));
            let esn = if has_esn {
                esn
            } else {
                o.sequence_numbers
                    .contains(&SequenceNumbers::Short)
                    .then_some(SequenceNumbers::Short)
            };
            let group = match ke_group {
                Some(g) => {
                    let offered = p.transforms.iter().any(|t| t.id == TransformId::Dh(g.id()));
                    if !(offered && o.groups.contains(&g)) {
                        continue;
                    }
                    Some(g)
                }
                None => None,
            };
            if let (Some(encryption), Some(sequence_numbers)) = (encryption, esn) {
                return Some(EspChoice {
                    number: p.number,
                    encryption,
                    sequence_numbers,
                    group,
                    spi,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmvpn_wire::Seq;

    #[test]
    fn parses_strongswan_strings() {
        let p = IkeProposal::parse("aes256gcm16-prfsha384-x25519").unwrap();
        assert_eq!(p.encryption, [Algorithm::AesGcm16_256]);
        assert_eq!(p.prf, [Prf::HmacSha384]);
        assert_eq!(p.groups, [Group::X25519]);
        let p =
            IkeProposal::parse("chacha20poly1305-aes128gcm16-prfsha512-prfsha256-ecp384-ecp256")
                .unwrap();
        assert_eq!(
            p.encryption,
            [Algorithm::ChaCha20Poly1305, Algorithm::AesGcm16_128]
        );
        assert_eq!(p.prf, [Prf::HmacSha512, Prf::HmacSha256]);
        assert_eq!(p.groups, [Group::Ecp384, Group::Ecp256]);
        let e = EspProposal::parse("aes128gcm16-ecp256-esn").unwrap();
        assert_eq!(e.groups, [Group::Ecp256]);
        assert_eq!(e.sequence_numbers, [SequenceNumbers::Extended]);
    }

    #[test]
    fn refuses_weak_with_replacement() {
        let e = IkeProposal::parse("3des-md5-modp1024").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`3des` is refused (MAY, deprecated, RFC 8247 section 2.1): use `aes256gcm16`"
        );
        let e = IkeProposal::parse("aes256gcm16-prfsha1-x25519").unwrap_err();
        assert!(e.to_string().contains("use `prfsha256`"), "{e}");
        let e = IkeProposal::parse("aes256gcm16-prfsha256-modp1024").unwrap_err();
        assert!(e.to_string().contains("use `x25519`"), "{e}");
        let e = IkeProposal::parse("aes256gcm16-sha1-prfsha256-x25519").unwrap_err();
        assert!(e.to_string().contains("`sha1` is refused"), "{e}");
        assert!(matches!(
            IkeProposal::parse("aes256gcm16-prfsha256-modp2048").unwrap_err(),
            ProposalError::Unsupported { .. }
        ));
        assert!(matches!(
            IkeProposal::parse("aes256gcm16-sha256-prfsha256-x25519").unwrap_err(),
            ProposalError::IntegrityWithAead { .. }
        ));
        assert_eq!(
            IkeProposal::parse("aes256gcm16-x25519").unwrap_err(),
            ProposalError::Missing {
                what: "PRF",
                add: "prfsha256"
            }
        );
        assert!(
            EspProposal::parse("3des-sha1")
                .unwrap_err()
                .to_string()
                .contains("aes256gcm16")
        );
    }

    fn wire(number: u8, p: &IkeProposal) -> (u8, Vec<Transform<'static>>) {
        (number, p.transforms())
    }

    #[test]
    fn responder_takes_the_first_acceptable() {
        let ours = [IkeProposal::parse("aes128gcm16-prfsha256-ecp256-x25519").unwrap()];
        let a = wire(
            1,
            &IkeProposal::parse("chacha20poly1305-prfsha256-x25519").unwrap(),
        );
        let b = wire(
            2,
            &IkeProposal::parse("aes256gcm16-aes128gcm16-prfsha512-prfsha256-x25519-ecp256")
                .unwrap(),
        );
        let props: Vec<Proposal<'_>> = [&a, &b]
            .iter()
            .map(|(n, t)| Proposal {
                number: *n,
                protocol_id: ProtocolId::Ike,
                spi: &[],
                transforms: Seq::Items(t),
            })
            .collect();
        let c = select_ike(&ours, props.iter().copied(), None).unwrap();
        assert_eq!(
            (c.number, c.encryption, c.prf, c.group),
            (2, Algorithm::AesGcm16_128, Prf::HmacSha256, Group::X25519)
        );
        let c = select_ike(&ours, props.iter().copied(), Some(Group::Ecp256)).unwrap();
        assert_eq!(c.group, Group::Ecp256);
        assert!(select_ike(&ours, props[..1].iter().copied(), None).is_none());
    }

    #[test]
    fn esp_selection() {
        let ours = [EspProposal::parse("aes256gcm16-x25519").unwrap()];
        let t = EspProposal::parse("chacha20poly1305-aes256gcm16-ecp256-x25519-esn-noesn")
            .unwrap()
            .transforms(true);
        let spi = 0x1234_5678u32.to_be_bytes();
        let p = Proposal {
            number: 1,
            protocol_id: ProtocolId::Esp,
            spi: &spi,
            transforms: Seq::Items(&t),
        };
        let c = select_esp(&ours, [p].into_iter(), None).unwrap();
        assert_eq!(
            (c.encryption, c.sequence_numbers, c.group, c.spi),
            (
                Algorithm::AesGcm16_256,
                SequenceNumbers::Short,
                None,
                0x1234_5678
            )
        );
        assert_eq!(
            select_esp(&ours, [p].into_iter(), Some(Group::X25519))
                .unwrap()
                .group,
            Some(Group::X25519)
        );
        assert!(select_esp(&ours, [p].into_iter(), Some(Group::Ecp256)).is_none());
    }
}
