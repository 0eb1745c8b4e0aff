//! The Internet checksum (RFC 1071) in pieces, so that a template can sum
//! its constant words once and each probe adds only what changes.

/// One's complement sum of big-endian 16-bit words (an odd last byte is
/// padded with zero).
pub fn sum_words(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// Folds a sum to 16 bits and complements it: the checksum field.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An address as words of a sum: two for IPv4, eight for IPv6 (whose
/// pseudo-header sums to the same as IPv4's for the rest: RFC 8200 8.1).
pub fn addr_sum(a: std::net::IpAddr) -> u32 {
    match a {
        std::net::IpAddr::V4(v4) => {
            let v = u32::from(v4);
            (v >> 16) + (v & 0xffff)
        }
        std::net::IpAddr::V6(v6) => sum_words(&v6.octets()),
    }
}
