//! A syntax check of IKE proposals in strongSwan's notation (`aes256gcm16-prfsha384-x25519`),
//! refusing what RFC 8247 forbids or deprecates with the keyword to use instead.
//!
//! Only a check: the IKE engine (`dmvpn-ike`) owns the real parser, and this one should give
//! way to it once that crate has one.

/// Encryption keywords accepted: AEADs only (RFC 8247 section 2.1 "SHOULD": AES-GCM with a
/// 16-byte ICV and ChaCha20-Poly1305), as the ESP side.
const ENCRYPTION: &[&str] = &[
    "aes128gcm16",
    "aes128gcm128",
    "aes128gcm",
    "aes256gcm16",
    "aes256gcm128",
    "aes256gcm",
    "chacha20poly1305",
];

/// PRF keywords accepted (RFC 8247 section 2.2: HMAC-SHA-256 MUST, SHA-384 and SHA-512 SHOULD).
const PRF: &[&str] = &["prfsha256", "prfsha384", "prfsha512"];

/// Key exchange keywords accepted (RFC 8247 section 2.4: groups 31, 19 and 20 SHOULD).
const KEY_EXCHANGE: &[&str] = &["x25519", "curve25519", "ecp256", "ecp384"];

/// Integrity keywords, which an AEAD proposal does not take (RFC 7296 section 3.3).
const INTEGRITY: &[&str] = &[
    "sha256", "sha384", "sha512", "sha2_256", "sha2_384", "sha2_512",
];

/// Refused keywords: the keyword, why (RFC 8247 requirement level and section), and what to
/// write instead.
const REFUSED: &[(&str, &str, &str)] = &[
    ("des", "MUST NOT, RFC 8247 section 2.1", "aes256gcm16"),
    (
        "3des",
        "a 64-bit block cipher, MAY at most, RFC 8247 section 2.1",
        "aes256gcm16",
    ),
    (
        "md5",
        "MUST NOT, RFC 8247 section 2.3",
        "prfsha384 with an AEAD such as aes256gcm16",
    ),
    (
        "sha1",
        "MUST-, on its way out, RFC 8247 section 2.3",
        "prfsha384 with an AEAD such as aes256gcm16",
    ),
    (
        "sha",
        "MUST-, on its way out, RFC 8247 section 2.3",
        "prfsha384 with an AEAD such as aes256gcm16",
    ),
    ("prfmd5", "MUST NOT, RFC 8247 section 2.2", "prfsha384"),
    (
        "prfsha1",
        "MUST-, on its way out, RFC 8247 section 2.2",
        "prfsha384",
    ),
    ("modp768", "MUST NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1024s160", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp1536", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s224", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
    ("modp2048s256", "SHOULD NOT, RFC 8247 section 2.4", "x25519"),
];

/// Checks one proposal.
///
/// # Errors
/// A message naming the first refused keyword and its replacement, else the first keyword not
/// understood, else the transform type missing.
pub(super) fn check(proposal: &str) -> Result<(), String> {
    let tokens: Vec<String> = proposal
        .split('-')
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    // Refused keywords first, so that the seed's `3des-md5-modp1024` names the replacements.
    for t in &tokens {
        if let Some((_, reason, instead)) = REFUSED.iter().find(|(name, _, _)| name == t) {
            return Err(format!("`{t}` is refused ({reason}): use `{instead}`"));
        }
    }
    let (mut encryption, mut prf, mut key_exchange) = (false, false, false);
    for t in &tokens {
        let t = t.as_str();
        if ENCRYPTION.contains(&t) {
            encryption = true;
        } else if PRF.contains(&t) {
            prf = true;
        } else if KEY_EXCHANGE.contains(&t) {
            key_exchange = true;
        } else if INTEGRITY.contains(&t) {
            let hash = t.trim_start_matches("sha2_").trim_start_matches("sha");
            return Err(format!(
                "`{t}` is an integrity algorithm, which an AEAD does not take: write `prfsha{hash}` for the PRF instead"
            ));
        } else {
            return Err(format!(
                "`{t}` is not an IKE keyword this router implements: use aes256gcm16, aes128gcm16 or chacha20poly1305 (encryption), prfsha256, prfsha384 or prfsha512 (PRF), x25519, ecp256 or ecp384 (key exchange)"
            ));
        }
    }
    if !encryption {
        return Err("the IKE proposal names no encryption: add aes256gcm16".into());
    }
    if !prf {
        return Err(
            "the IKE proposal names no PRF, which an AEAD proposal must: add prfsha384".into(),
        );
    }
    if !key_exchange {
        return Err("the IKE proposal names no key exchange: add x25519".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_modern_proposals() {
        for p in [
            "aes256gcm16-prfsha384-x25519",
            "AES128GCM16-prfsha256-ecp256",
            "chacha20poly1305-prfsha512-curve25519-ecp384",
            "aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refuses_with_replacements() {
        // The seed's `crypto isakmp policy 1`: encryption 3des, hash md5, group 2.
        let e = check("3des-md5-modp1024").unwrap_err();
        assert!(
            e.starts_with("`3des` is refused") && e.ends_with("use `aes256gcm16`"),
            "{e}"
        );
        let e = check("aes256gcm16-md5-x25519").unwrap_err();
        assert!(e.contains("`md5`") && e.contains("prfsha384"), "{e}");
        let e = check("aes256gcm16-prfsha1-x25519").unwrap_err();
        assert!(e.contains("use `prfsha384`"), "{e}");
        let e = check("aes256gcm16-prfsha384-modp1024").unwrap_err();
        assert!(
            e.contains("SHOULD NOT") && e.contains("use `x25519`"),
            "{e}"
        );
        let e = check("aes256gcm16-sha384-x25519").unwrap_err();
        assert!(e.contains("write `prfsha384`"), "{e}");
        let e = check("aes256-prfsha384-x25519").unwrap_err();
        assert!(
            e.contains("`aes256` is not an IKE keyword") && e.contains("aes256gcm16"),
            "{e}"
        );
        let e = check("prfsha384-x25519").unwrap_err();
        assert!(e.contains("add aes256gcm16"), "{e}");
        let e = check("aes256gcm16-x25519").unwrap_err();
        assert!(e.contains("add prfsha384"), "{e}");
        let e = check("aes256gcm16-prfsha384").unwrap_err();
        assert!(e.contains("add x25519"), "{e}");
        let e = check("").unwrap_err();
        assert!(e.contains("``"), "{e}");
    }
}
