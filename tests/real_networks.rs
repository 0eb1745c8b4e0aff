//! Real networks (root): subnets that are mostly empty addresses, on the
//! local link and behind a router, found as nmap finds them. nmap is the
//! oracle: the same hosts up, the same states on them, nothing at all for
//! an address where no host is.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const LAN: &str = "10.213.1.0/24";
const FAR_NET: &str = "10.213.2.0/24";

/// The host records of a JSON Lines output: address -> (status, reason).
fn host_records(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "host" {
            let host = v["host"].as_str().unwrap().to_string();
            let rec = (
                v["status"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            );
            assert!(
                out.insert(host.clone(), rec).is_none(),
                "two records for {host}"
            );
        }
    }
    out
}

/// The hosts nmap's own host discovery finds up (`-sn`, as root).
fn nmap_hosts_up(ns: &str, targets: &[&str]) -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nmap", "-sn", "-n", "-T4", "-oX", "-"])
        .args(targets)
        .output()
        .expect("nmap must be installed (apt-get install nmap)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    let mut up = BTreeSet::new();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut state = String::new();
    loop {
        use quick_xml::events::Event;
        let ev = reader.read_event().unwrap();
        let e = match &ev {
            Event::Start(e) | Event::Empty(e) => e.clone(),
            Event::Eof => break,
            _ => continue,
        };
        let attr = |name: &str| -> String {
            e.attributes()
                .flatten()
                .find(|a| a.key.as_ref() == name.as_bytes())
                .map(|a| a.unescape_value().unwrap().into_owned())
                .unwrap_or_default()
        };
        match e.name().as_ref() {
            b"status" => state = attr("state"),
            b"address" if attr("addrtype") == "ipv4" && state == "up" => {
                up.insert(attr("addr"));
            }
            _ => {}
        }
    }
    up
}

fn run_json(name: &str, args: &[&str]) -> String {
    let json = std::env::temp_dir().join(format!("flagscan-{name}-{}.jsonl", std::process::id()));
    let mut all = args.to_vec();
    all.extend(["-oJ", json.to_str().unwrap()]);
    let out = flagscan(&all);
    assert!(
        out.status.success(),
        "flagscan ({name}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(json);
    text
}

#[test]
fn mostly_empty_subnets_on_the_link_and_behind_a_router_match_nmap() {
    if !have_root("mostly_empty_subnets_on_the_link_and_behind_a_router_match_nmap") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-empty");
    let ns = lab.scan_ns();
    let text = run_json(
        "empty",
        &["--netns", &ns, "-sS", "-p", "1-100", LAN, FAR_NET],
    );
    let records = host_records(&text);
    // Every address has one record, but the LAN's network and broadcast
    // addresses, which are skipped (the routed /24's are ordinary ones).
    assert_eq!(records.len(), 256 + 254, "one host record per target");
    for edge in ["10.213.1.0", "10.213.1.255"] {
        assert!(!records.contains_key(edge), "{edge} is the LAN's edge");
    }
    let ours: BTreeSet<String> = records
        .iter()
        .filter(|(_, (s, _))| s == "up")
        .map(|(h, _)| h.clone())
        .collect();
    let theirs = nmap_hosts_up(&ns, &[LAN, FAR_NET]);
    assert_eq!(ours, theirs, "the same hosts up as nmap -sn");
    // On the link, ARP answered; beyond it, a ping; our own address is ours.
    assert_eq!(records["10.213.1.2"].1, "arp-response");
    assert_eq!(records["10.213.1.1"].1, "localhost-response");
    assert_ne!(records["10.213.2.2"].1, "arp-response");
    assert_eq!(
        records["10.213.1.77"],
        ("down".into(), "no-response".into())
    );
    // Behind the router, an empty address is down: no answer, or the
    // router's host-unreachable once its ARP gave up.
    let far_empty = &records["10.213.2.77"];
    assert_eq!(far_empty.0, "down");
    // Nothing but the host record for a down host: no ports, no findings.
    let states = parse_jsonl(&text);
    for (host, _, _) in states.keys() {
        assert!(
            ours.contains(host),
            "a port result for {host}, which is down"
        );
    }
    for line in text.lines().filter(|l| l.contains("\"status\":\"down\"")) {
        assert!(!line.contains("findings"), "{line}");
    }
    // On the hosts up, nmap's states and reasons, port for port.
    let up: Vec<&str> = ours.iter().map(String::as_str).collect();
    let want = nmap(Some(&ns), "-sS", "syn", "1-100", &up);
    assert_eq!(states, want, "the states of the hosts up equal nmap's");
}

#[test]
fn ping_only_lists_the_hosts_up_with_reasons_and_no_ports() {
    if !have_root("ping_only_lists_the_hosts_up_with_reasons_and_no_ports") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-ping");
    let ns = lab.scan_ns();
    let out = flagscan(&["--netns", &ns, "-sn", LAN, FAR_NET]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("/tcp"), "-sn probes no port:\n{stdout}");
    assert!(
        stdout.contains("flagscan report for 10.213.1.3\nHost is up, received arp-response"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("10.213.1.77"),
        "a down host gets no report"
    );
    let ns_hosts = nmap_hosts_up(&ns, &[LAN, FAR_NET]);
    assert!(
        stdout.contains(&format!("510 IP addresses ({} hosts up)", ns_hosts.len())),
        "{stdout}"
    );
    // The skipped edges are said once, on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("skipping").count(), 1, "{stderr}");
    assert!(
        stderr.contains("10.213.1.255 (the broadcast address of 10.213.1.0/24"),
        "{stderr}"
    );
}

#[test]
fn no_ping_takes_every_target_as_up_and_probes_it() {
    if !have_root("no_ping_takes_every_target_as_up_and_probes_it") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-pn");
    let ns = lab.scan_ns();
    // Two live hosts and an empty address, one port each.
    let text = run_json(
        "pn",
        &[
            "--netns",
            &ns,
            "-Pn",
            "-sS",
            "-p",
            "22",
            "10.213.1.2",
            "10.213.1.3",
            "10.213.1.77",
        ],
    );
    let records = host_records(&text);
    assert_eq!(records.len(), 3);
    assert!(records
        .values()
        .all(|r| *r == ("up".to_string(), "user-set".to_string())));
    let states = parse_jsonl(&text);
    let key = ("10.213.1.77".to_string(), 22, "syn".to_string());
    assert_eq!(
        states[&key].0, "filtered",
        "-Pn probes the empty address too"
    );
}
