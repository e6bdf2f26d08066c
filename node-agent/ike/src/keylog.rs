//! The opt-in key log: the keys of every SA the engine brings up, serialized to the JSON
//! contract that test tooling outside this repository reads (issue 4):
//!
//! ```text
//! {"ike_sas":[{"spi_i","spi_r","encr","integ","sk_ei","sk_er","sk_ai","sk_ar"}],
//!  "esp_sas":[{"spi","src","dst","encr","encr_key","integ","integ_key"}]}
//! ```
//!
//! IKE SPIs are 16 lower-case hex digits, ESP SPIs `0x` and 8 hex digits, keys lower-case hex
//! (AES-GCM and ChaCha20-Poly1305 keys end with their 4-byte salt), algorithm names as
//! strongSwan prints them. Every cipher here is an AEAD, so `integ`, `sk_ai`, `sk_ar` and
//! `integ_key` are JSON `null` (not `""`: there is no key, rather than an empty one). One
//! `esp_sas` entry per direction, `src`/`dst` being that direction's outer addresses.
//! Entries of deleted SAs stay, since tooling decrypts old captures, up to a limit per list
//! ([`crate::Config::key_log_ike_sas`], [`crate::Config::key_log_esp_sas`]) past which the
//! oldest go. Off by default; the engine only keeps the data ([`crate::Engine::key_log`]),
//! writing a file is the agent's job.

use core::fmt::Write;
use core::net::IpAddr;
use std::collections::VecDeque;

use dmvpn_esp::Algorithm;

/// The keys of one IKE SA.
#[derive(Clone, PartialEq, Eq)]
pub struct IkeSaKeys {
    /// SPIi.
    pub spi_i: u64,
    /// SPIr.
    pub spi_r: u64,
    /// The SK cipher.
    pub encr: Algorithm,
    /// SK_ei (key and salt).
    pub sk_ei: Vec<u8>,
    /// SK_er (key and salt).
    pub sk_er: Vec<u8>,
}

/// The keys of one direction of a CHILD_SA.
#[derive(Clone, PartialEq, Eq)]
pub struct EspSaKeys {
    /// The SPI in the packets of this direction.
    pub spi: u32,
    /// The outer source address.
    pub src: IpAddr,
    /// The outer destination address.
    pub dst: IpAddr,
    /// The cipher.
    pub encr: Algorithm,
    /// Key and salt.
    pub key: Vec<u8>,
}

impl core::fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "IkeSaKeys({:016x}_i {:016x}_r {}, <redacted>)",
            self.spi_i, self.spi_r, self.encr
        )
    }
}

impl core::fmt::Debug for EspSaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "EspSaKeys({:#010x} {} -> {} {}, <redacted>)",
            self.spi, self.src, self.dst, self.encr
        )
    }
}

/// The last entries of one list of the key log, oldest first: at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped<T> {
    items: VecDeque<T>,
    limit: usize,
}

impl<T> Capped<T> {
    /// An empty list keeping at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Capped {
            items: VecDeque::new(),
            limit,
        }
    }

    /// Appends `item`, dropping the oldest entries beyond the limit.
    pub fn push(&mut self, item: T) {
        if self.limit == 0 {
            return;
        }
        while self.items.len() >= self.limit {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<'a, T> IntoIterator for &'a Capped<T> {
    type Item = &'a T;
    type IntoIter = std::collections::vec_deque::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> FromIterator<T> for Capped<T> {
    /// Every item, with no limit.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Capped {
            items: iter.into_iter().collect(),
            limit: usize::MAX,
        }
    }
}

/// Every SA's keys, in the order they came up (the last ones, past the limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLog {
    /// IKE SAs.
    pub ike_sas: Capped<IkeSaKeys>,
    /// ESP SAs, one per direction.
    pub esp_sas: Capped<EspSaKeys>,
}

impl Default for KeyLog {
    /// An empty log with the default limits: 1024 IKE SAs, 4096 ESP SA directions.
    fn default() -> Self {
        Self::with_limits(1024, 4096)
    }
}

