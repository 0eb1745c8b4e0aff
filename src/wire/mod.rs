//! Bytes on the wire: building probes and parsing replies.
//!
//! Parsing goes through etherparse's checked slices and never indexes past
//! what it verified, so any byte string is safe input: the worst it can be
//! is [`Parsed::Ignored`] or an error.

pub(crate) mod arp;
pub(crate) mod checksum;
pub mod flag;
pub(crate) mod frame;
pub(crate) mod icmp;
pub(crate) mod ndp;
pub(crate) mod udp;

#[cfg(test)]
pub(crate) mod fixtures;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    IpNumber, Ipv4Header, Ipv4HeaderSlice, Ipv6FlowLabel, Ipv6Header, Ipv6HeaderSlice, NetSlice,
    SlicedPacket, TcpHeader, TransportSlice,
};

/// An address as IPv4: the unspecified address for an IPv6 one (a probe's
/// two addresses are always of one family; this never panics if not).
pub(crate) fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// An address as IPv6: an IPv4 one in its mapped form.
pub(crate) fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// ICMPv6 destination-unreachable codes (RFC 4443 3.1) travel in the
/// same `code` byte as ICMP's, with this bit set: the technique tables
/// match them by their ICMP equivalent, and reasons keep their own names.
pub const ICMPV6_CODE: u8 = 0x80;

/// A probe's variable fields; everything else comes from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFields {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
}

/// A TCP probe header with the technique's flags, patched per probe.
#[derive(Debug, Clone)]
pub struct ProbeTemplate {
    ip: Ipv4Header,
    tcp: TcpHeader,
}

/// nmap's choices: a modest window and TTL 64 look like an ordinary stack.
const PROBE_WINDOW: u16 = 1024;
const PROBE_TTL: u8 = 64;

impl ProbeTemplate {
    pub fn new(flags: u8) -> ProbeTemplate {
        use crate::wire::flag;
        let mut tcp = TcpHeader::new(0, 0, 0, PROBE_WINDOW);
        tcp.fin = flags & flag::FIN != 0;
        tcp.syn = flags & flag::SYN != 0;
        tcp.rst = flags & flag::RST != 0;
        tcp.psh = flags & flag::PSH != 0;
        tcp.ack = flags & flag::ACK != 0;
        tcp.urg = flags & flag::URG != 0;
        tcp.ece = flags & flag::ECE != 0;
        tcp.cwr = flags & flag::CWR != 0;
        let ip = Ipv4Header::new(
            tcp.header_len_u16(),
            PROBE_TTL,
            IpNumber::TCP,
            [0; 4],
            [0; 4],
        )
        .expect("a bare TCP header fits in an IPv4 packet");
        ProbeTemplate { ip, tcp }
    }

    /// Writes the IP packet for `p` into `buf` (cleared first), checksums
    /// done: IPv6 when the destination is (which has no identification).
    pub fn write(&self, p: &ProbeFields, ip_id: u16, buf: &mut Vec<u8>) {
        if p.dst.is_ipv6() {
            let mut tcp = self.tcp.clone();
            tcp.source_port = p.sport;
            tcp.destination_port = p.dport;
            tcp.sequence_number = p.seq;
            tcp.acknowledgment_number = p.ack;
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: tcp.header_len_u16(),
                next_header: IpNumber::TCP,
                hop_limit: PROBE_TTL,
                source: v6(p.src).octets(),
                destination: v6(p.dst).octets(),
            };
            tcp.checksum = tcp
                .calc_checksum_ipv6(&ip, &[])
                .expect("no payload, so the length fits");
            buf.clear();
            buf.extend_from_slice(&ip.to_bytes());
            buf.extend_from_slice(&tcp.to_bytes());
            return;
        }
        let mut ip = self.ip.clone();
        ip.source = v4(p.src).octets();
        ip.destination = v4(p.dst).octets();
        ip.identification = ip_id;
        ip.header_checksum = ip.calc_header_checksum();
        let mut tcp = self.tcp.clone();
        tcp.source_port = p.sport;
        tcp.destination_port = p.dport;
        tcp.sequence_number = p.seq;
        tcp.acknowledgment_number = p.ack;
        tcp.checksum = tcp
            .calc_checksum_ipv4(&ip, &[])
            .expect("no payload, so the length fits");
        buf.clear();
        buf.extend_from_slice(&ip.to_bytes());
        buf.extend_from_slice(&tcp.to_bytes());
    }
}

