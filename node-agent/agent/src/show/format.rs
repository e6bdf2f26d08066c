//! Cisco IOS's ways of writing times, SPIs and masks, shared by the `show` tables.

use core::net::IpAddr;
use core::time::Duration;

use dmvpn_nhrp::EntryType;

const DAY: u64 = 24 * 3600;
const WEEK: u64 = 7 * DAY;

/// A duration as IOS prints uptimes and expiries: `00:05:12` under a day, `1d02h` under a
/// week, `3w2d` beyond.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    if s < DAY {
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else if s < WEEK {
        format!("{}d{:02}h", s / DAY, s % DAY / 3600)
    } else {
        format!("{}w{}d", s / WEEK, s % WEEK / DAY)
    }
}

/// An ESP SPI as `show crypto ipsec sa` prints it: `0xC32C6D83(3274468739)`.
pub fn spi_text(spi: u32) -> String {
    format!("0x{spi:08X}({spi})")
}

/// An ESP SPI in the JSON documents: `0x` and 8 lowercase hex digits (`0xc32c6d83`), the
/// form of the IKE key log (issue 4).
pub fn spi_json(spi: u32) -> String {
    format!("0x{spi:08x}")
}

/// An IKE SPI: 16 lowercase hex digits, as the IKE key log writes them.
pub fn ike_spi(spi: u64) -> String {
    format!("{spi:016x}")
}

/// The `addr/mask` of a host identity in `show crypto ipsec sa`: `198.18.0.1/255.255.255.255`,
/// or `2001:db8::1/128` for IPv6 as IOS writes it.
pub fn host_ident(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/255.255.255.255"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// The JSON name of an NHRP entry type: `static`, `dynamic` (registered), `shortcut`,
/// `local` or `incomplete`.
pub const fn entry_type(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Static => "static",
        EntryType::Registered => "dynamic",
        EntryType::Shortcut => "shortcut",
        EntryType::Local => "local",
        EntryType::Incomplete => "incomplete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_switch_units_like_ios() {
        assert_eq!(uptime(Duration::from_secs(0)), "00:00:00");
        assert_eq!(
            uptime(Duration::from_secs(10 * 3600 + 21 * 60 + 9)),
            "10:21:09"
        );
        assert_eq!(uptime(Duration::from_secs(DAY - 1)), "23:59:59");
        assert_eq!(uptime(Duration::from_secs(DAY + 2 * 3600 + 59)), "1d02h");
        assert_eq!(uptime(Duration::from_secs(3 * WEEK + 2 * DAY + 5)), "3w2d");
    }

    #[test]
    fn spis_match_the_seed_and_the_key_log() {
        // The seed's hub: "current outbound spi: 0xC32C6D83(3274468739)".
        assert_eq!(spi_text(3_274_468_739), "0xC32C6D83(3274468739)");
        assert_eq!(spi_json(0x0000_0a0b), "0x00000a0b");
        assert_eq!(ike_spi(0xab), "00000000000000ab");
    }

    #[test]
    fn host_identities_per_family() {
        assert_eq!(
            host_ident("202.1.1.1".parse().unwrap()),
            "202.1.1.1/255.255.255.255"
        );
        assert_eq!(
            host_ident("2001:db8::1".parse().unwrap()),
            "2001:db8::1/128"
        );
    }
}
