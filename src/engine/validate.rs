//! Validation, zmap's split: first decide whether a packet is a genuine
//! answer to one of our probes (ports in our range, numbers that fit the
//! cookie), and only then let the tracker classify it. A packet that looks
//! like an answer but fails the check is counted as invalid and dropped.

use std::sync::Arc;

use crate::engine::cookie::{
    quoted_fits, tcp_reply_fits, udp_ip_tag, udp_payload_cookie, CookieKey, PortPlan, TcpEcho,
    TRY_SLOTS,
};
use crate::model::payloads::Payloads;
use crate::model::probe::Time;
use crate::model::reply::{Reply, Verdict};
use crate::model::technique::{CookieField, ProbeShape, ReplyKind};
use crate::wire::flag;
use crate::wire::{Body, Packet, Parsed};

/// What the receiver needs to recognise our replies.
#[derive(Clone)]
pub struct Validator {
    pub key: CookieKey,
    pub ports: PortPlan,
    /// What each technique sends, by technique index.
    pub probes: Vec<ProbeShape>,
    /// The scan's UDP technique, if it has one, and the payloads it sends.
    pub udp: Option<(usize, Arc<Payloads>)>,
}

impl Validator {
    /// Is this packet addressed to our probe ports, though not a reply we
    /// believe? (For `--pcap` and `--packet-trace`: e.g. a bare ACK or SYN
    /// sent to a probe's source port.) Our own probes, which loop back on
    /// `lo`, are not: their source port is one of ours too.
    pub fn addressed_to_us(&self, parsed: &Parsed, verdict: &Verdict) -> bool {
        match verdict {
            Verdict::Reply(_) | Verdict::Invalid => true,
            Verdict::NotOurs => match parsed {
                Parsed::Packet(Packet {
                    body: Body::Tcp(seg),
                    ..
                }) => match self.ports.fixed_sport() {
                    Some(port) => seg.dport == port && seg.sport != port,
                    None => {
                        self.ports.decode(seg.dport).is_some()
                            && self.ports.decode(seg.sport).is_none()
                    }
                },
                Parsed::Packet(Packet {
                    body: Body::Udp(d), ..
                }) => {
                    let (lo, hi) = self.ports.udp_range();
                    self.udp.is_some()
                        && (lo..=hi).contains(&d.dport)
                        && !(lo..=hi).contains(&d.sport)
                }
                _ => false,
            },
        }
    }

    /// The (technique, try slot) of the TCP probe that a packet to our
    /// port `port` answers, if `fits` (given the probe's shape and the
    /// source port its cookie was made with) says its numbers prove it.
    /// Without `-g` the port names the probe; with it, every probe leaves
    /// from one port and the cookie alone tells (technique, try): each is
    /// tried, a SipHash apiece, and the one the reply proves is taken
    /// (two fitting is a 32-bit collision).
    fn attribute(
        &self,
        port: u16,
        fits: impl Fn(ProbeShape, u16) -> bool,
    ) -> Result<(usize, u8), Verdict> {
        if let Some(fixed) = self.ports.fixed_sport() {
            if port != fixed {
                return Err(Verdict::NotOurs);
            }
            for (technique, &probe) in self.probes.iter().enumerate() {
                if probe.cookie == CookieField::Sport {
                    continue;
                }
                for slot in 0..TRY_SLOTS as u8 {
                    if fits(probe, self.ports.sport(technique, slot)) {
                        return Ok((technique, slot));
                    }
                }
            }
            return Err(Verdict::Invalid);
        }
        let Some((technique, slot)) = self.ports.decode(port) else {
            return Err(Verdict::NotOurs);
        };
        match self.probes.get(technique) {
            Some(&probe) if fits(probe, port) => Ok((technique, slot)),
            _ => Err(Verdict::Invalid),
        }
    }

    pub fn check(&self, parsed: Parsed, at: Time) -> Verdict {
        let p = match parsed {
            Parsed::Packet(p) => p,
            Parsed::Ignored => return Verdict::NotOurs,
            Parsed::Malformed => return Verdict::Invalid,
        };
        self.check_packet(&p, at)
    }

