//! Bytes on the wire: building probes and parsing replies.
//!
//! Parsing goes through etherparse's checked slices and never indexes past
//! what it verified, so any byte string is safe input: the worst it can be
//! is [`Parsed::Ignored`] or an error.

pub mod flag;

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
                Quote::Tcp(quoted) => Body::Unreachable {
                    code: icmp.code_u8(),
                    quoted,
                },
                // An error about someone's UDP or ICMP traffic is not ours.
                Quote::OtherProtocol => return Parsed::Ignored,
                Quote::Truncated => return Parsed::Malformed,
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

enum Quote {
    Tcp(Quoted),
    OtherProtocol,
    Truncated,
}

/// The quoted IPv4 header plus at least 8 bytes of TCP (RFC 792).
fn parse_quote(payload: &[u8]) -> Quote {
    let Ok(ip) = Ipv4HeaderSlice::from_slice(payload) else {
        return Quote::Truncated;
    };
    if ip.protocol() != IpNumber::TCP {
        return Quote::OtherProtocol;
    }
    match quoted_tcp(&ip, payload) {
        Some(q) => Quote::Tcp(q),
        None => Quote::Truncated,
    }
}

fn quoted_tcp(ip: &Ipv4HeaderSlice, payload: &[u8]) -> Option<Quoted> {
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
    //! Fixtures are real packets, not hand-typed ones. They were captured with
    //! Linux `6.18.44-fc-v595` (`uname -r`; every lab namespace shares that
    //! one kernel) inside the scanner namespace of the lab:
    //!
    //! ```text
    //! flagscan lab up --prefix fsfx
    //! ip netns exec fsfx-scan tshark -i eth0 -w /tmp/fsfx.pcap -f ip
    //! flagscan --netns fsfx-scan --seed 7 -sS -sF -sN -sX -p 22,23,81,111,445 \
    //!     10.213.1.2 10.213.1.3 10.213.2.2
    //! ```
    //!
    //! Each array is one captured frame from the IPv4 header on (the 14-byte
    //! Ethernet header stripped), byte for byte. Hosts: the scanner is
    //! 10.213.1.1; `web` 10.213.1.2 listens on 22 and has iptables rules
    //! (23 REJECT tcp-reset, 111 REJECT icmp-port-unreachable, 445 REJECT
    //! icmp-admin-prohibited; 81 is plainly closed); `rst` 10.213.1.3 answers
    //! every non-SYN probe with iptables REJECT tcp-reset; `far` 10.213.2.2 sits
    //! one routed hop away behind the lab gateway.
    //!
    //! With `--seed 7` the source ports are 60904 + 8 * technique + try
    //! (technique 0 syn, 1 fin, 2 null, 3 xmas) and the cookies are
    //! reproducible, which the tests below recompute.
    //!
    //! Linux facts these bytes show:
    //! - Kernel RSTs (`tcp_v4_send_reset`) and iptables tcp-reset RSTs look the
    //!   same: RST|ACK, seq 0, ack = probe seq + 1 for SYN/FIN/Xmas and + 0 for
    //!   NULL, window 0, no options, TTL 64, IP id 0, DF set.
    //! - The SYN/ACK to our option-less SYN carries one option, MSS 1460, and
    //!   window 64240.
    //! - iptables REJECT's ICMP errors quote the whole 40-byte probe (not just
    //!   8 bytes of TCP), TOS 0xc0, a non-zero IP id, no DF, TTL 64.
    //! - A reply from `far` crossed the gateway: TTL 63.
    //! - The SYN/ACKs and the iptables RSTs were captured with only the
    //!   pseudo-header sum in the TCP checksum field (checksum offload on veth:
    //!   `CHECKSUM_PARTIAL`); the kernel's own RSTs and the ICMP errors carry
    //!   full checksums. A receiver that verified TCP checksums would throw
    //!   away real replies.

    use super::*;
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    use crate::engine::cookie::{
        probe_numbers, quoted_fits, tcp_reply_fits, CookieKey, PortPlan, TcpEcho,
    };
    use crate::engine::validate::Validator;
    use crate::model::reply::Reply;
    use crate::model::reply::Verdict;
    use crate::model::technique::{self, ReplyKind};
    use crate::wire::flag;

    /// Frame 64: kernel RST/ACK from web:81 (closed) answering the SYN probe
    /// from 60904, ack = probe seq + 1.
    pub const RST_ACK_SYN_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 81 -> 60904, seq 0, ack 0x4e434ded, RST|ACK, win 0
        0x00, 0x51, 0xed, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x4e, 0x43, 0x4d, 0xed, 0x50, 0x14, 0x00,
        0x00, 0x0d, 0xba, 0x00, 0x00,
    ];

    /// Frame 93: kernel RST/ACK from web:81 (closed) answering the FIN probe
    /// from 60912, ack = probe seq + 1 (FIN takes one number).
    pub const RST_ACK_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 81 -> 60912, seq 0, ack 0x49954468, RST|ACK, win 0
        0x00, 0x51, 0xed, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x95, 0x44, 0x68, 0x50, 0x14, 0x00,
        0x00, 0x1b, 0xe5, 0x00, 0x00,
    ];

    /// Frame 15: kernel RST/ACK from web:81 (closed) answering the NULL probe
    /// from 60920, ack = probe seq (a NULL segment consumes nothing).
    pub const RST_ACK_NULL_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 81 -> 60920, seq 0, ack 0x761b4c74, RST|ACK, win 0
        0x00, 0x51, 0xed, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x76, 0x1b, 0x4c, 0x74, 0x50, 0x14, 0x00,
        0x00, 0xe7, 0x4a, 0x00, 0x00,
    ];

    /// Frame 23: kernel RST/ACK from web:81 (closed) answering the Xmas probe
    /// (FIN|PSH|URG) from 60928, ack = probe seq + 1.
    pub const RST_ACK_XMAS_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 81 -> 60928, seq 0, ack 0xda2cf0a6, RST|ACK, win 0
        0x00, 0x51, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0xda, 0x2c, 0xf0, 0xa6, 0x50, 0x14, 0x00,
        0x00, 0xde, 0xfe, 0x00, 0x00,
    ];

    /// Frame 30: SYN/ACK from web:22 (listening) answering the SYN probe from
    /// 60904. Our SYN has no options, so Linux offers only MSS. The TCP
    /// checksum field holds the pseudo-header sum only (veth offload).
    pub const SYN_ACK_FIXTURE: [u8; 44] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x20, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 22 -> 60904, seq 0x33758eed, ack 0xec62c554, SYN|ACK, win 64240
        0x00, 0x16, 0xed, 0xe8, 0x33, 0x75, 0x8e, 0xed, 0xec, 0x62, 0xc5, 0x54, 0x60, 0x12, 0xfa,
        0xf0, 0x17, 0xcb, 0x00, 0x00, // MSS 1460
        0x02, 0x04, 0x05, 0xb4,
    ];

    /// Not a reply to a probe: the SYN/ACK from web:22 answering an ordinary
    /// kernel `connect()` from the scanner namespace (`exec 3<>/dev/tcp/10.213.1.2/22`
    /// in bash, captured with `tshark -f 'tcp port 22'`). Its SYN offered every
    /// option, so this one has a 40-byte TCP header: MSS 1460, SACK-permitted,
    /// timestamps, window scale 10.
    pub const SYN_ACK_CONNECT_FIXTURE: [u8; 60] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x10, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // 22 -> 42302, SYN|ACK, win 65160, data offset 10
        0x00, 0x16, 0xa5, 0x3e, 0xcc, 0xd5, 0xeb, 0xcb, 0x7f, 0xc7, 0x88, 0x60, 0xa0, 0x12, 0xfe,
        0x88, 0x17, 0xdb, 0x00, 0x00, // MSS, SACK-perm, TS, NOP, WS 10
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x5a, 0x8d, 0x1f, 0x50, 0x48, 0x4f, 0xad,
        0x5d, 0x01, 0x03, 0x03, 0x0a,
    ];

    /// Frame 36: ICMP port unreachable (3/3) from web, iptables
    /// `REJECT --reject-with icmp-port-unreachable` on 111, quoting our whole
    /// SYN probe from 60904 (IP id 0x0012).
    pub const ICMP_PORT_UNREACH_FIXTURE: [u8; 68] = [
        // IPv4, TOS 0xc0, TTL 64, ICMP
        0x45, 0xc0, 0x00, 0x44, 0xe7, 0xd9, 0x00, 0x00, 0x40, 0x01, 0x7a, 0x73, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // type 3 code 3
        0x03, 0x03, 0x14, 0xc4, 0x00, 0x00, 0x00, 0x00, // quoted IPv4
        0x45, 0x00, 0x00, 0x28, 0x00, 0x12, 0x40, 0x00, 0x40, 0x06, 0x23, 0x12, 0x0a, 0xd5, 0x01,
        0x01, 0x0a, 0xd5, 0x01, 0x02, // quoted TCP: 60904 -> 111, seq 0xbd64b259, SYN
        0xed, 0xe8, 0x00, 0x6f, 0xbd, 0x64, 0xb2, 0x59, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0x04,
        0x00, 0x36, 0x20, 0x00, 0x00,
    ];

    /// Frame 59: ICMP communication administratively prohibited (3/13) from
    /// web, iptables `REJECT --reject-with icmp-admin-prohibited` on 445,
    /// quoting our whole FIN probe from 60912 (IP id 0x001d).
    pub const ICMP_ADMIN_PROHIBITED_FIXTURE: [u8; 68] = [
        // IPv4, TOS 0xc0, TTL 64, ICMP
        0x45, 0xc0, 0x00, 0x44, 0xe7, 0xdb, 0x00, 0x00, 0x40, 0x01, 0x7a, 0x71, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // type 3 code 13
        0x03, 0x0d, 0x14, 0xba, 0x00, 0x00, 0x00, 0x00, // quoted IPv4
        0x45, 0x00, 0x00, 0x28, 0x00, 0x1d, 0x40, 0x00, 0x40, 0x06, 0x23, 0x07, 0x0a, 0xd5, 0x01,
        0x01, 0x0a, 0xd5, 0x01, 0x02, // quoted TCP: 60912 -> 445, seq 0xd9532731, FIN
        0xed, 0xf0, 0x01, 0xbd, 0xd9, 0x53, 0x27, 0x31, 0x00, 0x00, 0x00, 0x00, 0x50, 0x01, 0x04,
        0x00, 0xa4, 0x04, 0x00, 0x00,
    ];

    /// Frame 44: RST/ACK forged by iptables `REJECT --reject-with tcp-reset`
    /// on web:23 answering the SYN probe from 60904. Same shape as a kernel
    /// RST; TCP checksum is the pseudo-header sum only (veth offload).
    pub const REJECT_TCP_RESET_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x01,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 23 -> 60904, seq 0, ack 0xdc06c034, RST|ACK, win 0
        0x00, 0x17, 0xed, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xdc, 0x06, 0xc0, 0x34, 0x50, 0x14, 0x00,
        0x00, 0x17, 0xc7, 0x00, 0x00,
    ];

    /// Frame 54: RST/ACK forged by iptables REJECT tcp-reset on rst:22, a
    /// LISTENING port, answering the Xmas probe from 60928 (the rule resets
    /// every non-SYN probe, as Windows does). Checksum: pseudo-header only.
    pub const REJECT_TCP_RESET_XMAS_FIXTURE: [u8; 40] = [
        // IPv4, TTL 64, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x23, 0x23, 0x0a, 0xd5, 0x01,
        0x03, 0x0a, 0xd5, 0x01, 0x01,
        // 22 -> 60928, seq 0, ack 0x967fe2be, RST|ACK, win 0
        0x00, 0x16, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, 0x7f, 0xe2, 0xbe, 0x50, 0x14, 0x00,
        0x00, 0x17, 0xc8, 0x00, 0x00,
    ];

    /// Frame 56: SYN/ACK from far:22 answering the SYN probe from 60904; it
    /// crossed the gateway, so TTL 63. Checksum: pseudo-header only.
    pub const GATEWAY_SYN_ACK_FIXTURE: [u8; 44] = [
        // IPv4, TTL 63, DF, id 0
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x3f, 0x06, 0x23, 0x20, 0x0a, 0xd5, 0x02,
        0x02, 0x0a, 0xd5, 0x01, 0x01, // 22 -> 60904, ack 0x26e2e812, SYN|ACK, win 64240
        0x00, 0x16, 0xed, 0xe8, 0xd2, 0xa6, 0xed, 0x0c, 0x26, 0xe2, 0xe8, 0x12, 0x60, 0x12, 0xfa,
        0xf0, 0x18, 0xcb, 0x00, 0x00, // MSS 1460
        0x02, 0x04, 0x05, 0xb4,
    ];

    /// Frame 3: kernel RST/ACK from far:81 (closed) answering the SYN probe
    /// from 60904, through the gateway: TTL 63.
    pub const GATEWAY_RST_ACK_FIXTURE: [u8; 40] = [
        // IPv4, TTL 63, DF, id 0
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x3f, 0x06, 0x23, 0x24, 0x0a, 0xd5, 0x02,
        0x02, 0x0a, 0xd5, 0x01, 0x01,
        // 81 -> 60904, seq 0, ack 0x4f761426, RST|ACK, win 0
        0x00, 0x51, 0xed, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x4f, 0x76, 0x14, 0x26, 0x50, 0x14, 0x00,
        0x00, 0x45, 0x4e, 0x00, 0x00,
    ];

    const A: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 2);
    const RST_HOST: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 3);
    const FAR: Ipv4Addr = Ipv4Addr::new(10, 213, 2, 2);

    /// The `--seed` of the captured scan and its technique order.
    const SEED: u64 = 7;
    const SYN: usize = 0;
    const FIN: usize = 1;
    const NULL: usize = 2;
    const XMAS: usize = 3;

    /// Key, ports and validator exactly as `scan::run` derives them from the seed.
    fn lab_scan() -> (CookieKey, PortPlan, Validator) {
        let mut rng = StdRng::seed_from_u64(SEED);
        let key = CookieKey::new(rng.next_u64(), rng.next_u64());
        let ports = PortPlan::new(rng.next_u64());
        let probe_flags = ["syn", "fin", "null", "xmas"]
            .map(|n| technique::builtin_by_name(n).expect("built in").flags)
            .to_vec();
        let validator = Validator {
            key: key.clone(),
            ports,
            probe_flags,
        };
        (key, ports, validator)
    }

    /// One captured reply and what it must be attributed to.
    struct Case {
        name: &'static str,
        bytes: &'static [u8],
        host: Ipv4Addr,
        port: u16,
        technique: usize,
        kind: ReplyKind,
        ttl: u8,
    }

    fn cases() -> Vec<Case> {
        let rst = ReplyKind::Rst { window: 0 };
        let case = |name, bytes, host, port, technique, kind, ttl| Case {
            name,
            bytes,
            host,
            port,
            technique,
            kind,
            ttl,
        };
        vec![
            case(
                "rst/ack to syn",
                &RST_ACK_SYN_FIXTURE[..],
                B,
                81,
                SYN,
                rst,
                64,
            ),
            case("rst/ack to fin", &RST_ACK_FIXTURE[..], B, 81, FIN, rst, 64),
            case(
                "rst/ack to null",
                &RST_ACK_NULL_FIXTURE[..],
                B,
                81,
                NULL,
                rst,
                64,
            ),
            case(
                "rst/ack to xmas",
                &RST_ACK_XMAS_FIXTURE[..],
                B,
                81,
                XMAS,
                rst,
                64,
            ),
            case(
                "syn/ack",
                &SYN_ACK_FIXTURE[..],
                B,
                22,
                SYN,
                ReplyKind::SynAck,
                64,
            ),
            case(
                "icmp port unreachable",
                &ICMP_PORT_UNREACH_FIXTURE[..],
                B,
                111,
                SYN,
                ReplyKind::Unreachable { code: 3 },
                64,
            ),
            case(
                "icmp admin prohibited",
                &ICMP_ADMIN_PROHIBITED_FIXTURE[..],
                B,
                445,
                FIN,
                ReplyKind::Unreachable { code: 13 },
                64,
            ),
            case(
                "iptables tcp-reset",
                &REJECT_TCP_RESET_FIXTURE[..],
                B,
                23,
                SYN,
                rst,
                64,
            ),
            case(
                "iptables tcp-reset to xmas on an open port",
                &REJECT_TCP_RESET_XMAS_FIXTURE[..],
                RST_HOST,
                22,
                XMAS,
                rst,
                64,
            ),
            case(
                "syn/ack across the gateway",
                &GATEWAY_SYN_ACK_FIXTURE[..],
                FAR,
                22,
                SYN,
                ReplyKind::SynAck,
                63,
            ),
            case(
                "rst/ack across the gateway",
                &GATEWAY_RST_ACK_FIXTURE[..],
                FAR,
                81,
                SYN,
                rst,
                63,
            ),
        ]
    }

    /// Byte offset of the number the cookie check rests on: the TCP ack of a
    /// reply, or the quoted TCP sequence number inside an ICMP error.
    fn cookie_field(bytes: &[u8]) -> usize {
        if bytes[9] == 1 {
            20 + 8 + 20 + 4
        } else {
            20 + 8
        }
    }

    fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
        let mut v = bytes.to_vec();
        let at = cookie_field(bytes) + 3 - bit / 8;
        v[at] ^= 1 << (bit % 8);
        v
    }

    #[test]
    fn seed_7_reproduces_the_captured_source_ports() {
        let (_, ports, _) = lab_scan();
        assert_eq!(ports.range().0, 60904);
        for (t, sport) in [(SYN, 60904), (FIN, 60912), (NULL, 60920), (XMAS, 60928)] {
            assert_eq!(ports.sport(t, 0), sport);
        }
    }

    #[test]
    fn every_captured_reply_fits_its_probe_cookie() {
        let (key, _, v) = lab_scan();
        for c in cases() {
            let probe_flags = v.probe_flags[c.technique];
            let Parsed::Packet(p) = parse_ipv4(c.bytes) else {
                panic!("{}: does not parse", c.name)
            };
            match p.body {
                Body::Tcp(seg) => {
                    let cookie = key.cookie(p.dst, p.src, seg.dport, seg.sport);
                    // What Linux acknowledges: SYN and FIN take one number, NULL none.
                    let consumed = u32::from(probe_flags & (flag::SYN | flag::FIN) != 0);
                    assert_eq!(seg.ack, cookie.seq.wrapping_add(consumed), "{}", c.name);
                    let echo = |ack| TcpEcho {
                        flags: seg.flags,
                        seq: seg.seq,
                        ack,
                    };
                    assert!(
                        tcp_reply_fits(cookie, probe_flags, echo(seg.ack)),
                        "{}",
                        c.name
                    );
                    for bit in 0..32 {
                        let bad = seg.ack ^ (1 << bit);
                        assert!(
                            !tcp_reply_fits(cookie, probe_flags, echo(bad)),
                            "{} bit {bit}",
                            c.name
                        );
                    }
                }
                Body::Unreachable { quoted, .. } => {
                    let cookie = key.cookie(quoted.src, quoted.dst, quoted.sport, quoted.dport);
                    // The quote holds the numbers the probe was sent with.
                    let (seq, ack) = probe_numbers(cookie, probe_flags);
                    assert_eq!(quoted.seq, seq, "{}", c.name);
                    assert_eq!(&c.bytes[56..60], &ack.to_be_bytes(), "{}", c.name);
                    assert!(quoted_fits(cookie, quoted.seq), "{}", c.name);
                    for bit in 0..32 {
                        assert!(
                            !quoted_fits(cookie, quoted.seq ^ (1 << bit)),
                            "{} bit {bit}",
                            c.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_validator_attributes_every_captured_reply() {
        let (_, _, v) = lab_scan();
        let at = Duration::from_millis(3);
        for c in cases() {
            assert_eq!(
                v.check(parse_ipv4(c.bytes), at),
                Verdict::Reply(Reply {
                    host: c.host,
                    port: c.port,
                    technique: c.technique,
                    attempt_slot: 0,
                    kind: c.kind,
                    ttl: c.ttl,
                    at,
                }),
                "{}",
                c.name
            );
            // One flipped bit of the cookie number: counted invalid, never a result.
            for bit in [0, 1, 7, 8, 16, 31] {
                assert_eq!(
                    v.check(parse_ipv4(&flip(c.bytes, bit)), at),
                    Verdict::Invalid,
                    "{} bit {bit}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn replies_from_or_about_another_host_do_not_fit() {
        let (_, _, v) = lab_scan();
        let at = Duration::ZERO;
        // The same RST claiming to come from 10.213.1.3: the cookie covers
        // the addresses, so it is a forgery.
        let mut spoofed = RST_ACK_SYN_FIXTURE;
        spoofed[15] = 3;
        assert_eq!(v.check(parse_ipv4(&spoofed), at), Verdict::Invalid);
        // An ICMP error quoting a probe to another host or port.
        let mut other_host = ICMP_PORT_UNREACH_FIXTURE;
        other_host[47] = 3;
        assert_eq!(v.check(parse_ipv4(&other_host), at), Verdict::Invalid);
        let mut other_port = ICMP_PORT_UNREACH_FIXTURE;
        other_port[51] = 112;
        assert_eq!(v.check(parse_ipv4(&other_port), at), Verdict::Invalid);
        // The FIN probe's reset delivered to the NULL slot: NULL wants ack = seq.
        let mut wrong_slot = RST_ACK_FIXTURE;
        wrong_slot[23] = 0xf8;
        assert_eq!(v.check(parse_ipv4(&wrong_slot), at), Verdict::Invalid);
        // A reply to a later try is attributed to that try's slot only if
        // its numbers fit that slot's cookie; these are try 0's numbers.
        let mut retry_slot = RST_ACK_SYN_FIXTURE;
        retry_slot[23] = 0xe9;
        assert_eq!(v.check(parse_ipv4(&retry_slot), at), Verdict::Invalid);
    }

    #[test]
    fn traffic_outside_the_probe_ports_is_not_ours() {
        let (_, _, v) = lab_scan();
        // The SYN/ACK of an ordinary connect() in the scanner's namespace.
        assert_eq!(
            v.check(parse_ipv4(&SYN_ACK_CONNECT_FIXTURE), Duration::ZERO),
            Verdict::NotOurs
        );
    }

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
                dport: 60912,
                seq: 0,
                ack: 0x4995_4468,
                flags: flag::RST | flag::ACK,
                window: 0
            })
        );
        // Every captured RST, kernel's or iptables', has window 0.
        for c in cases() {
            if let ReplyKind::Rst { window } = c.kind {
                assert_eq!(window, 0, "{}", c.name);
            }
        }
    }

    #[test]
    fn parses_a_syn_ack_with_options() {
        let Parsed::Packet(p) = parse_ipv4(&SYN_ACK_FIXTURE) else {
            panic!()
        };
        let Body::Tcp(t) = p.body else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.flags),
            (22, 60904, 0x3375_8eed, 0xec62_c554, flag::SYN | flag::ACK)
        );
        assert_eq!(t.window, 64240);
        // A 40-byte TCP header (data offset 10) parses too.
        let Parsed::Packet(p) = parse_ipv4(&SYN_ACK_CONNECT_FIXTURE) else {
            panic!()
        };
        let Body::Tcp(t) = p.body else { panic!() };
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.flags),
            (22, 42302, 0xccd5_ebcb, 0x7fc7_8860, flag::SYN | flag::ACK)
        );
        assert_eq!(t.window, 65160);
        // Across the gateway: one hop fewer.
        let Parsed::Packet(p) = parse_ipv4(&GATEWAY_SYN_ACK_FIXTURE) else {
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
            assert!(matches!(parse_ipv4(partial), Parsed::Packet(_)));
        }
    }

    #[test]
    fn parses_an_icmp_quote() {
        let Parsed::Packet(p) = parse_ipv4(&ICMP_PORT_UNREACH_FIXTURE) else {
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
                    seq: 0xbd64_b259
                }
            }
        );
        let Parsed::Packet(p) = parse_ipv4(&ICMP_ADMIN_PROHIBITED_FIXTURE) else {
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
                    seq: 0xd953_2731
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
        // A quoted IPv4 header whose IHL runs past the quote is malformed.
        let mut quoted_ihl = ICMP_PORT_UNREACH_FIXTURE;
        quoted_ihl[28] = 0x4f;
        assert_eq!(parse_ipv4(&quoted_ihl), Parsed::Malformed);
    }

    #[test]
    fn linux_reject_quotes_the_whole_probe_as_we_built_it() {
        // iptables REJECT quotes all 40 bytes of the probe, and they are
        // exactly what the template writes for that probe's fields.
        let (key, _, v) = lab_scan();
        for (bytes, technique, dport, ip_id) in [
            (&ICMP_PORT_UNREACH_FIXTURE, SYN, 111, 0x0012),
            (&ICMP_ADMIN_PROHIBITED_FIXTURE, FIN, 445, 0x001d),
        ] {
            let sport = 60904 + 8 * technique as u16;
            let flags = v.probe_flags[technique];
            let (seq, ack) = probe_numbers(key.cookie(A, B, sport, dport), flags);
            let fields = ProbeFields {
                src: A,
                dst: B,
                sport,
                dport,
                seq,
                ack,
            };
            let mut probe = vec![0xa5; 64];
            ProbeTemplate::new(flags).write(&fields, ip_id, &mut probe);
            assert_eq!(&bytes[28..], &probe[..]);
        }
    }

    #[test]
    fn ethernet_padding_after_the_packet_is_ignored() {
        // On a real NIC a 40-byte packet arrives padded to 46 bytes.
        let mut padded = RST_ACK_FIXTURE.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ipv4(&padded), parse_ipv4(&RST_ACK_FIXTURE));
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
        // TCP options promised by the data offset but cut off.
        let mut opts = SYN_ACK_CONNECT_FIXTURE[..48].to_vec();
        opts[3] = 48;
        assert_eq!(parse_ipv4(&opts), Parsed::Malformed);
        // Every prefix of every fixture and a pseudo-random byte soup: no panic.
        for c in cases() {
            for n in 0..c.bytes.len() {
                let _ = parse_ipv4(&c.bytes[..n]);
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
        // A port-unreachable about somebody's UDP datagram (quoted protocol 17).
        let mut udp = ICMP_PORT_UNREACH_FIXTURE;
        udp[28 + 9] = 17;
        assert_eq!(parse_ipv4(&udp), Parsed::Ignored);
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
