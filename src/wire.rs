//! Bytes on the wire: building probes and parsing replies.
//!
//! Parsing goes through etherparse's checked slices and never indexes past
//! what it verified, so any byte string is safe input: the worst it can be
//! is [`Parsed::Ignored`] or an error.

use std::net::Ipv4Addr;

use etherparse::{
    IpNumber, Ipv4Header, Ipv4HeaderSlice, NetSlice, SlicedPacket, TcpHeader, TransportSlice,
};

/// A probe's variable fields; everything else comes from the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFields {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
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
        use crate::technique::flag;
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

    /// Writes the IPv4 packet for `p` into `buf` (cleared first), checksums done.
    pub fn write(&self, p: &ProbeFields, ip_id: u16, buf: &mut Vec<u8>) {
        let mut ip = self.ip.clone();
        ip.source = p.src.octets();
        ip.destination = p.dst.octets();
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

/// The first 8 bytes of our TCP header, quoted back in an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
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
    /// ICMP type 3 (destination unreachable) quoting a TCP packet.
    Unreachable {
        code: u8,
        quoted: Quoted,
    },
}

/// A packet that may be a reply to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub body: Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Packet(Packet),
    /// Well-formed but of no interest (UDP, ICMP echo, fragments...).
    Ignored,
    /// Malformed: truncated or inconsistent headers.
    Malformed,
}

