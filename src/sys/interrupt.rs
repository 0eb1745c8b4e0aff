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
            on_first(sig);
            if set.wait().is_ok() {
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
