//! The files flagscan writes while it may still be root (`-oJ`, `--pcap`,
//! the resume file). A path named on the command line may have been planted
//! by someone else: a symbolic link is never followed, a file is created new
//! where it can be, and only a file this run created may later be given to
//! another user, through its descriptor ([`crate::sys::privilege`]).

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::usage;

/// How an existing file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Emptied first (a new output).
    Truncate,
    /// Written at its end (`--resume` adds to the interrupted run's files).
    Append,
    /// Left as it is until written (the resume file, replaced only on an
    /// interrupt).
    Keep,
}

/// A file opened for writing.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    /// Made by this run (`O_EXCL`): the only kind whose owner flagscan may
    /// change.
    pub created: bool,
}

impl Opened {
    /// A second descriptor of the file, if this run created it: what a
    /// change of owner goes through.
    pub fn created_handle(&self) -> Option<File> {
        self.created.then(|| self.file.try_clone().ok()).flatten()
    }
}

/// Opens `path` for writing with `mode` for a new file, never through a
/// symbolic link: first as a new file, else as the existing one. `what`
/// names the option in messages (`-oJ file`).
pub fn open_write(
    path: &Path,
    what: &str,
    existing: Existing,
    mode: u32,
) -> anyhow::Result<Opened> {
    // The process's own descriptors (`-oJ /dev/stdout`, a shell's `>(jq .)`)
    // are links by nature, and name nothing anyone else planted.
    if is_own_descriptor(path) {
        let file = OpenOptions::new()
            .write(true)
            .append(existing == Existing::Append)
            .open(path)
            .map_err(|e| usage(format!("cannot write {what} {}: {e}", path.display())))?;
        return Ok(Opened {
            file,
            created: false,
        });
    }
    let fail = |e: io::Error| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            usage(format!(
                "refusing to write {what} {}: it is a symbolic link, and flagscan never \
                 follows one for a file it writes (name the real file, or - for stdout)",
                path.display()
            ))
        } else {
            usage(format!("cannot write {what} {}: {e}", path.display()))
        }
    };
    let mut new = OpenOptions::new();
    new.write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW);
    if existing == Existing::Append {
        new.append(true);
    }
    match new.open(path) {
        Ok(file) => {
            return Ok(Opened {
                file,
                created: true,
            })
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e)),
    }
    let mut old = OpenOptions::new();
    old.write(true).custom_flags(libc::O_NOFOLLOW);
    match existing {
        Existing::Truncate => {
            old.truncate(true);
        }
        Existing::Append => {
            old.append(true);
        }
        Existing::Keep => {}
    }
    let file = old.open(path).map_err(fail)?;
    Ok(Opened {
        file,
        created: false,
    })
}

/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`.
fn is_own_descriptor(path: &Path) -> bool {
    let Some(p) = path.to_str() else {
        return false;
    };
    let fd = |prefix: &str| {
        p.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(p, "/dev/stdout" | "/dev/stderr") || fd("/dev/fd/") || fd("/proc/self/fd/")
}

/// Creates a new directory (mode 0700) under a name no one can guess in
/// `dir` (`{prefix}PID-RANDOM`), and opens it, never through a link: the
/// handle lets its owner be changed without a path.
pub fn create_unique_dir(dir: &Path, prefix: &str) -> io::Result<(PathBuf, File)> {
    use std::os::unix::fs::DirBuilderExt;
    let mut last = io::Error::from(ErrorKind::AlreadyExists);
    for _ in 0..16 {
        let name = format!(
            "{prefix}{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = dir.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {
                let handle = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                    .open(&path)?;
                return Ok((path, handle));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Whether two paths name the same file, however spelled: the same device
/// and inode when both exist, else the same absolute path once the
/// directories are resolved. `-` (stdout) is only itself.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let dash = |p: &Path| p.as_os_str() == "-";
    if dash(a) || dash(b) {
        return dash(a) && dash(b);
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        // Only files hold what was written: two outputs on /dev/null do
        // not collide.
        (Ok(x), Ok(y)) => x.is_file() && x.dev() == y.dev() && x.ino() == y.ino(),
        _ => match (resolved(a), resolved(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// `p` with its directory resolved (symbolic links, `..`), its last part
/// kept as it is: the file it would name if created.
fn resolved(p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flagscan-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symbolic_link_is_refused_and_its_target_untouched() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.join("out.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for how in [Existing::Truncate, Existing::Append, Existing::Keep] {
            let err = open_write(&link, "-oJ file", how, 0o644).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
            assert!(format!("{err}").contains("symbolic link"), "{err}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_a_new_file_counts_as_created() {
        let dir = scratch("created");
        let path = dir.join("out");
        let mut first = open_write(&path, "-oJ file", Existing::Truncate, 0o600).unwrap();
        assert!(first.created && first.created_handle().is_some());
        first.file.write_all(b"abc").unwrap();
        let again = open_write(&path, "-oJ file", Existing::Append, 0o600).unwrap();
        assert!(!again.created && again.created_handle().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"abc", "appending keeps it");
        open_write(&path, "-oJ file", Existing::Truncate, 0o600).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"",
            "a new output empties it"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unique_directories_differ_and_are_private() {
        let dir = scratch("unique");
        let (a, _) = create_unique_dir(&dir, "flagscan-").unwrap();
        let (b, handle) = create_unique_dir(&dir, "flagscan-").unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(handle.metadata().unwrap().is_dir());
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("flagscan-{}-", std::process::id())),
            "{name}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_same_file_is_found_however_spelled() {
        let dir = scratch("same");
        let f = dir.join("a.jsonl");
        std::fs::write(&f, b"").unwrap();
        let dotted = dir.join(".").join("a.jsonl");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(same_file(&f, &dotted));
        assert!(same_file(&f, &link));
        let missing = dir.join("new.pcap");
        let up = dir.join("sub").join("..").join("new.pcap");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        assert!(same_file(&missing, &up));
        assert!(!same_file(&f, &missing));
        assert!(same_file(Path::new("-"), Path::new("-")));
        assert!(!same_file(Path::new("-"), &f));
        let _ = std::fs::remove_dir_all(dir);
    }
}