/// The first 8 bytes of our TCP or UDP header, quoted back in an ICMP
/// error, and the quoted IP header's protocol and identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// TCP: the sequence number. UDP: the length and the checksum.
    pub seq: u32,
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// IPv4: the identification; IPv6: the flow label.
    pub ip_id: u32,
}

/// How much of a UDP reply's payload is kept: the fields that echo a
/// probe's cookie lie in its first bytes (NTP's origin timestamp ends at
/// byte 32).
pub const UDP_HEAD: usize = 32;

/// A UDP datagram: its ports and the start of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram {
    pub sport: u16,
    pub dport: u16,
    pub head: [u8; UDP_HEAD],
    /// How many bytes of `head` are the payload's.
    pub head_len: u8,
}

impl UdpDatagram {
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Tcp(TcpSegment),
    Udp(UdpDatagram),
    /// ICMP type 3 (destination unreachable) quoting a TCP or UDP packet.
    Unreachable {
        code: u8,
        quoted: Quoted,
    },
}

/// A packet that may be a reply to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub body: Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Packet(Packet),
    /// Well-formed but of no interest (ICMP echo, fragments...).
    Ignored,
    /// Malformed: truncated or inconsistent headers.
    Malformed,
}

/// An IP packet as the receiving stack reads it: an IPv6 packet whose
/// payload length is 0 ends with its fixed header.
///
/// etherparse reads a payload length of 0 as a jumbogram's (RFC 2675) and
/// takes whatever follows the header, Ethernet padding or a whole forged
/// segment, as the payload. Linux (`ip6_rcv_core`) trims such a packet to
/// its 40 bytes unless a hop-by-hop header follows, and a real jumbogram
/// carries more than 65,535 bytes, which no Ethernet frame and no reply to
/// a 40-byte probe does. So the payload is empty: a transport or
/// extension header promised by the fixed header is then truncated, and
/// the packet is malformed (counted invalid), never a reply.
pub(crate) fn zero_payload_trimmed(bytes: &[u8]) -> &[u8] {
    match bytes {
        [v, _, _, _, 0, 0, ..] if v >> 4 == 6 && bytes.len() > 40 => &bytes[..40],
        _ => bytes,
    }
}