/// Parses an IPv4 packet (starting at the IP header).
pub fn parse_ipv4(bytes: &[u8]) -> Parsed {
    let Ok(sliced) = SlicedPacket::from_ip(bytes) else {
        return Parsed::Malformed;
    };
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return Parsed::Ignored;
    };
    let header = ip.header();
    if header.is_fragmenting_payload() {
        return Parsed::Ignored;
    }
    let (src, dst, ttl) = (
        header.source_addr(),
        header.destination_addr(),
        header.ttl(),
    );
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
        Some(TransportSlice::Icmpv4(icmp)) => {
            if icmp.type_u8() != 3 {
                return Parsed::Ignored;
            }
            match parse_quote(icmp.payload()) {
                Some(quoted) => Body::Unreachable {
                    code: icmp.code_u8(),
                    quoted,
                },
                None => return Parsed::Malformed,
            }
        }
        Some(_) => return Parsed::Ignored,
        None => {
            // An IPv4 header whose payload etherparse could not slice: a
            // TCP or ICMP packet too short for its header is malformed.
            let proto = header.protocol();
            return if proto == IpNumber::TCP || proto == IpNumber::ICMP {
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

/// The quoted IPv4 header plus at least 8 bytes of TCP (RFC 792).
fn parse_quote(payload: &[u8]) -> Option<Quoted> {
    let ip = Ipv4HeaderSlice::from_slice(payload).ok()?;
    if ip.protocol() != IpNumber::TCP {
        return None;
    }
    let tcp = payload.get(ip.slice().len()..)?;
    let word = |at: usize| -> Option<[u8; 4]> { tcp.get(at..at + 4)?.try_into().ok() };
    let ports = word(0)?;
    Some(Quoted {
        src: ip.source_addr(),
        dst: ip.destination_addr(),
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
        seq: u32::from_be_bytes(word(4)?),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::technique::flag;

    /// A RST/ACK captured from Linux 6.x answering a FIN probe from
    /// 10.213.1.1:33024 to 10.213.1.2:81 with seq 0x01020304.
    pub const RST_ACK_FIXTURE: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x24, 0xc3, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // IPv4, TTL 64, TCP
        0x00, 0x51, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x05, 0x50, 0x14, 0x00,
        0x00, 0x6f, 0x0b, 0x00, 0x00, // 81 -> 33024, seq 0, ack 0x01020305, RST|ACK, win 0
    ];

    /// A SYN/ACK from 10.213.1.2:22 to 10.213.1.1:33024 acknowledging seq
    /// 0x01020304, with MSS, SACK-permitted, timestamps and window scale.
    pub const SYN_ACK_FIXTURE: [u8; 60] = [
        0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x24, 0xaf, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, 0x00, 0x16, 0x81, 0x00, 0x9a, 0x3b, 0x11, 0x07, 0x01, 0x02,
        0x03, 0x05, 0xa0, 0x12, 0xfe, 0x88, 0x1c, 0x2e, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04,
        0x02, 0x08, 0x0a, 0x6b, 0x0a, 0x1c, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    /// ICMP port unreachable from 10.213.1.2 quoting our SYN to port 111
    /// (seq 0x01020304) as iptables REJECT sends it: whole header quoted.
    pub const ICMP_PORT_UNREACH_FIXTURE: [u8; 68] = [
        0x45, 0xc0, 0x00, 0x44, 0x4b, 0x1d, 0x00, 0x00, 0x40, 0x01, 0x18, 0x9a, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // IPv4, TTL 64, ICMP
        0x03, 0x03, 0xf0, 0x16, 0x00, 0x00, 0x00, 0x00, // type 3 code 3
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x00, 0x00, 0x3f, 0x06, 0x52, 0x47, 0x0a, 0xd5, 0x01,
        0x01, 0x0a, 0xd5, 0x01, 0x02, // quoted IPv4
        0x81, 0x00, 0x00, 0x6f, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x04,
        0x00, 0xc4, 0x5e, 0x00, 0x00, // quoted TCP: 33024 -> 111, seq 0x01020304, SYN
    ];

    const A: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 2);

    #[test]
    fn parses_a_reset() {
        let Parsed::Packet(p) = parse_ipv4(&RST_ACK_FIXTURE) else {
            panic!()
        };
        assert_eq!((p.src, p.dst, p.ttl), (B, A, 64));
        assert_eq!(
            p.body,
            Body::Tcp(TcpSegment {
                sport: 81,
                dport: 33024,
                seq: 0,
                ack: 0x0102_0305,
                flags: flag::RST | flag::ACK,
                window: 0
            })
        );
    }

    #[test]
    fn parses_a_syn_ack_with_options() {
        let Parsed::Packet(p) = parse_ipv4(&SYN_ACK_FIXTURE) else {
            panic!()
        };
        let Body::Tcp(t) = p.body else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.ack, t.flags),
            (22, 33024, 0x0102_0305, flag::SYN | flag::ACK)
        );
        assert_eq!(t.window, 0xfe88);
    }

    #[test]
    fn parses_an_icmp_quote() {
        let Parsed::Packet(p) = parse_ipv4(&ICMP_PORT_UNREACH_FIXTURE) else {
            panic!()
        };
        assert_eq!(p.src, B);
        assert_eq!(
            p.body,
            Body::Unreachable {
                code: 3,
                quoted: Quoted {
                    src: A,
                    dst: B,
                    sport: 33024,
                    dport: 111,
                    seq: 0x0102_0304
                }
            }
        );
        // RFC 792 only promises 8 bytes of the quoted transport header.
        let mut short = ICMP_PORT_UNREACH_FIXTURE[..56].to_vec();
        short[3] = 56;
        let Parsed::Packet(p) = parse_ipv4(&short) else {
            panic!()
        };
        assert!(matches!(p.body, Body::Unreachable { code: 3, .. }));
        // Fewer than 8 is malformed.
        let mut shorter = ICMP_PORT_UNREACH_FIXTURE[..55].to_vec();
        shorter[3] = 55;
        assert_eq!(parse_ipv4(&shorter), Parsed::Malformed);
    }

    #[test]
    fn malformed_input_is_reported_not_panicked_on() {
        assert_eq!(parse_ipv4(&[]), Parsed::Malformed);
        assert_eq!(parse_ipv4(&RST_ACK_FIXTURE[..19]), Parsed::Malformed);
        // IHL pointing past the packet.
        let mut ihl = RST_ACK_FIXTURE;
        ihl[0] = 0x4f;
        assert_eq!(parse_ipv4(&ihl), Parsed::Malformed);
        // TCP data offset below 5.
        let mut off = RST_ACK_FIXTURE;
        off[32] = 0x40;
        assert_eq!(parse_ipv4(&off), Parsed::Malformed);
        // Total length past the buffer.
        let mut total = RST_ACK_FIXTURE;
        total[3] = 0x60;
        assert_eq!(parse_ipv4(&total), Parsed::Malformed);
        // Truncated TCP header.
        let mut trunc = RST_ACK_FIXTURE[..30].to_vec();
        trunc[3] = 30;
        assert_eq!(parse_ipv4(&trunc), Parsed::Malformed);
        // Every prefix and a pseudo-random byte soup: no panic.
        for n in 0..ICMP_PORT_UNREACH_FIXTURE.len() {
            let _ = parse_ipv4(&ICMP_PORT_UNREACH_FIXTURE[..n]);
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
            let _ = parse_ipv4(&bytes);
        }
    }

    #[test]
    fn non_tcp_traffic_is_ignored() {
        // ICMP echo request.
        let mut echo = ICMP_PORT_UNREACH_FIXTURE;
        echo[20] = 8;
        echo[21] = 0;
        assert_eq!(parse_ipv4(&echo), Parsed::Ignored);
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
        let Parsed::Packet(p) = parse_ipv4(&buf) else {
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
