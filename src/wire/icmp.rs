//! ICMP echo and timestamp requests (RFC 792), and ICMPv6 echo requests
//! (RFC 4443 4.1), for host discovery, and the replies and errors that
//! answer them.
//!
//! The cookie travels where the answerer must copy it back: an echo's
//! identifier and data, a timestamp request's identifier and originate
//! timestamp. Parsing never indexes past what it checked.

use std::net::IpAddr;

use etherparse::{
    IpNumber, Ipv4Header, Ipv4HeaderSlice, Ipv6FlowLabel, Ipv6Header, Ipv6HeaderSlice, NetSlice,
    SlicedPacket, TransportSlice,
};

use crate::wire::checksum::{addr_sum, fold, sum_words};
use crate::wire::{v4, v6, zero_payload_trimmed, ICMPV6_CODE};

pub const ECHO_REQUEST: u8 = 8;
pub const ECHO_REPLY: u8 = 0;
pub const TIMESTAMP_REQUEST: u8 = 13;
pub const TIMESTAMP_REPLY: u8 = 14;
const DEST_UNREACHABLE: u8 = 3;
/// ICMPv6's numbers (RFC 4443): a query keeps ICMP's kind in [`Query`]
/// and [`PingReply`], and takes these on the wire.
const ECHO_REQUEST6: u8 = 128;
const ECHO_REPLY6: u8 = 129;
const DEST_UNREACHABLE6: u8 = 1;

/// Bytes of cookie an echo request carries as its data.
pub const ECHO_DATA: usize = 8;

/// An ICMP query: echo or timestamp, with the fields that carry the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// [`ECHO_REQUEST`] or [`TIMESTAMP_REQUEST`].
    pub kind: u8,
    pub id: u16,
    pub seq: u16,
    /// The echo's data, or (first 4 bytes) the originate timestamp.
    pub data: [u8; ECHO_DATA],
}

const TTL: u8 = 64;

impl Query {
    /// The ICMP message (header and body), checksummed; to an IPv6
    /// destination, ICMPv6's echo request (there is no timestamp), whose
    /// checksum covers the pseudo-header.
    fn icmp_bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let kind = if dst.is_ipv6() {
            ECHO_REQUEST6
        } else {
            self.kind
        };
        let mut m = vec![kind, 0, 0, 0];
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&self.seq.to_be_bytes());
        if self.kind == TIMESTAMP_REQUEST {
            // Originate, receive, transmit: the receiver copies the first.
            m.extend_from_slice(&self.data[..4]);
            m.extend_from_slice(&[0; 8]);
        } else {
            m.extend_from_slice(&self.data);
        }
        let mut words = sum_words(&m);
        if dst.is_ipv6() {
            words += addr_sum(src) + addr_sum(dst) + 58 + m.len() as u32;
        }
        let sum = fold(words);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    /// The checksum the query from `src` to `dst` carries (an error quotes it).
    pub fn checksum(&self, src: IpAddr, dst: IpAddr) -> u16 {
        let m = self.icmp_bytes(src, dst);
        u16::from_be_bytes([m[2], m[3]])
    }

    /// The whole IP packet from `src` to `dst` (`ip_id` is IPv4's).
    pub fn packet(&self, src: IpAddr, dst: IpAddr, ip_id: u16) -> Vec<u8> {
        let icmp = self.icmp_bytes(src, dst);
        if dst.is_ipv6() {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: icmp.len() as u16,
                next_header: IpNumber::IPV6_ICMP,
                hop_limit: TTL,
                source: v6(src).octets(),
                destination: v6(dst).octets(),
            };
            let mut out = ip.to_bytes().to_vec();
            out.extend_from_slice(&icmp);
            return out;
        }
        let mut ip = Ipv4Header::new(
            icmp.len() as u16,
            TTL,
            IpNumber::ICMP,
            v4(src).octets(),
            v4(dst).octets(),
        )
        .expect("a 20-byte ICMP message fits in an IPv4 packet");
        ip.identification = ip_id;
        ip.header_checksum = ip.calc_header_checksum();
        let mut out = ip.to_bytes().to_vec();
        out.extend_from_slice(&icmp);
        out
    }
}

