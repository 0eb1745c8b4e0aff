//! Stateless probe cookies (as zmap and masscan do).
//!
//! Every probe's sequence number (and, for probes that carry ACK, its
//! acknowledgment number) is a keyed hash of the 4-tuple with a per-scan
//! random key. The source port encodes the technique and the try, so a reply
//! is attributed without any table lookup, and a reply is believed only when
//! its numbers are what a real stack answering that very probe would send
//! (RFC 9293 3.10.7.1 reset generation). Off-path forgers cannot guess them.

use std::hash::Hasher;
use std::net::IpAddr;

use rand::{RngCore, SeedableRng};
use siphasher::sip::SipHasher24;

use crate::model::technique::{CookieField, ProbeShape};
use crate::wire::flag;

/// How many source ports each technique uses: one per try, so a late answer
/// to the first try is not mistaken for an answer to the second.
pub const TRY_SLOTS: u16 = 8;
/// Techniques in one scan at most (the source port range is 256 wide).
pub const MAX_TECHNIQUES: usize = 32;
const RANGE: u16 = TRY_SLOTS * MAX_TECHNIQUES as u16;

/// Everything a scan derives from its seed: the cookie key, the
/// source-port plan and the seed of the probe order. This is the one
/// derivation: the scan, a resumed scan, the fixtures captured with
/// `--seed 7` and the fuzz harness all call it.
#[derive(Clone)]
pub struct ScanKeys {
    pub key: CookieKey,
    pub ports: PortPlan,
    pub order_seed: u64,
}

impl ScanKeys {
    pub fn from_seed(seed: u64) -> ScanKeys {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let key = CookieKey::new(rng.next_u64(), rng.next_u64());
        let ports = PortPlan::new(rng.next_u64());
        ScanKeys {
            key,
            ports,
            order_seed: rng.next_u64(),
        }
    }
}

#[derive(Clone)]
pub struct CookieKey {
    k0: u64,
    k1: u64,
}

/// The numbers a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    pub seq: u32,
    /// Sent in the acknowledgment field when the probe carries ACK.
    pub ack: u32,
}

impl CookieKey {
    pub fn new(k0: u64, k1: u64) -> CookieKey {
        CookieKey { k0, k1 }
    }

    pub fn cookie(&self, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Cookie {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        // IPv4 hashes its 4 bytes, as it always has (the captured fixtures'
        // cookies stay valid); IPv6 its 16.
        for a in [src, dst] {
            match a {
                IpAddr::V4(v4) => h.write(&v4.octets()),
                IpAddr::V6(v6) => h.write(&v6.octets()),
            }
        }
        h.write_u16(sport);
        h.write_u16(dport);
        let v = h.finish();
        Cookie {
            seq: v as u32,
            ack: (v >> 32) as u32,
        }
    }
}

/// The source ports of a scan: `base + technique * TRY_SLOTS + try % TRY_SLOTS`.
///
/// With `-g PORT` every TCP probe leaves from PORT instead, and the plan's
/// port becomes virtual: it still goes into the cookie hash, so each
/// (technique, try) keeps cookies of its own, and a reply to PORT is
/// attributed by trying each (technique, try) until one's cookie fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPlan {
    base: u16,
    fixed: Option<u16>,
}

impl PortPlan {
    /// `seed_bits` picks a base inside 33000..=64000, aligned so that the
    /// range never wraps and stays clear of the well-known ports.
    pub fn new(seed_bits: u64) -> PortPlan {
        let slots = (64000 - 33000) / RANGE as u64;
        PortPlan {
            base: 33000 + (seed_bits % slots) as u16 * RANGE,
            fixed: None,
        }
    }

    /// `-g PORT`: the TCP probes' source port on the wire.
    pub fn with_fixed_sport(self, port: Option<u16>) -> PortPlan {
        PortPlan {
            fixed: port,
            ..self
        }
    }

    pub fn fixed_sport(&self) -> Option<u16> {
        self.fixed
    }

    /// The source port a TCP probe leaves from; its cookie is made with
    /// [`PortPlan::sport`] whatever this is.
    pub fn wire_sport(&self, technique: usize, attempt: u8) -> u16 {
        self.fixed.unwrap_or_else(|| self.sport(technique, attempt))
    }

    /// The destination ports of TCP replies and of the probes ICMP errors
    /// quote: what the capture filter passes.
    pub fn reply_ports(&self) -> (u16, u16) {
        match self.fixed {
            Some(port) => (port, port),
            None => self.range(),
        }
    }

    pub fn sport(&self, technique: usize, attempt: u8) -> u16 {
        self.base + technique as u16 * TRY_SLOTS + (attempt as u16 % TRY_SLOTS)
    }

