//! SKEYSEED and the keys of an IKE SA (RFC 7296 sections 2.14 and 2.18) and the KEYMAT of a
//! CHILD_SA (section 2.17).
//!
//! With an AEAD (the only ciphers here) there is no integrity transform, so SK_ai and SK_ar
//! are empty, and SK_ei / SK_er are the cipher key followed by the 4-byte salt (RFC 5282
//! section 7.1 for AES-GCM, RFC 7634 section 4 for ChaCha20-Poly1305).

use dmvpn_esp::Algorithm;

use super::Secret;
use super::prf::Prf;

/// The keys of an IKE SA (RFC 7296 section 2.14).
#[derive(Debug, Clone)]
pub struct IkeKeys {
    /// SK_d: the key CHILD_SA keys and rekeyed IKE SAs derive from.
    pub sk_d: Secret,
    /// SK_ai: empty with an AEAD.
    pub sk_ai: Secret,
    /// SK_ar: empty with an AEAD.
    pub sk_ar: Secret,
    /// SK_ei: key and salt protecting the initiator's messages.
    pub sk_ei: Secret,
    /// SK_er: key and salt protecting the responder's messages.
    pub sk_er: Secret,
    /// SK_pi: the key of the initiator's AUTH (section 2.15).
    pub sk_pi: Secret,
    /// SK_pr: the key of the responder's AUTH.
    pub sk_pr: Secret,
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` of an IKE SA made by IKE_SA_INIT (RFC 7296 section 2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], shared: &[u8]) -> Secret {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    let s = prf.compute(&key, &[shared]);
    drop(Secret::new(key));
    s
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` of an IKE SA made by rekeying another
/// (RFC 7296 section 2.18), with the old SA's PRF.
pub fn skeyseed_rekey(
    old_prf: Prf,
    old_sk_d: &Secret,
    shared: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    old_prf.compute(old_sk_d.expose(), &[shared, ni, nr])
}

/// `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi |
/// SPIr)` (RFC 7296 section 2.14).
pub fn ike_keys(
    prf: Prf,
    encr: Algorithm,
    skeyseed: &Secret,
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> IkeKeys {
    let p = prf.output_len();
    let e = encr.key_material_len();
    let total = 3 * p + 2 * e;
    let (si, sr) = (spi_i.to_be_bytes(), spi_r.to_be_bytes());
    // At most 3 * 64 + 2 * 36 bytes: well within prf+'s 255 blocks.
    let keymat = prf
        .prf_plus(skeyseed.expose(), &[ni, nr, &si, &sr], total)
        .unwrap_or_default();
    let k = keymat.expose();
    let take =
        |at: usize, len: usize| Secret::new(k.get(at..at + len).unwrap_or_default().to_vec());
    IkeKeys {
        sk_d: take(0, p),
        sk_ai: Secret::default(),
        sk_ar: Secret::default(),
        sk_ei: take(p, e),
        sk_er: take(p + e, e),
        sk_pi: take(p + 2 * e, p),
        sk_pr: take(2 * p + 2 * e, p),
    }
}

/// The key material of a CHILD_SA, one per direction (RFC 7296 section 2.17).
#[derive(Debug, Clone)]
pub struct ChildKeys {
    /// Protects the traffic from the initiator of the exchange to its responder (taken
    /// first from KEYMAT).
    pub initiator_to_responder: Secret,
    /// Protects the traffic from the responder to the initiator.
    pub responder_to_initiator: Secret,
}

/// `KEYMAT = prf+(SK_d, Ni | Nr)`, or `prf+(SK_d, g^ir (new) | Ni | Nr)` with PFS (RFC 7296
/// section 2.17), split into the two directions' key material for `encr`.
pub fn child_keys(
    prf: Prf,
    sk_d: &Secret,
    pfs: Option<&Secret>,
    ni: &[u8],
    nr: &[u8],
    encr: Algorithm,
) -> ChildKeys {
    let e = encr.key_material_len();
    let shared = pfs.map_or(&[][..], Secret::expose);
    let keymat = prf
        .prf_plus(sk_d.expose(), &[shared, ni, nr], 2 * e)
        .unwrap_or_default();
    let k = keymat.expose();
    ChildKeys {
        initiator_to_responder: Secret::new(k.get(..e).unwrap_or_default().to_vec()),
        responder_to_initiator: Secret::new(k.get(e..2 * e).unwrap_or_default().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::hmac;

    /// HMAC-SHA-256 written out from its definition (RFC 2104 section 2) over ring's bare
    /// SHA-256, so the derivation below does not use the `Prf` code it checks. What stays
    /// shared with the code under test is ring's SHA-256 itself.
    fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
        use ring::digest::{SHA256, digest};
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(digest(&SHA256, key).as_ref());
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let inner: Vec<u8> = k
            .iter()
            .map(|b| b ^ 0x36)
            .chain(data.iter().copied())
            .collect();
        let ih = digest(&SHA256, &inner);
        let outer: Vec<u8> = k
            .iter()
            .map(|b| b ^ 0x5c)
            .chain(ih.as_ref().iter().copied())
            .collect();
        digest(&SHA256, &outer).as_ref().to_vec()
    }

    /// prf+ written out from RFC 7296 section 2.13 over [`hmac_sha256`].
    fn prf_plus(key: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut t = Vec::new();
        let mut n = 1u8;
        while out.len() < len {
            let mut input = t.clone();
            input.extend_from_slice(seed);
            input.push(n);
            t = hmac_sha256(key, &input);
            out.extend_from_slice(&t);
            n += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn written_out_hmac_matches_ring() {
        let key = [0x0b; 20];
        let ring_tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), b"Hi There");
        assert_eq!(hmac_sha256(&key, b"Hi There"), ring_tag.as_ref());
        assert_eq!(
            hmac_sha256(&[0xaa; 131], b"x"),
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[0xaa; 131]), b"x").as_ref()
        );
    }

    /// End to end: SKEYSEED, the seven IKE keys and a CHILD_SA's KEYMAT for fixed inputs,
    /// against the same computation written out in this test (independent of `Prf`, prf+ and
    /// the key slicing; dependent on ring's SHA-256).
    #[test]
    fn ike_and_child_keys_from_fixed_inputs() {
        let ni: Vec<u8> = (0u8..32).collect();
        let nr: Vec<u8> = (100u8..132).collect();
        let g_ir: Vec<u8> = (200u8..232).collect();
        let (spi_i, spi_r) = (0x0102_0304_0506_0708u64, 0x1112_1314_1516_1718u64);
        let encr = Algorithm::AesGcm16_256;

        let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &g_ir);
        let want_seed = hmac_sha256(&[ni.clone(), nr.clone()].concat(), &g_ir);
        assert_eq!(seed.expose(), want_seed);

        let keys = ike_keys(Prf::HmacSha256, encr, &seed, &ni, &nr, spi_i, spi_r);
        let s = [
            ni.clone(),
            nr.clone(),
            spi_i.to_be_bytes().to_vec(),
            spi_r.to_be_bytes().to_vec(),
        ]
        .concat();
        let km = prf_plus(&want_seed, &s, 32 * 3 + 36 * 2);
        assert_eq!(keys.sk_d.expose(), &km[0..32]);
        assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
        assert_eq!(keys.sk_ei.expose(), &km[32..68]);
        assert_eq!(keys.sk_er.expose(), &km[68..104]);
        assert_eq!(keys.sk_pi.expose(), &km[104..136]);
        assert_eq!(keys.sk_pr.expose(), &km[136..168]);

        let child = child_keys(
            Prf::HmacSha256,
            &keys.sk_d,
            None,
            &ni,
            &nr,
            Algorithm::AesGcm16_128,
        );
        let km = prf_plus(&km[0..32], &[ni.clone(), nr.clone()].concat(), 40);
        assert_eq!(child.initiator_to_responder.expose(), &km[..20]);
        assert_eq!(child.responder_to_initiator.expose(), &km[20..40]);

        let pfs = Secret::new(vec![9; 32]);
        let child = child_keys(Prf::HmacSha256, &keys.sk_d, Some(&pfs), &ni, &nr, encr);
        let km = prf_plus(
            keys.sk_d.expose(),
            &[vec![9; 32], ni.clone(), nr.clone()].concat(),
            72,
        );
        assert_eq!(child.initiator_to_responder.expose(), &km[..36]);
        assert_eq!(child.responder_to_initiator.expose(), &km[36..]);

        let rekeyed = skeyseed_rekey(Prf::HmacSha256, &keys.sk_d, &g_ir, &ni, &nr);
        let want = hmac_sha256(
            keys.sk_d.expose(),
            &[g_ir.clone(), ni.clone(), nr.clone()].concat(),
        );
        assert_eq!(rekeyed.expose(), want);
    }
}