impl KeyLog {
    /// An empty log keeping at most `ike_sas` IKE SA and `esp_sas` ESP SA entries.
    pub fn with_limits(ike_sas: usize, esp_sas: usize) -> Self {
        KeyLog {
            ike_sas: Capped::new(ike_sas),
            esp_sas: Capped::new(esp_sas),
        }
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    out.push('"');
    bytes.iter().for_each(|b| {
        let _ = write!(out, "{b:02x}");
    });
    out.push('"');
}

impl KeyLog {
    /// The JSON document of the contract above, on one line.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\"ike_sas\":[");
        for (i, k) in self.ike_sas.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"spi_i\":\"{:016x}\",\"spi_r\":\"{:016x}\",\"encr\":\"{}\",\"integ\":null,\"sk_ei\":",
                k.spi_i,
                k.spi_r,
                k.encr.name()
            );
            hex(&mut s, &k.sk_ei);
            s.push_str(",\"sk_er\":");
            hex(&mut s, &k.sk_er);
            s.push_str(",\"sk_ai\":null,\"sk_ar\":null}");
        }
        s.push_str("],\"esp_sas\":[");
        for (i, k) in self.esp_sas.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"spi\":\"{:#010x}\",\"src\":\"{}\",\"dst\":\"{}\",\"encr\":\"{}\",\"encr_key\":",
                k.spi,
                k.src,
                k.dst,
                k.encr.name()
            );
            hex(&mut s, &k.key);
            s.push_str(",\"integ\":null,\"integ_key\":null}");
        }
        s.push_str("]}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_contract() {
        let log = KeyLog {
            ike_sas: [IkeSaKeys {
                spi_i: 0x0102,
                spi_r: 0xa0b0_c0d0_e0f0_0001,
                encr: Algorithm::AesGcm16_256,
                sk_ei: vec![0xab, 0x01],
                sk_er: vec![0xff],
            }]
            .into_iter()
            .collect(),
            esp_sas: [EspSaKeys {
                spi: 0xc1,
                src: "198.18.0.1".parse().unwrap(),
                dst: "198.18.0.2".parse().unwrap(),
                encr: Algorithm::ChaCha20Poly1305,
                key: vec![0x0a],
            }]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            log.to_json(),
            r#"{"ike_sas":[{"spi_i":"0000000000000102","spi_r":"a0b0c0d0e0f00001","encr":"AES_GCM_16_256","integ":null,"sk_ei":"ab01","sk_er":"ff","sk_ai":null,"sk_ar":null}],"esp_sas":[{"spi":"0x000000c1","src":"198.18.0.1","dst":"198.18.0.2","encr":"CHACHA20_POLY1305","encr_key":"0a","integ":null,"integ_key":null}]}"#
        );
        assert_eq!(
            KeyLog::default().to_json(),
            r#"{"ike_sas":[],"esp_sas":[]}"#
        );
        assert!(!format!("{log:?}").contains("ab01") && format!("{log:?}").contains("redacted"));
    }

    #[test]
    fn oldest_entries_go_past_the_limit() {
        let esp = |spi| EspSaKeys {
            spi,
            src: "198.18.0.1".parse().unwrap(),
            dst: "198.18.0.2".parse().unwrap(),
            encr: Algorithm::AesGcm16_128,
            key: vec![spi as u8],
        };
        let mut log = KeyLog::with_limits(2, 3);
        for spi in 1..=10 {
            log.esp_sas.push(esp(spi));
        }
        for spi in 1..=5u64 {
            log.ike_sas.push(IkeSaKeys {
                spi_i: spi,
                spi_r: spi,
                encr: Algorithm::AesGcm16_128,
                sk_ei: vec![],
                sk_er: vec![],
            });
        }
        let spis: Vec<u32> = log.esp_sas.iter().map(|k| k.spi).collect();
        assert_eq!(spis, [8, 9, 10]);
        let ike: Vec<u64> = log.ike_sas.iter().map(|k| k.spi_i).collect();
        assert_eq!(ike, [4, 5]);
        assert!(
            log.to_json().contains("\"0x0000000a\"") && !log.to_json().contains("\"0x00000007\"")
        );
        let mut off = KeyLog::with_limits(0, 0);
        off.esp_sas.push(esp(1));
        assert!(off.esp_sas.is_empty());
        assert_eq!(KeyLog::default().esp_sas.limit, 4096);
    }
}
