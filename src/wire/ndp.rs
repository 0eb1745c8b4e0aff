//! Neighbour discovery (RFC 4861) for IPv6 hosts on the local link: the
//! solicitation that asks who holds an address, and the advertisement
//! that says so. The counterpart of ARP (`wire::arp`) for host discovery.

use std::net::{IpAddr, Ipv6Addr};

use etherparse::{IpNumber, NetSlice, SlicedPacket, TransportSlice};

use crate::wire::checksum::{addr_sum, fold, sum_words};
use crate::wire::frame::Mac;

const SOLICITATION: u8 = 135;
const ADVERTISEMENT: u8 = 136;
/// RFC 4861 4.6.1: source and target link-layer address options.
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// RFC 4861 7.1.1: neighbour discovery comes and goes with hop limit 255,
/// which no router forwards; anything less is from off the link.
const HOP_LIMIT: u8 = 255;

/// The solicited-node multicast address of `target` (RFC 4291 2.7.1) and
/// its Ethernet multicast MAC (RFC 2464 7).
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, Mac) {
    let t = target.octets();
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xff, 0x02]);
    a[11..13].copy_from_slice(&[0x01, 0xff]);
    a[13..].copy_from_slice(&t[13..]);
    (Ipv6Addr::from(a), [0x33, 0x33, 0xff, t[13], t[14], t[15]])
}

/// "Who has `target`? Tell `src` at `src_mac`": the whole IPv6 packet to
/// `target`'s solicited-node address, and the MAC it goes to.
pub fn solicitation(src_mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> (Vec<u8>, Mac) {
    let (dst, mac) = solicited_node(target);
    let mut icmp = vec![SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[OPT_SOURCE_LL, 1]);
    icmp.extend_from_slice(&src_mac);
    let sum = fold(
        sum_words(&icmp)
            + addr_sum(src.into())
            + addr_sum(dst.into())
            + u32::from(IpNumber::IPV6_ICMP.0)
            + icmp.len() as u32,
    );
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.extend_from_slice(&[IpNumber::IPV6_ICMP.0, HOP_LIMIT]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    (p, mac)
}

/// A neighbour advertisement: `target` is at `mac`, told to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub target: Ipv6Addr,
    pub mac: Option<Mac>,
    pub to: IpAddr,
    pub solicited: bool,
}

/// Parses an IPv6 packet (from its header on); `None` unless it is a
/// neighbour advertisement from the link (hop limit 255).
pub fn parse_advert(bytes: &[u8]) -> Option<Advert> {
    let sliced = SlicedPacket::from_ip(bytes).ok()?;
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        return None;
    };
    if ip.header().hop_limit() != HOP_LIMIT {
        return None;
    }
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        return None;
    };
    if icmp.type_u8() != ADVERTISEMENT || icmp.code_u8() != 0 {
        return None;
    }
    let m = icmp.slice();
    let flags = *m.get(4)?;
    let target: [u8; 16] = m.get(8..24)?.try_into().ok()?;
    // Options: (type, length in 8-byte units, data); a zero length is
    // invalid (RFC 4861 4.6) and ends the walk.
    let mut mac = None;
    let mut at = 24;
    while let (Some(&kind), Some(&len)) = (m.get(at), m.get(at + 1)) {
        let end = at + usize::from(len) * 8;
        if len == 0 || end > m.len() {
            break;
        }
        if kind == OPT_TARGET_LL && len == 1 {
            mac = m.get(at + 2..at + 8).and_then(|b| b.try_into().ok());
        }
        at = end;
    }
    Some(Advert {
        target: Ipv6Addr::from(target),
        mac,
        to: IpAddr::V6(ip.header().destination_addr()),
        solicited: flags & 0x40 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 1);
    const WEB: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0xab, 0xcd02);
    const OUR_MAC: Mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn a_solicitation_is_rfc_4861_bytes_with_a_valid_checksum() {
        let (p, mac) = solicitation(OUR_MAC, US, WEB);
        assert_eq!(mac, [0x33, 0x33, 0xff, 0xab, 0xcd, 0x02]);
        let sliced = SlicedPacket::from_ip(&p).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
            panic!()
        };
        assert_eq!(ip.header().hop_limit(), 255);
        assert_eq!(
            ip.header().destination_addr(),
            "ff02::1:ffab:cd02".parse::<Ipv6Addr>().unwrap()
        );
        let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
            panic!()
        };
        let want = icmp
            .header()
            .icmp_type
            .calc_checksum(
                US.octets(),
                ip.header().destination_addr().octets(),
                icmp.payload(),
            )
            .unwrap();
        assert_eq!(icmp.checksum(), want);
        assert_eq!(&icmp.slice()[8..24], &WEB.octets());
        assert_eq!(
            &icmp.slice()[24..],
            &[1, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55]
        );
    }

    /// An advertisement as Linux sends it: solicited and override flags,
    /// the target link-layer option.
    fn advert(hop: u8, options: &[u8]) -> Vec<u8> {
        let mut icmp = vec![ADVERTISEMENT, 0, 0, 0, 0x60, 0, 0, 0];
        icmp.extend_from_slice(&WEB.octets());
        icmp.extend_from_slice(options);
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv6(WEB.octets(), US.octets(), hop)
            .icmpv6_raw(ADVERTISEMENT, 0, [0x60, 0, 0, 0])
            .write(&mut out, &icmp[8..])
            .unwrap();
        out
    }

    #[test]
    fn advertisements_parse_and_others_do_not() {
        let web_mac = [2, 0, 0, 0, 0, 2];
        let p = advert(255, &[2, 1, 2, 0, 0, 0, 0, 2]);
        assert_eq!(
            parse_advert(&p),
            Some(Advert {
                target: WEB,
                mac: Some(web_mac),
                to: US.into(),
                solicited: true,
            })
        );
        // From off the link: not neighbour discovery.
        assert_eq!(parse_advert(&advert(64, &[2, 1, 2, 0, 0, 0, 0, 2])), None);
        // A zero-length option ends the walk; the answer stands without a MAC.
        assert_eq!(
            parse_advert(&advert(255, &[2, 0, 2, 0, 0, 0, 0, 2]))
                .unwrap()
                .mac,
            None
        );
        // Our own solicitation is no advertisement; cut short, nothing.
        assert_eq!(parse_advert(&solicitation(OUR_MAC, US, WEB).0), None);
        for n in 0..p.len() {
            let _ = parse_advert(&p[..n]);
        }
    }
}
