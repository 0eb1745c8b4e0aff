//! `--packet-trace`: one line per probe sent and per packet heard, as it
//! happens, in the spirit of nmap's option of the same name.
//!
//! ```text
//! SENT 0.0123s TCP 10.213.1.1:33024 > 10.213.1.2:23 FIN seq=0x1a2b3c4d ack=0 [fin try 1]
//! RCVD 0.0125s TCP 10.213.1.2:23 > 10.213.1.1:33024 RST/ACK seq=0 ack=0x1a2b3c4e ttl=64 cookie ok -> fin row 1: rst => closed (reset)
//! ```
//!
//! The sender thread writes the SENT lines after each probe left; the scan
//! loop writes the RCVD lines once the tracker has said what the reply did.
//! Both go through one [`TraceTap`], a whole line per write, so lines never
//! mix. The functions below it only format, and are tested with fixed inputs.

use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::model::probe::Time;
use crate::model::reply::ReplyEffect;
use crate::model::reply::{Traced, Verdict};
use crate::model::tap::{Order, Tap};
use crate::model::technique::{Protocol, Reason, ReplyKind, ReplyMatch, Technique, WindowCond};
use crate::wire::flag;
use crate::wire::{Body, Packet, ProbeFields};

/// Where trace lines go (stdout, or stderr when JSON is on stdout).
#[derive(Clone)]
struct TraceSink {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl TraceSink {
    pub fn new(out: Box<dyn Write + Send>) -> TraceSink {
        TraceSink {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Writes `line` and a newline in one write. Errors (a closed pipe) are
    /// ignored: the trace is a view of the scan, not its result.
    pub fn line(&self, mut line: String) {
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(line.as_bytes());
    }

    pub fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// `--packet-trace` as a scan's tap.
pub struct TraceTap {
    sink: TraceSink,
    techniques: Vec<Technique>,
}

impl TraceTap {
    pub fn new(out: Box<dyn Write + Send>, techniques: &[Technique]) -> TraceTap {
        TraceTap {
            sink: TraceSink::new(out),
            techniques: techniques.to_vec(),
        }
    }

    pub fn flush(&self) {
        self.sink.flush();
    }

    /// Name and flags of the order's technique.
    fn label(&self, order: &Order) -> (&str, u8) {
        self.techniques
            .get(order.technique)
            .map_or(("?", 0), |t| (t.name.as_str(), t.flags))
    }
}

impl Tap for TraceTap {
    fn sent(&self, at: Time, order: &Order, packet: &[u8]) {
        let (name, flags) = self.label(order);
        let udp = self
            .techniques
            .get(order.technique)
            .is_some_and(|t| t.protocol == Protocol::Udp);
        let line = match udp {
            true => format!(
                "SENT {} {}",
                secs(at),
                udp_probe_text(&order.fields, packet, name, order.attempt)
            ),
            false => sent_line(at, &order.fields, flags, name, order.attempt),
        };
        self.sink.line(line);
    }

    fn send_failed(&self, at: Time, order: &Order, error: &str) {
        let (name, flags) = self.label(order);
        self.sink.line(send_failed_line(
            at,
            &order.fields,
            flags,
            name,
            order.attempt,
            error,
        ));
    }

    fn captured(&self, _packet: &[u8]) {}

    fn wants_heard(&self) -> bool {
        true
    }

    fn heard(&self, packet: &Traced, effect: Option<ReplyEffect>) {
        self.sink.line(rcvd_line(packet, effect, &self.techniques));
    }

    fn discovery(&self, at: Time, what: &str) {
        self.sink.line(format!("PING {} {what}", secs(at)));
    }
}

fn secs(at: Time) -> String {
    format!("{:.4}s", at.as_secs_f64())
}

/// Sequence and acknowledgment numbers: `0`, or eight hex digits.
fn num(n: u32) -> String {
    if n == 0 {
        "0".to_string()
    } else {
        format!("{n:#010x}")
    }
}

/// `10.0.0.1:80`, `[fd00::1]:80` (an IPv6 address's colons need brackets).
fn endpoint(addr: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

/// `ICMP 3/13`, or for ICMPv6 (its code marked `ICMPV6_CODE`) `ICMPv6 1/4`.
fn unreachable_label(code: u8) -> String {
    match code & crate::wire::ICMPV6_CODE {
        0 => format!("ICMP 3/{code}"),
        _ => format!("ICMPv6 1/{}", code & !crate::wire::ICMPV6_CODE),
    }
}

fn probe_text(p: &ProbeFields, flags: u8, technique: &str, attempt: u8) -> String {
    format!(
        "TCP {} > {} {} seq={} ack={} [{technique} try {}]",
        endpoint(p.src, p.sport),
        endpoint(p.dst, p.dport),
        flag::describe(flags),
        num(p.seq),
        num(p.ack),
        u16::from(attempt) + 1
    )
}

/// A UDP probe: ports, the payload's length and the IP id (its cookie
/// is in the source port, the id and the payload).
fn udp_probe_text(p: &ProbeFields, packet: &[u8], technique: &str, attempt: u8) -> String {
    let id = packet
        .get(4..6)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    format!(
        "UDP {} > {} len={} id={id:#06x} [{technique} try {}]",
        endpoint(p.src, p.sport),
        endpoint(p.dst, p.dport),
        packet.len().saturating_sub(28),
        u16::from(attempt) + 1
    )
}

/// A probe that left: `attempt` 0 is try 1.
pub fn sent_line(at: Time, p: &ProbeFields, flags: u8, technique: &str, attempt: u8) -> String {
    format!(
        "SENT {} {}",
        secs(at),
        probe_text(p, flags, technique, attempt)
    )
}

/// A probe the kernel refused for good (it counts as sent and unanswered).
pub fn send_failed_line(
    at: Time,
    p: &ProbeFields,
    flags: u8,
    technique: &str,
    attempt: u8,
    error: &str,
) -> String {
    format!(
        "FAIL {} {}: not sent: {error}",
        secs(at),
        probe_text(p, flags, technique, attempt)
    )
}

/// Addresses, ports, flags and numbers of a captured packet.
pub fn packet_text(p: &Packet) -> String {
    match p.body {
        Body::Tcp(seg) => format!(
            "TCP {} > {} {} seq={} ack={} ttl={}",
            endpoint(p.src, seg.sport),
            endpoint(p.dst, seg.dport),
            flag::describe(seg.flags),
            num(seg.seq),
            num(seg.ack),
            p.ttl
        ),
        Body::Udp(d) => format!(
            "UDP {} > {} len={} ttl={}",
            endpoint(p.src, d.sport),
            endpoint(p.dst, d.dport),
            d.head_len,
            p.ttl
        ),
        Body::Unreachable { code, quoted } if quoted.proto == 17 => format!(
            "{} {} from {} ttl={} quoting UDP {} > {} id={:#06x}",
            unreachable_label(code),
            Reason::Unreachable(code).as_str(),
            p.src,
            p.ttl,
            endpoint(quoted.src, quoted.sport),
            endpoint(quoted.dst, quoted.dport),
            quoted.ip_id
        ),
        Body::Unreachable { code, quoted } => format!(
            "{} {} from {} ttl={} quoting {} > {} seq={}",
            unreachable_label(code),
            Reason::Unreachable(code).as_str(),
            p.src,
            p.ttl,
            endpoint(quoted.src, quoted.sport),
            endpoint(quoted.dst, quoted.dport),
            num(quoted.seq)
        ),
    }
}

fn kind_name(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::SynAck => "syn-ack",
        ReplyKind::Rst { .. } => "rst",
        ReplyKind::Unreachable { .. } => "icmp-unreachable",
        ReplyKind::Udp => "udp-response",
    }
}

/// A row of a technique's table as the file names it: `rst`,
/// `rst (window > 0)`, `icmp-unreachable`.
fn rule_name(technique: &Technique, rule: usize) -> String {
    let Some(r) = technique.rules.get(rule) else {
        return "?".to_string();
    };
    let reply = match r.reply {
        ReplyMatch::SynAck => "syn-ack",
        ReplyMatch::Rst => "rst",
        ReplyMatch::IcmpUnreachable => "icmp-unreachable",
        ReplyMatch::UdpResponse => "udp-response",
    };
    match (r.reply, r.window) {
        (ReplyMatch::Rst, WindowCond::Zero) => format!("{reply} (window 0)"),
        (ReplyMatch::Rst, WindowCond::Nonzero) => format!("{reply} (window > 0)"),
        _ => reply.to_string(),
    }
}

/// A packet heard, with what validation said and (for a valid reply) what
/// it did to the tracker. `techniques` are the scan's, by index.
pub fn rcvd_line(t: &Traced, effect: Option<ReplyEffect>, techniques: &[Technique]) -> String {
    let Some(p) = &t.packet else {
        return format!(
            "RCVD {} malformed IPv4 packet ({} bytes): dropped (invalid)",
            secs(t.at),
            t.len
        );
    };
    let mut line = format!("RCVD {} {} ", secs(t.at), packet_text(p));
    let reply = match t.verdict {
        Verdict::Reply(r) => r,
        Verdict::Invalid => {
            line.push_str("cookie MISMATCH: dropped (invalid)");
            return line;
        }
        Verdict::NotOurs => {
            line.push_str("not a reply to a probe: ignored");
            return line;
        }
    };
    line.push_str("cookie ok -> ");
    let technique = techniques.get(reply.technique);
    let tech_name = technique.map_or("?", |t| t.name.as_str());
    match effect {
        Some(ReplyEffect::Decided { rule, outcome }) => {
            let _ = write!(
                line,
                "{tech_name} row {}: {} => {} ({})",
                rule + 1,
                technique.map_or_else(|| "?".to_string(), |t| rule_name(t, rule)),
                outcome.state,
                outcome.reason
            );
        }
        Some(ReplyEffect::Revised { rule, outcome }) => {
            let _ = write!(
                line,
                "{tech_name} row {}: {} => {} ({}), late: revises no-response",
                rule + 1,
                technique.map_or_else(|| "?".to_string(), |t| rule_name(t, rule)),
                outcome.state,
                outcome.reason
            );
        }
        Some(ReplyEffect::Duplicate) => line.push_str("duplicate: already decided"),
        Some(ReplyEffect::Unmatched) => {
            let _ = write!(
                line,
                "{tech_name}: no row for {}: ignored (unmatched)",
                kind_name(reply.kind)
            );
        }
        Some(ReplyEffect::Unexpected) => {
            line.push_str("no such probe in flight: ignored (unexpected)")
        }
        None => line.push_str("not looked at"),
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::reply::Reply;
    use crate::model::technique::{builtin_by_name, Outcome, PortState};
    use crate::wire::{Quoted, TcpSegment};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    const US: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 1, 1));
    const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 1, 2));