/// Parses an IP packet (starting at the IP header): IPv4, or IPv6 with
/// any extension headers (etherparse walks them with bounds checks).
pub fn parse_ip(bytes: &[u8]) -> Parsed {
    let bytes = zero_payload_trimmed(bytes);
    let Ok(sliced) = SlicedPacket::from_ip(bytes) else {
        return Parsed::Malformed;
    };
    let (src, dst, ttl, proto) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            let header = ip.header();
            if header.is_fragmenting_payload() {
                return Parsed::Ignored;
            }
            (
                IpAddr::V4(header.source_addr()),
                IpAddr::V4(header.destination_addr()),
                header.ttl(),
                header.protocol(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            if ip.is_payload_fragmented() {
                return Parsed::Ignored;
            }
            let header = ip.header();
            (
                IpAddr::V6(header.source_addr()),
                IpAddr::V6(header.destination_addr()),
                header.hop_limit(),
                ip.payload().ip_number,
            )
        }
        _ => return Parsed::Ignored,
    };
    let body = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Body::Tcp(TcpSegment {
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            // Byte 13 of the header holds the eight flag bits.
            flags: tcp.slice().get(13).copied().unwrap_or(0),
            window: tcp.window_size(),
        }),
        Some(TransportSlice::Udp(udp)) => {
            let payload = udp.payload();
            let n = payload.len().min(UDP_HEAD);
            let mut head = [0u8; UDP_HEAD];
            head[..n].copy_from_slice(&payload[..n]);
            Body::Udp(UdpDatagram {
                sport: udp.source_port(),
                dport: udp.destination_port(),
                head,
                head_len: n as u8,
            })
        }
        // ICMP over IPv4 and ICMPv6 over IPv6 only: the other pairing is
        // no stack's error message.
        Some(TransportSlice::Icmpv4(icmp)) if src.is_ipv4() => {
            if icmp.type_u8() != 3 {
                return Parsed::Ignored;
            }
            match parse_quote(icmp.payload()) {
                Quote::Tcp(quoted) => Body::Unreachable {
                    code: icmp.code_u8(),
                    quoted,
                },
                Quote::OtherProtocol => return Parsed::Ignored,
                Quote::Truncated => return Parsed::Malformed,
            }
        }
        // RFC 4443 3.1: destination unreachable, whose codes stop at 6
        // (a larger one is not a code a table could name).
        Some(TransportSlice::Icmpv6(icmp)) if src.is_ipv6() => {
            if icmp.type_u8() != 1 || icmp.code_u8() >= ICMPV6_CODE {
                return Parsed::Ignored;
            }
            match parse_quote6(icmp.payload()) {
                Quote::Tcp(quoted) => Body::Unreachable {
                    code: ICMPV6_CODE | icmp.code_u8(),
                    quoted,
                },
                Quote::OtherProtocol => return Parsed::Ignored,
                Quote::Truncated => return Parsed::Malformed,
            }
        }
        Some(_) => return Parsed::Ignored,
        None => {
            return if proto == IpNumber::TCP
                || proto == IpNumber::UDP
                || (proto == IpNumber::ICMP && src.is_ipv4())
                || (proto == IpNumber::IPV6_ICMP && src.is_ipv6())
            {
                Parsed::Malformed
            } else {
                Parsed::Ignored
            };
        }
    };
    Parsed::Packet(Packet {
        src,
        dst,
        ttl,
        body,
    })
}

enum Quote {
    Tcp(Quoted),
    OtherProtocol,
    Truncated,
}

fn parse_quote(payload: &[u8]) -> Quote {
    let Ok(ip) = Ipv4HeaderSlice::from_slice(payload) else {
        return Quote::Truncated;
    };
    if ip.protocol() != IpNumber::TCP && ip.protocol() != IpNumber::UDP {
        return Quote::OtherProtocol;
    }
    let quoted = payload
        .get(ip.slice().len()..)
        .and_then(|l4| quoted_ports(l4, ip.protocol().0, u32::from(ip.identification())));
    match quoted {
        Some(mut q) => {
            q.src = IpAddr::V4(ip.source_addr());
            q.dst = IpAddr::V4(ip.destination_addr());
            Quote::Tcp(q)
        }
        None => Quote::Truncated,
    }
}

/// The quoted packet of an ICMPv6 error: our probe as we built it, with
/// no extension headers, so TCP or UDP follows the fixed header directly.
fn parse_quote6(payload: &[u8]) -> Quote {
    let Ok(ip) = Ipv6HeaderSlice::from_slice(payload) else {
        return Quote::Truncated;
    };
    if ip.next_header() != IpNumber::TCP && ip.next_header() != IpNumber::UDP {
        return Quote::OtherProtocol;
    }
    let quoted = payload
        .get(ip.slice().len()..)
        .and_then(|l4| quoted_ports(l4, ip.next_header().0, ip.flow_label().value()));
    match quoted {
        Some(mut q) => {
            q.src = IpAddr::V6(ip.source_addr());
            q.dst = IpAddr::V6(ip.destination_addr());
            Quote::Tcp(q)
        }
        None => Quote::Truncated,
    }
}

