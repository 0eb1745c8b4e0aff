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
