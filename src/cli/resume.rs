//! Resume files: what an interrupted scan leaves so that
//! `flagscan --resume FILE` can finish it.
//!
//! A resume file is one JSON object:
//!
//! ```json
//! {"flagscan_resume":3,"args":["-sS","-p","1-1000","10.0.0.2","-oJ","a.jsonl"],
//!  "cwd":"/home/me","seed":1234,"probes":2000,"decided_count":1501,
//!  "decided":[[0,1480],[1482,1503]],"digest":"6c1f...e2"}
//! ```
//!
//! - `args`: the command line without the program name, `--resume` and
//!   `--resume-file` (they name files, not the scan); re-parsed on resume, so
//!   the same options, targets, ports and techniques apply.
//! - `cwd`: the directory the scan ran in; the resumed scan runs there, so
//!   relative paths in `args` name the same files.
//! - `seed`: the seed actually used (drawn at random when `--seed` was not
//!   given): the same cookies, source ports and probe order.
//! - `probes`: hosts x ports x techniques, checked on resume so that
//!   arguments that now mean another scan (a host name resolving elsewhere)
//!   are refused.
//! - `decided`: positions in the seeded probe order whose probe is concluded,
//!   as `[start, end)` pairs, sorted and disjoint. The scan walks that order
//!   from the start, so an interrupted scan's decided set is a prefix with
//!   holes only where probes were in flight: a few ranges at most a window
//!   long, where a list of indices (or a bitmap) would grow with the scan.
//! - `digest`: [`scan_digest`] of the scan (arguments, directory, resolved
//!   targets and ports, techniques, seed), recomputed and compared on
//!   resume, so that an edited file cannot finish another scan into the
//!   first one's outputs.
//!
//! The seed determines the cookie key, so the file is created readable by
//! its owner only.

