//! Files a user or an attacker controls: outputs planted as symbolic links,
//! files that already exist, outputs that would overwrite each other or an
//! input. Root tests: flagscan creates its outputs as root.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flagscan-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A one-port scan of loopback as `sudo` would start it, for user 4321.
fn as_sudo(dir: &Path, args: &[&str]) -> Output {
    Command::new(flagscan_bin())
        .current_dir(dir)
        .args(["-p", "1", "127.0.0.1"])
        .args(args)
        .env("SUDO_UID", "4321")
        .env("SUDO_GID", "4321")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Root's private file, as a victim.
fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("victim");
    std::fs::write(&v, b"root's secret\n").unwrap();
    std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
    v
}

fn assert_untouched(v: &Path) {
    let m = std::fs::metadata(v).unwrap();
    assert_eq!(std::fs::read(v).unwrap(), b"root's secret\n");
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
}

#[test]
fn outputs_planted_as_symbolic_links_are_refused() {
    if !have_root("outputs_planted_as_symbolic_links_are_refused") {
        return;
    }
    let _serial = serial();
    let dir = scratch("links");
    let v = victim(&dir);
    std::os::unix::fs::symlink(&v, dir.join("link")).unwrap();
    for option in ["-oJ", "--pcap", "--resume-file"] {
        let out = as_sudo(&dir, &[option, "link"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{option}: {err}");
        assert!(
            err.contains("symbolic link") && err.contains("link"),
            "{option}: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{option}: one line: {err}"
        );
        assert_untouched(&v);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_that_existed_keeps_its_owner_and_mode() {
    if !have_root("a_file_that_existed_keeps_its_owner_and_mode") {
        return;
    }
    let _serial = serial();
    let dir = scratch("existing");
    let v = victim(&dir);
    let out = as_sudo(&dir, &["-oJ", "victim"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = std::fs::metadata(&v).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o777),
        (0, 0o600),
        "written as asked, but not given away"
    );
    assert!(std::fs::read_to_string(&v)
        .unwrap()
        .contains("\"type\":\"stats\""));
    // A file this run creates is the sudo user's.
    let out = as_sudo(&dir, &["-oJ", "new.jsonl", "--pcap", "new.pcap"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in ["new.jsonl", "new.pcap"] {
        assert_eq!(std::fs::metadata(dir.join(f)).unwrap().uid(), 4321, "{f}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn outputs_that_collide_are_refused_however_spelled() {
    if !have_root("outputs_that_collide_are_refused_however_spelled") {
        return;
    }
    let _serial = serial();
    let dir = scratch("collide");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("targets.txt"), "127.0.0.1\n").unwrap();
    std::fs::write(dir.join("out"), b"earlier results\n").unwrap();
    std::os::unix::fs::symlink(dir.join("out"), dir.join("alias")).unwrap();
    let cases: &[&[&str]] = &[
        &["-oJ", "out", "--resume-file", "out"],
        &["-oJ", "out", "--pcap", "./out"],
        &["-oJ", "sub/../out", "--pcap", "out"],
        &["-oJ", "new", "--pcap", "sub/../new"],
        &["-oJ", "alias", "--resume-file", "out"],
        &["-oJ", "-", "--pcap", "-"],
        &["-iL", "targets.txt", "-oJ", "./targets.txt"],
    ];
    for args in cases {
        let out = as_sudo(&dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(
            std::fs::read(dir.join("out")).unwrap(),
            b"earlier results\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("targets.txt")).unwrap(),
            "127.0.0.1\n"
        );
        assert!(!dir.join("new").exists(), "{args:?}: nothing created");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_full_disk_names_the_file_and_the_report_still_prints() {
    if !have_root("a_full_disk_names_the_file_and_the_report_still_prints") {
        return;
    }
    let _serial = serial();
    let out = flagscan(&["-p", "1-3", "127.0.0.1", "-oJ", "/dev/full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/full") && err.contains("No space left"),
        "{err}"
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("flagscan report for 127.0.0.1"), "{report}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_closed_stdout_stops_the_scan_within_a_second() {
    if !have_root("a_closed_stdout_stops_the_scan_within_a_second") {
        return;
    }
    let _serial = serial();
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = scratch("stdout");
    // 65,535 probes at 2,000 a second: half a minute, if nothing stops it.
    let mut child = Command::new(flagscan_bin())
        .current_dir(&dir)
        .args(["-p-", "--max-rate", "2000", "--packet-trace", "127.0.0.1"])
        .args(["-oJ", "out.jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader takes one line and leaves, as `| head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("SENT"), "{first}");
    let closed = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let waited = closed.elapsed();
    let err = stderr(&out);
    assert!(
        waited < std::time::Duration::from_secs(1),
        "{waited:?}: {err}"
    );
    assert_eq!(out.status.code(), Some(3), "stopped as an interrupt: {err}");
    assert!(err.contains("stdout was closed"), "{err}");
    // The other outputs are whole: JSON up to its stats record, a resume file.
    let json = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert!(json
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .contains("\"interrupted\":true"));
    assert!(dir.join("flagscan.resume").exists(), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_closed_stderr_and_stdout_pipe_aborts_nothing_and_own_descriptors_are_outputs() {
    if !have_root("a_closed_stderr_and_stdout_pipe_aborts_nothing_and_own_descriptors_are_outputs")
    {
        return;
    }
    let _serial = serial();
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = scratch("stderr");
    // `2>&1 | head -1`: stdout and stderr are one pipe whose reader leaves.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new(flagscan_bin())
        .current_dir(&dir)
        .args([
            "-p",
            "1-3000",
            "--max-rate",
            "3000",
            "--packet-trace",
            "127.0.0.1",
        ])
        .args(["-oJ", "out.jsonl"])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(reader).read_line(&mut first).unwrap();
    let status = child.wait().unwrap();
    assert_ne!(
        status.code(),
        None,
        "not killed by a signal (abort): {status:?}"
    );
    assert_eq!(status.code(), Some(3), "stopped as an interrupt");
    let json = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert!(json.contains("\"type\":\"stats\""), "the JSON is whole");
    // The process's own descriptors are outputs, not planted links.
    let out = Command::new(flagscan_bin())
        .args([
            "-p",
            "1",
            "127.0.0.1",
            "-oJ",
            "/dev/stdout",
            "--pcap",
            "/dev/null",
        ])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"type\":\"stats\""));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn root_refuses_a_resume_file_another_user_owns() {
    if !have_root("root_refuses_a_resume_file_another_user_owns") {
        return;
    }
    let dir = scratch("foreign-resume");
    let r = dir.join("r.resume");
    std::fs::write(&r, b"{}").unwrap();
    std::os::unix::fs::chown(&r, Some(4321), Some(4321)).unwrap();
    let out = Command::new(flagscan_bin())
        .args(["--resume", r.to_str().unwrap()])
        .env_remove("SUDO_UID")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another user"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Run as plain root from a directory `nobody` cannot write, the default
/// resume file goes to a directory of its own in the temporary directory:
/// a finished scan leaves nothing there; an interrupted one leaves root's
/// 0600 file in a directory given to `nobody`, and resuming it removes
/// both. (Before, every such scan left an empty file behind.)
#[test]
fn plain_roots_temporary_resume_file_leaves_nothing_behind() {
    if !have_root("plain_roots_temporary_resume_file_leaves_nothing_behind") {
        return;
    }
    let _serial = serial();
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = scratch("tmpresume");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(flagscan_bin());
        c.current_dir(&dir)
            .env("TMPDIR", &tmp)
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .args(args);
        c
    };
    let left = || std::fs::read_dir(&tmp).unwrap().count();
    let out = run(&["-p", "1", "127.0.0.1"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(left(), 0, "a finished scan leaves nothing");

    // Interrupted (its stdout closed, as `| head -1` does).
    let mut child = run(&["-p-", "--max-rate", "20000", "--packet-trace", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let made: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let file = made[0].join("scan.resume");
    let (d, f) = (
        std::fs::metadata(&made[0]).unwrap(),
        std::fs::metadata(&file).unwrap(),
    );
    assert_ne!(d.uid(), 0, "the directory is the scan user's");
    assert_eq!((f.uid(), f.mode() & 0o777), (0, 0o600), "the file root's");
    assert!(f.len() > 10, "a resume file");
    assert!(
        stderr(&out).contains(file.to_str().unwrap()),
        "{}",
        stderr(&out)
    );

    let out = run(&["--resume", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        left(),
        0,
        "the resumed scan removed the file and its directory"
    );
    let _ = std::fs::remove_dir_all(dir);
}
