//! The pseudorandom functions of IKEv2 (RFC 7296 section 2.13; HMAC-SHA2 per RFC 4868) and
//! prf+, the key expansion built from them.

use dmvpn_wire::ikev2::PrfId;
use ring::hmac;

use super::Secret;

/// A PRF this engine implements: HMAC with SHA-2 (RFC 4868 section 2.1). RFC 8247 section
/// 2.3 deprecates the MD5 and SHA-1 PRFs, which are refused at configuration time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA2_256 (transform ID 5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (transform ID 6).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (transform ID 7).
    HmacSha512,
}

impl Prf {
    /// Every PRF, in default preference order.
    pub const ALL: [Prf; 3] = [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512];

    /// The IKEv2 transform ID (IANA "Transform Type 2").
    pub const fn id(self) -> PrfId {
        match self {
            Prf::HmacSha256 => PrfId::HmacSha2_256,
            Prf::HmacSha384 => PrfId::HmacSha2_384,
            Prf::HmacSha512 => PrfId::HmacSha2_512,
        }
    }

    /// The PRF of a transform ID, if implemented.
    pub fn from_id(id: PrfId) -> Option<Self> {
        Prf::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The strongSwan keyword (`prfsha256`).
    pub const fn keyword(self) -> &'static str {
        match self {
            Prf::HmacSha256 => "prfsha256",
            Prf::HmacSha384 => "prfsha384",
            Prf::HmacSha512 => "prfsha512",
        }
    }

    /// The name strongSwan prints (`PRF_HMAC_SHA2_256`).
    pub const fn name(self) -> &'static str {
        match self {
            Prf::HmacSha256 => "PRF_HMAC_SHA2_256",
            Prf::HmacSha384 => "PRF_HMAC_SHA2_384",
            Prf::HmacSha512 => "PRF_HMAC_SHA2_512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// Bytes of output, which is also the length of SK_d, SK_pi and SK_pr (RFC 7296 section
    /// 2.14: the preferred key size of the PRF; RFC 4868 section 2.1.1).
    pub const fn output_len(self) -> usize {
        match self {
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }

    /// `prf(key, data[0] | data[1] | ...)` (RFC 7296 section 2.13).
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Secret {
        let key = hmac::Key::new(self.hmac(), key);
        let mut ctx = hmac::Context::with_key(&key);
        data.iter().for_each(|d| ctx.update(d));
        Secret::new(ctx.sign().as_ref().to_vec())
    }

    /// Whether `tag` is `prf(key, data)`, compared in constant time (for AUTH, section 2.15).
    pub fn verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&hmac::Key::new(self.hmac(), key), data, tag).is_ok()
    }

    /// `prf+(key, seed)` truncated to `len` bytes (RFC 7296 section 2.13):
    /// `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`. At most 255 blocks.
    ///
    /// # Errors
    /// `None` when `len` needs more than 255 blocks, which no key set of this engine does.
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Option<Secret> {
        if len > 255 * self.output_len() {
            return None;
        }
        let key = hmac::Key::new(self.hmac(), key);
        let mut out = Vec::with_capacity(len + self.output_len());
        let mut previous: Option<hmac::Tag> = None;
        let mut counter = 1u8;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&key);
            if let Some(t) = &previous {
                ctx.update(t.as_ref());
            }
            seed.iter().for_each(|s| ctx.update(s));
            ctx.update(&[counter]);
            let t = ctx.sign();
            out.extend_from_slice(t.as_ref());
            previous = Some(t);
            counter = counter.wrapping_add(1);
        }
        out.truncate(len);
        Some(Secret::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 section 4.2 (test case 1) and 4.3 (test case 2): HMAC-SHA-256/384/512.
    #[test]
    fn rfc4231_test_cases_1_and_2() {
        let key1 = [0x0b; 20];
        let data1 = b"Hi There";
        assert_eq!(
            Prf::HmacSha256.compute(&key1, &[data1]).expose(),
            hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            Prf::HmacSha384.compute(&key1, &[data1]).expose(),
            hex(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            Prf::HmacSha512.compute(&key1, &[data1]).expose(),
            hex(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            )
        );
        // Test case 2: the data split in two pieces hashes as one.
        assert_eq!(
            Prf::HmacSha256
                .compute(b"Jefe", &[b"what do ya want ", b"for nothing?"])
                .expose(),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    /// RFC 4231 section 4.7 (test case 6): a key longer than the block size.
    #[test]
    fn rfc4231_test_case_6() {
        let key = [0xaa; 131];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            Prf::HmacSha256.compute(&key, &[data]).expose(),
            hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
    }

    /// prf+ against its definition written out with single PRF calls (RFC 7296 section 2.13).
    #[test]
    fn prf_plus_is_the_chained_prf() {
        for prf in Prf::ALL {
            let key = b"key";
            let t1 = prf.compute(key, &[b"seed", &[1]]);
            let t2 = prf.compute(key, &[t1.expose(), b"seed", &[2]]);
            let t3 = prf.compute(key, &[t2.expose(), b"seed", &[3]]);
            let want = [t1.expose(), t2.expose(), t3.expose()].concat();
            let len = 2 * prf.output_len() + 5;
            let got = prf.prf_plus(key, &[b"se", b"ed"], len).unwrap();
            assert_eq!(got.expose(), &want[..len]);
        }
        assert!(Prf::HmacSha256.prf_plus(b"k", &[], 255 * 32 + 1).is_none());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Prf::HmacSha256.compute(b"k", &[b"d"]);
        assert_eq!(format!("{s:?}"), "<redacted 32 bytes>");
    }
}