use std::fs::File;
use std::io::{Seek, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::usage;
use crate::model::probe::ProbeSpace;
use crate::model::technique::Technique;
use crate::sys::files::{create_unique_dir, open_write, Existing};

/// The format version written to and accepted from `flagscan_resume`
/// (2: with `digest`; 3: the digest hashes the targets as runs).
pub const FORMAT: u32 = 3;
/// Where an interrupted scan writes its resume file without `--resume-file`
/// (but see [`default_path`]).
pub const DEFAULT_PATH: &str = "flagscan.resume";

/// The resume file without `--resume-file`: [`DEFAULT_PATH`] in the working
/// directory, or `None` when the user the scan will run as could not remove
/// it from there once the scan finishes (root giving up its rights to
/// `nobody` in a root-owned directory): then [`ResumeSink::create_temp`]
/// makes one in the temporary directory. The file is created before root
/// is given up and removed when the scan finishes, so either way a finished
/// scan leaves nothing. `dropping`: root will be given up.
pub fn default_path(dropping: bool) -> Option<PathBuf> {
    scan_user_may_write(Path::new("."), dropping).then(|| PathBuf::from(DEFAULT_PATH))
}

/// Whether the user the scan will run as may create and remove files in
/// `dir` (by its permission bits; ACLs aside).
fn scan_user_may_write(dir: &Path, dropping: bool) -> bool {
    use nix::unistd::{AccessFlags, Gid};
    use std::os::unix::fs::MetadataExt;
    if !dropping || !nix::unistd::geteuid().is_root() {
        return nix::unistd::access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
    }
    let Ok(who) = crate::sys::privilege::target_identity(
        std::env::var("SUDO_UID").ok().as_deref(),
        std::env::var("SUDO_GID").ok().as_deref(),
    ) else {
        return false;
    };
    // The groups the drop gives it (see privilege::drop_privileges).
    let groups: Vec<u32> = std::ffi::CString::new(who.name.clone())
        .ok()
        .filter(|_| who.name.parse::<u32>().is_err())
        .and_then(|name| nix::unistd::getgrouplist(&name, Gid::from_raw(who.gid)).ok())
        .map_or_else(|| vec![who.gid], |g| g.iter().map(|g| g.as_raw()).collect());
    std::fs::metadata(dir)
        .is_ok_and(|m| may_write_dir(who.uid, &groups, m.uid(), m.gid(), m.mode()))
        && nix::unistd::access(dir, AccessFlags::W_OK).is_ok()
}

/// Whether a user (`uid` in `groups`) may create and remove files in a
/// directory with this owner, group and mode, by the permission bits.
pub fn may_write_dir(uid: u32, groups: &[u32], owner: u32, group: u32, mode: u32) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if uid == owner {
        mode >> 6
    } else if groups.contains(&group) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeFile {
    /// Identifies the file and its format version ([`FORMAT`]).
    pub flagscan_resume: u32,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub seed: u64,
    pub probes: u64,
    /// How many probes `decided` covers (for people reading the file).
    pub decided_count: u64,
    pub decided: Vec<[u64; 2]>,
    /// [`scan_digest`] of the interrupted scan: a resumed scan whose
    /// arguments now mean another scan is refused.
    pub digest: String,
}

/// What a scan is, in 32 hex digits: its arguments and directory, the
/// addresses and ports they resolved to, its techniques and its seed. An
/// edited resume file, or a target list or host name that now says
/// something else, gives another digest. (A check against mistakes, not a
/// signature: whoever may edit the file may recompute it.)
pub fn scan_digest(
    args: &[String],
    cwd: &Path,
    seed: u64,
    space: &ProbeSpace,
    techniques: &[Technique],
) -> String {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut h = SipHasher13::new();
    for a in args {
        h.write(a.as_bytes());
        h.write_u8(0);
    }
    h.write(cwd.as_os_str().as_encoded_bytes());
    h.write_u8(0);
    h.write_u64(seed);
    h.write_u64(space.hosts.len() as u64);
    // Runs are merged as far as they go, so one list of hosts has one
    // set of runs: a /8 is hashed in one step, not 16 million.
    for (first, count, _) in space.hosts.runs() {
        match first {
            std::net::IpAddr::V4(v4) => h.write(&v4.octets()),
            std::net::IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.write_u64(count);
    }
    h.write_u64(space.ports.len() as u64);
    for port in &space.ports {
        h.write_u16(*port);
    }
    for t in techniques {
        h.write(t.name.as_bytes());
        h.write_u8(0);
        h.write_u8(t.flags);
    }
    format!("{:032x}", h.finish128().as_u128())
}

impl ResumeFile {
    pub fn new(
        args: Vec<String>,
        cwd: PathBuf,
        seed: u64,
        probes: u64,
        decided: &[Range<u64>],
        digest: String,
    ) -> ResumeFile {
        ResumeFile {
            digest,
            flagscan_resume: FORMAT,
            args,
            cwd,
            seed,
            probes,
            decided_count: decided.iter().map(|r| r.end - r.start).sum(),
            decided: decided.iter().map(|r| [r.start, r.end]).collect(),
        }
    }

    /// The decided positions, as the tracker takes them.
    pub fn decided_ranges(&self) -> Vec<Range<u64>> {
        self.decided.iter().map(|[a, b]| *a..*b).collect()
    }

    /// One line of JSON; fails only for a working directory that is not
    /// UTF-8.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let mut s = serde_json::to_string(self)?;
        s.push('\n');
        Ok(s)
    }

    /// Parses and checks a resume file's text; the error says what is wrong.
    pub fn parse(text: &str) -> Result<ResumeFile, String> {
        if text.trim().is_empty() {
            return Err(
                "it is empty: the scan that made it finished, or quit at once before writing it"
                    .into(),
            );
        }
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        match v.get("flagscan_resume").and_then(|f| f.as_u64()) {
            Some(f) if f == FORMAT as u64 => {}
            Some(f) => {
                return Err(format!(
                    "format version {f}, this flagscan reads version {FORMAT}"
                ))
            }
            None => return Err("not a flagscan resume file (no \"flagscan_resume\")".into()),
        }
        let rf: ResumeFile = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let mut end = 0;
        for (i, [a, b]) in rf.decided.iter().enumerate() {
            if a >= b || (i > 0 && *a <= end) || *b > rf.probes {
                return Err(format!(
                    "decided range [{a},{b}) is empty, out of order or past the {} probes",
                    rf.probes
                ));
            }
            end = *b;
        }
        let count: u64 = rf.decided.iter().map(|[a, b]| b - a).sum();
        if count != rf.decided_count {
            return Err(format!(
                "decided_count is {} but the ranges hold {count}",
                rf.decided_count
            ));
        }
        Ok(rf)
    }

    /// Reads a resume file; a missing, malformed or oversized one is a
    /// usage error naming the path, and so is, for root, one that neither
    /// root nor the `sudo` user owns: its arguments would run as root.
    pub fn load(path: &Path) -> anyhow::Result<ResumeFile> {
        use std::io::Read;
        let fail = |e: String| usage(format!("cannot read resume file {}: {e}", path.display()));
        // A private directory of the temporary directory is the scan
        // user's, who could put a link to another directory (with another
        // scan's resume file) in its place: links are not followed there.
        let linked = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .is_some_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_symlink()));
        if linked {
            return Err(fail(
                "its directory is a symbolic link; name the file by its real path".into(),
            ));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        if !owner_trusted(&file) {
            return Err(fail(
                "it belongs to another user, and its arguments would run as root".into(),
            ));
        }
        let mut text = String::new();
        file.take(MAX_RESUME_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| fail(e.to_string()))?;
        if text.len() as u64 > MAX_RESUME_BYTES {
            return Err(fail(format!("larger than {} MiB", MAX_RESUME_BYTES >> 20)));
        }
        ResumeFile::parse(&text)
            .map_err(|why| usage(format!("bad resume file {}: {why}", path.display())))
    }
}

