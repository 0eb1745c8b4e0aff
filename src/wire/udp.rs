//! UDP probes (RFC 768): an IPv4 or IPv6 header, eight bytes of UDP and
//! the payload of the port's protocol (or none).

use std::net::IpAddr;

use crate::wire::checksum::{addr_sum, fold, sum_words};

const PROTO_UDP: u8 = 17;
/// As for TCP probes: an ordinary stack's TTL.
const PROBE_TTL: u8 = 64;

/// The UDP checksum of a datagram from `src:sport` to `dst:dport` carrying
/// `payload` (RFC 768: over the pseudo-header, the header and the data;
/// 0 is sent as 0xffff).
pub fn checksum(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> u16 {
    let len = 8 + payload.len() as u32;
    let sum = addr_sum(src)
        + addr_sum(dst)
        + u32::from(PROTO_UDP)
        + len
        + u32::from(sport)
        + u32::from(dport)
        + len
        + sum_words(payload);
    match fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// The UDP length and checksum as the first ICMP-quoted word after the
/// ports carries them (what [`crate::wire::Quoted::seq`] holds for UDP).
pub fn quoted_word(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> u32 {
    let len = 8 + payload.len() as u32;
    (len << 16) | u32::from(checksum(src, dst, sport, dport, payload))
}

/// Writes the IP packet of a UDP probe into `buf` (cleared first); the
/// family is the destination's. `tag` is the IPv4 identification (its low
/// 16 bits) or the IPv6 flow label (its low 20 bits).
#[allow(clippy::too_many_arguments)]
pub fn write(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    tag: u32,
    payload: &[u8],
    buf: &mut Vec<u8>,
) {
    let udp_len = 8 + payload.len();
    buf.clear();
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let label = (tag & 0x000f_ffff).to_be_bytes();
            buf.extend_from_slice(&[0x60, label[1], label[2], label[3]]);
            buf.extend_from_slice(&(udp_len as u16).to_be_bytes());
            buf.extend_from_slice(&[PROTO_UDP, PROBE_TTL]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        _ => {
            let total = (20 + udp_len) as u16;
            buf.extend_from_slice(&[0x45, 0]);
            buf.extend_from_slice(&total.to_be_bytes());
            buf.extend_from_slice(&(tag as u16).to_be_bytes());
            buf.extend_from_slice(&[0, 0, PROBE_TTL, PROTO_UDP, 0, 0]);
            buf.extend_from_slice(&crate::wire::v4(src).octets());
            buf.extend_from_slice(&crate::wire::v4(dst).octets());
            let ip_sum = fold(sum_words(&buf[..20]));
            buf[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        }
    }
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&(udp_len as u16).to_be_bytes());
    buf.extend_from_slice(&checksum(src, dst, sport, dport, payload).to_be_bytes());
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn a_probe_is_what_etherparse_reads_and_its_checksums_verify() {
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(10, 213, 1, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 213, 1, 2)),
        );
        let payload = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        let mut buf = Vec::new();
        write(a, b, 40000, 53, 0xbeef, &payload, &mut buf);
        let p = etherparse::SlicedPacket::from_ip(&buf).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().identification(), 0xbeef);
        let ip_header = ip.header().to_header();
        assert_eq!(
            ip_header.calc_header_checksum(),
            ip.header().header_checksum()
        );
        let Some(etherparse::TransportSlice::Udp(udp)) = &p.transport else {
            panic!()
        };
        assert_eq!((udp.source_port(), udp.destination_port()), (40000, 53));
        assert_eq!(udp.payload(), &payload);
        let want = udp
            .to_header()
            .calc_checksum_ipv4(&ip_header, udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), want);
        assert_eq!(
            quoted_word(a, b, 40000, 53, &payload),
            (21 << 16) | u32::from(want)
        );
    }

    #[test]
    fn an_ipv6_probe_is_what_etherparse_reads_and_its_checksum_verifies() {
        let a: Ipv6Addr = "fd00:213:1::1".parse().unwrap();
        let b: Ipv6Addr = "fd00:213:1::2".parse().unwrap();
        let payload = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        let mut buf = vec![0xa5; 7];
        write(a.into(), b.into(), 40000, 53, 0xbeef, &payload, &mut buf);
        assert_eq!(buf.len(), 40 + 8 + payload.len());
        let p = etherparse::SlicedPacket::from_ip(&buf).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().hop_limit(), 64);
        assert_eq!(
            (ip.header().source_addr(), ip.header().destination_addr()),
            (a, b)
        );
        let Some(etherparse::TransportSlice::Udp(udp)) = &p.transport else {
            panic!()
        };
        let want = udp
            .to_header()
            .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), want);
        assert_eq!(
            quoted_word(a.into(), b.into(), 40000, 53, &payload),
            (21 << 16) | u32::from(want)
        );
    }
}
