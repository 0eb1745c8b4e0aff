//! Validation, zmap's split: first decide whether a packet is a genuine
//! answer to one of our probes (ports in our range, numbers that fit the
//! cookie), and only then let the tracker classify it. A packet that looks
//! like an answer but fails the check is counted as invalid and dropped.

use crate::engine::cookie::{quoted_fits, tcp_reply_fits, CookieKey, PortPlan, TcpEcho};
use crate::model::probe::Time;
use crate::model::reply::{Reply, Verdict};
use crate::model::technique::ReplyKind;
use crate::wire::flag;
use crate::wire::{Body, Packet, Parsed};

/// What the receiver needs to recognise our replies.
#[derive(Clone)]
pub struct Validator {
    pub key: CookieKey,
    pub ports: PortPlan,
    /// Flags each technique sends, by technique index.
    pub probe_flags: Vec<u8>,
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
                }) => {
                    self.ports.decode(seg.dport).is_some() && self.ports.decode(seg.sport).is_none()
                }
                _ => false,
            },
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
                let Some((technique, attempt_slot)) = self.ports.decode(seg.dport) else {
                    return Verdict::NotOurs;
                };
                let Some(&probe_flags) = self.probe_flags.get(technique) else {
                    return Verdict::Invalid;
                };
                let cookie = self.key.cookie(p.dst, p.src, seg.dport, seg.sport);
                let echo = TcpEcho {
                    flags: seg.flags,
                    seq: seg.seq,
                    ack: seg.ack,
                };
                if !tcp_reply_fits(cookie, probe_flags, echo) {
                    return Verdict::Invalid;
                }
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
            Body::Unreachable { code, quoted } => {
                let Some((technique, attempt_slot)) = self.ports.decode(quoted.sport) else {
                    return Verdict::NotOurs;
                };
                if technique >= self.probe_flags.len() {
                    return Verdict::Invalid;
                }
                let cookie = self
                    .key
                    .cookie(quoted.src, quoted.dst, quoted.sport, quoted.dport);
                if !quoted_fits(cookie, quoted.seq) {
                    return Verdict::Invalid;
                }
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
