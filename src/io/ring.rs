//! The fast capture path: an `AF_PACKET`/`SOCK_DGRAM` socket with a
//! TPACKET_V3 receive ring (Linux 3.2+), a classic BPF filter
//! ([`crate::io::bpf`]) and `PACKET_IGNORE_OUTGOING` (Linux 4.20+; on older
//! kernels outgoing packets are skipped by their packet type).
//!
//! The kernel writes packets into blocks of a memory-mapped ring and hands a
//! block over when it is full or when its retire timeout expires, so the
//! receiver wakes once per block, not once per packet, and copies nothing.
//! Each packet carries the kernel's receive timestamp, so the few
//! milliseconds a block may wait do not count in the measured RTT.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::io::bpf::Insn;
use crate::sys::sockopt;

use libc::{
    PACKET_IGNORE_OUTGOING, PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION, TP_STATUS_KERNEL,
    TP_STATUS_USER,
};

pub(crate) const TPACKET_V3: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;

/// `struct tpacket_req3` (linux/if_packet.h).
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    tp_packets: u32,
    tp_drops: u32,
    tp_freeze_q_cnt: u32,
}

// Offsets in `struct tpacket_block_desc` (with `tpacket_hdr_v1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
// Offsets in `struct tpacket3_hdr`, 48 bytes, followed by a `sockaddr_ll`.
const PKT_NEXT: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_NET: usize = 26;
const PKT_HDR_LEN: usize = 48;
/// `sll_pkttype` in the `sockaddr_ll` after the header.
const PKT_SLL_PKTTYPE: usize = PKT_HDR_LEN + 10;

/// Ring geometry.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size, a power of two.
    pub block_size: u32,
    pub block_nr: u32,
    /// How long the kernel fills a block before handing it over anyway.
    pub retire_ms: u32,
}

impl Default for RingConfig {
    /// 32 blocks of 256 KiB (8 MiB): a reply of 40-60 bytes takes 144-160
    /// bytes with its headers, so a block holds about 1,700 replies and the
    /// ring about 55,000, a tenth of a second at 500k/s, while the receiver
    /// thread needs a few microseconds per block. (The kernel zeroes the
    /// whole ring when the scan starts: 16 MiB cost 30 ms of CPU.) A 2 ms
    /// retire timeout delays a reply at most that long; its RTT comes from
    /// the kernel's timestamp, so the delay does not count there.
    fn default() -> RingConfig {
        RingConfig {
            block_size: 1 << 18,
            block_nr: 32,
            retire_ms: 2,
        }
    }
}

/// Which setup step failed, for the error message and for the caller's
/// decision to fall back to the portable path.
#[derive(Debug)]
pub struct RingError {
    pub step: &'static str,
    pub err: io::Error,
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.err)
    }
}

fn step<T>(step: &'static str, r: io::Result<T>) -> Result<T, RingError> {
    r.map_err(|err| RingError { step, err })
}

/// Attaches a classic BPF program to a socket (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: &OwnedFd, prog: &[Insn]) -> io::Result<()> {
    attach_program(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, prog)
}

/// Hands a classic BPF program to the kernel through the socket option
/// `level`/`name`, which takes a `struct sock_fprog`.
pub fn attach_program(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    prog: &[Insn],
) -> io::Result<()> {
    sockopt::set(fd, level, name, &SockFprog::new(prog)?)
}

/// `struct sock_fprog`: a classic BPF program as socket options take it.
#[repr(C)]
pub struct SockFprog<'a> {
    len: libc::c_ushort,
    filter: *const Insn,
    prog: std::marker::PhantomData<&'a [Insn]>,
}

impl<'a> SockFprog<'a> {
    pub fn new(prog: &'a [Insn]) -> io::Result<SockFprog<'a>> {
        Ok(SockFprog {
            len: u16::try_from(prog.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?,
            filter: prog.as_ptr(),
            prog: std::marker::PhantomData,
        })
    }
}

/// A TPACKET_V3 receive ring.
pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
    /// The next block to look at.
    cur: usize,
    /// `PACKET_IGNORE_OUTGOING` was refused: skip outgoing packets by hand.
    skip_outgoing: bool,
}

// SAFETY: the mapping belongs to the ring alone; only the thread that owns
// the ring reads it (and the kernel, through the block status protocol).
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: map/map_len came from a successful mmap and are unmapped once.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.map_len);
        }
    }
}

