//! Raw sockets (Linux): the only code that needs CAP_NET_RAW.
//!
//! Probes leave through an `AF_INET`/`IPPROTO_RAW` socket: we write the
//! whole IPv4 packet and the kernel routes it and resolves the next hop's
//! MAC (ARP) for loopback, veth, bridges and gateways alike. Replies are
//! read from an `AF_PACKET`/`SOCK_DGRAM` socket, which hands over the IP
//! packet whatever the link type and tells incoming from outgoing.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::usage;

const ETH_P_IP: u16 = 0x0800;
/// linux/if_packet.h; older kernels reject it and we filter by hand.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

pub const PRIVILEGE_HINT: &str = "flagscan needs CAP_NET_RAW to send and capture raw packets: \
run it as root (sudo flagscan ...) or grant the capability once with \
`sudo setcap cap_net_raw,cap_net_admin+eip $(command -v flagscan)`";

fn open_error(what: &str, err: io::Error) -> anyhow::Error {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => usage(PRIVILEGE_HINT),
        _ => anyhow::anyhow!("cannot open the {what} socket: {err}"),
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T and we pass its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fd is valid and owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Sends complete IPv4 packets.
pub struct RawSender {
    fd: OwnedFd,
}

impl RawSender {
    /// `device` pins the socket to an interface (`-e IFACE`).
    pub fn open(device: Option<&str>) -> anyhow::Result<RawSender> {
        let fd = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)
            .map_err(|e| open_error("raw send", e))?;
        let size: libc::c_int = 4 << 20;
        let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &size);
        if let Some(dev) = device {
            let name = std::ffi::CString::new(dev)
                .map_err(|_| usage(format!("invalid interface name '{dev}'")))?;
            // SAFETY: the name is NUL-terminated and we pass its length.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr() as *const libc::c_void,
                    name.as_bytes_with_nul().len() as libc::socklen_t,
                )
            };
            if rc != 0 {
                let err = io::Error::last_os_error();
                return Err(match err.raw_os_error() {
                    Some(libc::ENODEV) => usage(format!("unknown interface '{dev}' (-e)")),
                    _ => open_error("raw send", err),
                });
            }
        }
        Ok(RawSender { fd })
    }

    /// Sends one packet. `WouldBlock`/`ENOBUFS` mean "try again shortly".
    pub fn send(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: buffer and address are valid for the given lengths.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &addr as *const libc::sockaddr_in as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Captures incoming IPv4 packets.
pub struct RawReceiver {
    fd: OwnedFd,
}

/// What `recv` got.
pub enum Received {
    /// An incoming IPv4 packet of this length, at the start of the buffer.
    Packet(usize),
    /// Nothing within the poll interval.
    Timeout,
}

impl RawReceiver {
    /// `ifindex` 0 captures on every interface.
    pub fn open(ifindex: u32, poll: Duration) -> anyhow::Result<RawReceiver> {
        let fd = socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            ETH_P_IP.to_be() as libc::c_int,
        )
        .map_err(|e| open_error("packet capture", e))?;
        let one: libc::c_int = 1;
        // Our own probes would otherwise come back to us on every interface.
        let _ = setsockopt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one);
        let size: libc::c_int = 16 << 20;
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
        }
        let tv = libc::timeval {
            tv_sec: poll.as_secs() as libc::time_t,
            tv_usec: poll.subsec_micros() as libc::suseconds_t,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
            .map_err(|e| anyhow::anyhow!("cannot set the capture timeout: {e}"))?;
        // SAFETY: sockaddr_ll is plain data; zero is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = ETH_P_IP.to_be();
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: sll is a valid sockaddr_ll and we pass its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(anyhow::anyhow!(
                "cannot bind the capture socket to interface index {ifindex}: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(RawReceiver { fd })
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            // SAFETY: as above.
            let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffer and address are valid for the given lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(Received::Timeout),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Received::Packet(n as usize));
        }
    }
}
