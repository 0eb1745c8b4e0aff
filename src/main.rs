use flagscan::error::{exit_code, EXIT_FAILURE};

fn main() {
    // A SIGCHLD ignored by whoever started us would be inherited, and the
    // kernel would then reap our children itself: waiting for the one that
    // sets up the capture ring (sockopt::set_in_child) would fail.
    // SAFETY: no other thread exists yet; SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    flagscan::sys::teardown::enable();
    // A bug must not dump a backtrace on a user: one line, and a way to report it.
    std::panic::set_hook(Box::new(|info| {
        flagscan::error::say(&format!(
            "flagscan: internal error: {info}; please report this with the command you ran"
        ));
        std::process::exit(EXIT_FAILURE);
    }));
    let code = match flagscan::cli::run(std::env::args_os().collect()) {
        Ok(code) => code,
        Err(err) => {
            flagscan::error::say(&format!("flagscan: {err:#}"));
            exit_code(&err)
        }
    };
    flagscan::sys::teardown::exit(code);
}
