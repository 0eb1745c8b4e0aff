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
    let mut state = String::new();
    for_each_xml_element(&xml, |name, attr| match name {
        b"status" => state = attr("state"),
        b"address" if attr("addrtype") == "ipv4" && state == "up" => {
            up.insert(attr("addr"));
        }
        _ => {}
    });
    up
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
    // fwd limits its ICMP errors, so nmap's reasons (ICMP or silence) are
    // guesses there, and so are ours past a few ports: its states are
    // compared, not its reasons (the limiter tests below check them).
    let states_only = |s: &States| -> States {
        s.iter()
            .map(|(k, (state, reason))| {
                let reason = if k.0 == "10.213.1.5" { "-" } else { reason };
                (k.clone(), (state.clone(), reason.to_string()))
            })
            .collect()
    };
    assert_same_states(
        &states_only(&states),
        &states_only(&want),
        "the states of the hosts up equal nmap's",
    );
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

// ---------------------------------------------------------------------------
// Hosts that rate-limit their answers.

const RSTLIM: &str = "10.213.1.4";
const FWD: &str = "10.213.1.5";
const REJ: &str = "10.213.1.6";

#[test]
fn a_host_limiting_rsts_to_200_a_second_is_scanned_exactly() {
    if !have_root("a_host_limiting_rsts_to_200_a_second_is_scanned_exactly") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-rstlim");
    let ns = lab.scan_ns();
    let text = run_json("rstlim", &["--netns", &ns, "-sS", "-p", "1-3000", RSTLIM]);
    let ours = parse_jsonl(&text);
    assert!(
        finding_ids(&text).contains(&"rst-rate-limit".to_string()),
        "{text}"
    );
    assert!(marked(&text).is_empty(), "every RST waited for");
    // The ground truth: the same host with its limiter switched off.
    in_ns(
        &format!("{}-rstlim", lab.prefix),
        &["iptables", "-F", "OUTPUT"],
    );
    let truth = nmap(Some(&ns), "-sS", "syn", "1-3000", &[RSTLIM]);
    assert_same_states(&ours, &truth, "states and reasons of the limiter-free host");
}

