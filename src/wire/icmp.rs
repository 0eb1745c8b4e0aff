//! ICMP echo and timestamp requests (RFC 792) for host discovery, and the
//! replies and errors that answer them.
//!
//! The cookie travels where the answerer must copy it back: an echo's
//! identifier and data, a timestamp request's identifier and originate
//! timestamp. Parsing never indexes past what it checked.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, Ipv4HeaderSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::wire::checksum::{fold, sum_words};

pub const ECHO_REQUEST: u8 = 8;
pub const ECHO_REPLY: u8 = 0;
pub const TIMESTAMP_REQUEST: u8 = 13;
pub const TIMESTAMP_REPLY: u8 = 14;
const DEST_UNREACHABLE: u8 = 3;

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
    /// The ICMP message (header and body), checksummed.
    fn icmp_bytes(&self) -> Vec<u8> {
        let mut m = vec![self.kind, 0, 0, 0];
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&self.seq.to_be_bytes());
        if self.kind == TIMESTAMP_REQUEST {
            // Originate, receive, transmit: the receiver copies the first.
            m.extend_from_slice(&self.data[..4]);
            m.extend_from_slice(&[0; 8]);
        } else {
            m.extend_from_slice(&self.data);
        }
        let sum = fold(sum_words(&m));
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    /// The ICMP checksum the query carries (an ICMP error quotes it).
    pub fn checksum(&self) -> u16 {
        let m = self.icmp_bytes();
        u16::from_be_bytes([m[2], m[3]])
    }

    /// The whole IPv4 packet from `src` to `dst`.
    pub fn packet(&self, src: Ipv4Addr, dst: Ipv4Addr, ip_id: u16) -> Vec<u8> {
        let icmp = self.icmp_bytes();
        let mut ip = Ipv4Header::new(
            icmp.len() as u16,
            TTL,
            IpNumber::ICMP,
            src.octets(),
            dst.octets(),
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
        from: Ipv4Addr,
        to: Ipv4Addr,
        ttl: u8,
        kind: u8,
        id: u16,
        seq: u16,
        data: [u8; ECHO_DATA],
    },
    /// A destination unreachable quoting a query from `source` to `target`.
    Unreachable {
        from: Ipv4Addr,
        ttl: u8,
        code: u8,
        source: Ipv4Addr,
        target: Ipv4Addr,
        kind: u8,
        /// The query's checksum, which covers the cookie in its data.
        checksum: u16,
        id: u16,
        seq: u16,
    },
}

/// Parses an IPv4 packet that may answer an ICMP query; `None` for
/// anything else, malformed or not.
pub fn parse_ping_reply(bytes: &[u8]) -> Option<PingReply> {
    let sliced = SlicedPacket::from_ip(bytes).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return None;
    };
    let h = ip.header();
    if h.is_fragmenting_payload() {
        return None;
    }
    let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        return None;
    };
    let header = icmp.slice();
    let word = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(header.get(at..at + 2)?.try_into().ok()?))
    };
    match icmp.type_u8() {
        kind @ (ECHO_REPLY | TIMESTAMP_REPLY) => {
            // The whole message: etherparse counts a timestamp's three
            // times as header, an echo's data as payload.
            let mut data = [0; ECHO_DATA];
            let n = if kind == ECHO_REPLY { ECHO_DATA } else { 4 };
            data[..n].copy_from_slice(header.get(8..8 + n)?);
            Some(PingReply::Answer {
                from: h.source_addr(),
                to: h.destination_addr(),
                ttl: h.ttl(),
                kind,
                id: word(4)?,
                seq: word(6)?,
                data,
            })
        }
        DEST_UNREACHABLE => {
            let quoted = icmp.payload();
            let qip = Ipv4HeaderSlice::from_slice(quoted).ok()?;
            if qip.protocol() != IpNumber::ICMP {
                return None;
            }
            let q = quoted.get(qip.slice().len()..)?;
            let kind = *q.first()?;
            if kind != ECHO_REQUEST && kind != TIMESTAMP_REQUEST {
                return None;
            }
            let w = |at: usize| -> Option<u16> {
                Some(u16::from_be_bytes(q.get(at..at + 2)?.try_into().ok()?))
            };
            Some(PingReply::Unreachable {
                from: h.source_addr(),
                ttl: h.ttl(),
                code: icmp.code_u8(),
                source: qip.source_addr(),
                target: qip.destination_addr(),
                kind,
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

    const A: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 213, 2, 2);

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
        assert_eq!((ip.source_addr(), ip.destination_addr()), (A, B));
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
            A.octets(),
        )
        .unwrap();
        let mut p = ip.to_bytes().to_vec();
        p.extend_from_slice(&icmp);
        assert_eq!(
            parse_ping_reply(&p),
            Some(PingReply::Unreachable {
                from: router,
                ttl: 64,
                code: 1,
                source: A,
                target: B,
                kind: ECHO_REQUEST,
                checksum: echo().checksum(),
                id: 0x1234,
                seq: 1
            })
        );
        // Cut anywhere, it is no reply and no panic.
        for n in 0..p.len() {
            let _ = parse_ping_reply(&p[..n]);
        }
    }
}
