//! Capturing from the first probe on while the ring is still being set up.
//!
//! Setting up a TPACKET_V3 ring waits for an RCU grace period, measured
//! 8-36 ms here: a tenth of a full-range scan, spent with nothing to do.
//! [`EarlyRing`] starts it as soon as the scan's namespace is known, but the
//! rest of start-up takes a few milliseconds. So when the ring is not ready
//! by the time the sockets are opened, the scan starts on an interim
//! capture: a plain packet socket with the same filter, in a
//! `PACKET_FANOUT` group of classic-BPF mode without a program yet, which
//! sends every packet to member 0, the interim socket. Once the ring is
//! ready it joins the group as member 1 and the group gets a program that
//! picks member 1.
//!
//! A fanout group delivers each packet to exactly one member, so nothing is
//! lost or seen twice. A packet the kernel was handing to the interim
//! socket while the program was set may still land there after the
//! switch, so the receiver keeps emptying that socket (one call that finds
//! nothing, per read) for the rest of the scan. If anything in the handover
//! fails, the interim capture carries on alone.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::Notify;
use crate::io::bpf::Insn;
use crate::io::ring::{self, EarlyRing, Ring, RingError, TPACKET_V3};
use crate::io::socket::Stamp;
use crate::sys::sockopt;

// PACKET_FANOUT_FLAG_UNIQUEID (Linux 4.13+) asks the kernel for a group id
// no other group uses.
use libc::{
    PACKET_FANOUT, PACKET_FANOUT_CBPF, PACKET_FANOUT_DATA, PACKET_FANOUT_FLAG_UNIQUEID,
    PACKET_VERSION,
};
/// The interim socket's receive buffer: some 40,000 replies, tens of
/// milliseconds at full speed (the default holds a few hundred).
const INTERIM_BUFFER: libc::c_int = 32 << 20;
/// How long the receiver naps when the interim socket is empty: replies
/// wait at most this long (the ring's blocks wait up to 2 ms).
const INTERIM_NAP: Duration = Duration::from_millis(1);
/// Packets read per `recvmmsg` call.
const BATCH: usize = 64;
/// Batches one read takes at most (4,096 packets).
const DRAIN_BATCHES: usize = 64;
/// Bytes kept of each packet: replies are 40-100 bytes, and a longer
/// packet's headers, all the receiver looks at, are in its first bytes.
const SNAP: usize = 2048;

/// The interim capture: a plain packet socket, member 0 of a fanout group.
pub struct Interim {
    fd: OwnedFd,
    group: u16,
    bufs: Vec<[u8; SNAP]>,
}