/// A ring mapped but not yet capturing ([`Ring::prepare`]).
pub struct UnboundRing(Ring);

impl UnboundRing {
    /// Attaches `filter` and starts capturing `protocol` ([`protocol`]) on
    /// `ifindex` (0: every interface).
    pub fn start(self, ifindex: u32, protocol: u16, filter: &[Insn]) -> Result<Ring, RingError> {
        let mut ring = self.0;
        step("capture filter", attach_filter(&ring.fd, filter))?;
        ring.skip_outgoing = ignore_outgoing(&ring.fd).is_err();
        step("bind", bind_ip(&ring.fd, ifindex, protocol))?;
        Ok(ring)
    }

    /// Starts capturing as a member of fanout group `join` (whose program
    /// sends it nothing yet): bound to `ifindex` as the group's members
    /// are, but with a filter that passes nothing until it has joined, so
    /// that no packet reaches it both on its own and through the group.
    pub fn start_in_group(
        self,
        ifindex: u32,
        protocol: u16,
        filter: &[Insn],
        join: impl FnOnce(&OwnedFd) -> io::Result<()>,
    ) -> Result<Ring, RingError> {
        let mut ring = self.0;
        step(
            "capture filter",
            attach_filter(&ring.fd, &crate::io::bpf::constant(0)),
        )?;
        ring.skip_outgoing = ignore_outgoing(&ring.fd).is_err();
        step("bind", bind_ip(&ring.fd, ifindex, protocol))?;
        step("fanout group", join(&ring.fd))?;
        step("capture filter", attach_filter(&ring.fd, filter))?;
        Ok(ring)
    }
}

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20+).
pub fn ignore_outgoing(fd: &OwnedFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    sockopt::set(fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one)
}

/// What a scan captures: IPv4 only (one protocol's packets reach the
/// socket), or every EtherType when some target is IPv6 (the filter keeps
/// IPv4 and IPv6).
pub fn protocol(ipv6: bool) -> u16 {
    if ipv6 {
        libc::ETH_P_ALL as u16
    } else {
        libc::ETH_P_IP as u16
    }
}