    /// Which technique and try slot a reply to `port` belongs to.
    pub fn decode(&self, port: u16) -> Option<(usize, u8)> {
        let off = port.checked_sub(self.base)?;
        (off < RANGE).then_some(((off / TRY_SLOTS) as usize, (off % TRY_SLOTS) as u8))
    }

    pub fn range(&self) -> (u16, u16) {
        (self.base, self.base + RANGE - 1)
    }
}

/// UDP probes' source ports: a range of this many beside the TCP plan's,
/// in which the cookie picks where a probe's tries start. UDP echoes
/// nothing of ours but the ports, so the port is the cookie (12 bits,
/// with the try in the 3 below them).
pub const UDP_SPAN: u16 = 4096;

impl PortPlan {
    /// The UDP source ports, clear of the TCP range and of discovery's
    /// ports just below it.
    pub fn udp_range(&self) -> (u16, u16) {
        let lo = if self.base >= 40000 { 33000 } else { 56000 };
        (lo, lo + UDP_SPAN - 1)
    }

    /// Try `attempt`'s source port for a UDP probe with `cookie`.
    pub fn udp_sport(&self, cookie: Cookie, attempt: u8) -> u16 {
        let (lo, _) = self.udp_range();
        let start = (cookie.seq % u32::from(UDP_SPAN)) as u16;
        lo + (start + u16::from(attempt) % TRY_SLOTS) % UDP_SPAN
    }

    /// The try a UDP reply to `port` answers, if `port` is one of the
    /// probe's (with `cookie`); `None` for any other port.
    pub fn udp_decode(&self, cookie: Cookie, port: u16) -> Option<u8> {
        let (lo, hi) = self.udp_range();
        if !(lo..=hi).contains(&port) {
            return None;
        }
        let start = (cookie.seq % u32::from(UDP_SPAN)) as u16;
        let slot = (port - lo + UDP_SPAN - start) % UDP_SPAN;
        (slot < TRY_SLOTS).then_some(slot as u8)
    }
}

/// A UDP probe's other secrets, from its cookie: the IP identification
/// (an ICMP error quotes it) and the bytes a payload carries.
pub fn udp_ip_id(cookie: Cookie) -> u16 {
    (cookie.ack >> 16) as u16
}

/// IPv6 has no identification: a UDP probe's flow label (20 bits, which
/// an ICMPv6 error quotes with the whole header) carries the secret
/// instead. Without it an empty datagram's quote would be guessable from
/// its port alone.
pub fn udp_flow_label(cookie: Cookie) -> u32 {
    cookie.ack >> 12
}

/// What a UDP probe to `dst` carries in its IP header from its cookie: the
/// identification (IPv4) or the flow label (IPv6).
pub fn udp_ip_tag(cookie: Cookie, dst: std::net::IpAddr) -> u32 {
    match dst {
        std::net::IpAddr::V4(_) => u32::from(udp_ip_id(cookie)),
        std::net::IpAddr::V6(_) => udp_flow_label(cookie),
    }
}

pub fn udp_payload_cookie(cookie: Cookie) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&cookie.ack.to_be_bytes());
    b[4..].copy_from_slice(&cookie.seq.to_be_bytes());
    b
}

/// The TCP fields of a reply that the check needs.
#[derive(Debug, Clone, Copy)]
pub struct TcpEcho {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
}

/// The probe's fields as sent, derived from the cookie and the technique:
/// the sequence number always carries the cookie (an ICMP error quotes
/// it); the acknowledgment number too where the technique puts it there.
pub fn probe_numbers(cookie: Cookie, probe: ProbeShape) -> (u32, u32) {
    let ack = match probe.cookie {
        CookieField::Ack => cookie.ack,
        CookieField::Seq | CookieField::Sport => 0,
    };
    (cookie.seq, ack)
}

/// Does a TCP reply carry the numbers that only a receiver of our probe knows?
pub fn tcp_reply_fits(cookie: Cookie, probe: ProbeShape, reply: TcpEcho) -> bool {
    let probe_flags = probe.flags;
    let (seq, ack) = probe_numbers(cookie, probe);
    // SYN and FIN each take one sequence number.
    let consumed =
        u32::from(probe_flags & flag::SYN != 0) + u32::from(probe_flags & flag::FIN != 0);
    let is_syn_ack = reply.flags & (flag::SYN | flag::ACK) == flag::SYN | flag::ACK;
    if reply.flags & flag::RST != 0 {
        match probe.cookie {
            // RFC 9293: <SEQ=SEG.ACK><CTL=RST>.
            CookieField::Ack => reply.seq == ack,
            // RFC 9293: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
            CookieField::Seq => {
                reply.flags & flag::ACK != 0 && reply.ack == seq.wrapping_add(consumed)
            }
            // A UDP probe gets no TCP reply.
            CookieField::Sport => false,
        }
    } else if is_syn_ack {
        probe_flags & flag::SYN != 0 && reply.ack == seq.wrapping_add(1)
    } else {
        false
    }
}