    fn techniques() -> Vec<Technique> {
        ["syn", "fin", "null"]
            .iter()
            .map(|n| builtin_by_name(n).unwrap())
            .collect()
    }

    fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Packet {
        Packet {
            src: WEB,
            dst: US,
            ttl: 64,
            body: Body::Tcp(TcpSegment {
                sport,
                dport,
                seq,
                ack,
                flags,
                window: 0,
            }),
        }
    }

    fn reply(port: u16, technique: usize, kind: ReplyKind) -> Verdict {
        Verdict::Reply(Reply {
            host: WEB,
            port,
            technique,
            attempt_slot: 0,
            kind,
            ttl: 64,
            at: Duration::from_micros(12_500),
        })
    }

    fn traced(packet: Option<Packet>, verdict: Verdict) -> Traced {
        Traced {
            at: Duration::from_micros(12_500),
            len: 40,
            packet,
            verdict,
        }
    }

    #[test]
    fn sent_lines_show_the_probe_as_it_left() {
        let p = ProbeFields {
            src: US,
            dst: WEB,
            sport: 33032,
            dport: 22,
            seq: 0x1a2b_3c4d,
            ack: 0,
        };
        assert_eq!(
            sent_line(Duration::from_micros(12_300), &p, flag::FIN, "fin", 0),
            "SENT 0.0123s TCP 10.213.1.1:33032 > 10.213.1.2:22 FIN seq=0x1a2b3c4d ack=0 [fin try 1]"
        );
        let p = ProbeFields { seq: 0xab, ..p };
        assert_eq!(
            sent_line(
                Duration::from_secs(2),
                &p,
                flag::FIN | flag::PSH | flag::URG,
                "xmas",
                2
            ),
            "SENT 2.0000s TCP 10.213.1.1:33032 > 10.213.1.2:22 FIN/PSH/URG seq=0x000000ab ack=0 [xmas try 3]"
        );
        assert_eq!(
            sent_line(Duration::ZERO, &p, 0, "null", 0),
            "SENT 0.0000s TCP 10.213.1.1:33032 > 10.213.1.2:22 none seq=0x000000ab ack=0 [null try 1]"
        );
        assert_eq!(
            send_failed_line(
                Duration::from_millis(5),
                &p,
                flag::SYN,
                "syn",
                1,
                "No buffer space available"
            ),
            "FAIL 0.0050s TCP 10.213.1.1:33032 > 10.213.1.2:22 SYN seq=0x000000ab ack=0 [syn try 2]: \
             not sent: No buffer space available"
        );
    }