/// The largest resume file read: its ranges are a handful, its arguments a
/// command line.
const MAX_RESUME_BYTES: u64 = 4 << 20;

/// Whether root may trust a file: owned by root or the `sudo` user (or
/// anything, when not root).
fn owner_trusted(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    let sudo = std::env::var("SUDO_UID")
        .ok()
        .and_then(|u| u.parse::<u32>().ok());
    file.metadata()
        .is_ok_and(|m| m.uid() == 0 || Some(m.uid()) == sudo)
}

/// Whether `path` is absent, or a file this user (or, for root, the
/// `sudo` user) owns: the default resume name is reused only then.
pub fn ours_or_absent(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => true,
        Ok(m) => {
            let me = nix::unistd::geteuid().as_raw();
            let sudo = std::env::var("SUDO_UID")
                .ok()
                .and_then(|u| u.parse::<u32>().ok());
            m.is_file() && (m.uid() == me || Some(m.uid()) == sudo)
        }
    }
}

/// The arguments a resume file keeps: `raw` without the program name and
/// without `--resume` / `--resume-file` and their values.
pub fn saved_args(raw: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = raw.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--resume" | "--resume-file" => {
                it.next();
            }
            s if s.starts_with("--resume=") || s.starts_with("--resume-file=") => {}
            // Everything after `--` is a positional argument (a target).
            "--" => {
                out.push(arg.clone());
                out.extend(it.by_ref().cloned());
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// The resume file of a running scan: created (or opened) before root is
/// given up, written only if the scan is interrupted.
pub struct ResumeSink {
    pub path: PathBuf,
    file: File,
    /// This run created the file (it did not exist before).
    pub created: bool,
    /// The private directory this run made for the file
    /// ([`ResumeSink::create_temp`]), and its handle.
    dir: Option<(PathBuf, File)>,
}

impl ResumeSink {
    /// Opens `path` for writing without truncating it (an existing resume
    /// file is replaced only if this scan is interrupted too), never
    /// through a symbolic link.
    pub fn open(path: &Path) -> anyhow::Result<ResumeSink> {
        let opened = open_write(path, "--resume-file", Existing::Keep, 0o600)?;
        Ok(ResumeSink {
            path: path.to_path_buf(),
            file: opened.file,
            created: opened.created,
            dir: None,
        })
    }

    /// Creates a resume file in a directory of its own, under a name no
    /// one can guess, in the temporary directory
    /// (`$TMPDIR/flagscan-PID-RANDOM/scan.resume`). The file stays root's;
    /// the directory goes to the user the scan runs as
    /// ([`ResumeSink::dir_handle`]), who can then remove the file once the
    /// scan is done, which the sticky temporary directory forbids. Another
    /// process of that user could replace the file, but not write to it:
    /// `--resume` refuses a file root does not own.
    pub fn create_temp() -> std::io::Result<ResumeSink> {
        let (dir, handle) = create_unique_dir(&std::env::temp_dir(), "flagscan-")?;
        let path = dir.join("scan.resume");
        // In the directory just made (its handle), not by path: where the
        // temporary directory is not sticky, the path could be swapped.
        use std::os::fd::{AsRawFd, FromRawFd};
        let fd = nix::fcntl::openat(
            Some(handle.as_raw_fd()),
            "scan.resume",
            nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_EXCL
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(std::io::Error::from)?;
        // SAFETY: `fd` was just opened by openat and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        Ok(ResumeSink {
            path,
            file,
            created: true,
            dir: Some((dir, handle)),
        })
    }

    /// The directory [`ResumeSink::create_temp`] made, to be given to the
    /// user the scan runs as.
    pub fn dir_handle(&self) -> Option<File> {
        self.dir.as_ref().and_then(|(_, h)| h.try_clone().ok())
    }

    /// The file, if this run created it (to be given to another user).
    pub fn created_handle(&self) -> Option<File> {
        self.created.then(|| self.file.try_clone().ok()).flatten()
    }

    /// Replaces the file's contents with `rf`, through the descriptor opened
    /// before root was given up.
    pub fn write(&mut self, rf: &ResumeFile) -> anyhow::Result<()> {
        let fail = |e: std::io::Error| {
            anyhow::anyhow!("cannot write resume file {}: {e}", self.path.display())
        };
        self.file.set_len(0).map_err(fail)?;
        self.file.rewind().map_err(fail)?;
        let text = rf.to_json().map_err(|e| {
            anyhow::anyhow!("cannot write resume file {}: {e}", self.path.display())
        })?;
        self.file.write_all(text.as_bytes()).map_err(fail)?;
        self.file.sync_all().map_err(fail)
    }

    /// The scan finished: a file this run created is removed, as is the
    /// one it resumed from (`consumed`), so that resuming again cannot scan
    /// twice. When the directory no longer lets us remove it (root given
    /// up), it is emptied instead, which `--resume` refuses.
    pub fn finish(self, consumed: bool) {
        if !(self.created || consumed) {
            return;
        }
        if std::fs::remove_file(&self.path).is_err() {
            let _ = self.file.set_len(0);
            return;
        }
        // Its private directory goes too: the one this run made, or (a
        // file resumed from) the one an earlier run made, if empty.
        let dir = match &self.dir {
            Some((dir, _)) => Some(dir.clone()),
            None => self
                .path
                .parent()
                .filter(|p| {
                    self.path.file_name() == Some(std::ffi::OsStr::new("scan.resume"))
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("flagscan-"))
                })
                .map(Path::to_path_buf),
        };
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResumeFile {
        ResumeFile::new(
            vec!["-sS".into(), "-p".into(), "1-100".into(), "10.0.0.2".into()],
            PathBuf::from("/tmp"),
            0xdead_beef_1234,
            100,
            &[0..40, 42..43, 50..51],
            "0".repeat(32),
        )
    }

    /// A resume file reached through a linked directory (the scan user's
    /// private directory replaced by a link to another) is refused.
    #[test]
    fn a_resume_file_behind_a_linked_directory_is_refused() {
        let base = std::env::temp_dir().join(format!("flagscan-linkdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let real = base.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("scan.resume"), sample().to_json().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
        assert!(ResumeFile::load(&real.join("scan.resume")).is_ok());
        let e = ResumeFile::load(&base.join("link").join("scan.resume")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_resume_file_round_trips() {
        let rf = sample();
        assert_eq!(rf.decided_count, 42);
        let back = ResumeFile::parse(&rf.to_json().unwrap()).unwrap();
        assert_eq!(back, rf);
        assert_eq!(back.decided_ranges(), vec![0..40, 42..43, 50..51]);
        // Through a file, as the scan writes it: a shorter second write
        // replaces the first entirely.
        let path = std::env::temp_dir().join(format!("flagscan-resume-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut sink = ResumeSink::open(&path).unwrap();
        assert!(sink.created);
        sink.write(&rf).unwrap();
        let short = ResumeFile::new(vec![], PathBuf::from("/"), 1, 1, &[], String::new());
        sink.write(&short).unwrap();
        assert_eq!(ResumeFile::load(&path).unwrap(), short);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the seed is a secret: {mode:o}");
        // Reopening an existing file keeps it until written; finishing a
        // run that did not create it leaves it alone unless it was consumed.
        let again = ResumeSink::open(&path).unwrap();
        assert!(!again.created);
        again.finish(false);
        assert_eq!(ResumeFile::load(&path).unwrap(), short);
        ResumeSink::open(&path).unwrap().finish(true);
        assert!(!path.exists());
    }

    #[test]
    fn malformed_resume_files_are_usage_errors_naming_the_path() {
        let good = sample().to_json().unwrap();
        let dir = std::env::temp_dir();
        let cases = [
            ("", "empty"),
            ("{", "not JSON"),
            ("{\"args\":[]}", "not a flagscan resume file"),
            (
                &good.replace("\"flagscan_resume\":3", "\"flagscan_resume\":9"),
                "version 9",
            ),
            (
                &good.replace("\"flagscan_resume\":3", "\"flagscan_resume\":1"),
                "version 1",
            ),
            (&good.replace("\"digest\":", "\"dig\":"), "digest"),
            (&good.replace("[42,43]", "[43,42]"), "decided range"),
            (&good.replace("[50,51]", "[50,101]"), "past the 100"),
            (&good.replace("[42,43]", "[30,43]"), "out of order"),
            (
                &good.replace("\"decided_count\":42", "\"decided_count\":7"),
                "decided_count",
            ),
            (&good.replace("\"seed\":", "\"sed\":"), "seed"),
        ];
        for (i, (text, why)) in cases.iter().enumerate() {
            let path = dir.join(format!("flagscan-bad-resume-{}-{i}", std::process::id()));
            std::fs::write(&path, text).unwrap();
            let err = ResumeFile::load(&path).unwrap_err();
            let msg = format!("{err:#}");
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(why), "case {i}: {msg}");
            std::fs::remove_file(&path).unwrap();
        }
        let missing = dir.join("flagscan-no-such-resume-file");
        let err = ResumeFile::load(&missing).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(format!("{err:#}").contains("flagscan-no-such-resume-file"));
    }

    #[test]
    fn directory_permissions_decide_where_the_default_resume_file_goes() {
        // Owner, group and others, each needing write and search.
        assert!(may_write_dir(1000, &[1000], 1000, 1000, 0o755));
        assert!(!may_write_dir(1000, &[1000], 1000, 1000, 0o555));
        assert!(!may_write_dir(65534, &[65534], 0, 0, 0o755));
        assert!(may_write_dir(65534, &[65534], 0, 0, 0o1777));
        assert!(may_write_dir(1000, &[1000, 27], 0, 27, 0o775));
        assert!(!may_write_dir(1000, &[1000], 0, 27, 0o775));
        // The owner's bits apply to the owner even when others may write.
        assert!(!may_write_dir(1000, &[1000], 1000, 0, 0o577));
        assert!(may_write_dir(0, &[0], 1000, 1000, 0o700));
        // Without a drop, this process's own rights decide.
        let here = default_path(false);
        let writable = nix::unistd::access(
            ".",
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .is_ok();
        assert_eq!(
            here.as_deref() == Some(Path::new(DEFAULT_PATH)),
            writable,
            "{here:?}"
        );
    }

    #[test]
    fn the_digest_changes_with_anything_that_defines_the_scan() {
        let syn = crate::model::technique::builtin_by_name("syn").unwrap();
        let fin = crate::model::technique::builtin_by_name("fin").unwrap();
        use crate::model::scanflags::custom;
        use crate::wire::flag::{FIN, SYN};
        let host = |last| std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, last));
        let space = |h: u8, ports: Vec<u16>| ProbeSpace::new(vec![host(2), host(h)], ports, 1);
        let args: Vec<String> = vec!["-p".into(), "22,80".into(), "10.0.0.2-3".into()];
        let cwd = Path::new("/tmp");
        let d = |args: &[String], cwd: &Path, seed, sp: &ProbeSpace, t: &Technique| {
            scan_digest(args, cwd, seed, sp, std::slice::from_ref(t))
        };
        let base = d(&args, cwd, 7, &space(3, vec![22, 80]), &syn);
        assert_eq!(base.len(), 32);
        assert_eq!(
            base,
            d(&args, cwd, 7, &space(3, vec![80, 22]), &syn),
            "ports are a set"
        );
        let other_args: Vec<String> = vec!["-p".into(), "22,80".into(), "10.0.0.2,4".into()];
        let changed = [
            d(&other_args, cwd, 7, &space(3, vec![22, 80]), &syn),
            d(&args, Path::new("/"), 7, &space(3, vec![22, 80]), &syn),
            d(&args, cwd, 8, &space(3, vec![22, 80]), &syn),
            d(&args, cwd, 7, &space(4, vec![22, 80]), &syn),
            d(&args, cwd, 7, &space(3, vec![22, 81]), &syn),
            d(&args, cwd, 7, &space(3, vec![22, 80]), &fin),
            // --scanflags: another scan than its base's, and than other flags'.
            d(&args, cwd, 7, &space(3, vec![22, 80]), &custom(&syn, SYN)),
            d(
                &args,
                cwd,
                7,
                &space(3, vec![22, 80]),
                &custom(&syn, SYN | FIN),
            ),
            d(&args, cwd, 7, &space(3, vec![22, 80]), &custom(&fin, SYN)),
        ];
        let mut distinct: Vec<&String> = changed.iter().chain([&base]).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), changed.len() + 1);
    }

    #[test]
    fn saved_args_leave_out_the_resume_options() {
        let raw: Vec<String> = [
            "flagscan",
            "-sS",
            "--resume-file",
            "R",
            "-p",
            "1-10",
            "--resume-file=S",
            "10.0.0.2",
            "-oJ",
            "a.jsonl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            saved_args(&raw),
            ["-sS", "-p", "1-10", "10.0.0.2", "-oJ", "a.jsonl"]
        );
        let raw: Vec<String> = ["flagscan", "--resume", "R", "--", "--resume-file"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(saved_args(&raw), ["--", "--resume-file"]);
    }
}