/// Binds a packet socket to `protocol` ([`protocol`]) on `ifindex` (0:
/// every interface), which starts its capture.
pub fn bind_ip(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; zero is a valid starting value.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: sll is a valid sockaddr_ll and we pass its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A ring being prepared on a thread of its own from the moment the scan's
/// network namespace is known, while targets, routes, outputs and users
/// are looked up: its grace period then costs the start of a scan nothing.
pub struct EarlyRing(std::thread::JoinHandle<Result<UnboundRing, RingError>>);

impl EarlyRing {
    /// Starts preparing a ring of the default geometry in the calling
    /// thread's network namespace, ready no sooner than `delay` from now
    /// (zero but in the I/O test, which makes the scan start on the interim
    /// capture and hand over to the ring mid-scan, `handover`);
    /// `None` if no thread could be started.
    pub fn start(delay: Duration) -> Option<EarlyRing> {
        // The thread inherits a mask blocking every signal: SIGINT and
        // SIGTERM belong to the interrupt watcher, which starts later.
        let all = nix::sys::signal::SigSet::all();
        let old = all
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .ok()?;
        // The socket here and now, while root: the rest needs no privilege
        // and may outlast dropping it.
        let socket = Ring::socket();
        let spawned = std::thread::Builder::new()
            .name("ring-setup".into())
            .spawn(move || {
                crate::sys::privilege::shed_thread_capabilities();
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                Ring::prepare_on(socket?, RingConfig::default())
            });
        let _ = old.thread_set_mask();
        spawned.ok().map(EarlyRing)
    }

    /// Whether [`EarlyRing::wait`] would return at once.
    pub fn is_ready(&self) -> bool {
        self.0.is_finished()
    }

    /// The prepared ring, or why it could not be made.
    pub fn wait(self) -> Result<UnboundRing, RingError> {
        self.0.join().unwrap_or_else(|_| {
            Err(RingError {
                step: "receive ring",
                err: io::Error::other("the thread preparing it failed"),
            })
        })
    }
}

impl Ring {
    /// Opens the ring capturing IPv4 on `ifindex` (0: every interface),
    /// passing only what `filter` accepts.
    pub fn open(
        ifindex: u32,
        protocol: u16,
        filter: &[Insn],
        cfg: RingConfig,
    ) -> Result<Ring, RingError> {
        Ring::prepare(cfg)?.start(ifindex, protocol, filter)
    }

    /// The socket and its mapped ring, capturing nothing yet. Setting up a
    /// ring waits for an RCU grace period (about 8 ms here, whatever the
    /// ring's size), which [`EarlyRing`] spends beside the rest of start-up.
    fn prepare(cfg: RingConfig) -> Result<UnboundRing, RingError> {
        Ring::prepare_on(Ring::socket()?, cfg)
    }

    /// The ring's socket. Protocol 0: nothing is queued before the filter
    /// and the ring are in place; bind() in start() begins the capture.
    fn socket() -> Result<OwnedFd, RingError> {
        step(
            "packet socket",
            sockopt::socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0),
        )
    }

    fn prepare_on(fd: OwnedFd, cfg: RingConfig) -> Result<UnboundRing, RingError> {
        step(
            "TPACKET_V3",
            sockopt::set(&fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3),
        )?;
        let frame_size: u32 = 2048;
        let req = TpacketReq3 {
            block_size: cfg.block_size,
            block_nr: cfg.block_nr,
            frame_size,
            frame_nr: cfg.block_size / frame_size * cfg.block_nr,
            retire_blk_tov: cfg.retire_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        step(
            "receive ring",
            sockopt::set_in_child(&fd, libc::SOL_PACKET, PACKET_RX_RING, &req),
        )?;
        let map_len = cfg.block_size as usize * cfg.block_nr as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(RingError {
                step: "mapping the receive ring",
                err: io::Error::last_os_error(),
            });
        }
        Ok(UnboundRing(Ring {
            fd,
            map: map as *mut u8,
            map_len,
            block_size: cfg.block_size as usize,
            block_nr: cfg.block_nr as usize,
            cur: 0,
            skip_outgoing: false,
        }))
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: the block descriptor starts every block, inside the
        // mapping; block_status is an aligned u32 the kernel updates.
        unsafe { &*(self.map.add(block * self.block_size + BLOCK_STATUS) as *const AtomicU32) }
    }

    /// Waits up to `timeout` for a block, then calls `each(packet, seen,
    /// age)` for every packet in every block ready and gives the blocks
    /// back to the kernel. `seen` is when the block was found ready and
    /// `age` how long before that the kernel received the packet (from its
    /// timestamp), so `seen - age` is the packet's arrival on the monotonic
    /// clock. Returns how many packets it passed on.
    pub fn read<F: FnMut(&[u8], Instant, Duration)>(
        &mut self,
        timeout: Duration,
        mut each: F,
    ) -> io::Result<usize> {
        if self.status(self.cur).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                return if err.kind() == io::ErrorKind::Interrupted {
                    Ok(0)
                } else {
                    Err(err)
                };
            }
        }
        let mut count = 0;
        // At most one lap: the kernel may keep filling blocks behind us.
        for _ in 0..self.block_nr {
            let status = self.status(self.cur);
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the block is ours until we store TP_STATUS_KERNEL; it
            // lies inside the mapping.
            let block = unsafe {
                std::slice::from_raw_parts(
                    self.map.add(self.cur * self.block_size),
                    self.block_size,
                )
            };
            // Both clocks now, after the block was handed over: every
            // timestamp in it is earlier.
            let seen = Instant::now();
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            count += walk_block(block, self.skip_outgoing, &mut |p: &[u8], ts: Duration| {
                each(p, seen, wall.saturating_sub(ts))
            });
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.cur = (self.cur + 1) % self.block_nr;
        }
        Ok(count)
    }

    /// Packets the kernel dropped because the ring was full, since the
    /// last call (`PACKET_STATISTICS` resets on read).
    pub fn drops(&self) -> u64 {
        packet_drops(&self.fd)
    }
}