    #[test]
    fn a_reset_that_decides_a_port_names_the_row() {
        let t = traced(
            Some(tcp(23, 33032, flag::RST | flag::ACK, 0, 0x1a2b_3c4e)),
            reply(23, 1, ReplyKind::Rst { window: 0 }),
        );
        let effect = ReplyEffect::Decided {
            rule: 0,
            outcome: Outcome {
                state: PortState::Closed,
                reason: Reason::Reset,
            },
        };
        assert_eq!(
            rcvd_line(&t, Some(effect), &techniques()),
            "RCVD 0.0125s TCP 10.213.1.2:23 > 10.213.1.1:33032 RST/ACK seq=0 ack=0x1a2b3c4e ttl=64 \
             cookie ok -> fin row 1: rst => closed (reset)"
        );
    }

    #[test]
    fn a_syn_ack_and_an_icmp_error_decide_their_ports() {
        let t = traced(
            Some(tcp(22, 33024, flag::SYN | flag::ACK, 0x99, 0x1a2b_3c4e)),
            reply(22, 0, ReplyKind::SynAck),
        );
        let open = ReplyEffect::Decided {
            rule: 0,
            outcome: Outcome {
                state: PortState::Open,
                reason: Reason::SynAck,
            },
        };
        assert_eq!(
            rcvd_line(&t, Some(open), &techniques()),
            "RCVD 0.0125s TCP 10.213.1.2:22 > 10.213.1.1:33024 SYN/ACK seq=0x00000099 ack=0x1a2b3c4e ttl=64 \
             cookie ok -> syn row 1: syn-ack => open (syn-ack)"
        );
        let icmp = Packet {
            src: WEB,
            dst: US,
            ttl: 64,
            body: Body::Unreachable {
                code: 3,
                quoted: Quoted {
                    src: US,
                    dst: WEB,
                    sport: 33026,
                    dport: 111,
                    seq: 0xdead_beef,
                    proto: 6,
                    ip_id: 1,
                },
            },
        };
        let t = traced(
            Some(icmp),
            reply(111, 0, ReplyKind::Unreachable { code: 3 }),
        );
        let filtered = ReplyEffect::Decided {
            rule: 2,
            outcome: Outcome {
                state: PortState::Filtered,
                reason: Reason::Unreachable(3),
            },
        };
        assert_eq!(
            rcvd_line(&t, Some(filtered), &techniques()),
            "RCVD 0.0125s ICMP 3/3 port-unreach from 10.213.1.2 ttl=64 quoting 10.213.1.1:33026 > 10.213.1.2:111 \
             seq=0xdeadbeef cookie ok -> syn row 3: icmp-unreachable => filtered (port-unreach)"
        );
    }

