//! Giving up root once the raw sockets are open.
//!
//! A scanner parses packets from networks it does not trust; the less it
//! may do while it does, the better. After every socket and output file is
//! open, flagscan becomes the user who ran `sudo` (so output files are
//! theirs), or `nobody`, and keeps no capability. When it was started
//! without root but with file capabilities (`setcap`), it clears them.

use std::ffi::CString;
use std::fs::File;

use std::os::fd::AsRawFd;

use nix::unistd::{Gid, Uid, User};

/// What to do once the sockets are open. Files are given away through
/// their descriptors, and only files this run created
/// ([`crate::sys::files::Opened::created_handle`]): a path could name
/// something else by then.
#[derive(Debug, Default)]
pub struct DropPlan {
    /// Outputs and the resume file, if this run created them: the sudo
    /// user's (run as plain root, they stay root's).
    pub for_user: Vec<File>,
    /// Directories this run created for its own files (the default resume
    /// file's): given to whoever the process becomes, `nobody` included,
    /// so that it can remove what it left there once the scan is done.
    pub for_scan_user: Vec<File>,
}

/// Who the process becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    /// The user who ran `sudo` (not `nobody`).
    pub sudo_user: bool,
}

/// The invoking user under sudo, else `nobody`.
pub fn target_identity(sudo_uid: Option<&str>, sudo_gid: Option<&str>) -> anyhow::Result<Identity> {
    if let Some(uid) = sudo_uid
        .and_then(|u| u.parse::<u32>().ok())
        .filter(|u| *u != 0)
    {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let gid = sudo_gid
            .and_then(|g| g.parse::<u32>().ok())
            .or(user.as_ref().map(|u| u.gid.as_raw()))
            .unwrap_or(uid);
        let name = user.map_or_else(|| uid.to_string(), |u| u.name);
        return Ok(Identity {
            uid,
            gid,
            name,
            sudo_user: true,
        });
    }
    let nobody = User::from_name("nobody").ok().flatten().ok_or_else(|| {
        anyhow::anyhow!("cannot drop root: there is no user 'nobody' (use --keep-privileges)")
    })?;
    Ok(Identity {
        uid: nobody.uid.as_raw(),
        gid: nobody.gid.as_raw(),
        name: nobody.name,
        sudo_user: false,
    })
}

/// Drops root (or file capabilities). Returns who the process is now.
pub fn drop_privileges(plan: &DropPlan) -> anyhow::Result<Identity> {
    if !nix::unistd::geteuid().is_root() {
        clear_capabilities()?;
        let uid = nix::unistd::getuid().as_raw();
        return Ok(Identity {
            uid,
            gid: nix::unistd::getgid().as_raw(),
            name: uid.to_string(),
            sudo_user: false,
        });
    }
    let who = target_identity(
        std::env::var("SUDO_UID").ok().as_deref(),
        std::env::var("SUDO_GID").ok().as_deref(),
    )?;
    let (uid, gid) = (Uid::from_raw(who.uid), Gid::from_raw(who.gid));
    for file in plan.for_user.iter().filter(|_| who.sudo_user) {
        nix::unistd::fchown(file.as_raw_fd(), Some(uid), Some(gid))
            .map_err(|e| anyhow::anyhow!("cannot give an output file to user {}: {e}", who.name))?;
    }
    for dir in &plan.for_scan_user {
        nix::unistd::fchown(dir.as_raw_fd(), Some(uid), Some(gid)).map_err(|e| {
            anyhow::anyhow!(
                "cannot give the resume file's directory to user {}: {e}",
                who.name
            )
        })?;
    }
    let fail = |what: &str, e: nix::Error| {
        anyhow::anyhow!("cannot drop root ({what}): {e}; use --keep-privileges to scan as root")
    };
    match CString::new(who.name.clone()) {
        Ok(name) if who.name.parse::<u32>().is_err() => {
            nix::unistd::initgroups(&name, gid).map_err(|e| fail("supplementary groups", e))?
        }
        _ => nix::unistd::setgroups(&[gid]).map_err(|e| fail("supplementary groups", e))?,
    }
    // glibc applies these to every thread of the process.
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    // Leaving uid 0 clears the capability sets; make sure of it.
    clear_capabilities()?;
    if nix::unistd::geteuid().is_root() || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        anyhow::bail!("dropping root did not take effect; refusing to go on");
    }
    Ok(who)
}

/// Clears the calling thread's capabilities unless the process is root.
/// Capabilities belong to each thread: started through `setcap`, a thread
/// that exists when [`drop_privileges`] clears the main thread's would keep
/// its own, so every thread started before then calls this first (none of
/// them needs a capability: their sockets are opened for them). As root
/// they keep theirs until the drop changes every thread's uid, which
/// clears them; a thread without CAP_SETUID would make that change fail.
pub fn shed_thread_capabilities() {
    if !nix::unistd::geteuid().is_root() {
        let _ = clear_capabilities();
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Empties the effective, permitted and inheritable sets and the ambient set.
fn clear_capabilities() -> anyhow::Result<()> {
    // SAFETY: prctl with constant arguments; failure (old kernel) is harmless.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and two data structs as the v3 ABI requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "cannot clear capabilities: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_user_is_preferred_over_nobody() {
        let who = target_identity(Some("4321"), Some("8765")).unwrap();
        assert_eq!((who.uid, who.gid), (4321, 8765));
        // sudo from root itself, or garbage, means nobody.
        for (uid, gid) in [(Some("0"), Some("0")), (Some("x"), None), (None, None)] {
            let who = target_identity(uid, gid).unwrap();
            assert_eq!(who.name, "nobody");
            assert_ne!(who.uid, 0);
        }
    }
}
