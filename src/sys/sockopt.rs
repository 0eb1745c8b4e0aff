//! The two socket calls packet I/O makes by hand: opening a socket and
//! setting an option of any type. nix types the common options but not the
//! packet socket's (`PACKET_VERSION`, `PACKET_RX_RING`, ...), so the raw
//! path, the capture ring, the netlink lookups and the tests share these.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `socket(2)` with `SOCK_CLOEXEC` added.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fd is valid and owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `setsockopt(2)` with `value` as the option's bytes.
pub fn set<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
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

/// `getsockopt(2)` of an option whose value is a `T`.
pub fn get<T: Default>(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
    let mut value = T::default();
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live T of `len` bytes for the kernel to fill.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &mut value as *mut T as *mut libc::c_void,
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A receive buffer of `bytes`: past the system's limit where we may
/// (`SO_RCVBUFFORCE`, CAP_NET_ADMIN), else as much as the limit allows.
pub fn grow_receive_buffer(fd: &impl AsRawFd, bytes: libc::c_int) -> io::Result<()> {
    set(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes)
        .or_else(|_| set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes))
}

/// [`set`], made by a child process on the same socket. For the options
/// that wait for an RCU grace period (a packet socket's ring, a fanout
/// group's program: 8-36 ms here): glibc changes credentials by signalling
/// every thread and waiting for each, and a thread inside such a call
/// answers only when the grace period ends, so dropping root would wait
/// for it. A child process is not among the threads it waits for.
pub fn set_in_child<T>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the child only makes system calls (setsockopt, _exit), which
    // is what a child of a threaded process may do; it allocates nothing.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        // No child (a sandbox may refuse it): set it here, and the wait
        // falls on this thread, as it did before.
        return set(fd, level, name, value);
    }
    if pid == 0 {
        let code = match set(fd, level, name, value) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EIO).clamp(1, 255),
        };
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; status is a valid int.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ECHILD) {
            return Err(io::Error::other(
                "the process setting the option was reaped by the kernel (SIGCHLD is ignored)",
            ));
        }
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, errno) => Err(io::Error::from_raw_os_error(errno)),
        _ => Err(io::Error::other(
            "the process setting the option was killed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_int(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        get(fd, level, name).unwrap()
    }

    #[test]
    fn an_option_set_by_the_child_is_the_parents_socket_option() {
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
        let before = get_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF);
        // The kernel stores twice what it is given, within its limits.
        let asked: libc::c_int = 4096 * 3;
        set_in_child(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &asked).unwrap();
        let after = get_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF);
        assert_ne!(after, before);
        assert_eq!(after, asked * 2);
    }

    #[test]
    fn the_childs_error_is_the_callers() {
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).unwrap();
        let one: libc::c_int = 1;
        // A packet-socket option on a UDP socket: refused.
        let here = set(&fd, libc::SOL_PACKET, 10, &one).unwrap_err();
        let child = set_in_child(&fd, libc::SOL_PACKET, 10, &one).unwrap_err();
        assert_eq!(child.raw_os_error(), here.raw_os_error());
        assert!(child.raw_os_error().is_some());
    }
}