/// Does an ICMP error quote our probe? Only 8 bytes of TCP are guaranteed:
/// the ports (checked by the caller) and the sequence number.
pub fn quoted_fits(cookie: Cookie, quoted_seq: u32) -> bool {
    quoted_seq == cookie.seq
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 1, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 1, 2));

    #[test]
    fn cookies_depend_on_key_and_every_tuple_field() {
        let k = CookieKey::new(1, 2);
        let c = k.cookie(SRC, DST, 40000, 22);
        assert_eq!(c, k.cookie(SRC, DST, 40000, 22));
        assert_ne!(c, CookieKey::new(1, 3).cookie(SRC, DST, 40000, 22));
        assert_ne!(c, k.cookie(DST, SRC, 40000, 22));
        assert_ne!(c, k.cookie(SRC, DST, 40001, 22));
        assert_ne!(c, k.cookie(SRC, DST, 40000, 23));
    }

    #[test]
    fn port_plan_round_trips_and_rejects_outside_ports() {
        for seed in [0, 1, 77, u64::MAX] {
            let plan = PortPlan::new(seed);
            let (lo, hi) = plan.range();
            assert!(lo >= 33000 && hi <= 64000, "{lo}-{hi}");
            for t in 0..MAX_TECHNIQUES {
                for attempt in 0..TRY_SLOTS as u8 {
                    assert_eq!(plan.decode(plan.sport(t, attempt)), Some((t, attempt)));
                }
            }
            assert_eq!(plan.decode(lo - 1), None);
            assert_eq!(plan.decode(hi + 1), None);
        }
        // Tries beyond the slots reuse them.
        let plan = PortPlan::new(5);
        assert_eq!(plan.sport(1, 9), plan.sport(1, 1));
        // -g: the wire's port is fixed, the plan's stays for the cookie.
        assert_eq!(plan.wire_sport(1, 2), plan.sport(1, 2));
        assert_eq!(plan.reply_ports(), plan.range());
        let fixed = plan.with_fixed_sport(Some(53));
        assert_eq!(fixed.sport(1, 2), plan.sport(1, 2));
        assert_eq!(fixed.wire_sport(1, 2), 53);
        assert_eq!(fixed.reply_ports(), (53, 53));
    }

    fn rst_ack(ack: u32) -> TcpEcho {
        TcpEcho {
            flags: flag::RST | flag::ACK,
            seq: 0,
            ack,
        }
    }

    #[test]
    fn resets_must_acknowledge_what_each_probe_consumed() {
        let c = Cookie {
            seq: 0xffff_fffe,
            ack: 0x1234_5678,
        };
        // SYN and FIN consume one number: ack = c+1 (and it wraps).
        for probe in [flag::SYN, flag::FIN, flag::FIN | flag::PSH | flag::URG] {
            assert!(
                tcp_reply_fits(c, ProbeShape::for_flags(probe), rst_ack(0xffff_ffff)),
                "{probe:#x}"
            );
            assert!(
                !tcp_reply_fits(c, ProbeShape::for_flags(probe), rst_ack(0xffff_fffe)),
                "{probe:#x}"
            );
            assert!(
                !tcp_reply_fits(c, ProbeShape::for_flags(probe), rst_ack(0)),
                "{probe:#x}"
            );
        }
        // NULL consumes nothing: ack = c.
        assert!(tcp_reply_fits(
            c,
            ProbeShape::for_flags(0),
            rst_ack(0xffff_fffe)
        ));
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(0),
            rst_ack(0xffff_ffff)
        ));
        // A bare RST (no ACK) to a segment without ACK is not what RFC 9293 sends.
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::FIN),
            TcpEcho {
                flags: flag::RST,
                seq: 0,
                ack: 0xffff_ffff
            }
        ));
    }

    #[test]
    fn any_flags_of_scanflags_are_proven_by_what_they_consume() {
        let c = Cookie {
            seq: 0xffff_fffe,
            ack: 0x1234_5678,
        };
        // SYN+FIN takes two numbers (RFC 9293: SEG.LEN counts both).
        let synfin = ProbeShape::for_flags(flag::SYN | flag::FIN);
        assert!(tcp_reply_fits(c, synfin, rst_ack(0)));
        assert!(!tcp_reply_fits(c, synfin, rst_ack(0xffff_ffff)));
        // A probe with RST gets no reply from an RFC stack; whatever does
        // answer must still prove it saw the probe's numbers.
        let rst = ProbeShape::for_flags(flag::RST | flag::PSH);
        assert_eq!(rst.cookie, CookieField::Seq);
        assert!(tcp_reply_fits(c, rst, rst_ack(0xffff_fffe)));
        assert!(!tcp_reply_fits(c, rst, rst_ack(0xffff_ffff)));
        assert!(!tcp_reply_fits(
            c,
            rst,
            TcpEcho {
                flags: flag::RST,
                seq: 0,
                ack: 0xffff_fffe
            }
        ));
        let rst_ack_probe = ProbeShape::for_flags(flag::RST | flag::ACK);
        assert_eq!(rst_ack_probe.cookie, CookieField::Ack);
        let reset = |seq| TcpEcho {
            flags: flag::RST,
            seq,
            ack: 0,
        };
        assert!(tcp_reply_fits(c, rst_ack_probe, reset(0x1234_5678)));
        assert!(!tcp_reply_fits(c, rst_ack_probe, reset(0x1234_5679)));
        // ECE and CWR take no number: a SYN with them is acknowledged as a SYN.
        let ecn = ProbeShape::for_flags(flag::SYN | flag::ECE | flag::CWR);
        let synack = |ack| TcpEcho {
            flags: flag::SYN | flag::ACK | flag::ECE,
            seq: 7,
            ack,
        };
        assert!(tcp_reply_fits(c, ecn, synack(0xffff_ffff)));
        assert!(!tcp_reply_fits(c, ecn, synack(0)));
    }

    #[test]
    fn probes_carrying_ack_are_proven_by_the_reset_sequence_number() {
        let c = Cookie {
            seq: 7,
            ack: 0xdead_beef,
        };
        let probe = flag::ACK;
        assert_eq!(
            probe_numbers(c, ProbeShape::for_flags(probe)),
            (7, 0xdead_beef)
        );
        assert!(tcp_reply_fits(
            c,
            ProbeShape::for_flags(probe),
            TcpEcho {
                flags: flag::RST,
                seq: 0xdead_beef,
                ack: 0
            }
        ));
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(probe),
            TcpEcho {
                flags: flag::RST,
                seq: 0xdead_bef0,
                ack: 0
            }
        ));
        assert_eq!(probe_numbers(c, ProbeShape::for_flags(flag::SYN)), (7, 0));
    }

    #[test]
    fn syn_ack_must_acknowledge_our_syn() {
        let c = Cookie { seq: 100, ack: 5 };
        let synack = |ack| TcpEcho {
            flags: flag::SYN | flag::ACK,
            seq: 999,
            ack,
        };
        assert!(tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::SYN),
            synack(101)
        ));
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::SYN),
            synack(100)
        ));
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::SYN),
            synack(102)
        ));
        // A SYN-ACK to a FIN probe is nonsense whatever its numbers.
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::FIN),
            synack(101)
        ));
        // Neither RST nor SYN-ACK: not a reply.
        assert!(!tcp_reply_fits(
            c,
            ProbeShape::for_flags(flag::SYN),
            TcpEcho {
                flags: flag::ACK,
                seq: 0,
                ack: 101
            }
        ));
    }

    #[test]
    fn icmp_quotes_must_hold_our_sequence_number() {
        let c = Cookie { seq: 42, ack: 0 };
        assert!(quoted_fits(c, 42));
        assert!(!quoted_fits(c, 43));
    }

    #[test]
    fn udp_source_ports_carry_the_cookie_and_the_try() {
        for seed in 0..200u64 {
            let ScanKeys { key, ports, .. } = ScanKeys::from_seed(seed);
            let (lo, hi) = ports.udp_range();
            let (tlo, thi) = ports.range();
            // Clear of the TCP range and of discovery's ports below it.
            assert!(hi < tlo - 2 * TRY_SLOTS || lo > thi, "seed {seed}");
            let cookie = key.cookie(SRC, DST, 0, 53);
            for attempt in 0..TRY_SLOTS as u8 {
                let sport = ports.udp_sport(cookie, attempt);
                assert!((lo..=hi).contains(&sport));
                assert_eq!(ports.udp_decode(cookie, sport), Some(attempt));
            }
            // Of the range's other ports, none decodes.
            let ours: Vec<u16> = (0..TRY_SLOTS as u8)
                .map(|a| ports.udp_sport(cookie, a))
                .collect();
            let strays = (lo..=hi)
                .filter(|p| !ours.contains(p))
                .filter(|&p| ports.udp_decode(cookie, p).is_some())
                .count();
            assert_eq!(strays, 0);
            assert_eq!(ports.udp_decode(cookie, lo.wrapping_sub(1)), None);
        }
    }
}
