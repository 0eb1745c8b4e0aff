//! The connect scan (`-sT`) run as a user without privileges (root only
//! builds the lab and drops to `nobody`): flagscan's states equal
//! `nmap -sT`'s on every port of the lab's hosts, and without raw sockets
//! a scan that names no technique becomes a connect scan with a notice.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

const WEB: &str = "10.213.1.2";
const RST: &str = "10.213.1.3";
const FAR: &str = "10.213.2.2";
const PORTS: &str = "1-1100,5430-5439,8000-8100";

/// A copy of the binary that `nobody` may run (the build tree may not be
/// reachable for it).
fn binary_for_nobody(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("flagscan-connect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("flagscan");
    std::fs::copy(flagscan_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

/// Runs `bin` as `nobody` (no capability) inside namespace `ns`.
fn as_nobody(ns: &str, bin: &PathBuf, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "setpriv"])
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin)
        .args(args)
        .output()
        .expect("setpriv (util-linux) and ip (iproute2) must be installed")
}

/// `bin` run as `nobody` (no capability) here, in the root namespace.
fn nobody(bin: &PathBuf) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(bin);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn connect_scan_as_nobody_equals_nmap_st_on_every_port_of_the_lab() {
    if !have_root("connect_scan_as_nobody_equals_nmap_st_on_every_port_of_the_lab") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-conn");
    let ns = lab.scan_ns();
    let (dir, bin) = binary_for_nobody("lab");
    let out = as_nobody(&ns, &bin, &["-sT", "-p", PORTS, "-oJ", "-", WEB, RST, FAR]);
    assert!(out.status.success(), "-sT as nobody: {}", stderr(&out));
    let ours = parse_jsonl(&String::from_utf8_lossy(&out.stdout));
    let n = expand_ports(PORTS).len();
    assert_eq!(ours.len(), 3 * n, "one record per host and port");
    let theirs = nmap(Some(&ns), "-sT", "connect", PORTS, &[WEB, RST, FAR]);
    assert_eq!(theirs.len(), ours.len(), "nmap reported every port too");
    let diffs: Vec<String> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k:?}: nmap {v:?}, flagscan {:?}", ours.get(k)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{} differences from nmap -sT, first ones:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(20)].join("\n")
    );
    // The lab shows open, refused and silent ports (its ICMP rejects are
    // in the comparison with nmap above).
    let at = |h: &str, p: u16| ours[&(h.to_string(), p, "connect".to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(WEB, 22), pair("open", "syn-ack"));
    assert_eq!(at(WEB, 1), pair("closed", "conn-refused"));
    assert_eq!(at(WEB, 135), pair("filtered", "no-response"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_raw_sockets_the_default_scan_is_a_connect_scan() {
    if !have_root("without_raw_sockets_the_default_scan_is_a_connect_scan") {
        return;
    }
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let (dir, bin) = binary_for_nobody("default");
    let ports = format!("{}-{}", open - 5, open + 5);
    // In the root namespace, as a plain user would run it.
    let out = nobody(&bin)
        .args(["-p", &ports, "-oJ", "-", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("this is a connect scan (-sT)"),
        "the switch is told: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("taken as up"),
        "so is the missing host discovery: {}",
        stderr(&out)
    );
    let ours = parse_jsonl(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(ours.len(), 11);
    let theirs = nmap(None, "-sT", "connect", &ports, &["127.0.0.1"]);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours[&("127.0.0.1".to_string(), open, "connect".to_string())].0,
        "open"
    );
    // A raw technique asked for by name is refused, not replaced.
    let out = nobody(&bin)
        .args(["-sS", "-p", "1", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("CAP_NET_RAW"), "{}", stderr(&out));
    // The ephemeral range, twice: a connect that meets itself (the kernel
    // picked the probed port as its own) is no open port; only listening
    // sockets are open. And a --max-rtt-timeout under the connect scan's
    // timeout floor is honoured, not a panic.
    for extra in [[].as_slice(), ["--max-rtt-timeout", "50ms"].as_slice()] {
        let out = nobody(&bin)
            .args(["-sT", "-p", "32768-60999", "-oJ", "-"])
            .args(extra)
            .arg("127.0.0.1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        let listening = listening_ports();
        for ((_, port, _), (state, _)) in parse_jsonl(&String::from_utf8_lossy(&out.stdout)) {
            if state == "open" {
                assert!(
                    listening.contains(&port),
                    "{port} reported open with nothing listening"
                );
            }
        }
    }
    drop(listener);
    let _ = std::fs::remove_dir_all(dir);
}

/// TCP ports something listens on here (/proc/net/tcp, state 0A).
fn listening_ports() -> Vec<u16> {
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.split(':').nth(1)?;
            (f.get(3) == Some(&"0A")).then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}
