//! Real scans (root): flagscan against nmap, the oracle, on a lab of Linux
//! hosts in network namespaces. Same lab, same technique, same ports: the
//! same state and reason for every port.

mod common;

use common::*;
use std::process::Command;

const WEB: &str = "10.213.1.2";
const RST: &str = "10.213.1.3";
const FAR: &str = "10.213.2.2";
const TECHNIQUES: [(&str, &str); 4] = [
    ("-sS", "syn"),
    ("-sF", "fin"),
    ("-sN", "null"),
    ("-sX", "xmas"),
];

fn diff(ours: &States, theirs: &States) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in theirs {
        match ours.get(k) {
            Some(o) if o == v => {}
            o => out.push(format!("{k:?}: nmap {v:?}, flagscan {o:?}")),
        }
    }
    for k in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        out.push(format!("{k:?}: only flagscan reports it"));
    }
    out
}

/// Runs flagscan with `args` and `-oJ` to a file of its own; the states it
/// reports and the JSON lines. Fails the test if flagscan does.
/// nmap's states for each (flag, technique) on the lab's three hosts equal
/// `ours`, port for port.
fn assert_equals_nmap(ours: &States, ns: &str, techniques: &[(&str, &str)], ports: &str) {
    let mut theirs = States::new();
    for (flag, scan) in techniques {
        theirs.extend(nmap(Some(ns), flag, scan, ports, &[WEB, RST, FAR]));
    }
    assert_eq!(theirs.len(), ours.len(), "nmap reported every port too");
    let d = diff(ours, &theirs);
    assert!(
        d.is_empty(),
        "{} differences from nmap, first ones:\n{}",
        d.len(),
        d[..d.len().min(20)].join("\n")
    );
}

fn scan_states(name: &str, args: &[&str]) -> (States, String) {
    let text = run_json(name, args);
    (parse_jsonl(&text), text)
}

