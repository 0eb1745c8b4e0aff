//! Host discovery's sockets: whole IP packets out through the raw send
//! socket, ICMP and TCP answers in through two raw receive sockets (IPv6
//! answers through a packet socket, which keeps their IPv6 header where a
//! raw IPv6 socket strips it), and ARP through one packet socket per
//! interface on the local link.
//!
//! They are few packets (a handful per host), so plain sockets and `poll`
//! do; the port scan's ring and filter are for the millions that follow.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use crate::io::rawsock::RawSender;
use crate::io::socket::open_error;
use crate::sys::sockopt::{self, socket};
use crate::wire::frame::Mac;

const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;
const BROADCAST: Mac = [0xff; 6];
/// Packets read per socket per wait.
const READ_BATCH: usize = 1024;

/// A packet heard while discovering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// An IPv4 packet (from its IP header on): ICMP or TCP.
    Ip(Vec<u8>),
    /// An IPv6 packet (from its IP header on), on this interface.
    Ip6 { ifindex: u32, bytes: Vec<u8> },
    /// An ARP packet (after the Ethernet header), on this interface.
    Arp { ifindex: u32, bytes: Vec<u8> },
}

struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
    mac: Mac,
}

pub struct PingSockets {
    send: Option<RawSender>,
    icmp: Option<OwnedFd>,
    tcp: Option<OwnedFd>,
    /// Every IPv6 packet this host receives (the checks pick ours).
    ipv6: Option<OwnedFd>,
    arp: Vec<ArpSocket>,
    /// Neighbour solicitations out, one per interface (the answers come
    /// in through `ipv6`).
    ndp: Vec<ArpSocket>,
}

fn link_addr(ifindex: u32, mac: Mac) -> libc::sockaddr_ll {
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&mac);
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ARP.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    }
}

