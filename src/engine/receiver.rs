//! The receiver thread: capture, parse, validate ([`crate::engine::validate`]),
//! forward.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::engine::validate::Validator;
use crate::io::rawsock::Capture;
use crate::io::socket::Stamp;
use crate::model::probe::Time;
use crate::model::reply::{Reply, Traced, Verdict};
use crate::model::tap::Taps;
use crate::wire::{parse_ip, Parsed};

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

/// The receiver's ends of the scan's channels.
pub struct Links {
    /// What was heard, to the scan loop.
    pub replies: Sender<Heard>,
    /// Sent once the receiver is about to read.
    pub ready: Sender<()>,
    /// Sent once it has read its last packet and let go of its taps.
    pub done: Sender<()>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<ReceiverStats>,
}

/// Runs until `links.stop` is set. Signals `ready` once it is about to
/// read, so the scan loop starts sending only after capture is under way,
/// and `done` when it has read its last packet and let go of `taps`:
/// closing the capture socket then waits for the kernel (RCU grace periods,
/// tens of milliseconds), which neither the scan nor the process's exit
/// waits for ([`crate::sys::teardown`]).
pub fn run(mut capture: Capture, validator: Validator, clock: Instant, taps: Taps, links: Links) {
    let Links {
        replies,
        ready,
        done,
        stop,
        stats,
    } = links;
    let tapped = !taps.is_empty();
    let traced = taps.iter().any(|t| t.wants_heard());
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
            let parsed = parse_ip(packet);
            let verdict = validator.check(parsed, at);
            if matches!(verdict, Verdict::Invalid) {
                invalid += 1;
            }
            let message = if tapped {
                match tap(&validator, &taps, traced, packet, parsed, verdict, at) {
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

/// The slow path, with taps (`--pcap`, `--packet-trace`): shows them a
/// packet addressed to our probe ports and decides what to forward.
fn tap(
    validator: &Validator,
    taps: &Taps,
    traced: bool,
    packet: &[u8],
    parsed: Parsed,
    verdict: Verdict,
    at: Time,
) -> Option<Heard> {
    if !validator.addressed_to_us(&parsed, &verdict) {
        return None;
    }
    for t in taps {
        t.captured(packet);
    }
    if traced {
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
