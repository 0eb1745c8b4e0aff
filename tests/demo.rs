//! `flagscan demo` (root): builds the lab, scans it with all four TCP
//! techniques and UDP, prints the result and leaves nothing behind.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn listener_pids() -> BTreeSet<String> {
    let out = Command::new("pgrep")
        .args(["-f", "flagscan lab listen"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

#[test]
fn demo_scans_the_lab_and_leaves_nothing_behind() {
    if !have_root("demo_scans_the_lab_and_leaves_nothing_behind") {
        return;
    }
    let _serial = serial();
    let before = listener_pids();
    let prefix = format!("fst-demo{}", std::process::id());
    let out = flagscan(&["demo", "--prefix", &prefix]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in ["web (10.213.1.2)", "10.213.1.3", "10.213.2.2"] {
        assert!(
            text.contains(&format!("flagscan report for {host}")),
            "{text}"
        );
    }
    assert!(
        text.contains("SYN")
            && text.contains("FIN")
            && text.contains("NULL")
            && text.contains("XMAS")
    );
    // The RFC 793 host's open port next to the resetting host's.
    assert!(text.lines().any(|l| l.starts_with("22/tcp")
        && l.contains("open (syn-ack")
        && l.contains("open|filtered")));
    assert!(text.lines().any(|l| l.starts_with("22/tcp")
        && l.contains("open (syn-ack")
        && l.contains("closed (reset")));
    // The UDP table: web's services answer, its dropped port is silent,
    // its rejected one says so; the resetting host's ports are closed.
    // One technique's table, as nmap's --reason: STATE ... REASON.
    let row = |port: &str, state: &str, reason: &str| {
        text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4 && f[0] == port && f[1] == state && f[3] == reason
        })
    };
    for (port, state, reason) in [
        ("53/udp", "open", "udp-response"),
        ("123/udp", "open", "udp-response"),
        ("161/udp", "open|filtered", "no-response"),
        ("514/udp", "filtered", "admin-prohibited"),
        ("53/udp", "closed", "port-unreach"),
    ] {
        assert!(row(port, state, reason), "{port} {state} {reason}\n{text}");
    }
    // web over IPv6 too, and the finding that its firewalls differ.
    assert!(
        text.contains("flagscan report for web (fd00:213:1::2)"),
        "{text}"
    );
    assert_eq!(
        text.matches("[families-differ]").count(),
        2,
        "on both of web's addresses: {text}"
    );
    assert!(text.contains("flagscan done:"));
    assert!(
        namespaces(&format!("{prefix}-")).is_empty(),
        "namespaces left: {:?}",
        namespaces(&format!("{prefix}-"))
    );
    let left: Vec<_> = listener_pids().difference(&before).cloned().collect();
    assert!(left.is_empty(), "listener processes left: {left:?}");
}

#[test]
fn ctrl_c_during_the_demo_removes_the_lab() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    if !have_root("ctrl_c_during_the_demo_removes_the_lab") {
        return;
    }
    let _serial = serial();
    let before = listener_pids();
    let prefix = format!("fst-demoint{}", std::process::id());
    let mut child = Command::new(flagscan_bin())
        .args(["demo", "--prefix", &prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the lab is up (the demo says so), then interrupt.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("10.213.2.2"));
    assert!(up, "the demo never listed the lab hosts");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    // Either the signal arrived mid-demo (130) or the demo had just finished (0);
    // both must leave nothing behind.
    assert!(matches!(status.code(), Some(130) | Some(0)), "{status:?}");
    assert!(
        namespaces(&format!("{prefix}-")).is_empty(),
        "namespaces left: {:?}",
        namespaces(&format!("{prefix}-"))
    );
    let left: Vec<_> = listener_pids().difference(&before).cloned().collect();
    assert!(left.is_empty(), "listener processes left: {left:?}");
}
