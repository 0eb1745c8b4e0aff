//! Interruption and resume: Ctrl-C stops a scan, every output is written
//! and well-formed, a resume file says how to finish, and `--resume`
//! finishes it so that both runs' records together equal an uninterrupted
//! scan's. A second Ctrl-C quits at once. (Root: lab scans.)

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

const WEB: &str = "10.213.1.2";
/// rst over IPv6: a resumed scan keeps both families.
const RST: &str = "fd00:213:1::3";
/// 2 hosts (web over IPv4, rst over IPv6) x 20000 ports x 2 techniques.
const PROBES: usize = 80_000;
/// Exit codes (README): interrupted with a resume file; quit at once.
const EXIT_INTERRUPTED: i32 = 3;
const EXIT_KILLED: i32 = 130;

/// At 20000 probes/s the scan lasts about 4 s: long enough to interrupt.
fn scan_args(ns: &str, json: &Path, resume: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "--netns",
        ns,
        "-sS",
        "-sF",
        "-p",
        "1-20000",
        "--max-rate",
        "20000",
        WEB,
        RST,
        "-oJ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(json.display().to_string());
    // nmap's normal output beside it: a resumed scan writes its own.
    v.push("-oN".into());
    v.push(json.with_extension("nmap").display().to_string());
    v.push("--resume-file".into());
    v.push(resume.display().to_string());
    v
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn sigint(child: &Child) {
    signal(child, nix::sys::signal::Signal::SIGINT);
}

/// Runs flagscan with `--packet-trace` on stdout; once `after` probes have
/// been traced as sent (the handshake: no sleeps), calls `interrupt`;
/// returns the exit status and stderr.
fn interrupt_after(
    args: &[String],
    after: usize,
    interrupt: impl FnOnce(&Child),
) -> (ExitStatus, String) {
    let mut child = Command::new(flagscan_bin())
        .args(args)
        .arg("--packet-trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = lines
        .by_ref()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("SENT "))
        .take(after)
        .count();
    assert_eq!(
        seen, after,
        "the scan ended before {after} probes were sent"
    );
    interrupt(&child);
    // Drain the pipe so the scan never blocks on it.
    for _ in lines {}
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

/// A directory for the test's files that `nobody` (who flagscan becomes)
/// may write too, so that a finished scan can remove its resume file.
fn work_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("flagscan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Not sticky: the scan, dropped to `nobody`, removes its root-owned resume file.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn records(text: &str) -> Vec<serde_json::Value> {
    assert!(text.ends_with('\n'), "the last line is complete");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn stats(recs: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    recs.iter().filter(|r| r["type"] == "stats").collect()
}

#[test]
fn an_interrupted_scan_resumed_equals_an_uninterrupted_one() {
    if !have_root("an_interrupted_scan_resumed_equals_an_uninterrupted_one") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-resume");
    let ns = lab.scan_ns();
    let dir = work_dir("resume");
    let (a, r) = (dir.join("A.jsonl"), dir.join("R"));

    // The reference: the same scan, not interrupted. It leaves no resume file.
    let full_json = dir.join("full.jsonl");
    let full_resume = dir.join("unused.resume");
    let out = flagscan(
        &scan_args(&ns, &full_json, &full_resume)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !full_resume.exists(),
        "a finished scan removes its resume file"
    );
    let full_text = std::fs::read_to_string(&full_json).unwrap();
    let full = parse_jsonl(&full_text);
    assert_eq!(full.len(), PROBES);
    assert_eq!(stats(&records(&full_text))[0]["interrupted"], false);

    // Interrupted once 5000 probes are out (of 80000).
    let (status, stderr) = interrupt_after(&scan_args(&ns, &a, &r), 5000, sigint);
    assert_eq!(
        status.code(),
        Some(EXIT_INTERRUPTED),
        "{status:?}: {stderr}"
    );
    assert!(
        stderr.contains(&format!("flagscan --resume {}", r.display())),
        "the resume file is named: {stderr}"
    );
    let text = std::fs::read_to_string(&a).unwrap();
    let first = parse_jsonl(&text);
    let recs = records(&text);
    assert!(
        !first.is_empty() && first.len() < PROBES,
        "{} records from the interrupted run",
        first.len()
    );
    let st = stats(&recs);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["interrupted"], true);
    assert_eq!(recs.last().unwrap()["type"], "stats", "stats come last");
    // What it concluded, it concluded as the whole scan did.
    for (k, v) in &first {
        assert_eq!(full.get(k), Some(v), "{k:?}");
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
    assert_eq!(saved["flagscan_resume"], 3);
    assert_eq!(saved["probes"], PROBES as u64);
    assert_eq!(saved["decided_count"], first.len() as u64);
    assert!(saved["seed"].is_u64());
    assert!(
        !saved["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--resume-file"),
        "{saved}"
    );

    // The same file with another target (the same number of probes) is
    // another scan: refused, and the first scan's output is left alone.
    let before = std::fs::read(&a).unwrap();
    let edited = dir.join("edited.resume");
    let mut other = saved.clone();
    for arg in other["args"].as_array_mut().unwrap() {
        if arg == WEB {
            *arg = serde_json::Value::from("10.213.2.2");
        }
    }
    std::fs::write(&edited, other.to_string()).unwrap();
    let out = flagscan(&["--resume", edited.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another scan"), "{err}");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        before,
        "the outputs are untouched"
    );

    // Resumed: the rest, appended to the same file.
    let out = flagscan(&["--resume", r.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !r.exists(),
        "a finished resumed scan removes its resume file"
    );
    let text = std::fs::read_to_string(&a).unwrap();
    let recs = records(&text);
    // parse_jsonl fails on a (host, port, scan) recorded twice.
    let union = parse_jsonl(&text);
    assert_eq!(union.len(), PROBES);
    if union != full {
        let diff: Vec<_> = full
            .iter()
            .filter(|(k, v)| union.get(*k) != Some(*v))
            .take(10)
            .collect();
        panic!("the union differs from the uninterrupted scan: {diff:?}");
    }
    let st = stats(&recs);
    assert_eq!(st.len(), 2);
    assert_eq!(st[1]["interrupted"], false);
    assert_eq!(st[1]["skipped"], first.len() as u64);
    // Each run opened with a start record: the scan's own arguments, the
    // resumed run's marked.
    let starts: Vec<&serde_json::Value> = recs.iter().filter(|r| r["type"] == "start").collect();
    assert_eq!(recs[0]["type"], "start", "the first record");
    assert_eq!(starts.len(), 2);
    assert_eq!(
        (&starts[0]["resumed"], &starts[1]["resumed"]),
        (&false.into(), &true.into())
    );
    assert_eq!(starts[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        starts[1]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == WEB),
        "{}",
        starts[1]
    );
    assert!(starts[0]["start"].as_str().unwrap().ends_with('Z'));
    assert!(starts[1]["start_epoch"].as_u64() >= starts[0]["start_epoch"].as_u64());
    // The interrupted run's text report stays; the resumed one is beside it.
    let normal = std::fs::read_to_string(a.with_extension("nmap")).unwrap();
    let resumed = std::fs::read_to_string(dir.join("A-resumed.nmap")).unwrap();
    assert!(normal.contains("flagscan report for"), "{normal}");
    assert!(resumed.contains("flagscan report for"), "{resumed}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `timeout -s INT` signals the command, then its whole process group:
/// the same SIGINT twice at once is one interrupt (results and resume file
/// written, exit 3), not a second Ctrl-C.
#[test]
fn a_sigint_echoed_to_the_process_group_is_one_interrupt() {
    if !have_root("a_sigint_echoed_to_the_process_group_is_one_interrupt") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-resume3");
    let dir = work_dir("resume3");
    let (a, r) = (dir.join("A.jsonl"), dir.join("R"));
    let (status, stderr) = interrupt_after(&scan_args(&lab.scan_ns(), &a, &r), 1000, |c| {
        sigint(c);
        std::thread::sleep(std::time::Duration::from_millis(20));
        sigint(c);
    });
    assert_eq!(status.code(), Some(3), "{status:?}: {stderr}");
    assert!(std::fs::read(&r).unwrap().len() > 10, "a resume file");
    let text = std::fs::read_to_string(&a).unwrap();
    let st: Vec<serde_json::Value> = records(&text);
    assert_eq!(stats(&st)[0]["interrupted"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_ctrl_c_quits_at_once() {
    if !have_root("a_second_ctrl_c_quits_at_once") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-resume2");
    let dir = work_dir("resume2");
    let (a, r) = (dir.join("A.jsonl"), dir.join("R"));
    // Ctrl-C, then SIGTERM right after: two different signals, so the
    // second cannot merge into the first while it is still pending (two
    // SIGINTs sent back to back can), and both reach the watcher long
    // before the first one's grace period and writing could end the scan.
    let (status, stderr) = interrupt_after(&scan_args(&lab.scan_ns(), &a, &r), 1000, |c| {
        sigint(c);
        signal(c, nix::sys::signal::Signal::SIGTERM);
    });
    assert_eq!(status.code(), Some(EXIT_KILLED), "{status:?}: {stderr}");
    // Nothing was written after the second signal: not the outputs (the
    // JSON holds only the start record, written as the scan began), not
    // the resume file (created empty before root was given up).
    assert_eq!(std::fs::read(&r).map(|b| b.len()).unwrap_or(0), 0);
    let text = std::fs::read_to_string(&a).unwrap_or_default();
    let recs = records(&text);
    assert_eq!(recs.len(), 1, "{text}");
    assert_eq!(recs[0]["type"], "start", "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_malformed_resume_file_is_a_usage_error_naming_it() {
    let dir = std::env::temp_dir();
    let missing = dir.join(format!("flagscan-missing-{}.resume", std::process::id()));
    let bad = dir.join(format!("flagscan-bad-{}.resume", std::process::id()));
    std::fs::write(&bad, "{\"flagscan_resume\":1,\"args\":[]}").unwrap();
    for path in [&missing, &bad] {
        let out = flagscan(&["--resume", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert_eq!(err.lines().count(), 1, "one clear message: {err}");
    }
    // Options besides --resume-file belong to the resume file.
    let out = flagscan(&["--resume", bad.to_str().unwrap(), "-p", "22"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-p 22"));
    std::fs::remove_file(&bad).unwrap();
}