/// The first 8 bytes of a quoted TCP or UDP header (addresses left for the
/// caller to fill).
fn quoted_ports(l4: &[u8], proto: u8, ip_id: u32) -> Option<Quoted> {
    let word = |at: usize| -> Option<[u8; 4]> { l4.get(at..at + 4)?.try_into().ok() };
    let ports = word(0)?;
    Some(Quoted {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        seq: u32::from_be_bytes(word(4)?),
        proto,
        ip_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wire::fixtures::{self, *};

    #[test]
    fn parses_a_reset() {
        let Parsed::Packet(p) = parse_ip(&RST_ACK_FIXTURE) else {
            panic!()
        };
        assert_eq!((p.src, p.dst, p.ttl), (B, A, 64));
        assert_eq!(
            p.body,
            Body::Tcp(TcpSegment {
                sport: 81,
                dport: 60912,
                seq: 0,
                ack: 0x4995_4468,
                flags: flag::RST | flag::ACK,
                window: 0
            })
        );
        // Every captured RST, kernel's or iptables', has window 0.
        for bytes in fixtures::ALL {
            if let Parsed::Packet(Packet {
                body: Body::Tcp(seg),
                ..
            }) = parse_ip(bytes)
            {
                if seg.flags & flag::RST != 0 {
                    assert_eq!(seg.window, 0, "{seg:?}");
                }
            }
        }
    }

    #[test]
    fn parses_a_syn_ack_with_options() {
        let Parsed::Packet(p) = parse_ip(&SYN_ACK_FIXTURE) else {
            panic!()
        };
        let Body::Tcp(t) = p.body else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.flags),
            (22, 60904, 0x3375_8eed, 0xec62_c554, flag::SYN | flag::ACK)
        );
        assert_eq!(t.window, 64240);
        // A 40-byte TCP header (data offset 10) parses too.
        let Parsed::Packet(p) = parse_ip(&SYN_ACK_CONNECT_FIXTURE) else {
            panic!()
        };
        let Body::Tcp(t) = p.body else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.flags),
            (22, 42302, 0xccd5_ebcb, 0x7fc7_8860, flag::SYN | flag::ACK)
        );
        assert_eq!(t.window, 65160);
        // Across the gateway: one hop fewer.
        let Parsed::Packet(p) = parse_ip(&GATEWAY_SYN_ACK_FIXTURE) else {
            panic!()
        };
        assert_eq!((p.src, p.dst, p.ttl), (FAR, A, 63));
    }

    #[test]
    fn offloaded_tcp_checksums_are_not_verified() {
        // Captured on veth, SYN/ACKs and iptables RSTs carry only the
        // pseudo-header sum; they are real replies all the same.
        let full = |bytes: &[u8]| {
            let ip = Ipv4HeaderSlice::from_slice(bytes).unwrap().to_header();
            let tcp = TcpHeader::from_slice(&bytes[20..]).unwrap().0;
            assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
            tcp.calc_checksum_ipv4(&ip, &[]).unwrap() == tcp.checksum
        };
        assert!(full(&RST_ACK_SYN_FIXTURE));
        assert!(full(&GATEWAY_RST_ACK_FIXTURE));
        for partial in [
            &SYN_ACK_FIXTURE[..],
            &GATEWAY_SYN_ACK_FIXTURE[..],
            &REJECT_TCP_RESET_FIXTURE[..],
            &REJECT_TCP_RESET_XMAS_FIXTURE[..],
        ] {
            assert!(!full(partial));
            assert!(matches!(parse_ip(partial), Parsed::Packet(_)));
        }
    }

    #[test]
    fn parses_an_icmp_quote() {
        let Parsed::Packet(p) = parse_ip(&ICMP_PORT_UNREACH_FIXTURE) else {
            panic!()
        };
        assert_eq!((p.src, p.dst, p.ttl), (B, A, 64));
        assert_eq!(
            p.body,
            Body::Unreachable {
                code: 3,
                quoted: Quoted {
                    src: A,
                    dst: B,
                    sport: 60904,
                    dport: 111,
                    seq: 0xbd64_b259,
                    proto: 6,
                    ip_id: 0x12,
                }
            }
        );
        let Parsed::Packet(p) = parse_ip(&ICMP_ADMIN_PROHIBITED_FIXTURE) else {
            panic!()
        };
        assert_eq!(
            p.body,
            Body::Unreachable {
                code: 13,
                quoted: Quoted {
                    src: A,
                    dst: B,
                    sport: 60912,
                    dport: 445,
                    seq: 0xd953_2731,
                    proto: 6,
                    ip_id: 0x1d,
                }
            }
        );
        // RFC 792 only promises 8 bytes of the quoted transport header.
        let mut short = ICMP_PORT_UNREACH_FIXTURE[..56].to_vec();
        short[3] = 56;
        let Parsed::Packet(p) = parse_ip(&short) else {
            panic!()
        };
        assert!(matches!(p.body, Body::Unreachable { code: 3, .. }));
        // Fewer than 8 is malformed.
        let mut shorter = ICMP_PORT_UNREACH_FIXTURE[..55].to_vec();
        shorter[3] = 55;
        assert_eq!(parse_ip(&shorter), Parsed::Malformed);
        // A quoted IPv4 header whose IHL runs past the quote is malformed.
        let mut quoted_ihl = ICMP_PORT_UNREACH_FIXTURE;
        quoted_ihl[28] = 0x4f;
        assert_eq!(parse_ip(&quoted_ihl), Parsed::Malformed);
    }

    #[test]
    fn ethernet_padding_after_the_packet_is_ignored() {
        // On a real NIC a 40-byte packet arrives padded to 46 bytes.
        let mut padded = RST_ACK_FIXTURE.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ip(&padded), parse_ip(&RST_ACK_FIXTURE));
    }

    #[test]
    fn malformed_input_is_reported_not_panicked_on() {
        assert_eq!(parse_ip(&[]), Parsed::Malformed);
        assert_eq!(parse_ip(&RST_ACK_FIXTURE[..19]), Parsed::Malformed);
        // IHL pointing past the packet.
        let mut ihl = RST_ACK_FIXTURE;
        ihl[0] = 0x4f;
        assert_eq!(parse_ip(&ihl), Parsed::Malformed);
        // TCP data offset below 5.
        let mut off = RST_ACK_FIXTURE;
        off[32] = 0x40;
        assert_eq!(parse_ip(&off), Parsed::Malformed);
        // Total length past the buffer.
        let mut total = RST_ACK_FIXTURE;
        total[3] = 0x60;
        assert_eq!(parse_ip(&total), Parsed::Malformed);
        // Truncated TCP header.
        let mut trunc = RST_ACK_FIXTURE[..30].to_vec();
        trunc[3] = 30;
        assert_eq!(parse_ip(&trunc), Parsed::Malformed);
        // TCP options promised by the data offset but cut off.
        let mut opts = SYN_ACK_CONNECT_FIXTURE[..48].to_vec();
        opts[3] = 48;
        assert_eq!(parse_ip(&opts), Parsed::Malformed);
        // Every prefix of every fixture and a pseudo-random byte soup: no panic.
        for bytes in fixtures::ALL {
            for n in 0..bytes.len() {
                let _ = parse_ip(&bytes[..n]);
            }
        }
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_ip(&bytes);
        }
    }

    /// A RST/ACK from web to the scanner over IPv6 (fd00:213:1::2 ->
    /// fd00:213:1::1), as the kernel sends it: 40 + 20 bytes.
    fn rst6() -> Vec<u8> {
        let t = ProbeTemplate::new(flag::RST | flag::ACK);
        let fields = ProbeFields {
            src: "fd00:213:1::2".parse().unwrap(),
            dst: "fd00:213:1::1".parse().unwrap(),
            sport: 81,
            dport: 60904,
            seq: 0,
            ack: 0x4e43_4ded,
        };
        let mut buf = Vec::new();
        t.write(&fields, 0, &mut buf);
        assert!(matches!(parse_ip(&buf), Parsed::Packet(_)));
        buf
    }

    /// `rst6` with `ext` (whose first byte is patched to the next header
    /// after it) between the fixed header and TCP, `first` naming it.
    fn with_ext(first: u8, ext: &[u8]) -> Vec<u8> {
        let r = rst6();
        let mut p = r[..40].to_vec();
        p[6] = first;
        p.extend_from_slice(ext);
        p.extend_from_slice(&r[40..]);
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn an_ipv6_payload_length_of_zero_carries_nothing() {
        // Found by tests/forged_traffic.rs: etherparse took the bytes after
        // the header for a jumbogram's payload, so a RST with a payload
        // length of 0 was a reply, one Linux trims to its header.
        let mut zero = rst6();
        zero[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(parse_ip(&zero), Parsed::Malformed);
        // Ethernet padding behind a bare header is no TCP either.
        let mut padded = zero[..40].to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ip(&padded), Parsed::Malformed);
        // ... and behind "no next header" it is nothing at all.
        padded[6] = 59;
        assert_eq!(parse_ip(&padded), Parsed::Ignored);
        // A hop-by-hop header with a jumbo payload option (RFC 2675): no
        // reply we wait for is one.
        let mut jumbo = with_ext(0, &[6, 0, 0xc2, 4, 0, 1, 0, 0]);
        jumbo[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(parse_ip(&jumbo), Parsed::Malformed);
        assert_eq!(zero_payload_trimmed(&jumbo), &jumbo[..40]);
        // IPv4 and short input pass through untouched.
        assert_eq!(zero_payload_trimmed(&RST_ACK_FIXTURE), &RST_ACK_FIXTURE[..]);
        assert_eq!(zero_payload_trimmed(&zero[..40]), &zero[..40]);
        assert_eq!(zero_payload_trimmed(&[0x60, 0, 0, 0]), &[0x60, 0, 0, 0]);
    }

    #[test]
    fn malformed_ipv6_is_reported_not_panicked_on() {
        let r = rst6();
        // Well-formed extension headers are walked: destination options,
        // hop-by-hop first, an atomic fragment (RFC 6946).
        let pad_n = [6, 0, 1, 4, 0, 0, 0, 0];
        for (first, ext) in [(60, pad_n), (0, pad_n), (44, [6, 0, 0, 0, 0, 0, 0, 1])] {
            let p = with_ext(first, &ext);
            assert_eq!(parse_ip(&p), parse_ip(&r), "{p:02x?}");
        }
        // Truncated fixed header.
        for n in 1..40 {
            assert_eq!(parse_ip(&r[..n]), Parsed::Malformed, "{n}");
        }
        // Payload length past the packet.
        let mut past = r.clone();
        past[5] = 21;
        assert_eq!(parse_ip(&past), Parsed::Malformed);
        // TCP data offset below 5.
        let mut off = r.clone();
        off[40 + 12] = 0x40;
        assert_eq!(parse_ip(&off), Parsed::Malformed);
        // A bare header promising TCP, ICMPv6 or an extension header.
        for next in [6, 58, 0, 60] {
            let mut bare = r[..40].to_vec();
            bare[6] = next;
            bare[4..6].copy_from_slice(&[0, 0]);
            assert_eq!(parse_ip(&bare), Parsed::Malformed, "{next}");
        }
        // Hop-by-hop after another extension header.
        let mut chain = with_ext(60, &[0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(parse_ip(&chain), Parsed::Malformed);
        // An extension header's length running past the packet.
        for (first, len) in [(0, 4), (0, 255), (60, 3), (43, 200)] {
            chain = with_ext(first, &[6, len, 1, 4, 0, 0, 0, 0]);
            assert_eq!(parse_ip(&chain), Parsed::Malformed, "{first} {len}");
        }
        // An authentication header with a payload length of 0.
        let ah = with_ext(51, &[6, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(parse_ip(&ah), Parsed::Malformed);
        // ICMPv6 destination unreachable quoting less than our IPv6
        // header and 8 bytes of TCP.
        let probe = {
            let mut p = Vec::new();
            ProbeTemplate::new(flag::SYN).write(
                &ProbeFields {
                    src: "fd00:213:1::1".parse().unwrap(),
                    dst: "fd00:213:1::2".parse().unwrap(),
                    sport: 60904,
                    dport: 111,
                    seq: 7,
                    ack: 0,
                },
                0,
                &mut p,
            );
            p
        };
        for n in 0..=48 {
            let mut icmp = vec![1, 4, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&probe[..n]);
            let mut p = r[..40].to_vec();
            p[6] = 58;
            p[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
            p.extend_from_slice(&icmp);
            if n < 48 {
                assert_eq!(parse_ip(&p), Parsed::Malformed, "{n}");
            } else {
                let Parsed::Packet(Packet {
                    body: Body::Unreachable { code, quoted },
                    ..
                }) = parse_ip(&p)
                else {
                    panic!("{:?}", parse_ip(&p))
                };
                assert_eq!((code, quoted.dport, quoted.seq), (ICMPV6_CODE | 4, 111, 7));
            }
        }
        // Every prefix, with every payload length: no panic.
        for n in 0..=r.len() {
            for len in 0..=64u16 {
                let mut p = r[..n].to_vec();
                if n >= 6 {
                    p[4..6].copy_from_slice(&len.to_be_bytes());
                }
                let _ = parse_ip(&p);
            }
        }
    }

    #[test]
    fn traffic_that_is_not_a_reply_is_ignored() {
        // ICMP echo request.
        let mut echo = ICMP_PORT_UNREACH_FIXTURE;
        echo[20] = 8;
        echo[21] = 0;
        assert_eq!(parse_ip(&echo), Parsed::Ignored);
        // A port-unreachable about an ICMP message (quoted protocol 1).
        let mut quoting_icmp = ICMP_PORT_UNREACH_FIXTURE;
        quoting_icmp[28 + 9] = 1;
        assert_eq!(parse_ip(&quoting_icmp), Parsed::Ignored);
        // About a UDP datagram: parsed, with the quoted protocol and id (the
        // validator decides whose it is).
        let mut udp = ICMP_PORT_UNREACH_FIXTURE;
        udp[28 + 9] = 17;
        let Parsed::Packet(Packet {
            body: Body::Unreachable { quoted, .. },
            ..
        }) = parse_ip(&udp)
        else {
            panic!("{:?}", parse_ip(&udp))
        };
        assert_eq!((quoted.proto, quoted.ip_id), (17, 0x12));
    }

    #[test]
    fn probes_are_built_from_the_template() {
        let t = ProbeTemplate::new(flag::FIN | flag::PSH | flag::URG);
        let fields = ProbeFields {
            src: A,
            dst: B,
            sport: 33024,
            dport: 81,
            seq: 0x0102_0304,
            ack: 0,
        };
        let mut buf = vec![0xa5; 100];
        t.write(&fields, 0x1234, &mut buf);
        assert_eq!(buf.len(), 40);
        assert_eq!(&buf[12..20], &[10, 213, 1, 1, 10, 213, 1, 2]);
        assert_eq!(buf[33], flag::FIN | flag::PSH | flag::URG);
        // Both checksums verify: a header summed with its checksum gives 0xffff.
        let ip = Ipv4HeaderSlice::from_slice(&buf).unwrap().to_header();
        assert_eq!(
            ip.calc_header_checksum(),
            u16::from_be_bytes([buf[10], buf[11]])
        );
        let tcp = TcpHeader::from_slice(&buf[20..]).unwrap().0;
        assert_eq!(tcp.calc_checksum_ipv4(&ip, &[]).unwrap(), tcp.checksum);
        // And the packet parses back to the same numbers.
        let Parsed::Packet(p) = parse_ip(&buf) else {
            panic!()
        };
        assert_eq!(
            p.body,
            Body::Tcp(TcpSegment {
                sport: 33024,
                dport: 81,
                seq: 0x0102_0304,
                ack: 0,
                flags: 0x29,
                window: 1024
            })
        );
    }
}
