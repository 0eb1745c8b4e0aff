//! The receiver thread: capture, parse, validate, forward.
//!
//! Validation is zmap's split: first decide whether a packet is a genuine
//! answer to one of our probes (ports in our range, numbers that fit the
//! cookie), and only then let the tracker classify it. A packet that looks
//! like an answer but fails the check is counted as invalid and dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::engine::cookie::{quoted_fits, tcp_reply_fits, CookieKey, PortPlan, TcpEcho};
use crate::engine::tracker::{Reply, Time};
use crate::io::rawsock::{Capture, Stamp};
use crate::model::technique::{flag, ReplyKind};
use crate::output::pcap::{self, Direction, SharedPcap};
use crate::wire::{parse_ipv4, Body, Packet, Parsed};

/// What the receiver needs to recognise our replies.
#[derive(Clone)]
pub struct Validator {
    pub key: CookieKey,
    pub ports: PortPlan,
    /// Flags each technique sends, by technique index.
    pub probe_flags: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reply(Reply),
    /// Addressed to our probe ports but forged, stale or malformed.
    Invalid,
    /// Other traffic (including our own probes looping back on `lo`).
    NotOurs,
}

/// What the receiver hands the scan loop.
#[derive(Debug)]
pub enum Heard {
    /// A reply that passed validation (the only message without `--packet-trace`).
    Reply(Reply),
    /// With `--packet-trace`: any packet addressed to our probe ports, with
    /// what validation said, so the scan loop can print it. Boxed, so the
    /// message stays as small as a bare [`Reply`] when tracing is off.
    Traced(Box<Traced>),
}

/// A captured packet as `--packet-trace` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    pub at: Time,
    /// Bytes captured.
    pub len: usize,
    /// `None` when the packet was malformed.
    pub packet: Option<Packet>,
    pub verdict: Verdict,
}

/// Optional copies of what is heard: `--pcap` and `--packet-trace`.
#[derive(Default)]
pub struct Taps {
    pub pcap: Option<SharedPcap>,
    pub trace: bool,
}

impl Taps {
    fn any(&self) -> bool {
        self.pcap.is_some() || self.trace
    }
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

#[derive(Debug, Default)]
pub struct ReceiverStats {
    pub captured: AtomicU64,
    pub invalid: AtomicU64,
    /// Valid replies dropped because the scan loop fell behind.
    pub overflow: AtomicU64,
    /// Packets the kernel dropped because the capture ring was full
    /// (fast path; read when the receiver stops).
    pub ring_drops: AtomicU64,
    pub error: std::sync::Mutex<Option<String>>,
}

/// Scan time of a captured packet.
fn scan_time(start: Instant, stamp: Stamp) -> Time {
    match stamp {
        Stamp::Kernel { seen, age } => seen.saturating_duration_since(start).saturating_sub(age),
        Stamp::Now => start.elapsed(),
    }
}

/// Runs until `stop` is set. Signals `ready` once it is about to read, so
/// the scan loop starts sending only after capture is under way, and
/// `done` when it has read its last packet and let go of `taps`: closing
/// the capture socket then waits for the kernel (RCU grace periods, tens
/// of milliseconds), which neither the scan nor the process's exit waits
/// for ([`crate::sys::teardown`]).
#[allow(clippy::too_many_arguments)]
pub fn run(
    mut capture: Capture,
    validator: Validator,
    clock: Instant,
    replies: Sender<Heard>,
    ready: Sender<()>,
    done: Sender<()>,
    stop: Arc<AtomicBool>,
    stats: Arc<ReceiverStats>,
    taps: Taps,
) {
    let tapped = taps.any();
    let _ = ready.send(());
    drop(ready);
    // Counted locally, published once per read.
    let (mut captured, mut invalid, mut overflow) = (0u64, 0u64, 0u64);
    let mut disconnected = false;
    while !stop.load(Ordering::Relaxed) && !disconnected {
        let read = capture.read(POLL, |packet, stamp| {
            if disconnected {
                return;
            }
            captured += 1;
            let at = scan_time(clock, stamp);
            let parsed = parse_ipv4(packet);
            let verdict = validator.check(parsed, at);
            if matches!(verdict, Verdict::Invalid) {
                invalid += 1;
            }
            let message = if tapped {
                match tap(&validator, &taps, packet, parsed, verdict, at) {
                    Some(m) => m,
                    None => return,
                }
            } else {
                match verdict {
                    Verdict::Reply(r) => Heard::Reply(r),
                    Verdict::Invalid | Verdict::NotOurs => return,
                }
            };
            match replies.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => overflow += 1,
                Err(TrySendError::Disconnected(_)) => disconnected = true,
            }
        });
        stats.captured.fetch_add(captured, Ordering::Relaxed);
        stats.invalid.fetch_add(invalid, Ordering::Relaxed);
        stats.overflow.fetch_add(overflow, Ordering::Relaxed);
        (captured, invalid, overflow) = (0, 0, 0);
        if let Err(e) = read {
            *stats.error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("capture failed: {e}"));
            return;
        }
    }
    stats
        .ring_drops
        .fetch_add(capture.drops(), Ordering::Relaxed);
    drop(taps);
    // Kept before `done`: once the scan has heard it, the process may exit.
    let unkept = crate::sys::teardown::keep(capture);
    let _ = done.send(());
    drop(unkept);
}

/// How long one capture read waits before the stop flag is looked at again:
/// the scan's end waits for this thread, so this is time added to every
/// scan. While replies flow the ring hands over a block every 2 ms anyway
/// (its retire timeout), so a short wait costs nothing then; idle, it is a
/// few hundred wake-ups a second.
const POLL: Duration = Duration::from_millis(2);

/// The slow path, with `--pcap` or `--packet-trace`: records a packet
/// addressed to our probe ports and decides what to forward.
fn tap(
    validator: &Validator,
    taps: &Taps,
    packet: &[u8],
    parsed: Parsed,
    verdict: Verdict,
    at: Time,
) -> Option<Heard> {
    if !validator.addressed_to_us(&parsed, &verdict) {
        return None;
    }
    if let Some(pcap) = &taps.pcap {
        pcap::record(pcap, Direction::Received, packet);
    }
    if taps.trace {
        return Some(Heard::Traced(Box::new(Traced {
            at,
            len: packet.len(),
            packet: match parsed {
                Parsed::Packet(p) => Some(p),
                Parsed::Ignored | Parsed::Malformed => None,
            },
            verdict,
        })));
    }
    match verdict {
        Verdict::Reply(r) => Some(Heard::Reply(r)),
        Verdict::Invalid | Verdict::NotOurs => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_off_costs_no_bigger_messages() {
        assert_eq!(std::mem::size_of::<Heard>(), std::mem::size_of::<Reply>());
    }
}
