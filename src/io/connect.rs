//! The connect scan's sockets (`-sT`): non-blocking `connect()` calls
//! watched with epoll, for users without CAP_NET_RAW.
//!
//! The kernel speaks TCP here; what `connect()` reports stands for the
//! reply: success for a SYN/ACK, `ECONNREFUSED` for a RST (or an ICMP port
//! unreachable), an unreachable errno for the destination-unreachable
//! errors that abort a connect in SYN_SENT. Every socket is closed with
//! `SO_LINGER` 0, so an open port's connection ends with a RST and leaves
//! no TIME_WAIT behind.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::io::socket::{from_raw_sockaddr, raw_sockaddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What a connect attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connected {
    /// The handshake completed.
    Open,
    /// `ECONNREFUSED`.
    Refused,
    /// An ICMP destination unreachable the kernel reported, by the code
    /// nmap names for its errno (`ENETUNREACH` 0, `EHOSTUNREACH` 1,
    /// `ENOPROTOOPT` 2, `EACCES`/`EPERM` 13).
    Unreachable(u8),
    /// The kernel gave up (`ETIMEDOUT`): silence, as a lost probe.
    Silent,
}

/// How a start went.
#[derive(Debug)]
pub enum Started {
    /// Waiting for the kernel: [`Connects::wait`] reports it.
    Pending,
    /// Decided at once (loopback often is).
    Done(Connected),
}

/// The errno of a finished `connect()` as the scan reads it; `Err` for
/// errors that say nothing about the target (no ports left, no memory).
pub fn read_errno(errno: i32) -> Result<Connected, io::Error> {
    match errno {
        0 => Ok(Connected::Open),
        libc::ECONNREFUSED => Ok(Connected::Refused),
        libc::ENETUNREACH => Ok(Connected::Unreachable(0)),
        libc::EHOSTUNREACH => Ok(Connected::Unreachable(1)),
        libc::ENOPROTOOPT => Ok(Connected::Unreachable(2)),
        libc::EACCES | libc::EPERM => Ok(Connected::Unreachable(13)),
        libc::ETIMEDOUT => Ok(Connected::Silent),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Connections in flight, each under a caller's token.
pub struct Connects {
    epoll: OwnedFd,
    /// By slot (epoll's data): the socket and its token.
    slots: Vec<Option<(OwnedFd, u64)>>,
    free: Vec<usize>,
    open: usize,
    events: Vec<libc::epoll_event>,
}

impl Connects {
    pub fn new() -> io::Result<Connects> {
        // SAFETY: plain system call; the descriptor is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Connects {
            // SAFETY: fd was just returned to us and is owned by nobody else.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
        })
    }

    /// Sockets in flight.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Starts a connection to `dst` from `src` (the kernel's choice when
    /// `None`); its outcome, if not decided at once, comes from
    /// [`Connects::wait`] under `token`. Returns the slot to close it by.
    pub fn start(
        &mut self,
        (src, device): (Option<IpAddr>, Option<&str>),
        dst: SocketAddr,
        token: u64,
    ) -> io::Result<(usize, Started)> {
        // SAFETY: plain system call; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                if dst.is_ipv6() {
                    libc::AF_INET6
                } else {
                    libc::AF_INET
                },
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned to us and is owned by nobody else.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        set_opt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger)?;
        if let Some(dev) = device {
            // Allowed without privilege on an unbound socket (Linux 5.7).
            crate::io::socket::set_device(fd, dev)?;
        }
        if let Some(src) = src {
            let (a, len) = raw_sockaddr(SocketAddr::new(src, 0));
            // SAFETY: a is a valid socket address of the length passed.
            let rc = unsafe { libc::bind(fd, &a as *const _ as *const libc::sockaddr, len) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let (a, len) = raw_sockaddr(dst);
        // SAFETY: a is a valid socket address of the length passed.
        let rc = unsafe { libc::connect(fd, &a as *const _ as *const libc::sockaddr, len) };
        let errno = match rc {
            0 => 0,
            _ => io::Error::last_os_error().raw_os_error().unwrap_or(0),
        };
        if errno != libc::EINPROGRESS {
            return read_errno(errno)
                .map(|c| not_to_itself(c, fd, dst))
                .map(|c| (usize::MAX, Started::Done(c)));
        }
        // An ICMP error the kernel took while connect() held the socket
        // (a target on a veth answers within the call) is kept as a soft
        // error, which only SO_ERROR tells: the kernel's own SYN retry
        // would surface it a second later, long after our try timed out.
        match socket_error(fd) {
            Ok(0) | Err(_) => {}
            Ok(e) => return read_errno(e).map(|c| (usize::MAX, Started::Done(c))),
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32,
            u64: slot as u64,
        };
        // SAFETY: both descriptors are open; ev is a valid event.
        let rc =
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc != 0 {
            self.free.push(slot);
            return Err(io::Error::last_os_error());
        }
        self.slots[slot] = Some((sock, token));
        self.open += 1;
        Ok((slot, Started::Pending))
    }

    /// Closes the connection in `slot` (a RST if it was established); a
    /// slot already closed is left alone.
    pub fn close(&mut self, slot: usize) {
        let _ = self.close_reading(slot);
    }

    /// Closes a socket whose try is over, with the error the kernel kept
    /// for it if any (an ICMP error it took while the socket was busy:
    /// see [`Connects::start`]), which answers that try late.
    pub fn close_reading(&mut self, slot: usize) -> Option<Connected> {
        let (sock, _) = self.slots.get_mut(slot).and_then(Option::take)?;
        let soft = match socket_error(sock.as_raw_fd()) {
            Ok(0) | Err(_) => None,
            Ok(e) => read_errno(e).ok(),
        };
        // Closing the descriptor also removes it from the epoll set.
        drop(sock);
        self.free.push(slot);
        self.open -= 1;
        soft
    }

    /// Waits up to `timeout` for connections to finish, and appends each
    /// finished one's (token, outcome) to `out`, closing it. An error that
    /// says nothing about the target comes as `Err` in its place.
    #[allow(clippy::type_complexity)]
    pub fn wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<(u64, Result<Connected, io::Error>)>,
    ) -> io::Result<()> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: events has room for the count passed.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        for i in 0..n as usize {
            let slot = self.events[i].u64 as usize;
            let Some((sock, token)) = self.slots.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            let token = *token;
            let dst = peer(sock.as_raw_fd());
            let outcome = socket_error(sock.as_raw_fd())
                .and_then(read_errno)
                .map(|c| match dst {
                    Some(dst) => not_to_itself(c, sock.as_raw_fd(), dst),
                    None => c,
                });
            out.push((token, outcome));
            self.close(slot);
        }
        Ok(())
    }
}

