//! The sender thread: turns probe orders into packets on the wire.
//!
//! Each technique has a prebuilt template; per probe only addresses, ports,
//! sequence numbers and checksums change. The thread paces itself to
//! `--max-rate` and retries when the kernel's queue is momentarily full.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::capture::{self, Direction, SharedPcap};
use crate::rawsock::RawSender;
use crate::trace::{self, TraceSink};
use crate::wire::{ProbeFields, ProbeTemplate};

/// One probe to send, fully decided by the scan loop.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    pub technique: usize,
    /// 0 for the first try (shown by `--packet-trace`).
    pub attempt: u8,
    pub fields: ProbeFields,
}

/// `--packet-trace` as the sender needs it.
pub struct SendTrace {
    pub sink: TraceSink,
    /// The scan's start: trace times are offsets from it.
    pub clock: Instant,
    /// Name and flags of each technique, by index.
    pub techniques: Vec<(String, u8)>,
}

impl SendTrace {
    fn line(&self, order: &Order, error: Option<&str>) {
        let at = self.clock.elapsed();
        let (name, flags) = self
            .techniques
            .get(order.technique)
            .map_or(("?", 0), |(n, f)| (n.as_str(), *f));
        let f = &order.fields;
        self.sink.line(match error {
            None => trace::sent_line(at, f, flags, name, order.attempt),
            Some(e) => trace::send_failed_line(at, f, flags, name, order.attempt, e),
        });
    }
}

/// Optional copies of what is sent: `--pcap` and `--packet-trace`.
#[derive(Default)]
pub struct Taps {
    pub pcap: Option<SharedPcap>,
    pub trace: Option<SendTrace>,
}

#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

pub fn run(
    socket: RawSender,
    templates: Vec<ProbeTemplate>,
    orders: Receiver<Order>,
    stats: Arc<SenderStats>,
    taps: Taps,
) {
    let mut buf = Vec::with_capacity(64);
    let mut ip_id: u16 = 0;
    for order in orders {
        templates[order.technique].write(&order.fields, ip_id, &mut buf);
        ip_id = ip_id.wrapping_add(1);
        let mut backoff = Duration::from_micros(50);
        loop {
            match socket.send(&buf, order.fields.dst) {
                Ok(()) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(pcap) = &taps.pcap {
                        capture::record(pcap, Direction::Sent, &buf);
                    }
                    if let Some(t) = &taps.trace {
                        t.line(&order, None);
                    }
                    break;
                }
                Err(e) if is_transient(&e) && backoff < Duration::from_millis(100) => {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(e) => {
                    // The probe counts as sent and unanswered: the tracker
                    // retries it and concludes from silence, as on loss.
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("sending to {}: {e}", order.fields.dst));
                    if let Some(t) = &taps.trace {
                        t.line(&order, Some(&e.to_string()));
                    }
                    break;
                }
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR)
    )
}