impl Interim {
    /// Opens the interim socket on `ifindex` with `filter`, in a new fanout
    /// group that sends it every packet.
    pub fn open(ifindex: u32, protocol: u16, filter: &[Insn]) -> io::Result<Interim> {
        // Protocol 0 until bind, as for the ring: nothing before the filter.
        let fd = sockopt::socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)?;
        // Not needed by a socket without a ring, but what the ring will ask
        // for: where the kernel refuses it, so waiting for the ring is
        // what fails (and says so), not this.
        sockopt::set(&fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
        sockopt::grow_receive_buffer(&fd, INTERIM_BUFFER)?;
        ring::attach_filter(&fd, filter)?;
        let _ = ring::ignore_outgoing(&fd);
        ring::bind_ip(&fd, ifindex, protocol)?;
        // No program: the group sends everything to member 0, this socket.
        // Setting the first program later does not wait for a grace period
        // (replacing one would).
        let arg: u32 = (PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
        sockopt::set(&fd, libc::SOL_PACKET, PACKET_FANOUT, &arg)?;
        let group = fanout_id(&fd)?;
        Ok(Interim {
            fd,
            group,
            bufs: vec![[0; SNAP]; BATCH],
        })
    }

    /// Passes on what is queued; if nothing is, naps (at most `timeout`)
    /// and looks again. Polling would wake the receiver for every packet
    /// (the ring wakes it per block): at full speed that many wake-ups
    /// cost the senders their CPU, and replies queued up past the timeout.
    fn read<F: FnMut(&[u8])>(&mut self, timeout: Duration, each: &mut F) -> io::Result<usize> {
        let n = self.drain(each)?;
        if n > 0 {
            return Ok(n);
        }
        std::thread::sleep(timeout.min(INTERIM_NAP));
        self.drain(each)
    }

    /// Passes on what is queued now, without waiting: at most
    /// [`DRAIN_BATCHES`] batches, so that the receiver still looks at its
    /// stop flag under a flood.
    fn drain<F: FnMut(&[u8])>(&mut self, each: &mut F) -> io::Result<usize> {
        let mut total = 0;
        for _ in 0..DRAIN_BATCHES {
            let n = self.recv_batch(each)?;
            total += n;
            if n < BATCH {
                break;
            }
        }
        Ok(total)
    }

    fn recv_batch<F: FnMut(&[u8])>(&mut self, each: &mut F) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs; zero is valid.
        let mut iov: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for ((v, m), buf) in iov
            .iter_mut()
            .zip(msgs.iter_mut())
            .zip(self.bufs.iter_mut())
        {
            v.iov_base = buf.as_mut_ptr().cast();
            v.iov_len = SNAP;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every message points to its own live buffer of SNAP bytes.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = n as usize;
        for (m, buf) in msgs.iter().zip(self.bufs.iter()).take(n) {
            let len = (m.msg_len as usize).min(SNAP);
            each(&buf[..len]);
        }
        Ok(n)
    }

    /// Packets dropped for want of room since the last call.
    fn drops(&self) -> u64 {
        ring::packet_drops(&self.fd)
    }
}

/// The id the kernel gave the socket's fanout group.
fn fanout_id(fd: &OwnedFd) -> io::Result<u16> {
    sockopt::get::<u32>(fd, libc::SOL_PACKET, PACKET_FANOUT).map(|v| (v & 0xffff) as u16)
}

/// The capture of a scan that started before its ring was ready.
pub struct Handover {
    interim: Interim,
    /// The thread finishing the ring and switching the group to it.
    pending: Option<JoinHandle<Result<Ring, RingError>>>,
    ring: Option<Ring>,
    /// Where the notice goes if the ring cannot take over.
    notify: Option<Notify>,
}

impl Handover {
    /// Starts the handover: `early`'s ring, once ready, captures on
    /// `ifindex` with `filter` and takes over from `interim`.
    pub fn start(
        interim: Interim,
        early: EarlyRing,
        ifindex: u32,
        protocol: u16,
        filter: Vec<Insn>,
        notify: Option<Notify>,
    ) -> Handover {
        let group = interim.group;
        let finish = move || -> Result<Ring, RingError> {
            crate::sys::privilege::shed_thread_capabilities();
            let ring = early
                .wait()?
                .start_in_group(ifindex, protocol, &filter, |fd| {
                    let arg: u32 = (PACKET_FANOUT_CBPF << 16) | u32::from(group);
                    sockopt::set(fd, libc::SOL_PACKET, PACKET_FANOUT, &arg)
                })?;
            // Member 1 is the ring: from now on every packet goes to it.
            ring::attach_program(
                ring.fd(),
                libc::SOL_PACKET,
                PACKET_FANOUT_DATA,
                &crate::io::bpf::constant(1),
            )
            .map_err(|err| RingError {
                step: "fanout switch",
                err,
            })?;
            Ok(ring)
        };
        let pending = std::thread::Builder::new()
            .name("ring-handover".into())
            .spawn(finish);
        match pending {
            Ok(handle) => Handover {
                interim,
                pending: Some(handle),
                ring: None,
                notify,
            },
            // No thread: the interim capture serves the whole scan.
            Err(_) => Handover {
                interim,
                pending: None,
                ring: None,
                notify,
            },
        }
    }

    /// As `rawsock::Capture::read`; packets from the interim
    /// socket are stamped [`Stamp::Now`].
    pub fn read<F: FnMut(&[u8], Stamp)>(
        &mut self,
        timeout: Duration,
        mut each: F,
    ) -> io::Result<usize> {
        if let Some(ring) = self.ring.as_mut() {
            let n = ring.read(timeout, |p, seen, age| each(p, Stamp::Kernel { seen, age }))?;
            return Ok(n + self.interim.drain(&mut |p| each(p, Stamp::Now))?);
        }
        if self.pending.as_ref().is_some_and(|h| h.is_finished()) {
            let finished = self.pending.take().map(|h| h.join());
            let why = match finished {
                Some(Ok(Ok(ring))) => {
                    self.ring = Some(ring);
                    None
                }
                Some(Ok(Err(e))) => Some(format!(" ({e})")),
                _ => Some(String::new()),
            };
            if let (Some(why), Some(notify)) = (why, &self.notify) {
                notify(&format!(
                    "notice: the capture ring could not take over{why}; \
                     capturing through a plain packet socket"
                ));
            }
        }
        self.interim.read(timeout, &mut |p| each(p, Stamp::Now))
    }

    /// Packets the kernel dropped for want of room.
    pub fn drops(&self) -> u64 {
        self.interim.drops() + self.ring.as_ref().map_or(0, Ring::drops)
    }
}