#[test]
fn all_four_techniques_match_nmap_on_every_port_of_every_lab_host() {
    if !have_root("all_four_techniques_match_nmap_on_every_port_of_every_lab_host") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-nmap");
    let ns = lab.scan_ns();
    let (ours, text) = scan_states(
        "lab-vs-nmap",
        &[
            "--netns", &ns, "-sS", "-sF", "-sN", "-sX", "-p-", WEB, RST, FAR,
        ],
    );
    assert_eq!(
        ours.len(),
        3 * 65535 * 4,
        "one record per host, port and technique"
    );

    assert_equals_nmap(&ours, &ns, &TECHNIQUES, "1-65535");

    // The lab shows every behaviour the comparison is meant to cover, so a
    // lab that silently lost its rules cannot pass this test.
    let at = |h: &str, p: u16, s: &str| ours[&(h.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(WEB, 22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(WEB, 22, "fin"), pair("open|filtered", "no-response"));
    assert_eq!(at(WEB, 135, "syn"), pair("filtered", "no-response"));
    assert_eq!(at(WEB, 111, "null"), pair("filtered", "port-unreach"));
    assert_eq!(at(WEB, 445, "xmas"), pair("filtered", "admin-prohibited"));
    assert_eq!(at(WEB, 23, "syn"), pair("closed", "reset"));
    assert_eq!(at(WEB, 8001, "syn"), pair("closed", "reset"));
    assert_eq!(at(WEB, 8001, "fin"), pair("open|filtered", "no-response"));
    assert_eq!(at(WEB, 5432, "xmas"), pair("open|filtered", "no-response"));
    assert_eq!(at(WEB, 1, "fin"), pair("closed", "reset"));
    assert_eq!(at(RST, 22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(RST, 22, "fin"), pair("closed", "reset"));
    assert_eq!(at(FAR, 443, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(FAR, 25, "syn"), pair("filtered", "no-response"));

    // Replies from behind the gateway crossed one router.
    let far_ttl = text
        .lines()
        .find(|l| l.contains(FAR) && l.contains("\"port\":22,") && l.contains("\"syn\""))
        .unwrap();
    assert!(far_ttl.contains("\"ttl\":63"), "{far_ttl}");
    // One `host` record per host with the findings (issue: compare and teach).
    let findings = |host: &str| -> Vec<(String, Vec<u64>)> {
        let rec = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["type"] == "host" && v["host"] == host)
            .unwrap_or_else(|| panic!("no host record for {host}"));
        rec["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                assert!(!f["text"].as_str().unwrap().is_empty());
                let ports = f["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap())
                    .collect();
                (f["id"].as_str().unwrap().to_string(), ports)
            })
            .collect()
    };
    let id = |list: &[(String, Vec<u64>)], id: &str| {
        list.iter().find(|(i, _)| i == id).map(|(_, p)| p.clone())
    };
    let rst = findings(RST);
    assert_eq!(
        id(&rst, "resets-non-syn"),
        Some(vec![22, 80, 443]),
        "{rst:?}"
    );
    let web = findings(WEB);
    assert_eq!(id(&web, "resets-non-syn"), None, "{web:?}");
    let stateful: Vec<u64> = (5430..=5439)
        .chain((8000..=8100).filter(|p| *p != 8080))
        .collect();
    assert_eq!(id(&web, "drops-non-syn"), Some(stateful));
    assert_eq!(id(&web, "silent-filter"), Some(vec![135, 137, 138, 139]));
    assert_eq!(id(&web, "icmp-filter"), Some(vec![111, 445]));
    let far = findings(FAR);
    assert_eq!(id(&far, "silent-filter"), Some(vec![25]));
    assert_eq!(id(&far, "rfc793"), Some(vec![22, 443]));

    let stats: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["invalid"], 0);
    assert!(stats["probes"].as_u64().unwrap() >= 3 * 65535 * 4);
}

/// ACK, Window and Maimon are files in `scanners/` like the others: on
/// every lab host and the ports its rules cover, their states equal nmap's
/// -sA, -sW and -sM.
#[test]
fn ack_window_and_maimon_match_nmap_on_the_lab() {
    if !have_root("ack_window_and_maimon_match_nmap_on_the_lab") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-ackfam");
    let ns = lab.scan_ns();
    let ports = "1-1100,5430-5439,8000-8100";
    let (ours, _) = scan_states(
        "ack-family",
        &[
            "--netns", &ns, "-sA", "-sW", "-sM", "-p", ports, WEB, RST, FAR,
        ],
    );
    let n = expand_ports(ports).len();
    assert_eq!(
        ours.len(),
        3 * n * 3,
        "one record per host, port and technique"
    );
    let family = [("-sA", "ack"), ("-sW", "window"), ("-sM", "maimon")];
    assert_equals_nmap(&ours, &ns, &family, ports);
    // The lab shows what these techniques tell apart.
    let at = |h: &str, p: u16, s: &str| ours[&(h.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(WEB, 22, "ack"), pair("unfiltered", "reset"));
    assert_eq!(at(WEB, 1, "ack"), pair("unfiltered", "reset"));
    assert_eq!(at(WEB, 135, "ack"), pair("filtered", "no-response"));
    assert_eq!(at(WEB, 8001, "ack"), pair("filtered", "no-response"));
    assert_eq!(at(WEB, 111, "ack"), pair("filtered", "port-unreach"));
    assert_eq!(at(WEB, 22, "window"), pair("closed", "reset"));
    assert_eq!(at(WEB, 22, "maimon"), pair("closed", "reset"));
    assert_eq!(
        at(WEB, 5432, "maimon"),
        pair("open|filtered", "no-response")
    );
    assert_eq!(at(RST, 22, "ack"), pair("unfiltered", "reset"));
}

/// SYN beside the ACK scan on web: the ports whose non-SYN segments are
/// dropped (a conntrack rule on 5430-5439, a non-SYN DROP on 8000-8100)
/// answer SYN but not ACK, which the `ack-dropped` finding names; ports
/// that drop everything (135) or pass everything (22) are not in it.
#[test]
fn syn_beside_ack_names_the_ports_that_drop_packets_of_no_connection() {
    if !have_root("syn_beside_ack_names_the_ports_that_drop_packets_of_no_connection") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-ackfind");
    let ns = lab.scan_ns();
    let text = run_json(
        "ack-finding",
        &[
            "--netns",
            &ns,
            "-sS",
            "-sA",
            "-p",
            "22,135,5430-5432,8000-8002",
            WEB,
        ],
    );
    let host: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "host")
        .expect("a host record");
    let finding = host["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "ack-dropped")
        .unwrap_or_else(|| panic!("ack-dropped among {}", host["findings"]));
    let ports: Vec<u64> = finding["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(ports, [5430, 5431, 5432, 8000, 8001, 8002]);
    assert!(
        !host["findings"].to_string().contains("ack-passes"),
        "nothing blocks SYN alone on web: {}",
        host["findings"]
    );
}

#[test]
fn loopback_matches_nmap() {
    if !have_root("loopback_matches_nmap") {
        return;
    }
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let ports = format!(
        "{}-{}",
        open.saturating_sub(20).max(1),
        open.saturating_add(20)
    );
    let (ours, _) = scan_states("loopback", &["-sS", "-sF", "-p", &ports, "127.0.0.1"]);
    let mut theirs = nmap(None, "-sS", "syn", &ports, &["127.0.0.1"]);
    theirs.extend(nmap(None, "-sF", "fin", &ports, &["127.0.0.1"]));
    let d = diff(&ours, &theirs);
    assert!(d.is_empty(), "{}", d.join("\n"));
    let key = ("127.0.0.1".to_string(), open, "syn".to_string());
    assert_eq!(ours[&key].0, "open");
    drop(listener);
}

/// A namespace of our own, removed on drop (its processes die with it).
struct OwnNetns(String);

impl Drop for OwnNetns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_scanners_own_address_matches_nmap() {
    // A host scanning one of its own (non-loopback) addresses: the kernel
    // routes the probes over lo, not over the interface holding the
    // address, so that is where the replies must be captured.
    if !have_root("the_scanners_own_address_matches_nmap") {
        return;
    }
    let _serial = serial();
    let ns = OwnNetns(format!("fst-own-{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    // A veth pair, both ends here: an Ethernet interface holding the
    // address (this kernel may lack the dummy device).
    ip(&[
        "-n", &ns.0, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    ip(&["-n", &ns.0, "addr", "add", "10.213.9.1/24", "dev", "d0"]);
    ip(&["-n", &ns.0, "link", "set", "d0", "up"]);
    ip(&["-n", &ns.0, "link", "set", "d1", "up"]);
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(flagscan_bin())
        .args(["lab", "listen", "--ports", "22,8080"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(listener.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.starts_with("ready"), "listener said {ready:?}");

    let ports = "1-1000,8080";
    let (ours, _) = scan_states(
        "own-address",
        &["--netns", &ns.0, "-sS", "-sF", "-p", ports, "10.213.9.1"],
    );
    let mut theirs = nmap(Some(&ns.0), "-sS", "syn", ports, &["10.213.9.1"]);
    theirs.extend(nmap(Some(&ns.0), "-sF", "fin", ports, &["10.213.9.1"]));
    let _ = listener.kill();
    let _ = listener.wait();
    let d = diff(&ours, &theirs);
    assert!(d.is_empty(), "{}", d.join("\n"));
    let state = |p: u16, s: &str| {
        ours[&("10.213.9.1".to_string(), p, s.to_string())]
            .0
            .clone()
    };
    assert_eq!(state(22, "syn"), "open");
    assert_eq!(state(8080, "syn"), "open");
    assert_eq!(state(23, "syn"), "closed");
}