/// Raises the soft limit of open files to the hard one (the connect scan
/// holds a socket per probe in flight) and says how many may be open.
pub fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let want = lim.rlim_max.min(1 << 16);
    if want > lim.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: raised is a valid rlimit; failure leaves the old one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = want;
        }
    }
    lim.rlim_cur as usize
}

/// A connect to one of our own addresses can meet itself: when the
/// kernel picks the probed port as the ephemeral one, the socket connects
/// to itself (TCP simultaneous open) and the port looks open with nothing
/// listening. That is silence to the scan (its next try has another
/// port), as nmap treats it.
fn not_to_itself(c: Connected, fd: RawFd, dst: SocketAddr) -> Connected {
    match c {
        Connected::Open if local(fd) == Some(dst) => Connected::Silent,
        c => c,
    }
}

/// The socket's own address (`getsockname`).
fn local(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, libc::getsockname)
}

/// The address the socket connects to (`getpeername`, which an
/// unconnected socket does not have: then the error's own answer stands).
fn peer(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, libc::getpeername)
}

type NameCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn name_of(fd: RawFd, call: NameCall) -> Option<SocketAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut a: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: a and len describe storage the call may fill.
    let rc = unsafe { call(fd, &mut a as *mut _ as *mut libc::sockaddr, &mut len) };
    if rc != 0 {
        return None;
    }
    from_raw_sockaddr(&a)
}

fn set_opt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points to a T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The socket's pending error (`SO_ERROR`): 0 once connected.
fn socket_error(fd: RawFd) -> io::Result<i32> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for the size passed.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    match rc {
        0 => Ok(err),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn run_to_end(c: &mut Connects) -> Vec<(u64, Result<Connected, io::Error>)> {
        let mut out = Vec::new();
        for _ in 0..200 {
            if c.open() == 0 {
                break;
            }
            c.wait(Duration::from_millis(10), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn errnos_read_as_nmap_reads_them() {
        assert_eq!(read_errno(0).unwrap(), Connected::Open);
        assert_eq!(read_errno(libc::ECONNREFUSED).unwrap(), Connected::Refused);
        assert_eq!(
            read_errno(libc::EHOSTUNREACH).unwrap(),
            Connected::Unreachable(1)
        );
        assert_eq!(
            read_errno(libc::ENETUNREACH).unwrap(),
            Connected::Unreachable(0)
        );
        assert_eq!(
            read_errno(libc::EACCES).unwrap(),
            Connected::Unreachable(13)
        );
        assert_eq!(read_errno(libc::ETIMEDOUT).unwrap(), Connected::Silent);
        assert!(read_errno(libc::EADDRNOTAVAIL).is_err());
    }

    /// Loopback needs no privilege: a listening port is open, a port
    /// nobody listens on refuses, and every socket is closed after.
    #[test]
    fn loopback_listener_is_open_and_a_free_port_refuses() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = free.local_addr().unwrap().port();
        drop(free);
        let mut c = Connects::new().unwrap();
        let mut got = Vec::new();
        for (token, port) in [(1u64, open), (2, closed)] {
            let (_, started) = c
                .start(
                    (None, None),
                    SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port),
                    token,
                )
                .unwrap();
            if let Started::Done(d) = started {
                got.push((token, d));
            }
        }
        for (token, r) in run_to_end(&mut c) {
            got.push((token, r.unwrap()));
        }
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(1, Connected::Open), (2, Connected::Refused)]);
        assert_eq!(c.open(), 0);
    }

    #[test]
    fn a_closed_slot_reports_nothing() {
        // A listener with a full backlog is not needed: closing before the
        // answer is read must drop the answer.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = Connects::new().unwrap();
        let (slot, started) = c
            .start(
                (None, None),
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port),
                9,
            )
            .unwrap();
        if matches!(started, Started::Pending) {
            c.close(slot);
            c.close(slot);
            assert_eq!(c.open(), 0);
            let mut out = Vec::new();
            c.wait(Duration::from_millis(20), &mut out).unwrap();
            assert!(out.is_empty());
        }
    }
}
