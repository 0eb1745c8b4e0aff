//! `flagscan demo` (root): builds the lab, scans it with all four
//! techniques, prints the result and leaves nothing behind.

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
    let before = listener_pids();
    let out = flagscan(&["demo", "--prefix", "fst-demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in ["10.213.1.2", "10.213.1.3", "10.213.2.2"] {
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
    assert!(text.contains("flagscan done:"));
    assert!(
        namespaces("fst-demo-").is_empty(),
        "namespaces left: {:?}",
        namespaces("fst-demo-")
    );
    let left: Vec<_> = listener_pids().difference(&before).cloned().collect();
    assert!(left.is_empty(), "listener processes left: {left:?}");
}
