//! The process's exit, without waiting for the kernel to release packet
//! sockets.
//!
//! Releasing an AF_PACKET socket waits for an RCU grace period, two for one
//! with a ring (measured 6-27 ms each here), and at exit the kernel releases
//! them one after the other in the exiting process. By then the results are
//! written, so that wait is only latency: the shell gets its prompt back
//! tens of milliseconds late, a tenth of a full-range scan's time.
//!
//! So the binary keeps those sockets open to the end ([`keep`]), and
//! [`exit`] registers every socket still open with an io_uring instance
//! first. io_uring releases its registered files from a kernel worker after
//! the process is gone, so the process's own exit drops only references
//! that are not the last. Where io_uring is unavailable (disabled by sysctl
//! or seccomp), the exit waits as it always did.
//!
//! Only the binary opts in ([`enable`]): a library user (a test calling the
//! scan in-process) keeps closing sockets when they are dropped.

use std::any::Any;
use std::sync::Mutex;

/// `None` until [`enable`]: then what [`keep`] was given.
static KEPT: Mutex<Option<Vec<Box<dyn Any + Send>>>> = Mutex::new(None);

/// Called once by `main`: from now on [`keep`] holds what it is given.
pub fn enable() {
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    kept.get_or_insert_with(Vec::new);
}

/// Holds `value` (a socket, or what owns some) until [`exit`] when enabled;
/// otherwise hands it back, for the caller to drop when it suits it.
#[must_use = "what is handed back is closed when dropped"]
pub fn keep<T: Send + 'static>(value: T) -> Option<T> {
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    match kept.as_mut() {
        Some(list) => {
            list.push(Box::new(value));
            None
        }
        None => Some(value),
    }
}

/// Exits with `code`. If sockets were kept, their release is left to the
/// kernel's workers first, so that this process's exit does not wait for it.
pub fn exit(code: i32) -> ! {
    let kept = KEPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    if !kept.is_empty() {
        release_after_exit();
        // Not dropped: dropping would close the sockets here and now.
        std::mem::forget(kept);
    }
    std::process::exit(code)
}

/// Registers every open socket with a new io_uring instance, which stays
/// open until the process ends. Best effort: on any failure the sockets
/// are released at exit as usual.
fn release_after_exit() {
    let sockets = open_sockets();
    if sockets.is_empty() {
        return;
    }
    let Ok(ring) = io_uring::IoUring::new(1) else {
        return;
    };
    if ring.submitter().register_files(&sockets).is_ok() {
        // Its descriptor must outlive this function: the kernel releases
        // the registered files when the process's last reference to it goes.
        std::mem::forget(ring);
    }
}

/// This process's open socket descriptors, but for the standard streams: a
/// reader of our output (a socket under systemd or a supervisor) must see
/// its end when we exit, not when a kernel worker gets to it.
fn open_sockets() -> Vec<libc::c_int> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok())
        .filter(|&fd| fd > 2)
        .filter(|&fd| {
            // SAFETY: fstat on a descriptor number fills the stat buffer or
            // fails; the listing's own descriptor is a directory, not a socket.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_sockets_to_register_are_the_open_sockets() {
        use std::os::fd::AsRawFd;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fds = open_sockets();
        assert!(fds.contains(&socket.as_raw_fd()), "{fds:?}");
        assert!(!fds.contains(&file.as_raw_fd()), "{fds:?}");
        assert!(fds.iter().all(|&fd| fd > 2), "{fds:?}");
    }

    #[test]
    fn without_enable_a_kept_value_is_handed_back() {
        // The test binary never calls enable(), as a library user would not.
        let dropped = Arc::new(AtomicBool::new(false));
        let back = keep(Flag(dropped.clone()));
        assert!(back.is_some());
        assert!(!dropped.load(Ordering::SeqCst));
        drop(back);
        assert!(dropped.load(Ordering::SeqCst));
    }
}
