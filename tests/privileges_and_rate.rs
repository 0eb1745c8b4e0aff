//! Root tests: flagscan gives up root once its sockets are open, runs
//! unprivileged with file capabilities, and keeps to --max-rate without
//! losing answers.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every thread of a running flagscan, read once it has sent its first
/// probe (its --packet-trace SENT line is the handshake): its name and its
/// `Uid:`, `CapPrm:` and `CapEff:` lines (`/proc/PID/task/TID/status`).
struct Task {
    name: String,
    uid: String,
    cap_prm: String,
    cap_eff: String,
}

fn threads_while_scanning(mut cmd: Command) -> (Vec<Task>, std::process::ExitStatus) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("SENT"));
    assert!(first.is_some(), "no probe was traced");
    let mut tasks = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(status) = std::fs::read_to_string(entry.unwrap().path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .map(|l| {
                    l[name.len()..]
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap()
        };
        tasks.push(Task {
            name: field("Name:"),
            uid: field("Uid:"),
            cap_prm: field("CapPrm:"),
            cap_eff: field("CapEff:"),
        });
    }
    for _ in lines {}
    (tasks, child.wait().unwrap())
}

/// Every thread is `uid` in every slot and holds no capability.
fn assert_every_thread(tasks: &[Task], uid: &str) {
    assert!(tasks.len() > 1, "the scan's threads were seen");
    for t in tasks {
        assert_eq!(
            t.uid,
            format!("{uid} {uid} {uid} {uid}"),
            "thread {}",
            t.name
        );
        assert_eq!(t.cap_prm, "0000000000000000", "thread {} CapPrm", t.name);
        assert_eq!(t.cap_eff, "0000000000000000", "thread {} CapEff", t.name);
    }
}

fn slow_scan(bin: &Path, json: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "-sS",
        "-p",
        "1-300",
        "--max-rate",
        "300",
        "--packet-trace",
        "127.0.0.1",
        "-oJ",
    ])
    .arg(json)
    .env_remove("SUDO_UID")
    .env_remove("SUDO_GID");
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flagscan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
fn root_is_dropped_to_nobody_or_the_sudo_user_while_scanning() {
    if !have_root("root_is_dropped_to_nobody_or_the_sudo_user_while_scanning") {
        return;
    }
    let _serial = serial();
    let dir = scratch("privdrop");
    let json = dir.join("out.jsonl");

    let (tasks, status) = threads_while_scanning(slow_scan(&flagscan_bin(), &json));
    assert!(status.success());
    assert_every_thread(&tasks, "65534");
    assert_eq!(
        std::fs::metadata(&json).unwrap().uid(),
        0,
        "run as plain root, the output stays root's"
    );

    let _ = std::fs::remove_file(&json);
    let mut as_sudo = slow_scan(&flagscan_bin(), &json);
    as_sudo.env("SUDO_UID", "4321").env("SUDO_GID", "4321");
    let (tasks, status) = threads_while_scanning(as_sudo);
    assert!(status.success());
    assert_every_thread(&tasks, "4321");
    assert_eq!(
        std::fs::metadata(&json).unwrap().uid(),
        4321,
        "an output this run created belongs to the sudo user"
    );

    let mut keep = slow_scan(&flagscan_bin(), &json);
    keep.arg("--keep-privileges");
    let (tasks, status) = threads_while_scanning(keep);
    assert!(status.success());
    assert!(tasks.iter().all(|t| t.uid == "0 0 0 0"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn file_capabilities_are_enough_and_are_cleared_while_scanning() {
    if !have_root("file_capabilities_are_enough_and_are_cleared_while_scanning") {
        return;
    }
    let _serial = serial();
    let dir = scratch("setcap");
    let bin = dir.join("flagscan");
    std::fs::copy(flagscan_bin(), &bin).unwrap();
    let ok = Command::new("setcap")
        .args(["cap_net_raw,cap_net_admin+eip"])
        .arg(&bin)
        .status()
        .expect("setcap (apt-get install libcap2-bin)");
    assert!(ok.success());
    let json = dir.join("out.jsonl");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args([
            "-sS",
            "-p",
            "1-300",
            "--max-rate",
            "300",
            "--packet-trace",
            "127.0.0.1",
            "-oJ",
        ])
        .arg(&json);
    let (tasks, status) = threads_while_scanning(cmd);
    assert!(
        status.success(),
        "a non-root user with cap_net_raw can scan"
    );
    // Capabilities are cleared in every thread once the sockets are open,
    // the signal watcher's and the capture ring's included.
    assert_every_thread(&tasks, "65534");
    let stats = std::fs::read_to_string(&json).unwrap();
    let stats: serde_json::Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    assert_eq!(stats["replies"], 300);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_rate_is_kept_without_losing_answers() {
    if !have_root("max_rate_is_kept_without_losing_answers") {
        return;
    }
    let _serial = serial();
    let dir = scratch("rate");
    let json = dir.join("out.jsonl");
    let out = flagscan(&[
        "-sS",
        "-p",
        "1-400",
        "--max-rate",
        "400",
        "127.0.0.1",
        "-oJ",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let stats: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    // Pacing happens where probes are handed out, so none waits in a queue
    // long enough to time out: every port answers on the first try.
    assert_eq!(stats["replies"], 400, "{stats}");
    assert_eq!(stats["retransmissions"], 0, "{stats}");
    // 400 probes at 400/s, less a 10 ms burst, cannot finish much sooner than 1 s.
    assert!(stats["elapsed_s"].as_f64().unwrap() >= 0.95, "{stats}");
    assert!(stats["rate_pps"].as_f64().unwrap() <= 420.0, "{stats}");
    let _ = std::fs::remove_dir_all(dir);
}
