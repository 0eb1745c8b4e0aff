//! The receiver thread: capture, parse, validate, forward.
//!
//! Validation is zmap's split: first decide whether a packet is a genuine
//! answer to one of our probes (ports in our range, numbers that fit the
//! cookie), and only then let the tracker classify it. A packet that looks
//! like an answer but fails the check is counted as invalid and dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Sender, TrySendError};

use crate::cookie::{quoted_fits, tcp_reply_fits, CookieKey, PortPlan, TcpEcho};
use crate::rawsock::{RawReceiver, Received};
use crate::technique::{flag, ReplyKind};
use crate::tracker::{Reply, Time};
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

impl Validator {
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
    pub error: std::sync::Mutex<Option<String>>,
}

/// Runs until `stop` is set. Signals `ready` once it is about to read, so
/// the scan loop starts sending only after capture is under way.
pub fn run(
    socket: RawReceiver,
    validator: Validator,
    clock: Instant,
    replies: Sender<Reply>,
    ready: Sender<()>,
    stop: Arc<AtomicBool>,
    stats: Arc<ReceiverStats>,
) {
    let mut buf = vec![0u8; 65536];
    let _ = ready.send(());
    drop(ready);
    while !stop.load(Ordering::Relaxed) {
        let n = match socket.recv(&mut buf) {
            Ok(Received::Packet(n)) => n,
            Ok(Received::Timeout) => continue,
            Err(e) => {
                *stats.error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(format!("capture failed: {e}"));
                return;
            }
        };
        stats.captured.fetch_add(1, Ordering::Relaxed);
        let at = clock.elapsed();
        match validator.check(parse_ipv4(&buf[..n]), at) {
            Verdict::Reply(r) => match replies.try_send(r) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    stats.overflow.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return,
            },
            Verdict::Invalid => {
                stats.invalid.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::NotOurs => {}
        }
    }
}