    #[test]
    fn replies_that_decide_nothing_say_why() {
        let rst = Some(tcp(23, 33040, flag::RST | flag::ACK, 0, 7));
        let techs = techniques();
        let valid = reply(23, 2, ReplyKind::Rst { window: 0 });
        assert_eq!(
            rcvd_line(&traced(rst, valid), Some(ReplyEffect::Duplicate), &techs),
            "RCVD 0.0125s TCP 10.213.1.2:23 > 10.213.1.1:33040 RST/ACK seq=0 ack=0x00000007 ttl=64 \
             cookie ok -> duplicate: already decided"
        );
        assert_eq!(
            rcvd_line(&traced(rst, valid), Some(ReplyEffect::Unexpected), &techs),
            "RCVD 0.0125s TCP 10.213.1.2:23 > 10.213.1.1:33040 RST/ACK seq=0 ack=0x00000007 ttl=64 \
             cookie ok -> no such probe in flight: ignored (unexpected)"
        );
        let synack = Some(tcp(22, 33032, flag::SYN | flag::ACK, 1, 2));
        assert_eq!(
            rcvd_line(
                &traced(synack, reply(22, 1, ReplyKind::SynAck)),
                Some(ReplyEffect::Unmatched),
                &techs
            ),
            "RCVD 0.0125s TCP 10.213.1.2:22 > 10.213.1.1:33032 SYN/ACK seq=0x00000001 ack=0x00000002 ttl=64 \
             cookie ok -> fin: no row for syn-ack: ignored (unmatched)"
        );
    }

