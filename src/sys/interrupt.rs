//! Ctrl-C (SIGINT) and SIGTERM, taken by one watcher thread.
//!
//! The signals are blocked in the thread that calls [`watch`] and so in
//! every thread it spawns afterwards; only the watcher takes them, with
//! `sigwait`, so no code runs in a signal handler. The first signal runs
//! what the caller asked for (the demo removes its lab, a scan stops and
//! writes what it has); a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

/// Exit code after a second signal: quit at once, nothing written (a shell
/// reports a process killed by SIGINT as 128 + 2).
pub const EXIT_KILLED: i32 = 130;

/// A second signal of the same kind this soon after the first is taken
/// as the first one's echo, not as a second Ctrl-C.
const ECHO_WINDOW: std::time::Duration = std::time::Duration::from_millis(300);

/// Blocks SIGINT and SIGTERM in the calling thread and starts the watcher.
/// Call it before any other thread starts, so that every thread inherits
/// the mask. `on_first` runs in the watcher on the first signal; a signal
/// after it returns exits the process with [`EXIT_KILLED`]. (An `on_first`
/// that does not return, as the demo's lab teardown, is not cut short.)
pub fn watch(on_first: impl FnOnce(Signal) + Send + 'static) -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| anyhow::anyhow!("cannot block SIGINT/SIGTERM: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            crate::sys::privilege::shed_thread_capabilities();
            let Ok(sig) = set.wait() else { return };
            let first = std::time::Instant::now();
            on_first(sig);
            while let Ok(again) = set.wait() {
                // `timeout -s INT` signals the command and then its whole
                // process group: the same signal twice, at once. A person
                // pressing Ctrl-C again takes longer than this.
                if again == sig && first.elapsed() < ECHO_WINDOW {
                    continue;
                }
                std::process::exit(EXIT_KILLED);
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// For a scan: the first signal sets the returned flag (the scan stops
/// sending, waits a moment for replies in flight, writes every result so
/// far and a resume file) and runs `on_first` (the command line says so);
/// a second one exits at once.
pub fn stop_flag(
    on_first: impl FnOnce(Signal) + Send + 'static,
) -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    watch(move |sig| {
        set.store(true, Ordering::SeqCst);
        on_first(sig);
    })?;
    Ok(flag)
}

/// Sets `flag` (as a first signal would) once stdout is closed by its
/// reader (`flagscan ... | head -1`), and runs `on_close`: the scan's
/// results would go nowhere. A thread waits in `poll` for the error or
/// hang-up the kernel reports on the write end of a pipe whose reader left
/// (asking for no event, so a terminal or a file never wakes it).
pub fn stop_when_stdout_closes(
    flag: Arc<AtomicBool>,
    on_close: impl FnOnce() + Send + 'static,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            crate::sys::privilege::shed_thread_capabilities();
            let mut fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd, for the duration of the call.
                let n = unsafe { libc::poll(&mut fd, 1, -1) };
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                let closed = n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0;
                if closed && !flag.swap(true, Ordering::SeqCst) {
                    on_close();
                }
                // POLLNVAL (no stdout at all) or an error: nothing to watch.
                return;
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot start the stdout watcher: {e}"))?;
    Ok(())
}