/// What an ICMP packet says about one of our queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingReply {
    /// An echo or timestamp reply: `kind` is [`ECHO_REPLY`] or [`TIMESTAMP_REPLY`].
    Answer {
        from: IpAddr,
        to: IpAddr,
        ttl: u8,
        kind: u8,
        id: u16,
        seq: u16,
        data: [u8; ECHO_DATA],
    },
    /// A destination unreachable quoting a query from `source` to `target`.
    Unreachable {
        from: IpAddr,
        ttl: u8,
        /// ICMP's code, or ICMPv6's with [`ICMPV6_CODE`] set.
        code: u8,
        source: IpAddr,
        target: IpAddr,
        kind: u8,
        /// The query's checksum, which covers the cookie in its data.
        checksum: u16,
        id: u16,
        seq: u16,
    },
}

/// Parses an IP packet that may answer an ICMP or ICMPv6 query; `None`
/// for anything else, malformed or not.
pub fn parse_ping_reply(bytes: &[u8]) -> Option<PingReply> {
    let sliced = SlicedPacket::from_ip(zero_payload_trimmed(bytes)).ok()?;
    let (from, to, ttl) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) if !ip.header().is_fragmenting_payload() => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
            )
        }
        Some(NetSlice::Ipv6(ip)) if !ip.is_payload_fragmented() => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
            )
        }
        _ => return None,
    };
    // ICMPv6 answers in ICMP's terms: its echo reply is an echo reply,
    // its destination unreachable's code gets ICMPV6_CODE.
    let (kind, code, header, quoted) = match &sliced.transport {
        Some(TransportSlice::Icmpv4(icmp)) if from.is_ipv4() => {
            (icmp.type_u8(), icmp.code_u8(), icmp.slice(), icmp.payload())
        }
        Some(TransportSlice::Icmpv6(icmp)) if from.is_ipv6() => {
            let kind = match icmp.type_u8() {
                ECHO_REPLY6 => ECHO_REPLY,
                DEST_UNREACHABLE6 if icmp.code_u8() < ICMPV6_CODE => DEST_UNREACHABLE,
                _ => return None,
            };
            let code = if kind == DEST_UNREACHABLE {
                ICMPV6_CODE | icmp.code_u8()
            } else {
                icmp.code_u8()
            };
            (kind, code, icmp.slice(), icmp.payload())
        }
        _ => return None,
    };
    let word = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(header.get(at..at + 2)?.try_into().ok()?))
    };
    match kind {
        ECHO_REPLY | TIMESTAMP_REPLY => {
            // The whole message: etherparse counts a timestamp's three
            // times as header, an echo's data as payload.
            let mut data = [0; ECHO_DATA];
            let n = if kind == ECHO_REPLY { ECHO_DATA } else { 4 };
            data[..n].copy_from_slice(header.get(8..8 + n)?);
            Some(PingReply::Answer {
                from,
                to,
                ttl,
                kind,
                id: word(4)?,
                seq: word(6)?,
                data,
            })
        }
        DEST_UNREACHABLE => {
            let (source, target, q) = if from.is_ipv6() {
                let qip = Ipv6HeaderSlice::from_slice(quoted).ok()?;
                if qip.next_header() != IpNumber::IPV6_ICMP {
                    return None;
                }
                let q = quoted.get(qip.slice().len()..)?;
                if *q.first()? != ECHO_REQUEST6 {
                    return None;
                }
                (
                    IpAddr::V6(qip.source_addr()),
                    IpAddr::V6(qip.destination_addr()),
                    q,
                )
            } else {
                let qip = Ipv4HeaderSlice::from_slice(quoted).ok()?;
                if qip.protocol() != IpNumber::ICMP {
                    return None;
                }
                let q = quoted.get(qip.slice().len()..)?;
                if *q.first()? != ECHO_REQUEST && *q.first()? != TIMESTAMP_REQUEST {
                    return None;
                }
                (
                    IpAddr::V4(qip.source_addr()),
                    IpAddr::V4(qip.destination_addr()),
                    q,
                )
            };
            let w = |at: usize| -> Option<u16> {
                Some(u16::from_be_bytes(q.get(at..at + 2)?.try_into().ok()?))
            };
            Some(PingReply::Unreachable {
                from,
                ttl,
                code,
                source,
                target,
                kind: if from.is_ipv6() {
                    ECHO_REQUEST
                } else {
                    *q.first()?
                },
                checksum: w(2)?,
                id: w(4)?,
                seq: w(6)?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A4: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
    const B4: Ipv4Addr = Ipv4Addr::new(10, 213, 2, 2);
    const A: IpAddr = IpAddr::V4(A4);
    const B: IpAddr = IpAddr::V4(B4);

    fn echo() -> Query {
        Query {
            kind: ECHO_REQUEST,
            id: 0x1234,
            seq: 1,
            data: *b"flagscan",
        }
    }

    #[test]
    fn an_echo_request_is_rfc_792_bytes() {
        // Built by hand: type 8, code 0, checksum, id 0x1234, seq 1, data.
        let p = echo().packet(A, B, 7);
        let icmp = &p[20..];
        assert_eq!(
            icmp,
            &[8, 0, 0x49, 0x25, 0x12, 0x34, 0, 1, b'f', b'l', b'a', b'g', b's', b'c', b'a', b'n']
        );
        // The checksum covers the message: summing it all gives 0xffff.
        assert_eq!(fold(sum_words(icmp)), 0);
        let ip = Ipv4HeaderSlice::from_slice(&p).unwrap();
        assert_eq!((ip.protocol(), ip.ttl()), (IpNumber::ICMP, 64));
        assert_eq!((ip.source_addr(), ip.destination_addr()), (A4, B4));
    }

    #[test]
    fn a_timestamp_request_carries_the_cookie_as_originate_time() {
        let q = Query {
            kind: TIMESTAMP_REQUEST,
            id: 9,
            seq: 0,
            data: [1, 2, 3, 4, 0, 0, 0, 0],
        };
        let p = q.packet(A, B, 1);
        let icmp = &p[20..];
        assert_eq!(icmp.len(), 20);
        assert_eq!(&icmp[8..12], &[1, 2, 3, 4]);
        assert_eq!(fold(sum_words(icmp)), 0);
    }

    /// A reply as a peer builds it: the request with addresses swapped
    /// and the type changed (and the checksum redone).
    fn reply_to(q: &Query, kind: u8) -> Vec<u8> {
        let mut p = q.packet(B, A, 99);
        p[20] = kind;
        p[22..24].copy_from_slice(&[0, 0]);
        let sum = fold(sum_words(&p[20..]));
        p[22..24].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn echo_and_timestamp_replies_parse() {
        let q = echo();
        let Some(PingReply::Answer {
            from,
            kind,
            id,
            seq,
            data,
            ..
        }) = parse_ping_reply(&reply_to(&q, ECHO_REPLY))
        else {
            panic!()
        };
        assert_eq!(
            (from, kind, id, seq, data),
            (B, ECHO_REPLY, 0x1234, 1, q.data)
        );
        let t = Query {
            kind: TIMESTAMP_REQUEST,
            data: [5, 6, 7, 8, 0, 0, 0, 0],
            ..q
        };
        let Some(PingReply::Answer { kind, data, .. }) =
            parse_ping_reply(&reply_to(&t, TIMESTAMP_REPLY))
        else {
            panic!()
        };
        assert_eq!((kind, &data[..4]), (TIMESTAMP_REPLY, &[5, 6, 7, 8][..]));
        // Our own request is not an answer.
        assert_eq!(parse_ping_reply(&q.packet(A, B, 1)), None);
    }

    #[test]
    fn a_host_unreachable_quoting_our_echo_names_the_target() {
        let probe = echo().packet(A, B, 3);
        // A router's error: its own header, then our IP header and 8 bytes.
        let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&probe[..28]);
        let sum = fold(sum_words(&icmp));
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let router = Ipv4Addr::new(10, 213, 1, 254);
        let ip = Ipv4Header::new(
            icmp.len() as u16,
            64,
            IpNumber::ICMP,
            router.octets(),
            A4.octets(),
        )
        .unwrap();
        let mut p = ip.to_bytes().to_vec();
        p.extend_from_slice(&icmp);
        assert_eq!(
            parse_ping_reply(&p),
            Some(PingReply::Unreachable {
                from: router.into(),
                ttl: 64,
                code: 1,
                source: A,
                target: B,
                kind: ECHO_REQUEST,
                checksum: echo().checksum(A, B),
                id: 0x1234,
                seq: 1
            })
        );
        // Cut anywhere, it is no reply and no panic.
        for n in 0..p.len() {
            let _ = parse_ping_reply(&p[..n]);
        }
    }

    #[test]
    fn an_icmpv6_echo_request_its_reply_and_an_error_quoting_it() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "fd00:213:1::1".parse().unwrap(),
            "fd00:213:2::2".parse().unwrap(),
        );
        let p = echo().packet(a.into(), b.into(), 7);
        let sliced = SlicedPacket::from_ip(&p).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
            panic!("{p:02x?}")
        };
        let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
            panic!("{p:02x?}")
        };
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (ECHO_REQUEST6, 0));
        assert_eq!(
            &icmp.slice()[4..],
            &[0x12, 0x34, 0, 1, b'f', b'l', b'a', b'g', b's', b'c', b'a', b'n']
        );
        let want = icmp
            .header()
            .icmp_type
            .calc_checksum(a.octets(), b.octets(), icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), want);
        assert_eq!(echo().checksum(a.into(), b.into()), want);
        assert_eq!(ip.header().hop_limit(), 64);
        // Our own request is no answer.
        assert_eq!(parse_ping_reply(&p), None);

        // The reply: addresses swapped, type 129, checksum redone.
        let mut r = echo().packet(b.into(), a.into(), 0);
        r[40] = ECHO_REPLY6;
        r[42..44].copy_from_slice(&[0, 0]);
        let sum = fold(sum_words(&r[40..]) + addr_sum(a.into()) + addr_sum(b.into()) + 58 + 16);
        r[42..44].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            parse_ping_reply(&r),
            Some(PingReply::Answer {
                from: b.into(),
                to: a.into(),
                ttl: 64,
                kind: ECHO_REPLY,
                id: 0x1234,
                seq: 1,
                data: *b"flagscan",
            })
        );

        // With a payload length of 0, the reply is nothing (its bytes
        // would be a jumbogram's, which Linux trims away).
        let mut zero = r.clone();
        zero[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(parse_ping_reply(&zero), None);

        // Address unreachable (code 3) from a router, quoting the request.
        let router: Ipv6Addr = "fd00:213:1::fe".parse().unwrap();
        let mut e = Vec::new();
        etherparse::PacketBuilder::ipv6(router.octets(), a.octets(), 64)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Address,
            ))
            .write(&mut e, &p)
            .unwrap();
        assert_eq!(
            parse_ping_reply(&e),
            Some(PingReply::Unreachable {
                from: router.into(),
                ttl: 64,
                code: ICMPV6_CODE | 3,
                source: a.into(),
                target: b.into(),
                kind: ECHO_REQUEST,
                checksum: echo().checksum(a.into(), b.into()),
                id: 0x1234,
                seq: 1
            })
        );
        // Cut anywhere: never a panic, and never an answer it is not.
        for n in 0..e.len() {
            let _ = parse_ping_reply(&e[..n]);
        }
    }
}
