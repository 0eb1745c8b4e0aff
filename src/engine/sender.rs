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

use crate::io::rawsock::{Frame, PacketSender, BATCH, PACKET_MAX};
use crate::model::tap::{Order, Tap, Taps};
use crate::wire::{ProbeFields, ProbeTemplate};

#[derive(Debug, Default)]
pub struct SenderStats {
    pub sent: AtomicU64,
    /// Of `sent`, the probes that left as Ethernet frames (layer 2).
    pub link_layer: AtomicU64,
    pub failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// The wire bytes of one technique's probe, patched per probe: addresses,
/// ports, sequence and acknowledgment numbers, IP id, and both checksums
/// from sums precomputed over the fields that never change. No allocation.
#[derive(Clone)]
pub struct FastTemplate {
    bytes: [u8; PACKET_MAX],
    len: usize,
    /// Where the TCP header starts (the IPv4 header's length).
    tcp: usize,
    /// One's complement sums of the constant words: the IPv4 header
    /// without id, checksum and addresses; the TCP header without ports,
    /// numbers and checksum, plus the pseudo header's protocol and length.
    ip_sum: u32,
    tcp_sum: u32,
}

fn sum_words(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn addr_sum(a: std::net::Ipv4Addr) -> u32 {
    let v = u32::from(a);
    (v >> 16) + (v & 0xffff)
}

impl FastTemplate {
    /// From the reference template in [`crate::wire`].
    pub fn new(t: &ProbeTemplate) -> FastTemplate {
        let unspecified = std::net::Ipv4Addr::UNSPECIFIED;
        let zero = ProbeFields {
            src: unspecified,
            dst: unspecified,
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
        };
        let mut v = Vec::new();
        t.write(&zero, 0, &mut v);
        assert!(
            v.len() <= PACKET_MAX && v.len() >= 40,
            "probe template size"
        );
        let tcp = usize::from(v[0] & 0x0f) * 4;
        let mut bytes = [0u8; PACKET_MAX];
        bytes[..v.len()].copy_from_slice(&v);
        // Zero the variable fields: ip id, ip checksum, tcp checksum (the
        // addresses, ports and numbers are zero already).
        bytes[4..6].fill(0);
        bytes[10..12].fill(0);
        bytes[tcp + 16..tcp + 18].fill(0);
        let tcp_len = (v.len() - tcp) as u32;
        FastTemplate {
            bytes,
            len: v.len(),
            tcp,
            ip_sum: sum_words(&bytes[..tcp]),
            tcp_sum: sum_words(&bytes[tcp..v.len()]) + u32::from(bytes[9]) + tcp_len,
        }
    }

    /// Writes the probe for `p` into `out` (the IPv4 packet; the Ethernet
    /// header is the next hop's business).
    pub fn write(&self, p: &ProbeFields, ip_id: u16, out: &mut Frame) {
        let t = self.tcp;
        let b = out.packet_mut();
        b[..self.len].copy_from_slice(&self.bytes[..self.len]);
        b[4..6].copy_from_slice(&ip_id.to_be_bytes());
        b[12..16].copy_from_slice(&p.src.octets());
        b[16..20].copy_from_slice(&p.dst.octets());
        let addrs = addr_sum(p.src) + addr_sum(p.dst);
        let ip = fold(self.ip_sum + u32::from(ip_id) + addrs);
        b[10..12].copy_from_slice(&ip.to_be_bytes());
        b[t..t + 2].copy_from_slice(&p.sport.to_be_bytes());
        b[t + 2..t + 4].copy_from_slice(&p.dport.to_be_bytes());
        b[t + 4..t + 8].copy_from_slice(&p.seq.to_be_bytes());
        b[t + 8..t + 12].copy_from_slice(&p.ack.to_be_bytes());
        let numbers = (p.seq >> 16) + (p.seq & 0xffff) + (p.ack >> 16) + (p.ack & 0xffff);
        let sum = self.tcp_sum + addrs + u32::from(p.sport) + u32::from(p.dport) + numbers;
        b[t + 16..t + 18].copy_from_slice(&fold(sum).to_be_bytes());
        out.len = self.len;
        out.dst = p.dst;
    }
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
pub fn run(
    mut socket: PacketSender,
    templates: Vec<ProbeTemplate>,
    orders: Receiver<Order>,
    stats: Arc<SenderStats>,
    taps: Taps,
    clock: Instant,
    done: Sender<()>,
) {
    let templates: Vec<FastTemplate> = templates.iter().map(FastTemplate::new).collect();
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
    templates: &[FastTemplate],
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
            templates[order.technique].write(&order.fields, ip_id, frame);
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

#[cfg(test)]
mod tests {
    use super::*;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::model::technique::builtin;

    fn random_fields(rng: &mut StdRng) -> ProbeFields {
        ProbeFields {
            src: rng.gen::<u32>().into(),
            dst: rng.gen::<u32>().into(),
            sport: rng.gen(),
            dport: rng.gen(),
            seq: rng.gen(),
            ack: rng.gen(),
        }
    }

    #[test]
    fn fast_template_writes_what_the_reference_template_writes() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut reference = Vec::new();
        let mut frame = Frame::EMPTY;
        let mut flags: Vec<u8> = builtin().iter().map(|t| t.flags).collect();
        flags.extend([0xff, 0x00, 0x29]);
        for f in flags {
            let slow = ProbeTemplate::new(f);
            let fast = FastTemplate::new(&slow);
            for _ in 0..2000 {
                let p = random_fields(&mut rng);
                let id = rng.gen();
                slow.write(&p, id, &mut reference);
                // Leftovers from an earlier probe must not matter.
                frame.bytes.fill(0xa5);
                fast.write(&p, id, &mut frame);
                assert_eq!(frame.packet(), &reference[..], "flags {f:#x} {p:?}");
                assert_eq!(frame.dst, p.dst);
            }
        }
    }

    #[test]
    fn layer2_frames_parse_as_ethernet_ipv4_tcp_with_valid_checksums() {
        use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TransportHeader};

        let mut rng = StdRng::seed_from_u64(12);
        let ours = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let theirs = [0x96, 0x9f, 0x8f, 0x68, 0x58, 0xef];
        let header = crate::route::nexthop::ethernet_header(theirs, ours);
        let mut frame = Frame::EMPTY;
        for t in builtin() {
            let fast = FastTemplate::new(&ProbeTemplate::new(t.flags));
            for _ in 0..500 {
                let p = random_fields(&mut rng);
                frame.bytes.fill(0xa5);
                fast.write(&p, rng.gen(), &mut frame);
                frame.set_link(7, &header);
                assert_eq!(frame.link, 7);
                assert_eq!(frame.ethernet().len(), 14 + frame.packet().len());
                let h = PacketHeaders::from_ethernet_slice(frame.ethernet())
                    .unwrap_or_else(|e| panic!("{e:?} {p:?}"));
                let Some(LinkHeader::Ethernet2(eth)) = &h.link else {
                    panic!("no Ethernet header: {h:?}");
                };
                assert_eq!((eth.destination, eth.source), (theirs, ours));
                assert_eq!(eth.ether_type, etherparse::EtherType::IPV4);
                let Some(NetHeaders::Ipv4(ip, _)) = &h.net else {
                    panic!("no IPv4 header: {h:?}");
                };
                assert_eq!(
                    (ip.source, ip.destination),
                    (p.src.octets(), p.dst.octets())
                );
                assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "{p:?}");
                let Some(TransportHeader::Tcp(tcp)) = &h.transport else {
                    panic!("no TCP header: {h:?}");
                };
                assert_eq!(
                    (tcp.source_port, tcp.destination_port, tcp.sequence_number),
                    (p.sport, p.dport, p.seq)
                );
                assert_eq!(tcp.fin, t.flags & 1 != 0);
                assert_eq!(tcp.syn, t.flags & 2 != 0);
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv4(ip, &[]).unwrap(),
                    "{p:?}"
                );
            }
        }
    }
}
