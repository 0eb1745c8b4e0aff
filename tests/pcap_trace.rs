//! `--pcap FILE` and `--packet-trace` on a real lab scan (root): the pcap
//! opens in tshark, holds both directions and exactly the probes the closing
//! statistics count; the trace shows every probe and the replies that
//! decided the ports.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const US: &str = "10.213.1.1";
const WEB: &str = "10.213.1.2";

/// A scratch directory, removed on drop (also on panic).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One packet of the pcap as tshark reads it (outer IP header: the first
/// occurrence of each field, so an ICMP error's quoted header does not count).
#[derive(Debug)]
struct Row {
    src: String,
    dst: String,
    proto: u8,
    sport: Option<u16>,
    dport: Option<u16>,
    seq: Option<u32>,
    flags: Option<u16>,
    icmp: Option<(u8, u8)>,
}

fn tshark(file: &Path) -> Vec<Row> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-n",
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-E",
            "separator=|",
        ])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto"])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.seq_raw",
        ])
        .args(["-e", "tcp.flags", "-e", "icmp.type", "-e", "icmp.code"])
        .output()
        .expect("tshark must be installed (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark cannot read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = |s: &str| u16::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 9, "{line}");
            Row {
                src: f[0].to_string(),
                dst: f[1].to_string(),
                proto: f[2].parse().unwrap_or_else(|_| panic!("{line}")),
                sport: f[3].parse().ok(),
                dport: f[4].parse().ok(),
                seq: f[5].parse().ok(),
                flags: hex(f[6]),
                icmp: f[7].parse().ok().zip(f[8].parse().ok()),
            }
        })
        .collect()
}

/// The options are declared in src/cli/args.rs; say so plainly if they are not.
fn require_options() {
    let out = flagscan(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--pcap") && help.contains("--packet-trace"),
        "flagscan --help lists no --pcap/--packet-trace: wire them in src/cli/args.rs \
         (and the taps in src/cli/session.rs)"
    );
}

/// The stats record: the last line of the JSON Lines file.
fn stats(json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(v["type"], "stats", "{v}");
    v
}

/// (sport, dport, seq) of a SENT line:
/// `SENT 0.0123s TCP 10.213.1.1:33024 > 10.213.1.2:22 FIN seq=0x1a2b3c4d ack=0 [fin try 1]`.
fn sent_probe(line: &str) -> (u16, u16, u32) {
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((w[0], w[2], w[4]), ("SENT", "TCP", ">"), "{line}");
    let port = |s: &str| s.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let seq = w
        .iter()
        .find_map(|x| x.strip_prefix("seq="))
        .unwrap_or_else(|| panic!("{line}"));
    let seq = match seq.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).unwrap(),
        None => seq.parse().unwrap(),
    };
    (port(w[3]), port(w[5]), seq)
}

