//! Exit codes and the one error type that changes them.
//!
//! Everything fallible returns `anyhow::Result` with context; an error that
//! the user can fix by changing the command line (a bad token, a missing
//! privilege, an unknown interface) is wrapped in [`UsageError`] so that
//! `main` exits with [`EXIT_USAGE`] instead of [`EXIT_FAILURE`].

use std::fmt;
use std::sync::Arc;

/// The scan ran and finished.
pub const EXIT_OK: i32 = 0;
/// Something failed while running (I/O error, lab command failed).
pub const EXIT_FAILURE: i32 = 1;
/// The command line cannot be run as given: bad option value, unknown
/// technique, unknown interface, no route, missing privileges.
pub const EXIT_USAGE: i32 = 2;
/// Stopped by Ctrl-C or SIGTERM: the results so far are written to every
/// output and a resume file says how to finish (`flagscan --resume FILE`).
/// (A second signal quits at once with [`crate::sys::interrupt::EXIT_KILLED`].)
pub const EXIT_INTERRUPTED: i32 = 3;

/// Where the library's warnings and notices go, as they happen: the
/// engine, the packet I/O and the routing code never print; the command
/// line and the demo prefix them with `flagscan: ` and write them to
/// stderr. Each starts with `warning: ` or `notice: `.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// The commands' choice: each notice on its own line of stderr.
pub fn stderr_notify() -> Notify {
    Arc::new(|text| say(&format!("flagscan: {text}")))
}

/// Writes a line to stderr. Unlike `eprintln!`, a closed stderr (`2>&1 |
/// head -1`) is not a panic: the message is lost, the scan goes on.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds an error that makes `flagscan` exit with [`EXIT_USAGE`].
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_even_with_context() {
        let e: anyhow::Result<()> = Err(usage("bad port '70000'"));
        let e = e.context("parsing -p").unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE);
        assert_eq!(exit_code(&anyhow::anyhow!("io")), EXIT_FAILURE);
    }
}
