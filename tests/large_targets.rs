//! A /8 (issue 11, item 6): as root, a scanner namespace routes 10.0.0.0/8
//! to a namespace that forwards nothing, so every probe is lost; flagscan
//! scans the whole /8 with `-Pn`, is interrupted once probes arrive, and
//! must have stayed small and say only what it probed.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{flagscan_bin, have_root, serial};

/// The scanner and the sink, removed on drop (also on panic).
struct Black {
    scan: String,
    sink: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Black {
    fn up() -> Black {
        let id = std::process::id();
        let b = Black {
            scan: format!("fs8t-{id}-scan"),
            sink: format!("fs8t-{id}-sink"),
        };
        ip(&["netns", "add", &b.scan]);
        ip(&["netns", "add", &b.sink]);
        ip(&[
            "-n", &b.scan, "link", "add", "b8a", "type", "veth", "peer", "name", "b8b", "netns",
            &b.sink,
        ]);
        ip(&["-n", &b.scan, "addr", "add", "192.0.2.1/30", "dev", "b8a"]);
        ip(&["-n", &b.sink, "addr", "add", "192.0.2.2/30", "dev", "b8b"]);
        ip(&["-n", &b.scan, "link", "set", "b8a", "up"]);
        ip(&["-n", &b.sink, "link", "set", "b8b", "up"]);
        ip(&["-n", &b.scan, "link", "set", "lo", "up"]);
        // The /8 and nothing else: no default route in either namespace.
        ip(&[
            "-n",
            &b.scan,
            "route",
            "add",
            "10.0.0.0/8",
            "via",
            "192.0.2.2",
        ]);
        b
    }

    /// Packets the sink has received on its end of the link.
    fn arrived(&self) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.sink, "cat"])
            .arg("/sys/class/net/b8b/statistics/rx_packets")
            .output()
            .expect("cat runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for Black {
    fn drop(&mut self) {
        for ns in [&self.scan, &self.sink] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The largest resident size of any child this process has waited for.
fn children_max_rss_mb() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    usage.ru_maxrss as u64 / 1024
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_slash_8_is_probed_in_little_memory_and_an_interrupt_reports_only_what_was_probed() {
    if !have_root("a_slash_8_is_probed_in_little_memory") {
        return;
    }
    let _one = serial();
    let black = Black::up();
    let dir = std::env::temp_dir().join(format!("flagscan-slash8-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let json = dir.join("slash8.jsonl");
    let resume = dir.join("slash8.resume");
    let mut child = Command::new(flagscan_bin())
        .args(["--netns", &black.scan, "-Pn", "-sS", "-p", "80", "--yes"])
        .args(["--max-retries", "0", "10.0.0.0/8", "-oJ"])
        .arg(&json)
        .arg("--resume-file")
        .arg(&resume)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flagscan starts");
    // Until a few hundred probes have reached the sink, and the peak of
    // the process's memory meanwhile.
    let started = Instant::now();
    let mut peak_kb = 0;
    while black.arrived() < 300 {
        peak_kb = peak_kb.max(status_kb(child.id(), "VmHWM:"));
        if let Some(status) = child.try_wait().unwrap() {
            panic!("flagscan ended before probing: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no probes of the /8 arrived within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    peak_kb = peak_kb.max(status_kb(child.id(), "VmHWM:"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "interrupted: {stderr}");
    // While probing, and with the outputs written after the interrupt.
    assert!(
        peak_kb < 100 * 1024,
        "peak RSS while probing a /8: {} MB",
        peak_kb / 1024
    );
    let whole = children_max_rss_mb();
    assert!(whole < 100, "peak RSS of the whole run: {whole} MB");
    assert!(
        resume.exists(),
        "an interrupted scan leaves its resume file"
    );

    // Every port record is a probe that was sent and concluded (filtered,
    // nothing came back), each host it names has its record, and no other
    // host has one: the addresses never reached are left to the resume.
    let text = std::fs::read_to_string(&json).unwrap();
    let (mut ports, mut hosts) = (Vec::new(), Vec::new());
    let mut stats = None;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str() {
            None if v.get("port").is_some() => {
                assert_eq!(v["state"], "filtered", "{line}");
                assert_eq!(v["reason"], "no-response", "{line}");
                ports.push(v["host"].as_str().unwrap().to_string());
            }
            Some("host") => hosts.push(v["host"].as_str().unwrap().to_string()),
            Some("stats") => stats = Some(v),
            _ => {}
        }
    }
    let stats = stats.expect("a stats record");
    assert_eq!(stats["hosts"], 16_777_216);
    assert_eq!(stats["interrupted"], true);
    assert!(!ports.is_empty(), "no probe concluded: {stderr}");
    ports.sort();
    hosts.sort();
    assert_eq!(ports, hosts, "host records are those of the hosts probed");
    assert!(
        stderr.contains(&format!(
            "interrupted: {} of 16777216 probes concluded",
            ports.len()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
