//! The sender thread: turns probe orders into packets on the wire.
//!
//! Each technique has a prebuilt template; per probe only addresses, ports,
//! sequence numbers and checksums change, and on the fast path an Ethernet
//! header (the next hop's MAC and ours) goes in front when the next hop is
//! known. The thread takes the orders that are queued (up to [`BATCH`]) and
//! sends them with one system call on the fast path, and retries when the
//! kernel's queue is momentarily full. Pacing to `--max-rate` is the scan
//! loop's job.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::engine::cookie::{udp_ip_tag, udp_payload_cookie, Cookie};
use crate::io::rawsock::{PacketSender, BATCH};
use crate::model::payloads::Payloads;
use crate::model::tap::{Order, Tap, Taps};
use crate::wire::frame::{write_udp, FastTemplate, Frame};
use crate::wire::ProbeTemplate;

#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent: AtomicU64,
    /// Of `sent`, the probes that left as Ethernet frames (layer 2).
    pub link_layer: AtomicU64,
    pub failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// Sending threads on the fast path (this one included): [`SENDERS`], at
/// most one per core. On a veth or loopback path the kernel delivers each
/// probe, and builds and captures the target's reply, inside the sending
/// thread's system call, so that is where most of a scan's CPU time goes
/// (about 70% of it in the lab); more threads spread it over the cores.
fn sender_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    SENDERS.clamp(1, cores)
}

/// Measured on 2 cores (65,535 SYN probes to a lab host): one sender
/// 0.89 s, two 0.53 s, with the same CPU time, through `IPPROTO_RAW`; at
/// layer 2 (`AF_PACKET`), medians of 7 runs, one sender 0.80 s, two 0.55 s,
/// system time 0.61 s and 0.62 s. More than two were not measured (no
/// more cores here).
const SENDERS: usize = 2;

/// Sends the orders until the scan loop drops its end of the channel.
/// With `--pcap` or `--packet-trace` one thread sends, so that their
/// records keep the order in which probes left.
///
/// Signals `done` once every probe is sent, `stats` is final and `taps`
/// is let go, and only then lets the sockets go: closing a packet socket
/// waits for the kernel (an RCU grace period, measured 6-16 ms), which
/// neither the scan nor the process's exit waits for ([`crate::sys::teardown`]).
/// How one technique's probes are written.
pub enum Template {
    Tcp(ProbeTemplate),
    /// UDP: the payload of the port's protocol, with the probe's cookie in
    /// it and in the IP identification (the order's seq and ack carry it).
    Udp(Arc<Payloads>),
}

// One per technique: boxing the TCP template would cost a pointer chase
// per probe, and there are a handful of them.
#[allow(clippy::large_enum_variant)]
enum Writer {
    Tcp(FastTemplate),
    Udp(Arc<Payloads>),
}

impl Writer {
    fn write(&self, order: &Order, ip_id: u16, frame: &mut Frame) {
        match self {
            Writer::Tcp(t) => t.write(&order.fields, ip_id, frame),
            Writer::Udp(payloads) => {
                let cookie = Cookie {
                    seq: order.fields.seq,
                    ack: order.fields.ack,
                };
                let payload = payloads.probe(order.fields.dport, udp_payload_cookie(cookie));
                let tag = udp_ip_tag(cookie, order.fields.dst);
                write_udp(&order.fields, tag, &payload, frame);
            }
        }
    }
}

pub fn run(
    mut socket: PacketSender,
    templates: Vec<Template>,
    orders: Receiver<Order>,
    stats: Arc<SenderStats>,
    taps: Taps,
    clock: Instant,
    done: Sender<()>,
) {
    let templates: Vec<Writer> = templates
        .into_iter()
        .map(|t| match t {
            Template::Tcp(t) => Writer::Tcp(FastTemplate::new(&t)),
            Template::Udp(p) => Writer::Udp(p),
        })
        .collect();
    let tapped = !taps.is_empty();
    let mut helpers = Vec::new();
    if !tapped {
        for _ in 1..sender_threads() {
            match socket.try_clone() {
                Some(s) => helpers.push(s),
                None => break,
            }
        }
    }
    std::thread::scope(|scope| {
        for (i, sock) in helpers.iter_mut().enumerate() {
            let (templates, orders, stats) = (&templates, orders.clone(), &stats);
            // IP ids: each thread counts from its own offset.
            let first_id = ((i + 1) as u16).wrapping_mul(0x4000);
            let spawned = std::thread::Builder::new()
                .name("sender".into())
                .spawn_scoped(scope, move || {
                    send_loop(sock, templates, orders, stats, &[], clock, first_id)
                });
            if spawned.is_err() {
                // One thread fewer; the others carry on.
                break;
            }
        }
        send_loop(&mut socket, &templates, orders, &stats, &taps, clock, 0);
    });
    drop(taps);
    // Kept before `done`: once the scan has heard it, the process may exit.
    let unkept = crate::sys::teardown::keep((socket, helpers));
    let _ = done.send(());
    drop(unkept);
}

fn send_loop(
    socket: &mut PacketSender,
    templates: &[Writer],
    orders: Receiver<Order>,
    stats: &SenderStats,
    taps: &[Arc<dyn Tap>],
    clock: Instant,
    first_id: u16,
) {
    // Allocated once: a batch of frames and the orders they came from.
    let mut frames = vec![Frame::EMPTY; BATCH];
    let mut batch: Vec<Order> = Vec::with_capacity(BATCH);
    let mut ip_id: u16 = first_id;
    // Block for the first order of a batch, then take what is queued.
    while let Ok(first) = orders.recv() {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match orders.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        for (order, frame) in batch.iter().zip(frames.iter_mut()) {
            templates[order.technique].write(order, ip_id, frame);
            socket.address(frame);
            ip_id = ip_id.wrapping_add(1);
        }
        let n = batch.len();
        let mut at = 0;
        let mut backoff = Duration::from_micros(50);
        while at < n {
            match socket.send_many(&frames[at..n]) {
                Ok(k) => {
                    let k = k.max(1).min(n - at);
                    stats.sent.fetch_add(k as u64, Ordering::Relaxed);
                    let l2 = frames[at..at + k].iter().filter(|f| f.link != 0).count();
                    if l2 > 0 {
                        stats.link_layer.fetch_add(l2 as u64, Ordering::Relaxed);
                    }
                    if !taps.is_empty() {
                        for (order, frame) in batch[at..at + k].iter().zip(&frames[at..at + k]) {
                            for t in taps {
                                t.sent(clock.elapsed(), order, frame.packet());
                            }
                        }
                    }
                    at += k;
                    backoff = Duration::from_micros(50);
                }
                Err(e) if is_transient(&e) && backoff < Duration::from_millis(100) => {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(e) => {
                    // The probe counts as sent and unanswered: the tracker
                    // retries it and concludes from silence, as on loss.
                    let order = &batch[at];
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format!("sending to {}: {e}", order.fields.dst));
                    for t in taps {
                        t.send_failed(clock.elapsed(), order, &e.to_string());
                    }
                    at += 1;
                    backoff = Duration::from_micros(50);
                }
            }
        }
        socket.tick();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR)
    )
}
