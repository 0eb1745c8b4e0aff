//! Raw sockets (Linux): the only code that needs CAP_NET_RAW.
//!
//! Two paths, chosen by `--io`:
//!
//! - **fast** (default): a probe whose next hop's MAC is known
//!   ([`crate::route::nexthop`]) leaves as a whole Ethernet frame through an
//!   `AF_PACKET` socket ([`LinkSender`]): the kernel neither routes it nor
//!   looks up the neighbour again. The others (loopback, our own addresses,
//!   interfaces without Ethernet headers, next hops not resolved yet) leave
//!   through an `AF_INET`/`IPPROTO_RAW` socket ([`RawSender`]) as whole
//!   IPv4 packets, and the kernel routes them and resolves the next hop's
//!   MAC (ARP). IPv6 probes all take an `AF_INET6`/`IPPROTO_RAW` socket
//!   (header included, Linux 4.5+), and the kernel does neighbour
//!   discovery. Both send up to [`BATCH`] probes per `sendmmsg` call.
//!   Replies come from a TPACKET_V3 ring ([`crate::io::ring`]) behind a classic
//!   BPF filter ([`crate::io::bpf`]) that passes only what can be a reply to our
//!   probes (or a malformed packet, which the receiver counts).
//! - **portable** ([`crate::io::portable`]): pnet's transport channel (raw
//!   IPv4, header included) to send one packet per call, and pnet's datalink
//!   channel to capture, without a kernel filter.
//!
//! When the fast path cannot be set up for a reason other than permission
//! (a kernel without TPACKET_V3, say), the scan falls back to the portable
//! one with a one-line notice on stderr.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{usage, Notify};
use crate::io::handover::{Handover, Interim};
use crate::io::portable::{PortableCapture, PortableSender};
use crate::io::ring::{EarlyRing, Ring, RingConfig, RingError};
use crate::io::socket::{bind_to_device, is_permission, open_error, Stamp, PRIVILEGE_HINT};
use crate::route::nexthop::NextHops;
use crate::sys::sockopt::{self, socket};
use crate::wire::frame::Frame;

/// `--io`: which packet I/O path a scan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IoMode {
    /// sendmmsg batches, a TPACKET_V3 ring and a kernel filter (Linux).
    #[default]
    Fast,
    /// pnet: one send and one receive call per packet, no kernel filter.
    Portable,
}

/// Probes per `sendmmsg` call.
pub const BATCH: usize = 64;
const ETH_P_IP: u16 = libc::ETH_P_IP as u16;

fn sockaddr6(dst: Ipv6Addr) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        // 0: the protocol is the header's (IPPROTO_RAW sends it as given).
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: dst.octets(),
        },
        sin6_scope_id: 0,
    }
}