#[test]
fn two_rejected_ports_in_a_four_technique_pass_equal_nmaps_separate_runs_ten_times() {
    if !have_root("two_rejected_ports_in_a_four_technique_pass_equal_nmaps_separate_runs_ten_times")
    {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-rej");
    let ns = lab.scan_ns();
    // nmap's separate runs, with the host's limiter off: the ground truth.
    let rej = format!("{}-rej", lab.prefix);
    in_ns(&rej, &["sysctl", "-w", "net.ipv4.icmp_ratelimit=0"]);
    in_ns(&rej, &["sysctl", "-w", "net.ipv4.icmp_msgs_burst=10000"]);
    let mut theirs = States::new();
    for (flag, scan) in [
        ("-sS", "syn"),
        ("-sF", "fin"),
        ("-sN", "null"),
        ("-sX", "xmas"),
    ] {
        theirs.extend(nmap(Some(&ns), flag, scan, "1-500", &[REJ]));
    }
    // Linux's default again: one ICMP error a second, a burst of 6. Its
    // bucket starts empty (the kernel kept no tokens while the limit was
    // off); a host not scanned for six seconds has it full.
    in_ns(&rej, &["sysctl", "-w", "net.ipv4.icmp_ratelimit=1000"]);
    in_ns(&rej, &["sysctl", "-w", "net.ipv4.icmp_msgs_burst=50"]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    for run in 1..=10 {
        let text = run_json(
            "rej",
            &[
                "--netns", &ns, "-sS", "-sF", "-sN", "-sX", "-p", "1-500", REJ,
            ],
        );
        assert_same_states(&parse_jsonl(&text), &theirs, &format!("run {run}"));
    }
}

#[test]
fn a_firewalld_like_host_is_paced_and_what_stays_unconfirmed_is_marked() {
    if !have_root("a_firewalld_like_host_is_paced_and_what_stays_unconfirmed_is_marked") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-fwd");
    let ns = lab.scan_ns();
    // A short budget keeps the test short; the benchmark runs the default.
    let text = run_json(
        "fwd",
        &[
            "--netns",
            &ns,
            "-sF",
            "-p",
            "1-100",
            "--limit-budget",
            "8",
            FWD,
        ],
    );
    let ours = parse_jsonl(&text);
    let marks = marked(&text);
    let ids = finding_ids(&text);
    assert!(ids.contains(&"icmp-rate-limit".to_string()), "{ids:?}");
    assert!(!ids.contains(&"silent-filter".to_string()), "{ids:?}");
    // The ground truth: the same host without Linux's ICMP limit.
    let fwd = format!("{}-fwd", lab.prefix);
    in_ns(&fwd, &["sysctl", "-w", "net.ipv4.icmp_ratelimit=0"]);
    in_ns(&fwd, &["sysctl", "-w", "net.ipv4.icmp_msgs_per_sec=100000"]);
    in_ns(&fwd, &["sysctl", "-w", "net.ipv4.icmp_msgs_burst=10000"]);
    let truth = parse_jsonl(&run_json(
        "fwd-truth",
        &["--netns", &ns, "-sF", "-p", "1-100", FWD],
    ));
    assert_eq!(ours.len(), truth.len());
    let mut right = 0;
    for (k, v) in &truth {
        if ours[k] == *v {
            right += 1;
        } else {
            assert!(
                marks.contains(k),
                "{k:?} is wrong ({:?}, truly {v:?}) and not marked",
                ours[k]
            );
        }
    }
    // The burst (6), the paced ones (about one a second for 8 s), the
    // open port.
    assert!(right >= 10, "only {right} of 100 right");
    assert!(
        !marks.is_empty(),
        "8 s cannot confirm 99 ports at one a second"
    );
}

#[test]
fn an_interrupt_during_discovery_leaves_the_hosts_not_asked_unknown() {
    if !have_root("an_interrupt_during_discovery_leaves_the_hosts_not_asked_unknown") {
        return;
    }
    use std::io::BufRead;
    let _serial = serial();
    let lab = Lab::up("fst-dint");
    let ns = lab.scan_ns();
    let dir = std::env::temp_dir().join(format!("flagscan-dint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.jsonl");
    // Slow on purpose (50 probes a second, four per host): discovery of
    // the routed /24 would take about 40 s.
    let mut child = Command::new(flagscan_bin())
        .args([
            "--netns",
            &ns,
            "-sS",
            "-p",
            "22",
            "--rate",
            "50",
            "--packet-trace",
        ])
        .arg("--resume-file")
        .arg(dir.join("resume"))
        .arg("-oJ")
        .arg(&json)
        .arg(FAR_NET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The handshake: five hosts asked.
    let asked = lines
        .by_ref()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("PING ") && l.contains(" try 1: "))
        .take(5)
        .count();
    assert_eq!(asked, 5);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "interrupted");
    let records = host_records_any(&std::fs::read_to_string(&json).unwrap());
    // The outputs say what discovery found of the hosts it reached; the
    // hosts it never asked are its resume's, not records of "down" (nor
    // of "unknown": a /8 would write 16 million of those).
    assert!(
        records.values().all(|r| r.0 == "down" || r.0 == "up"),
        "{records:?}"
    );
    let unknown = 256 - records.len();
    // The text report gives them one line, not a report each.
    let told: Vec<&String> = report.iter().filter(|l| l.contains("not asked")).collect();
    assert_eq!(
        told,
        [&format!(
            "{unknown} hosts not asked: host discovery was interrupted before reaching them; --resume scans them."
        )],
        "{report:?}"
    );
    assert!(
        unknown > 200,
        "hosts never asked are left to the resume, not down: {unknown}"
    );
    assert!(dir.join("resume").exists(), "a resume file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Host records whatever their status (including `unknown`).
fn host_records_any(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "host")
        .map(|v| {
            (
                v["host"].as_str().unwrap().to_string(),
                (
                    v["status"].as_str().unwrap().to_string(),
                    v["reason"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// The scan time of a `--packet-trace` line (`SENT 0.0079s ...`).
fn trace_time(line: &str) -> f64 {
    let t = line.split_whitespace().nth(1).unwrap();
    t.trim_end_matches('s').parse().unwrap()
}

#[test]
fn hosts_found_up_are_scanned_while_discovery_asks_the_others_and_the_pcap_holds_both() {
    if !have_root(
        "hosts_found_up_are_scanned_while_discovery_asks_the_others_and_the_pcap_holds_both",
    ) {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-pipe");
    let ns = lab.scan_ns();
    let pcap = std::env::temp_dir().join(format!("flagscan-pipe-{}.pcap", std::process::id()));
    let out = Command::new(flagscan_bin())
        .args([
            "--netns",
            &ns,
            "-sS",
            "-p",
            "22",
            "--packet-trace",
            "--pcap",
        ])
        .arg(&pcap)
        .args([LAN, FAR_NET])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = String::from_utf8_lossy(&out.stdout);
    let first_probe = trace
        .lines()
        .find(|l| l.starts_with("SENT "))
        .map(trace_time)
        .expect("port probes were sent");
    // An empty address is concluded down after its last try's timeout
    // (three ARP tries, two IP tries): discovery's last line comes long
    // after the live hosts' first answers.
    let last_ping = trace
        .lines()
        .filter(|l| l.starts_with("PING "))
        .map(trace_time)
        .fold(0.0, f64::max);
    assert!(
        first_probe < last_ping,
        "the first port probe ({first_probe} s) waited for discovery to end ({last_ping} s)"
    );
    // Only hosts found up were probed, whenever they were found.
    let up: BTreeSet<&str> = trace
        .lines()
        .filter(|l| l.starts_with("PING ") && l.ends_with("-> up"))
        .filter_map(|l| l.split_whitespace().nth(2)?.strip_suffix(':'))
        .chain(["10.213.1.1"])
        .collect();
    assert!(
        up.contains("10.213.2.2") && up.contains("10.213.1.2"),
        "{up:?}"
    );
    for line in trace.lines().filter(|l| l.starts_with("SENT ")) {
        let dst = line.split(" > ").nth(1).unwrap().split(':').next().unwrap();
        assert!(up.contains(dst), "a probe to {dst}, not found up: {line}");
    }
    // The pcap holds discovery's IP packets too: echo requests to the
    // routed /24 and the far host's echo reply.
    let fields = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args([
            "-Y",
            "icmp.type == 8 || icmp.type == 0",
            "-T",
            "fields",
            "-e",
            "icmp.type",
            "-e",
            "ip.src",
        ])
        .output()
        .expect("tshark must be installed (apt-get install tshark)");
    let fields = String::from_utf8_lossy(&fields.stdout);
    let requests = fields.lines().filter(|l| l.starts_with("8\t")).count();
    assert!(requests >= 254, "echo requests in the pcap: {requests}");
    assert!(
        fields.lines().any(|l| l == "0\t10.213.2.2"),
        "the far host's echo reply is in the pcap:\n{fields}"
    );
    let _ = std::fs::remove_file(&pcap);
}