fn nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl PingSockets {
    /// `ip`: IP probes will be sent (and answers read), `ipv6`: some to
    /// IPv6 hosts; `arp` and `ndp`: the interfaces (index, our MAC) to ask
    /// ARP and neighbour solicitations on. `device` pins the IP send
    /// socket (`-e`).
    pub fn open(
        ip: bool,
        ipv6: bool,
        arp: &[(u32, Mac)],
        ndp: &[(u32, Mac)],
        device: Option<&str>,
    ) -> anyhow::Result<PingSockets> {
        let mut s = PingSockets {
            send: None,
            icmp: None,
            tcp: None,
            ipv6: None,
            arp: Vec::new(),
            ndp: Vec::new(),
        };
        for &(ifindex, mac) in ndp {
            // Protocol 0: it sends and never receives.
            let fd = socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)
                .map_err(|e| open_error("neighbour discovery", e))?;
            s.ndp.push(ArpSocket { fd, ifindex, mac });
        }
        if ipv6 {
            let fd = socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM,
                i32::from((libc::ETH_P_IPV6 as u16).to_be()),
            )
            .map_err(|e| open_error("discovery receive (IPv6)", e))?;
            // Our own requests on loopback are not answers.
            let _ = crate::io::ring::ignore_outgoing(&fd);
            nonblocking(&fd)?;
            let _ = sockopt::grow_receive_buffer(&fd, 4 << 20);
            s.ipv6 = Some(fd);
        }
        if ip {
            s.send = Some(RawSender::open(device)?);
            for (slot, proto) in [
                (&mut s.icmp, libc::IPPROTO_ICMP),
                (&mut s.tcp, libc::IPPROTO_TCP),
            ] {
                let fd = socket(libc::AF_INET, libc::SOCK_RAW, proto)
                    .map_err(|e| open_error("discovery receive", e))?;
                nonblocking(&fd)?;
                let _ = sockopt::grow_receive_buffer(&fd, 4 << 20);
                *slot = Some(fd);
            }
        }
        for &(ifindex, mac) in arp {
            let fd = socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM,
                i32::from(ETH_P_ARP.to_be()),
            )
            .map_err(|e| open_error("ARP", e))?;
            let addr = link_addr(ifindex, [0; 6]);
            // SAFETY: a valid sockaddr_ll of the size given.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                    mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(open_error("ARP", io::Error::last_os_error()));
            }
            nonblocking(&fd)?;
            let _ = sockopt::grow_receive_buffer(&fd, 4 << 20);
            s.arp.push(ArpSocket { fd, ifindex, mac });
        }
        Ok(s)
    }

    /// Our MAC on an interface we ask ARP on.
    pub fn arp_mac(&self, ifindex: u32) -> Option<Mac> {
        self.arp
            .iter()
            .find(|a| a.ifindex == ifindex)
            .map(|a| a.mac)
    }

    pub fn send_ip(&self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        match &self.send {
            Some(s) => s.send(packet, dst),
            None => Err(io::Error::other("no IP discovery socket")),
        }
    }

    /// Our MAC on an interface we send neighbour solicitations on.
    pub fn ndp_mac(&self, ifindex: u32) -> Option<Mac> {
        self.ndp
            .iter()
            .find(|a| a.ifindex == ifindex)
            .map(|a| a.mac)
    }

    /// Sends an IPv6 packet (a neighbour solicitation) to `mac` on `ifindex`.
    pub fn send_ndp(&self, ifindex: u32, packet: &[u8], mac: Mac) -> anyhow::Result<()> {
        send_link(&self.ndp, ifindex, libc::ETH_P_IPV6 as u16, mac, packet)
            .map_err(|e| anyhow::anyhow!("cannot send a neighbour solicitation: {e}"))
    }

    /// Broadcasts an ARP packet on `ifindex`.
    pub fn send_arp(&self, ifindex: u32, packet: &[u8]) -> anyhow::Result<()> {
        send_link(&self.arp, ifindex, ETH_P_ARP, BROADCAST, packet)
            .map_err(|e| anyhow::anyhow!("cannot send an ARP request: {e}"))
    }

    /// Waits up to `timeout` for packets, then reads all that are queued.
    pub fn wait(&self, timeout: Duration, out: &mut Vec<Heard>) -> anyhow::Result<()> {
        let mut fds: Vec<libc::pollfd> = self
            .icmp
            .iter()
            .chain(self.tcp.iter())
            .chain(self.ipv6.iter())
            .chain(self.arp.iter().map(|a| &a.fd))
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of its length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            anyhow::bail!("cannot wait for discovery replies: {err}");
        }
        // At most so many per socket and call: the raw TCP socket sees all
        // of this host's inbound TCP, and the loop must get back to sending.
        let mut buf = [0u8; 2048];
        for fd in self.icmp.iter().chain(self.tcp.iter()) {
            for _ in 0..READ_BATCH {
                let Some(n) = recv(fd, &mut buf) else { break };
                out.push(Heard::Ip(buf[..n].to_vec()));
            }
        }
        for fd in self.ipv6.iter() {
            for _ in 0..READ_BATCH {
                let Some((n, ifindex)) = recv_link(fd, &mut buf) else {
                    break;
                };
                out.push(Heard::Ip6 {
                    ifindex,
                    bytes: buf[..n].to_vec(),
                });
            }
        }
        for a in &self.arp {
            for _ in 0..READ_BATCH {
                let Some(n) = recv(&a.fd, &mut buf) else {
                    break;
                };
                out.push(Heard::Arp {
                    ifindex: a.ifindex,
                    bytes: buf[..n].to_vec(),
                });
            }
        }
        Ok(())
    }
}

/// Sends `packet` (after the Ethernet header) as `proto` to `mac` through
/// `sockets`' one on `ifindex`. A full queue is a lost request: its host
/// gets its next try.
fn send_link(
    sockets: &[ArpSocket],
    ifindex: u32,
    proto: u16,
    mac: Mac,
    packet: &[u8],
) -> io::Result<()> {
    let Some(a) = sockets.iter().find(|a| a.ifindex == ifindex) else {
        return Err(io::Error::other(format!(
            "no socket on interface {ifindex}"
        )));
    };
    let mut addr = link_addr(ifindex, mac);
    addr.sll_protocol = proto.to_be();
    // SAFETY: buffer and address are valid for the given lengths.
    let rc = unsafe {
        libc::sendto(
            a.fd.as_raw_fd(),
            packet.as_ptr() as *const libc::c_void,
            packet.len(),
            0,
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    let err = io::Error::last_os_error();
    if rc < 0 && !matches!(err.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
        return Err(io::Error::new(
            err.kind(),
            format!("interface {ifindex}: {err}"),
        ));
    }
    Ok(())
}

/// One datagram from a packet socket and the interface it came in on.
fn recv_link(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, u32)> {
    // SAFETY: zero is a valid sockaddr_ll.
    let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` and `from` are valid for the lengths given.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
            &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
            &mut len,
        )
    };
    (n >= 0).then_some((n as usize, from.sll_ifindex as u32))
}

/// One datagram, or `None` when none is queued (or the read failed: a raw
/// socket has no error worth stopping discovery for).
fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: `buf` is valid for its length.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
        )
    };
    (n >= 0).then_some(n as usize)
}