#[test]
fn pcap_holds_both_directions_and_every_probe_and_the_trace_shows_them() {
    if !have_root("pcap_holds_both_directions_and_every_probe_and_the_trace_shows_them") {
        return;
    }
    require_options();
    let _serial = serial();
    let lab = Lab::up("fst-pcap");
    let dir = Scratch::new("flagscan-pcap-trace");
    let pcap = dir.0.join("scan.pcap");
    let json = dir.0.join("scan.jsonl");
    let out = flagscan(&[
        "--netns",
        &lab.scan_ns(),
        "-sS",
        "-sF",
        "-p",
        "22,23,111,135,445",
        WEB,
        "--pcap",
        pcap.to_str().unwrap(),
        "-oJ",
        json.to_str().unwrap(),
        "--packet-trace",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flagscan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = stats(&std::fs::read_to_string(&json).unwrap());
    let probes = stats["probes"].as_u64().unwrap() as usize;
    // 2 techniques x 5 ports, plus a retry for each silent probe
    // (22 FIN, 135 SYN, 135 FIN).
    assert!(probes >= 13, "{stats}");
    assert_eq!(stats["invalid"], 0, "{stats}");

    // The pcap: both directions, nothing else, every probe once.
    let rows = tshark(&pcap);
    let sent: Vec<&Row> = rows.iter().filter(|r| r.src == US).collect();
    let heard: Vec<&Row> = rows.iter().filter(|r| r.src == WEB).collect();
    assert_eq!(
        sent.len() + heard.len(),
        rows.len(),
        "only the scanner and its target: {rows:?}"
    );
    assert_eq!(sent.len(), probes, "probes in the pcap vs the stats record");
    for r in &sent {
        assert_eq!((r.dst.as_str(), r.proto), (WEB, 6), "{r:?}");
        // SYN or FIN, nothing else.
        assert!(matches!(r.flags, Some(0x002) | Some(0x001)), "{r:?}");
    }
    assert!(heard.iter().all(|r| r.dst == US), "{heard:?}");
    let synack = heard
        .iter()
        .find(|r| r.proto == 6 && r.sport == Some(22) && r.flags == Some(0x012));
    assert!(synack.is_some(), "a SYN/ACK from port 22: {heard:?}");
    assert!(
        heard
            .iter()
            .any(|r| r.proto == 6 && r.sport == Some(23) && r.flags == Some(0x014)),
        "a RST/ACK from port 23: {heard:?}"
    );
    // ICMP errors; tcp.dstport of an ICMP row is the quoted probe's.
    let icmp = |code: u8, port: u16| {
        heard
            .iter()
            .any(|r| r.proto == 1 && r.icmp == Some((3, code)) && r.dport == Some(port))
    };
    assert!(icmp(3, 111), "port-unreach quoting 111: {heard:?}");
    assert!(icmp(13, 445), "admin-prohibited quoting 445: {heard:?}");
    assert!(
        heard.len() >= stats["replies"].as_u64().unwrap() as usize,
        "every deciding reply is in the pcap: {stats}"
    );

    // The trace: a SENT line per probe, the very probes of the pcap.
    let sent_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("SENT ")).collect();
    assert_eq!(sent_lines.len(), probes, "SENT lines:\n{stdout}");
    let mut traced: BTreeMap<(u16, u16, u32), usize> = BTreeMap::new();
    for l in &sent_lines {
        *traced.entry(sent_probe(l)).or_default() += 1;
    }
    let mut captured: BTreeMap<(u16, u16, u32), usize> = BTreeMap::new();
    for r in &sent {
        *captured
            .entry((r.sport.unwrap(), r.dport.unwrap(), r.seq.unwrap()))
            .or_default() += 1;
    }
    assert_eq!(traced, captured, "the traced probes are the captured ones");
    let rcvd: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RCVD ")).collect();
    assert!(
        rcvd.iter().any(|l| l.contains(&format!(" TCP {WEB}:22 > "))
            && l.contains(" SYN/ACK ")
            && l.contains("cookie ok -> syn row 1: syn-ack => open (syn-ack)")),
        "{stdout}"
    );
    assert!(
        rcvd.iter().any(|l| l.contains(" ICMP 3/3 port-unreach ")
            && l.contains(&format!(" > {WEB}:111 "))
            && l.contains("=> filtered (port-unreach)")),
        "{stdout}"
    );
    assert!(
        rcvd.iter().any(|l| l.contains(&format!(" TCP {WEB}:23 > "))
            && l.contains("cookie ok -> fin row 1: rst => closed (reset)")),
        "{stdout}"
    );
    assert!(
        rcvd.iter().all(|l| l.contains("cookie ok")),
        "nothing invalid in the lab: {stdout}"
    );
    assert_eq!(rcvd.len(), heard.len(), "a RCVD line per captured packet");
    // The report still follows the trace.
    assert!(
        stdout.contains("flagscan report for 10.213.1.2"),
        "{stdout}"
    );
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert!(tail[1].starts_with("flagscan done:"), "{stdout}");
    assert!(
        tail[0].starts_with("1 IP address (1 host up) scanned in "),
        "{stdout}"
    );
}

#[test]
fn with_json_on_stdout_the_trace_goes_to_stderr() {
    if !have_root("with_json_on_stdout_the_trace_goes_to_stderr") {
        return;
    }
    require_options();
    let _serial = serial();
    let lab = Lab::up("fst-pctr");
    let out = flagscan(&[
        "--netns",
        &lab.scan_ns(),
        "-sS",
        "-p",
        "22,23",
        WEB,
        "-oJ",
        "-",
        "--packet-trace",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for line in stdout.lines() {
        let _: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
    let probes = stats(&stdout)["probes"].as_u64().unwrap() as usize;
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("SENT ")).count(),
        probes,
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("RCVD ") && l.contains("=> open (syn-ack)")),
        "{stderr}"
    );
}

#[test]
fn a_pcap_file_that_cannot_be_created_is_a_usage_error_naming_it() {
    require_options();
    let out = flagscan(&[
        "-p",
        "22",
        "127.0.0.1",
        "--pcap",
        "/nonexistent-flagscan-dir/scan.pcap",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/nonexistent-flagscan-dir/scan.pcap"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