/// Packets a TPACKET_V3 packet socket, ring or not, dropped for want of
/// room since the last call (`PACKET_STATISTICS` resets on read).
pub fn packet_drops(fd: &OwnedFd) -> u64 {
    sockopt::get::<TpacketStatsV3>(fd, libc::SOL_PACKET, PACKET_STATISTICS)
        .map_or(0, |st| u64::from(st.tp_drops))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Calls `each` for every packet of one block. Every offset the kernel
/// wrote is checked against the block, so a bad one ends the walk instead
/// of reading outside it.
fn walk_block<F: FnMut(&[u8], Duration)>(block: &[u8], skip_outgoing: bool, each: &mut F) -> usize {
    let (Some(n), Some(first)) = (
        u32_at(block, BLOCK_NUM_PKTS),
        u32_at(block, BLOCK_FIRST_PKT),
    ) else {
        return 0;
    };
    let mut off = first as usize;
    let mut count = 0;
    for _ in 0..n {
        let Some(hdr) = block.get(off..) else { break };
        let (Some(next), Some(sec), Some(nsec), Some(snaplen), Some(net)) = (
            u32_at(hdr, PKT_NEXT),
            u32_at(hdr, PKT_SEC),
            u32_at(hdr, PKT_NSEC),
            u32_at(hdr, PKT_SNAPLEN),
            u16_at(hdr, PKT_NET),
        ) else {
            break;
        };
        let outgoing = hdr.get(PKT_SLL_PKTTYPE) == Some(&libc::PACKET_OUTGOING);
        let start = net as usize;
        if let Some(packet) = hdr.get(start..start.saturating_add(snaplen as usize)) {
            if !(skip_outgoing && outgoing) {
                each(packet, Duration::new(u64::from(sec), nsec.min(999_999_999)));
                count += 1;
            }
        }
        if next == 0 {
            break;
        }
        off = off.saturating_add(next as usize);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out, with two packets.
    fn block_with(packets: &[(&[u8], u8)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let first = 48usize;
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4]
            .copy_from_slice(&(packets.len() as u32).to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&(first as u32).to_ne_bytes());
        let mut off = first;
        for (i, (p, pkttype)) in packets.iter().enumerate() {
            let net = 80usize;
            let len = (net + p.len()).next_multiple_of(16);
            let next = if i + 1 == packets.len() {
                0
            } else {
                len as u32
            };
            let h = &mut b[off..];
            h[PKT_NEXT..PKT_NEXT + 4].copy_from_slice(&next.to_ne_bytes());
            h[PKT_SEC..PKT_SEC + 4].copy_from_slice(&(1000 + i as u32).to_ne_bytes());
            h[PKT_NSEC..PKT_NSEC + 4].copy_from_slice(&5u32.to_ne_bytes());
            h[PKT_SNAPLEN..PKT_SNAPLEN + 4].copy_from_slice(&(p.len() as u32).to_ne_bytes());
            h[PKT_NET..PKT_NET + 2].copy_from_slice(&(net as u16).to_ne_bytes());
            h[PKT_SLL_PKTTYPE] = *pkttype;
            h[net..net + p.len()].copy_from_slice(p);
            off += len;
        }
        b
    }

    #[test]
    fn walks_the_packets_of_a_block() {
        let b = block_with(&[
            (&[1, 2, 3], libc::PACKET_HOST),
            (&[4, 5], libc::PACKET_OUTGOING),
        ]);
        let mut got = Vec::new();
        assert_eq!(
            walk_block(&b, false, &mut |p: &[u8], t| got.push((p.to_vec(), t))),
            2
        );
        assert_eq!(
            got,
            vec![
                (vec![1, 2, 3], Duration::new(1000, 5)),
                (vec![4, 5], Duration::new(1001, 5))
            ]
        );
        // Without PACKET_IGNORE_OUTGOING, outgoing packets are skipped here.
        let mut n = 0;
        assert_eq!(walk_block(&b, true, &mut |_: &[u8], _| n += 1), 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn bad_offsets_end_the_walk_without_reading_outside_the_block() {
        let mut b = block_with(&[
            (&[1, 2, 3], libc::PACKET_HOST),
            (&[4, 5], libc::PACKET_HOST),
        ]);
        // The first packet claims to be longer than the block.
        let snap = 48 + PKT_SNAPLEN;
        b[snap..snap + 4].copy_from_slice(&100_000u32.to_ne_bytes());
        let mut n = 0;
        walk_block(&b, false, &mut |_: &[u8], _| n += 1);
        assert_eq!(
            n, 1,
            "the second packet is still found; the first is skipped"
        );
        // A packet count past the end and a first offset past the block.
        let mut c = block_with(&[(&[1], libc::PACKET_HOST)]);
        c[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(walk_block(&c, false, &mut |_: &[u8], _| {}), 1);
        c[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(walk_block(&c, false, &mut |_: &[u8], _| {}), 0);
        assert_eq!(walk_block(&[], false, &mut |_: &[u8], _| {}), 0);
    }
}
