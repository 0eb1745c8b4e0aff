//! Network namespaces: a scan (`--netns`), the demo and the tests enter
//! one by name, as `ip netns` made it.

use std::path::Path;

use anyhow::{anyhow, Context};

use crate::error::usage;

/// Where `ip netns add` puts its namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Moves the calling thread into the named namespace. Only this thread
/// moves, which is why it must run before any other thread starts: threads
/// spawned afterwards inherit it, threads spawned before do not.
pub fn enter(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(usage(format!(
            "invalid network namespace name '{name}': give a name as `ip netns list` shows it, \
             not a path"
        )));
    }
    let path = Path::new(NETNS_DIR).join(name);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!(
                "network namespace '{name}' does not exist ({} not found); \
                 create the lab with `sudo flagscan lab up` or see `ip netns list`",
                path.display()
            )))
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        if e == nix::errno::Errno::EPERM {
            usage(format!(
                "entering network namespace '{name}' needs root (CAP_SYS_ADMIN): {e}"
            ))
        } else {
            anyhow!("entering network namespace '{name}': {e}")
        }
    })
}