    fn check_packet(&self, p: &Packet, at: Time) -> Verdict {
        match p.body {
            Body::Tcp(seg) => {
                let is_reply = seg.flags & flag::RST != 0
                    || seg.flags & (flag::SYN | flag::ACK) == flag::SYN | flag::ACK;
                if !is_reply {
                    return Verdict::NotOurs;
                }
                let echo = TcpEcho {
                    flags: seg.flags,
                    seq: seg.seq,
                    ack: seg.ack,
                };
                let fits = |probe, sport| {
                    let cookie = self.key.cookie(p.dst, p.src, sport, seg.sport);
                    tcp_reply_fits(cookie, probe, echo)
                };
                let (technique, attempt_slot) = match self.attribute(seg.dport, fits) {
                    Ok(found) => found,
                    Err(verdict) => return verdict,
                };
                let kind = if seg.flags & flag::RST != 0 {
                    ReplyKind::Rst { window: seg.window }
                } else {
                    ReplyKind::SynAck
                };
                Verdict::Reply(Reply {
                    host: p.src,
                    port: seg.sport,
                    technique,
                    attempt_slot,
                    kind,
                    ttl: p.ttl,
                    at,
                })
            }
            Body::Udp(d) => {
                let Some((technique, payloads)) = &self.udp else {
                    return Verdict::NotOurs;
                };
                let (lo, hi) = self.ports.udp_range();
                if !(lo..=hi).contains(&d.dport) {
                    return Verdict::NotOurs;
                }
                // Our own probes loop back on lo: from one of our ports.
                if (lo..=hi).contains(&d.sport) {
                    return Verdict::NotOurs;
                }
                let cookie = self.key.cookie(p.dst, p.src, 0, d.sport);
                let Some(attempt_slot) = self.ports.udp_decode(cookie, d.dport) else {
                    return Verdict::Invalid;
                };
                let fits = payloads
                    .for_port(d.sport)
                    .is_none_or(|pl| pl.echo_fits(d.head(), udp_payload_cookie(cookie)));
                if !fits {
                    return Verdict::Invalid;
                }
                Verdict::Reply(Reply {
                    host: p.src,
                    port: d.sport,
                    technique: *technique,
                    attempt_slot,
                    kind: ReplyKind::Udp,
                    ttl: p.ttl,
                    at,
                })
            }
            Body::Unreachable { code, quoted } if quoted.proto == 17 => {
                let Some((technique, payloads)) = &self.udp else {
                    return Verdict::NotOurs;
                };
                let (lo, hi) = self.ports.udp_range();
                if !(lo..=hi).contains(&quoted.sport) {
                    return Verdict::NotOurs;
                }
                let cookie = self.key.cookie(quoted.src, quoted.dst, 0, quoted.dport);
                let Some(attempt_slot) = self.ports.udp_decode(cookie, quoted.sport) else {
                    return Verdict::Invalid;
                };
                // The quote must be of the datagram we sent: its IP id,
                // length and checksum (which covers the payload's cookie).
                let payload = payloads.probe(quoted.dport, udp_payload_cookie(cookie));
                let word = crate::wire::udp::quoted_word(
                    quoted.src,
                    quoted.dst,
                    quoted.sport,
                    quoted.dport,
                    &payload,
                );
                if quoted.ip_id != udp_ip_tag(cookie, quoted.dst) || quoted.seq != word {
                    return Verdict::Invalid;
                }
                Verdict::Reply(Reply {
                    host: quoted.dst,
                    port: quoted.dport,
                    technique: *technique,
                    attempt_slot,
                    kind: ReplyKind::Unreachable { code },
                    ttl: p.ttl,
                    at,
                })
            }
            Body::Unreachable { code, quoted } => {
                let fits = |_, sport| {
                    let cookie = self.key.cookie(quoted.src, quoted.dst, sport, quoted.dport);
                    quoted_fits(cookie, quoted.seq)
                };
                let (technique, attempt_slot) = match self.attribute(quoted.sport, fits) {
                    Ok(found) => found,
                    Err(verdict) => return verdict,
                };
                // The error may come from a router on the way: the port's
                // host is the one our probe was addressed to.
                Verdict::Reply(Reply {
                    host: quoted.dst,
                    port: quoted.dport,
                    technique,
                    attempt_slot,
                    kind: ReplyKind::Unreachable { code },
                    ttl: p.ttl,
                    at,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::time::Duration;

    use crate::engine::cookie::{probe_numbers, ScanKeys};
    use crate::model::payloads::Payloads;
    use crate::model::technique;
    use crate::wire::fixtures::*;
    use crate::wire::flag;
    use crate::wire::{parse_ip, ProbeFields, ProbeTemplate};

    /// The `--seed` of the captured scan and its technique order.
    const SEED: u64 = 7;
    const SYN: usize = 0;
    const FIN: usize = 1;
    const NULL: usize = 2;
    const XMAS: usize = 3;

    /// Key, ports and validator as the scan derives them from the seed.
    fn lab_scan() -> (CookieKey, PortPlan, Validator) {
        let ScanKeys { key, ports, .. } = ScanKeys::from_seed(SEED);
        let probes = ["syn", "fin", "null", "xmas"]
            .map(|n| technique::builtin_by_name(n).expect("built in").shape())
            .to_vec();
        let validator = Validator {
            key: key.clone(),
            ports,
            probes,
            udp: None,
        };
        (key, ports, validator)
    }

    /// One captured reply and what it must be attributed to.
    struct Case {
        name: &'static str,
        bytes: &'static [u8],
        host: IpAddr,
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
            let probe = v.probes[c.technique];
            let probe_flags = probe.flags;
            let Parsed::Packet(p) = parse_ip(c.bytes) else {
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
                    assert!(tcp_reply_fits(cookie, probe, echo(seg.ack)), "{}", c.name);
                    for bit in 0..32 {
                        let bad = seg.ack ^ (1 << bit);
                        assert!(
                            !tcp_reply_fits(cookie, probe, echo(bad)),
                            "{} bit {bit}",
                            c.name
                        );
                    }
                }
                Body::Udp(_) => panic!("{}: no UDP fixture here", c.name),
                Body::Unreachable { quoted, .. } => {
                    let cookie = key.cookie(quoted.src, quoted.dst, quoted.sport, quoted.dport);
                    // The quote holds the numbers the probe was sent with.
                    let (seq, ack) = probe_numbers(cookie, probe);
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
                v.check(parse_ip(c.bytes), at),
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
                    v.check(parse_ip(&flip(c.bytes, bit)), at),
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
        assert_eq!(v.check(parse_ip(&spoofed), at), Verdict::Invalid);
        // An ICMP error quoting a probe to another host or port.
        let mut other_host = ICMP_PORT_UNREACH_FIXTURE;
        other_host[47] = 3;
        assert_eq!(v.check(parse_ip(&other_host), at), Verdict::Invalid);
        let mut other_port = ICMP_PORT_UNREACH_FIXTURE;
        other_port[51] = 112;
        assert_eq!(v.check(parse_ip(&other_port), at), Verdict::Invalid);
        // The FIN probe's reset delivered to the NULL slot: NULL wants ack = seq.
        let mut wrong_slot = RST_ACK_FIXTURE;
        wrong_slot[23] = 0xf8;
        assert_eq!(v.check(parse_ip(&wrong_slot), at), Verdict::Invalid);
        // A reply to a later try is attributed to that try's slot only if
        // its numbers fit that slot's cookie; these are try 0's numbers.
        let mut retry_slot = RST_ACK_SYN_FIXTURE;
        retry_slot[23] = 0xe9;
        assert_eq!(v.check(parse_ip(&retry_slot), at), Verdict::Invalid);
    }

    /// `-g 53`: every probe of the seed-7 scan leaves from port 53.
    fn fixed_port_scan() -> Validator {
        let (_, ports, mut v) = lab_scan();
        v.ports = ports.with_fixed_sport(Some(53));
        v
    }

    /// What a stack sends back to a probe of (technique, try) of the
    /// fixed-port scan on port 81: our probe's numbers, acknowledged as
    /// RFC 9293 says (a RST+ACK to a probe without ACK).
    fn reply_to(v: &Validator, technique: usize, slot: u8, ack_delta: u32) -> Vec<u8> {
        let probe = v.probes[technique];
        let sport = v.ports.sport(technique, slot);
        let (seq, _) = probe_numbers(v.key.cookie(A, B, sport, 81), probe);
        let consumed =
            u32::from(probe.flags & flag::SYN != 0) + u32::from(probe.flags & flag::FIN != 0);
        let fields = ProbeFields {
            src: B,
            dst: A,
            sport: 81,
            dport: 53,
            seq: 0,
            ack: seq.wrapping_add(consumed).wrapping_add(ack_delta),
        };
        let mut bytes = Vec::new();
        ProbeTemplate::new(flag::RST | flag::ACK).write(&fields, 0, &mut bytes);
        bytes
    }

    #[test]
    fn with_a_fixed_source_port_the_cookie_tells_the_technique_and_the_try() {
        let v = fixed_port_scan();
        let at = Duration::ZERO;
        for technique in [SYN, FIN, NULL, XMAS] {
            for slot in 0..TRY_SLOTS as u8 {
                let want = Verdict::Reply(Reply {
                    host: B,
                    port: 81,
                    technique,
                    attempt_slot: slot,
                    // The template's window.
                    kind: ReplyKind::Rst { window: 1024 },
                    ttl: 64,
                    at,
                });
                let real = reply_to(&v, technique, slot, 0);
                assert_eq!(v.check(parse_ip(&real), at), want, "{technique}/{slot}");
                // Forged: numbers off by one, or no cookie of ours at all.
                let forged = reply_to(&v, technique, slot, 1);
                assert_eq!(v.check(parse_ip(&forged), at), Verdict::Invalid);
            }
        }
        // The plan's own ports are not where replies come any more.
        let (_, _, planned) = lab_scan();
        assert!(matches!(
            planned.check(parse_ip(&reply_to(&v, SYN, 0, 0)), at),
            Verdict::NotOurs
        ));
        assert_eq!(
            v.check(parse_ip(&RST_ACK_SYN_FIXTURE), at),
            Verdict::NotOurs
        );
        // An ICMP error quoting a SYN probe from port 53, try 2.
        let mut icmp = ICMP_PORT_UNREACH_FIXTURE;
        let seq = v.key.cookie(A, B, v.ports.sport(SYN, 2), 111).seq;
        icmp[48..50].copy_from_slice(&53u16.to_be_bytes());
        icmp[52..56].copy_from_slice(&seq.to_be_bytes());
        assert_eq!(
            v.check(parse_ip(&icmp), at),
            Verdict::Reply(Reply {
                host: B,
                port: 111,
                technique: SYN,
                attempt_slot: 2,
                kind: ReplyKind::Unreachable { code: 3 },
                ttl: 64,
                at,
            })
        );
        icmp[55] ^= 1;
        assert_eq!(v.check(parse_ip(&icmp), at), Verdict::Invalid);
    }

    #[test]
    fn traffic_outside_the_probe_ports_is_not_ours() {
        let (_, _, v) = lab_scan();
        // The SYN/ACK of an ordinary connect() in the scanner's namespace.
        assert_eq!(
            v.check(parse_ip(&SYN_ACK_CONNECT_FIXTURE), Duration::ZERO),
            Verdict::NotOurs
        );
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
            let probe = v.probes[technique];
            let flags = probe.flags;
            let (seq, ack) = probe_numbers(key.cookie(A, B, sport, dport), probe);
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

    /// A UDP scan with `--seed 7`, as the UDP fixtures were captured.
    fn udp_scan() -> Validator {
        let ScanKeys { key, ports, .. } = ScanKeys::from_seed(SEED);
        let udp = technique::builtin_by_name("udp").expect("built in");
        Validator {
            key,
            ports,
            probes: vec![udp.shape()],
            udp: Some((0, Arc::new(Payloads::builtin()))),
        }
    }

    fn verdict(v: &Validator, bytes: &[u8]) -> Verdict {
        v.check(parse_ip(bytes), Duration::ZERO)
    }

    #[test]
    fn the_udp_probes_are_what_the_cookie_and_the_payload_files_make() {
        let v = udp_scan();
        let payloads = Payloads::builtin();
        for (port, fixture) in [
            (111, &UDP_RPC_PROBE_FIXTURE[..]),
            (53, &UDP_DNS_PROBE_FIXTURE[..]),
            (123, &UDP_NTP_PROBE_FIXTURE[..]),
        ] {
            let cookie = v.key.cookie(A, B, 0, port);
            let sport = v.ports.udp_sport(cookie, 0);
            let payload = payloads.probe(port, udp_payload_cookie(cookie));
            let mut built = Vec::new();
            crate::wire::udp::write(
                A,
                B,
                sport,
                port,
                udp_ip_tag(cookie, A),
                &payload,
                &mut built,
            );
            assert_eq!(built, fixture, "port {port}");
        }
    }

    #[test]
    fn udp_answers_and_port_unreachables_are_believed_with_their_cookie_only() {
        let v = udp_scan();
        let reply = |port, kind| Reply {
            host: B,
            port,
            technique: 0,
            attempt_slot: 0,
            kind,
            ttl: 64,
            at: Duration::ZERO,
        };
        assert_eq!(
            verdict(&v, &UDP_DNS_REPLY_FIXTURE),
            Verdict::Reply(reply(53, ReplyKind::Udp))
        );
        assert_eq!(
            verdict(&v, &UDP_NTP_REPLY_FIXTURE),
            Verdict::Reply(reply(123, ReplyKind::Udp))
        );
        assert_eq!(
            verdict(&v, &ICMP_PORT_UNREACH_UDP_FIXTURE),
            Verdict::Reply(reply(111, ReplyKind::Unreachable { code: 3 }))
        );
        // A DNS answer with another ID, an NTP answer with another origin
        // timestamp: forged (or another scanner's).
        let mut dns = UDP_DNS_REPLY_FIXTURE;
        dns[29] ^= 1;
        assert_eq!(verdict(&v, &dns), Verdict::Invalid);
        let mut ntp = UDP_NTP_REPLY_FIXTURE;
        ntp[28 + 24] ^= 0x80;
        assert_eq!(verdict(&v, &ntp), Verdict::Invalid);
        // An ICMP error quoting another checksum, length or IP id.
        for at in [28 + 20 + 6, 28 + 20 + 4, 28 + 4] {
            let mut icmp = ICMP_PORT_UNREACH_UDP_FIXTURE;
            icmp[at] ^= 1;
            assert_eq!(verdict(&v, &icmp), Verdict::Invalid, "byte {at}");
        }
        // An answer to another of our source ports, one outside our range,
        // and one from a port of ours (our own probe looping back).
        let mut other = UDP_DNS_REPLY_FIXTURE;
        other[23] ^= 8;
        assert_eq!(verdict(&v, &other), Verdict::Invalid);
        let mut outside = UDP_DNS_REPLY_FIXTURE;
        outside[22] = 0x10;
        assert_eq!(verdict(&v, &outside), Verdict::NotOurs);
        assert_eq!(verdict(&v, &UDP_DNS_PROBE_FIXTURE), Verdict::NotOurs);
        // A TCP-only scan does not believe any of it.
        let (_, _, tcp) = lab_scan();
        for f in [
            &UDP_DNS_REPLY_FIXTURE[..],
            &ICMP_PORT_UNREACH_UDP_FIXTURE[..],
        ] {
            assert_eq!(verdict(&tcp, f), Verdict::NotOurs);
        }
    }

    /// An ICMPv6 port unreachable quoting our UDP probe over IPv6 is
    /// believed only with the probe's flow label, which carries 20 bits of
    /// its cookie (IPv6 has no identification); another port's empty
    /// datagram, guessable from public values, is not enough.
    #[test]
    fn an_icmpv6_error_quoting_a_udp_probe_needs_its_flow_label() {
        let v = udp_scan();
        let a: IpAddr = "fd00:213:1::1".parse().unwrap();
        let b: IpAddr = "fd00:213:1::2".parse().unwrap();
        let port = 9999;
        let cookie = v.key.cookie(a, b, 0, port);
        let sport = v.ports.udp_sport(cookie, 0);
        let payload = Payloads::builtin().probe(port, udp_payload_cookie(cookie));
        let mut probe = Vec::new();
        crate::wire::udp::write(
            a,
            b,
            sport,
            port,
            udp_ip_tag(cookie, b),
            &payload,
            &mut probe,
        );
        let label = u32::from_be_bytes([0, probe[1] & 0x0f, probe[2], probe[3]]);
        assert_eq!(
            label,
            crate::engine::cookie::udp_flow_label(cookie) & 0xf_ffff
        );
        let error = |quote: &[u8]| {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ipv6(
                crate::wire::v6(b).octets(),
                crate::wire::v6(a).octets(),
                64,
            )
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut out, quote)
            .unwrap();
            out
        };
        assert_eq!(
            verdict(&v, &error(&probe)),
            Verdict::Reply(Reply {
                host: b,
                port,
                technique: 0,
                attempt_slot: 0,
                kind: ReplyKind::Unreachable {
                    code: crate::wire::ICMPV6_CODE | 4
                },
                ttl: 64,
                at: Duration::ZERO,
            })
        );
        // The same quote with any other flow label: forged.
        for bit in 0..20 {
            let mut forged = probe.clone();
            let l = (label ^ (1 << bit)).to_be_bytes();
            forged[1] = (forged[1] & 0xf0) | l[1];
            forged[2..4].copy_from_slice(&l[2..4]);
            assert_eq!(verdict(&v, &error(&forged)), Verdict::Invalid, "bit {bit}");
        }
    }
}