fn sockaddr(dst: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// Sends complete IPv4 and IPv6 packets, many per system call.
pub struct RawSender {
    fd: OwnedFd,
    /// The IPv6 socket; `None` where the kernel has no IPv6 (then an IPv6
    /// probe fails to send, with the error it was opened with).
    fd6: Result<OwnedFd, i32>,
    /// `sendmmsg` is missing (ENOSYS): one `sendto` per packet.
    single: bool,
}

impl RawSender {
    /// `device` pins the socket to an interface (`-e IFACE`).
    pub fn open(device: Option<&str>) -> anyhow::Result<RawSender> {
        let fd = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)
            .map_err(|e| open_error("raw send", e))?;
        let size: libc::c_int = 4 << 20;
        let _ = sockopt::set(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
        if let Some(dev) = device {
            bind_to_device(fd.as_raw_fd(), dev)?;
        }
        let fd6 = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_RAW)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EAFNOSUPPORT));
        if let Ok(fd6) = &fd6 {
            let _ = sockopt::set(fd6, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
            if let Some(dev) = device {
                bind_to_device(fd6.as_raw_fd(), dev)?;
            }
        }
        Ok(RawSender {
            fd,
            fd6,
            single: false,
        })
    }

    fn fd6(&self) -> io::Result<&OwnedFd> {
        self.fd6
            .as_ref()
            .map_err(|&e| io::Error::from_raw_os_error(e))
    }

    /// The same socket, for another thread (the kernel's raw send path
    /// takes no socket lock for header-included packets).
    pub fn try_clone(&self) -> io::Result<RawSender> {
        Ok(RawSender {
            fd: self.fd.try_clone()?,
            fd6: match &self.fd6 {
                Ok(fd) => Ok(fd.try_clone()?),
                Err(e) => Err(*e),
            },
            single: self.single,
        })
    }

    /// Sends one packet. `WouldBlock`/`ENOBUFS` mean "try again shortly".
    pub fn send(&self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        let (fd, addr, len) = match dst {
            IpAddr::V4(a) => {
                let (s, len) = crate::io::socket::raw_sockaddr((a, 0).into());
                (self.fd.as_raw_fd(), s, len)
            }
            IpAddr::V6(a) => {
                let (s, len) = crate::io::socket::raw_sockaddr((a, 0).into());
                (self.fd6()?.as_raw_fd(), s, len)
            }
        };
        // SAFETY: buffer and address are valid for the given lengths.
        let rc = unsafe {
            libc::sendto(
                fd,
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &addr as *const _ as *const libc::sockaddr,
                len,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Sends the first packets of `frames` (up to [`BATCH`]) in one call.
    /// Returns how many left (at least one), or the error that stopped the
    /// first: the caller retries or skips it and calls again for the rest.
    pub fn send_many(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let frames = &frames[..frames.len().min(BATCH)];
        if frames.is_empty() {
            return Ok(0);
        }
        if self.single {
            self.send(frames[0].packet(), frames[0].dst)?;
            return Ok(1);
        }
        // One family per call: its own socket and address type.
        let v6 = frames[0].dst.is_ipv6();
        let run = frames.iter().take_while(|f| f.dst.is_ipv6() == v6).count();
        let frames = &frames[..run];
        let rc = if v6 {
            send_batch(self.fd6()?, frames, |f| {
                (sockaddr6(crate::wire::v6(f.dst)), f.packet())
            })
        } else {
            send_batch(&self.fd, frames, |f| {
                (sockaddr(crate::wire::v4(f.dst)), f.packet())
            })
        };
        if rc > 0 {
            return Ok(rc as usize);
        }
        let err = if rc == 0 {
            io::Error::from_raw_os_error(libc::EAGAIN)
        } else {
            io::Error::last_os_error()
        };
        if err.raw_os_error() == Some(libc::ENOSYS) {
            self.single = true;
            return self.send_many(frames);
        }
        Err(err)
    }
}

/// Sends whole Ethernet frames (`AF_PACKET`, `SOCK_RAW`), many per system
/// call. One socket serves every interface: each message names its own
/// (`sockaddr_ll`), which is what binding would do, per frame. Created with
/// protocol 0, it receives nothing.
pub struct LinkSender {
    fd: OwnedFd,
}

impl LinkSender {
    /// `qdisc_bypass`: hand frames straight to the driver
    /// (`PACKET_QDISC_BYPASS`). Left off: see [`QDISC_BYPASS`].
    pub fn open(qdisc_bypass: bool) -> io::Result<LinkSender> {
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
        let size: libc::c_int = 4 << 20;
        if sockopt::set(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &size).is_err() {
            let _ = sockopt::set(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
        }
        if qdisc_bypass {
            let one: libc::c_int = 1;
            // Linux 3.14+; without it frames take the normal queue.
            let _ = sockopt::set(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one);
        }
        Ok(LinkSender { fd })
    }

    pub fn try_clone(&self) -> io::Result<LinkSender> {
        Ok(LinkSender {
            fd: self.fd.try_clone()?,
        })
    }

    /// As [`RawSender::send_many`], for frames with `link` set.
    pub fn send_many(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let frames = &frames[..frames.len().min(BATCH)];
        if frames.is_empty() {
            return Ok(0);
        }
        let rc = send_batch(&self.fd, frames, |f| {
            // SAFETY: sockaddr_ll is a plain C struct; zero is valid.
            let mut a: libc::sockaddr_ll = unsafe { mem::zeroed() };
            a.sll_family = libc::AF_PACKET as libc::c_ushort;
            a.sll_protocol = if f.dst.is_ipv6() {
                (libc::ETH_P_IPV6 as u16).to_be()
            } else {
                ETH_P_IP.to_be()
            };
            a.sll_ifindex = f.link as libc::c_int;
            (a, f.ethernet())
        });
        // (No ENOSYS fallback as in RawSender: sendmmsg is older than
        // TPACKET_V3, without which this path is never taken.)
        match rc {
            n if n > 0 => Ok(n as usize),
            0 => Err(io::Error::from_raw_os_error(libc::EAGAIN)),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

/// `PACKET_QDISC_BYPASS` on the layer-2 socket. Measured on the lab (veth,
/// whose default queue is `noqueue` anyway), `-sS -p-` against one host, 7
/// runs each: median 0.61 s elapsed and 0.64 s system time with it, 0.55 s
/// and 0.62 s without, so no gain within the run-to-run noise (0.43-0.66
/// s). Bypassed frames also skip the taps that packet sockets read, so
/// `tcpdump` on the scanning host would not show our probes (checked: 2
/// of 100 probes' worth of packets seen with it, 102 without), and a queue
/// discipline the user configured would be ignored. So it stays off.
pub const QDISC_BYPASS: bool = false;

/// The fast path's sending half: layer 2 where the next hop is known,
/// layer 3 (the kernel routes and ARPs) everywhere else.
pub struct FastSender {
    raw: RawSender,
    link: Option<(LinkSender, Arc<NextHops>)>,
}

impl FastSender {
    pub fn try_clone(&self) -> io::Result<FastSender> {
        let link = match &self.link {
            Some((s, hops)) => Some((s.try_clone()?, hops.clone())),
            None => None,
        };
        Ok(FastSender {
            raw: self.raw.try_clone()?,
            link,
        })
    }

    /// Decides how `frame` leaves: with an Ethernet header through its
    /// next hop's interface, or (`link` 0) through the IP layer.
    pub fn address(&self, frame: &mut Frame) {
        frame.link = 0;
        let Some((_, hops)) = &self.link else {
            return;
        };
        let Some(hop) = hops.hop(frame.dst) else {
            return;
        };
        match hop.ethernet_header() {
            Some(header) => frame.set_link(hop.ifindex, &header),
            None => hops.note_fallback(),
        }
    }

    /// Sends the first frames that take the same path, in one call.
    pub fn send_many(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let (at_l2, run) = same_path(frames);
        if run == 0 {
            return Ok(0);
        }
        match &mut self.link {
            Some((s, _)) if at_l2 => s.send_many(&frames[..run]),
            _ => self.raw.send_many(&frames[..run]),
        }
    }

    /// Between batches: reads the neighbour table again when it is time.
    pub fn tick(&self) {
        if let Some((_, hops)) = &self.link {
            hops.maybe_recheck();
        }
    }
}

/// Whether the first frame leaves at layer 2, and how many frames from the
/// first (at most [`BATCH`]) leave the same way: one system call's worth.
fn same_path(frames: &[Frame]) -> (bool, usize) {
    let at_l2 = frames.first().is_some_and(|f| f.link != 0);
    let run = frames
        .iter()
        .take(BATCH)
        .take_while(|f| (f.link != 0) == at_l2)
        .count();
    (at_l2, run)
}

/// The socket address types [`send_batch`] fills in: plain C structs,
/// valid when zeroed.
trait SockAddr: Copy {}
impl SockAddr for libc::sockaddr_in {}
impl SockAddr for libc::sockaddr_in6 {}
impl SockAddr for libc::sockaddr_ll {}

/// One `sendmmsg` call for up to [`BATCH`] frames; `message` gives each
/// frame's destination address and bytes. Returns the call's result as
/// the kernel gave it (the number sent, or -1 with `errno` set).
/// Everything lives on the stack, rebuilt per call: no allocation, and no
/// pointers kept across calls.
fn send_batch<'f, A: SockAddr>(
    fd: &OwnedFd,
    frames: &'f [Frame],
    message: impl Fn(&'f Frame) -> (A, &'f [u8]),
) -> libc::c_int {
    let frames = &frames[..frames.len().min(BATCH)];
    // SAFETY: A is a sockaddr (see SockAddr), a plain C struct for which
    // zero is a valid value, as it is for iovec and mmsghdr.
    let mut addrs: [A; BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iov: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (i, f) in frames.iter().enumerate() {
        let (addr, bytes) = message(f);
        addrs[i] = addr;
        iov[i] = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
    }
    for i in 0..frames.len() {
        let h = &mut msgs[i].msg_hdr;
        h.msg_name = &mut addrs[i] as *mut A as *mut libc::c_void;
        h.msg_namelen = mem::size_of::<A>() as libc::socklen_t;
        h.msg_iov = &mut iov[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: every header points at live buffers on this stack frame or in
    // `frames`, for the lengths given; the kernel only reads them.
    unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            frames.len() as libc::c_uint,
            0,
        )
    }
}

/// The sending half of a scan's packet I/O.
pub enum PacketSender {
    Fast(FastSender),
    Portable(PortableSender),
}

impl PacketSender {
    /// Another handle on the same sockets, for a second sending thread
    /// (fast path only: `None` on the portable one).
    pub fn try_clone(&self) -> Option<PacketSender> {
        match self {
            PacketSender::Fast(s) => s.try_clone().ok().map(PacketSender::Fast),
            PacketSender::Portable(_) => None,
        }
    }

    /// Decides how `frame` leaves ([`FastSender::address`]); the portable
    /// path sends every frame at layer 3.
    pub fn address(&self, frame: &mut Frame) {
        match self {
            PacketSender::Fast(s) => s.address(frame),
            PacketSender::Portable(_) => frame.link = 0,
        }
    }

    /// As [`RawSender::send_many`]; frames that go the same way as the
    /// first are sent together.
    pub fn send_many(&mut self, frames: &[Frame]) -> io::Result<usize> {
        match self {
            PacketSender::Fast(s) => s.send_many(frames),
            PacketSender::Portable(s) => s.send_many(frames),
        }
    }

    /// Called between batches.
    pub fn tick(&self) {
        if let PacketSender::Fast(s) = self {
            s.tick();
        }
    }
}

/// The capturing half of a scan's packet I/O.
pub enum Capture {
    Fast(Ring),
    /// The fast path, started before its ring was ready.
    Handover(Handover),
    Portable(PortableCapture),
}

impl Capture {
    /// Waits up to `timeout` for packets, then calls `each` for every
    /// IPv4 packet captured (from the IP header on). Returns how many.
    pub fn read<F: FnMut(&[u8], Stamp)>(
        &mut self,
        timeout: Duration,
        mut each: F,
    ) -> io::Result<usize> {
        match self {
            Capture::Fast(r) => {
                r.read(timeout, |p, seen, age| each(p, Stamp::Kernel { seen, age }))
            }
            Capture::Handover(h) => h.read(timeout, each),
            Capture::Portable(c) => c.read(timeout, |p| each(p, Stamp::Now)),
        }
    }

    /// Packets the kernel dropped for want of room (fast path only).
    pub fn drops(&self) -> u64 {
        match self {
            Capture::Fast(r) => r.drops(),
            Capture::Handover(h) => h.drops(),
            Capture::Portable(_) => 0,
        }
    }
}

/// What opening a scan's packet I/O needs to know.
#[derive(Clone)]
pub struct IoPlan<'a> {
    /// `-e IFACE`.
    pub device: Option<&'a str>,
    /// Where to capture: an interface index, or 0 for all of them.
    pub capture_ifindex: u32,
    /// The longest a capture read waits (the receiver checks its stop flag
    /// this often).
    pub poll: Duration,
    /// Our probes' source ports: replies come to these.
    pub ports: (u16, u16),
    /// `--pcap`/`--packet-trace`: capture every TCP packet to our ports,
    /// not only the ones with reply flags.
    pub any_flags: bool,
    /// A UDP scan's source ports, if it has UDP probes.
    pub udp_ports: Option<(u16, u16)>,
    /// Some target is IPv6: capture every EtherType, not only IPv4.
    pub ipv6: bool,
    /// Where layer-2 frames go ([`NextHops::resolve`]); `None`: every probe
    /// through the IP layer.
    pub next_hops: Option<Arc<NextHops>>,
    /// Where notices go (the fast path falling back, the ring failing).
    pub notify: Option<Notify>,
}

/// Opens the packet I/O of a scan: capture first (so that nothing sent
/// can be missed), then the sender. The ring is `early`'s if one was
/// started.
pub fn open(
    mode: IoMode,
    plan: &IoPlan,
    early: Option<EarlyRing>,
) -> anyhow::Result<(PacketSender, Capture)> {
    if mode == IoMode::Fast {
        let (lo, hi) = plan.ports;
        let filter = crate::io::bpf::reply_filter(lo, hi, plan.any_flags, plan.udp_ports);
        let ifindex = plan.capture_ifindex;
        let protocol = crate::io::ring::protocol(plan.ipv6);
        let capture = match early {
            // Not ready yet: start on an interim socket, which the ring
            // takes over from when it is (see handover).
            Some(early) if !early.is_ready() => match Interim::open(ifindex, protocol, &filter) {
                Ok(interim) => Ok(Capture::Handover(Handover::start(
                    interim,
                    early,
                    ifindex,
                    protocol,
                    filter,
                    plan.notify.clone(),
                ))),
                Err(_) => early
                    .wait()
                    .and_then(|r| r.start(ifindex, protocol, &filter))
                    .map(Capture::Fast),
            },
            Some(early) => early
                .wait()
                .and_then(|r| r.start(ifindex, protocol, &filter))
                .map(Capture::Fast),
            None => {
                Ring::open(ifindex, protocol, &filter, RingConfig::default()).map(Capture::Fast)
            }
        };
        match capture {
            Ok(capture) => {
                let raw = RawSender::open(plan.device)?;
                // Layer 2 is an optimisation: without it (no next hop
                // known, or no packet socket) the IP layer sends them all.
                let link = plan
                    .next_hops
                    .clone()
                    .filter(|h| h.counts().hops > 0)
                    .and_then(|h| LinkSender::open(QDISC_BYPASS).ok().map(|s| (s, h)));
                let sender = FastSender { raw, link };
                return Ok((PacketSender::Fast(sender), capture));
            }
            Err(e) => match fast_failure(&e, plan.capture_ifindex) {
                FastFailure::Fatal(err) => return Err(err),
                FastFailure::FallBack => {
                    if let Some(notify) = &plan.notify {
                        notify(&format!(
                            "notice: the fast packet path is unavailable ({e}); \
                             using the portable one (--io portable)"
                        ));
                    }
                }
            },
        }
    }
    let capture = PortableCapture::open(plan.capture_ifindex, plan.poll)?;
    let sender = PortableSender::open(plan.device)?;
    Ok((PacketSender::Portable(sender), Capture::Portable(capture)))
}

enum FastFailure {
    /// The portable path would fail the same way: report it.
    Fatal(anyhow::Error),
    FallBack,
}

fn fast_failure(e: &RingError, ifindex: u32) -> FastFailure {
    if is_permission(&e.err) {
        FastFailure::Fatal(usage(PRIVILEGE_HINT))
    } else if e.step == "bind" {
        FastFailure::Fatal(anyhow::anyhow!(
            "cannot bind the capture socket to interface index {ifindex}: {}",
            e.err
        ))
    } else {
        FastFailure::FallBack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_error(step: &'static str, errno: i32) -> RingError {
        RingError {
            step,
            err: io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn a_batch_goes_out_in_runs_of_one_path() {
        let frame = |link| Frame {
            link,
            ..Frame::EMPTY
        };
        let mut frames: Vec<Frame> = [3, 3, 0, 0, 0, 2, 3].map(frame).to_vec();
        assert_eq!(same_path(&frames), (true, 2));
        assert_eq!(same_path(&frames[2..]), (false, 3));
        // Two interfaces in one call: each message names its own.
        assert_eq!(same_path(&frames[5..]), (true, 2));
        assert_eq!(same_path(&[]), (false, 0));
        frames = vec![frame(0); 3 * BATCH];
        assert_eq!(same_path(&frames), (false, BATCH));
    }

    #[test]
    fn only_unsupported_features_fall_back() {
        for (step, errno) in [
            ("TPACKET_V3", libc::EINVAL),
            ("TPACKET_V3", libc::ENOPROTOOPT),
            ("receive ring", libc::ENOMEM),
            ("mapping the receive ring", libc::ENOMEM),
            ("capture filter", libc::EINVAL),
            ("packet socket", libc::EAFNOSUPPORT),
        ] {
            assert!(
                matches!(
                    fast_failure(&ring_error(step, errno), 1),
                    FastFailure::FallBack
                ),
                "{step} {errno}"
            );
        }
        for (step, errno) in [
            ("packet socket", libc::EPERM),
            ("receive ring", libc::EACCES),
            ("bind", libc::ENODEV),
        ] {
            assert!(
                matches!(
                    fast_failure(&ring_error(step, errno), 1),
                    FastFailure::Fatal(_)
                ),
                "{step} {errno}"
            );
        }
    }

    #[test]
    fn a_bad_ring_geometry_is_an_error_not_a_crash() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let filter = crate::io::bpf::reply_filter(40000, 40255, false, None);
        // Not a multiple of the page size: the kernel refuses it.
        let bad = RingConfig {
            block_size: 1000,
            block_nr: 4,
            retire_ms: 2,
        };
        let err = Ring::open(0, crate::io::ring::protocol(false), &filter, bad)
            .err()
            .expect("refused");
        assert_eq!(err.step, "receive ring");
        assert!(matches!(fast_failure(&err, 0), FastFailure::FallBack));
        // The real geometry and filter are accepted.
        assert!(Ring::open(
            0,
            crate::io::ring::protocol(false),
            &filter,
            RingConfig::default()
        )
        .is_ok());
    }
}
