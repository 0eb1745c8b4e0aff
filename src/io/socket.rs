//! What every packet socket path shares: the error for a missing
//! privilege, binding to an interface, and the stamp of a captured packet.

use std::io;
use std::time::{Duration, Instant};

use crate::error::usage;

pub const PRIVILEGE_HINT: &str = "flagscan needs CAP_NET_RAW to send and capture raw packets: \
run it as root (sudo flagscan ...) or grant the capability once with \
`sudo setcap cap_net_raw,cap_net_admin+eip $(command -v flagscan)`";

/// May this process open raw sockets (root or CAP_NET_RAW, in the
/// current network namespace)? Asked by opening one and closing it.
pub fn raw_allowed() -> bool {
    // SAFETY: plain system call; the descriptor is closed at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP) };
    if fd < 0 {
        return !is_permission(&io::Error::last_os_error());
    }
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    true
}

pub(crate) fn is_permission(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

pub(crate) fn open_error(what: &str, err: io::Error) -> anyhow::Error {
    if is_permission(&err) {
        usage(PRIVILEGE_HINT)
    } else {
        anyhow::anyhow!("cannot open the {what} socket: {err}")
    }
}

/// `SO_BINDTODEVICE`, the system call alone.
pub(crate) fn set_device(fd: libc::c_int, dev: &str) -> io::Result<()> {
    let name =
        std::ffi::CString::new(dev).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the name is NUL-terminated and we pass its length.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr() as *const libc::c_void,
            name.as_bytes_with_nul().len() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `-e IFACE`: pins a socket to an interface (`SO_BINDTODEVICE`).
pub(crate) fn bind_to_device(fd: libc::c_int, dev: &str) -> anyhow::Result<()> {
    if dev.contains('\0') {
        return Err(usage(format!("invalid interface name '{dev}'")));
    }
    if let Err(err) = set_device(fd, dev) {
        return Err(match err.raw_os_error() {
            Some(libc::ENODEV) => usage(format!("unknown interface '{dev}' (-e)")),
            _ => open_error("raw send", err),
        });
    }
    Ok(())
}

/// When a captured packet arrived.
#[derive(Debug, Clone, Copy)]
pub enum Stamp {
    /// From the kernel's timestamp: `age` before `seen`.
    Kernel { seen: Instant, age: Duration },
    /// Only known as "just now".
    Now,
}

/// A socket address as the kernel takes it: `sockaddr_in` or
/// `sockaddr_in6` in a `sockaddr_storage`, and its length.
pub(crate) fn raw_sockaddr(a: std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and
            // suitably aligned for it.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

/// The address in a `sockaddr_storage` the kernel filled, if it is IPv4
/// or IPv6.
pub(crate) fn from_raw_sockaddr(s: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(std::net::SocketAddr::new(
                std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into(),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(std::net::SocketAddr::new(
                std::net::Ipv6Addr::from(a.sin6_addr.s6_addr).into(),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => None,
    }
}