    #[test]
    fn packets_that_fail_validation_are_dropped_as_invalid() {
        let techs = techniques();
        assert_eq!(
            rcvd_line(
                &traced(
                    Some(tcp(23, 33032, flag::RST | flag::ACK, 0, 0x1234)),
                    Verdict::Invalid
                ),
                None,
                &techs
            ),
            "RCVD 0.0125s TCP 10.213.1.2:23 > 10.213.1.1:33032 RST/ACK seq=0 ack=0x00001234 ttl=64 \
             cookie MISMATCH: dropped (invalid)"
        );
        assert_eq!(
            rcvd_line(&traced(None, Verdict::Invalid), None, &techs),
            "RCVD 0.0125s malformed IPv4 packet (40 bytes): dropped (invalid)"
        );
        assert_eq!(
            rcvd_line(
                &traced(Some(tcp(22, 33032, flag::ACK, 5, 6)), Verdict::NotOurs),
                None,
                &techs
            ),
            "RCVD 0.0125s TCP 10.213.1.2:22 > 10.213.1.1:33032 ACK seq=0x00000005 ack=0x00000006 ttl=64 \
             not a reply to a probe: ignored"
        );
    }

    #[test]
    fn window_rows_name_their_condition() {
        let text = crate::model::technique::WINDOW_TOML;
        let w = Technique::from_toml(text, "window.toml").unwrap();
        assert_eq!(rule_name(&w, 0), "rst (window > 0)");
        assert_eq!(rule_name(&w, 1), "rst (window 0)");
        assert_eq!(rule_name(&w, 2), "?");
    }

    #[test]
    fn the_sink_writes_whole_lines() {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Shared::default();
        let sink = TraceSink::new(Box::new(buf.clone()));
        let other = sink.clone();
        std::thread::scope(|s| {
            s.spawn(|| (0..200).for_each(|i| sink.line(format!("SENT {i}"))));
            s.spawn(|| (0..200).for_each(|i| other.line(format!("RCVD {i}"))));
        });
        sink.flush();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 400);
        assert!(text
            .lines()
            .all(|l| l.starts_with("SENT ") || l.starts_with("RCVD ")));
    }
}
