//! nmap's output formats (root): -oX read by nmap's own ndiff against
//! nmap's XML of the same scan type, one document per technique of an
//! interleaved pass; -oG's ports equal to nmap's; documents well-formed
//! when nothing is found and when the scan is interrupted; --open.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PORTS: &str = "1-200,445,5430-5439,8000-8100";
const HOSTS: [&str; 3] = ["10.213.1.2", "10.213.1.3", "10.213.1.77"];

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("flagscan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// nmap's -oA of one scan type, from inside the lab.
fn nmap_all(ns: &str, flag: &str, base: &Path) {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nmap", flag, "-p", PORTS, "-n", "--reason", "-T4", "-oA",
        ])
        .arg(base)
        .args(HOSTS)
        .output()
        .expect("nmap must be installed (apt-get install nmap)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ndiff's lines about ports (a port row, or a "Not shown" line that
/// differs); the header, which names the scanner, may differ.
fn port_differences(a: &Path, b: &Path) -> Vec<String> {
    let out = Command::new("ndiff")
        .arg(a)
        .arg(b)
        .output()
        .expect("ndiff must be installed (apt-get install ndiff)");
    // 0: the same, 1: differences; anything else is ndiff failing.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "ndiff failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("scan initiated"),
        "ndiff compared nothing:\n{text}"
    );
    text.lines()
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .filter(|l| !l.contains("scan initiated"))
        .map(String::from)
        .collect()
}

/// The `Ports:` items and the `Ignored State` of each host of a grepable
/// file.
fn grepable_ports(text: &str) -> Vec<(String, Vec<String>, String)> {
    text.lines()
        .filter(|l| l.contains("\tPorts: "))
        .map(|l| {
            let host = l.split_whitespace().nth(1).unwrap().to_string();
            let fields: Vec<&str> = l.split('\t').collect();
            let ports = fields[1]
                .trim_start_matches("Ports: ")
                .split(", ")
                .map(String::from)
                .collect();
            let ignored = fields.get(2).map_or(String::new(), |s| s.to_string());
            (host, ports, ignored)
        })
        .collect()
}

#[test]
fn each_techniques_xml_and_grepable_file_equal_nmaps_own_run() {
    if !have_root("each_techniques_xml_and_grepable_file_equal_nmaps_own_run") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-oxml");
    let ns = lab.scan_ns();
    let dir = Dir::new("oxml");
    let base = dir.file("scan");
    let out = Command::new(flagscan_bin())
        .args(["--netns", &ns, "-sS", "-sF", "-sA", "-p", PORTS, "-oA"])
        .arg(&base)
        .args(HOSTS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "scan.xml",
        "scan-fin.xml",
        "scan-ack.xml",
        "scan.gnmap",
        "scan-fin.gnmap",
        "scan.nmap",
        "scan.jsonl",
    ] {
        assert!(dir.file(name).exists(), "-oA wrote {name}");
    }
    for (flag, scan, ours) in [
        ("-sS", "syn", "scan"),
        ("-sF", "fin", "scan-fin"),
        ("-sA", "ack", "scan-ack"),
    ] {
        let theirs = dir.file(&format!("nmap-{scan}"));
        nmap_all(&ns, flag, &theirs);
        let (ours_xml, theirs_xml) = (
            dir.file(&format!("{ours}.xml")),
            theirs.with_extension("xml"),
        );
        let d = port_differences(&theirs_xml, &ours_xml);
        assert!(
            d.is_empty(),
            "ndiff of nmap {flag} and flagscan's {scan} document:\n{}",
            d.join("\n")
        );
        // ndiff reads states; reasons are compared here.
        assert_same_states(
            &parse_nmap_xml(&read(&ours_xml), scan),
            &parse_nmap_xml(&read(&theirs_xml), scan),
            &format!("{scan}: states and reasons in -oX"),
        );
        let ours_g = grepable_ports(&read(&dir.file(&format!("{ours}.gnmap"))));
        let theirs_g = grepable_ports(&read(&theirs.with_extension("gnmap")));
        assert_eq!(ours_g, theirs_g, "{scan}: -oG's ports");
        // One document per technique, one scaninfo each.
        let mut types = Vec::new();
        for_each_xml_element(&read(&ours_xml), |name, attr| {
            if name == b"scaninfo" {
                types.push((attr("type"), attr("numservices")));
            }
        });
        assert_eq!(types, [(scan.to_string(), "312".to_string())]);
    }
}

/// Every element of a document, by name (fails on XML that is not
/// well-formed).
fn elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for_each_xml_element(xml, |name, attr| {
        let keys: &[&str] = match name {
            b"finished" => &["exit", "errormsg"],
            b"hosts" => &["up", "down", "total"],
            b"status" => &["state"],
            _ => &[],
        };
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            keys.iter().map(|k| (k.to_string(), attr(k))).collect(),
        ));
    });
    out
}

#[test]
fn documents_are_whole_when_nothing_is_found_and_when_interrupted() {
    if !have_root("documents_are_whole_when_nothing_is_found_and_when_interrupted") {
        return;
    }
    use std::io::BufRead;
    let _serial = serial();
    let lab = Lab::up("fst-oxml2");
    let ns = lab.scan_ns();
    let dir = Dir::new("oxml2");
    // Nothing up: one empty address.
    let xml = dir.file("empty.xml");
    let out = Command::new(flagscan_bin())
        .args(["--netns", &ns, "-sS", "-p", "22", "-oX"])
        .arg(&xml)
        .arg("10.213.1.77")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = elements(&read(&xml));
    assert!(
        !e.iter().any(|(n, _)| n == "host"),
        "no host element for a host down"
    );
    let hosts = e
        .iter()
        .find(|(n, _)| n == "hosts")
        .expect("runstats' hosts");
    assert_eq!(
        hosts.1,
        [
            ("up".into(), "0".into()),
            ("down".into(), "1".into()),
            ("total".into(), "1".into())
        ]
    );
    // Interrupted: slow on purpose, stopped after a few probes.
    let xml = dir.file("stopped.xml");
    let mut child = Command::new(flagscan_bin())
        .args([
            "--netns",
            &ns,
            "-Pn",
            "-sS",
            "-p",
            "1-5000",
            "--rate",
            "200",
            "--packet-trace",
        ])
        .arg("--resume-file")
        .arg(dir.file("resume"))
        .arg("-oX")
        .arg(&xml)
        .arg("10.213.1.2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let sent = lines
        .by_ref()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("SENT "))
        .take(20)
        .count();
    assert_eq!(sent, 20);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    for _ in lines {}
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let e = elements(&read(&xml));
    let finished = e
        .iter()
        .find(|(n, _)| n == "finished")
        .expect("runstats' finished");
    assert_eq!(finished.1[0], ("exit".into(), "error".into()));
    assert!(finished.1[1].1.contains("--resume"), "{:?}", finished.1);
    assert_eq!(
        e.last().unwrap().0,
        "hosts",
        "the document ends with runstats"
    );
}

#[test]
fn open_lists_only_ports_that_may_be_open_and_hosts_that_have_one() {
    if !have_root("open_lists_only_ports_that_may_be_open_and_hosts_that_have_one") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-open");
    let ns = lab.scan_ns();
    let dir = Dir::new("open");
    let xml = dir.file("open.xml");
    // 10.213.1.2 listens on 22 and 80 of these; 10.213.1.1 (ours) on none.
    let out = Command::new(flagscan_bin())
        .args([
            "--netns",
            &ns,
            "-sS",
            "-p",
            "20-30,80,111,445",
            "--open",
            "-oX",
        ])
        .arg(&xml)
        .args(["10.213.1.2", "10.213.1.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("flagscan report for 10.213.1.2"), "{text}");
    assert!(
        !text.contains("flagscan report for 10.213.1.1"),
        "no open port there:\n{text}"
    );
    assert!(
        text.contains("22/tcp") && !text.contains("23/tcp ") && !text.contains("111/tcp"),
        "{text}"
    );
    let states = parse_nmap_xml(&read(&xml), "syn");
    let listed: Vec<u16> = states
        .iter()
        .filter(|(_, (s, _))| s == "open")
        .map(|(k, _)| k.1)
        .collect();
    assert_eq!(listed, [22, 80], "{states:?}");
    assert!(states.keys().all(|k| k.0 == "10.213.1.2"), "{states:?}");
    // The other ports are folded, counted, not dropped.
    let mut folded = 0;
    for_each_xml_element(&read(&xml), |name, attr| {
        if name == b"extraports" {
            folded += attr("count").parse::<usize>().unwrap();
        }
    });
    assert_eq!(folded, 12, "every port not open is in extraports");
}

#[test]
fn unconfirmed_ports_are_never_folded_and_ping_only_documents_have_no_ports() {
    if !have_root("unconfirmed_ports_are_never_folded_and_ping_only_documents_have_no_ports") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-oxml3");
    let ns = lab.scan_ns();
    let dir = Dir::new("oxml3");
    // The firewalld-like host: REJECTs everything, its ICMP errors
    // limited; a short budget leaves most FIN probes unconfirmed.
    let (xml, json) = (dir.file("fwd.xml"), dir.file("fwd.jsonl"));
    let out = Command::new(flagscan_bin())
        .args([
            "--netns",
            &ns,
            "-Pn",
            "-sF",
            "-p",
            "1-60",
            "--limit-budget",
            "2",
            "-oX",
        ])
        .arg(&xml)
        .arg("-oJ")
        .arg(&json)
        .arg("10.213.1.5")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marked: std::collections::BTreeSet<u16> = read(&json)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["rate_limited"] == true)
        .map(|v| v["port"].as_u64().unwrap() as u16)
        .collect();
    assert!(marked.len() > 25, "enough to be folded: {}", marked.len());
    let mut scripted = std::collections::BTreeSet::new();
    let mut port = 0u16;
    for_each_xml_element(&read(&xml), |name, attr| match name {
        b"port" => port = attr("portid").parse().unwrap(),
        b"script" if attr("id") == "flagscan-rate-limited" => {
            scripted.insert(port);
        }
        _ => {}
    });
    assert_eq!(
        scripted, marked,
        "every unconfirmed port listed, with its mark"
    );
    // -sn: hosts, no scaninfo, no ports; grepable: the status line alone.
    let (xml, gnmap) = (dir.file("sn.xml"), dir.file("sn.gnmap"));
    let out = Command::new(flagscan_bin())
        .args(["--netns", &ns, "-sn", "-oX"])
        .arg(&xml)
        .arg("-oG")
        .arg(&gnmap)
        .args(["10.213.1.2", "10.213.1.77"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = elements(&read(&xml));
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.contains(&"scaninfo") && !names.contains(&"ports"),
        "{names:?}"
    );
    assert_eq!(names.iter().filter(|n| **n == "host").count(), 1);
    let g = read(&gnmap);
    assert!(
        g.contains("Host: 10.213.1.2 ()\tStatus: Up") && !g.contains("Ports:"),
        "{g}"
    );
}

/// `-F` and `--top-ports N` pick nmap's ports: the XML's `scaninfo`
/// lists the same services as nmap's own run on loopback.
#[test]
fn fast_and_top_ports_pick_nmaps_ports() {
    if !have_root("fast_and_top_ports_pick_nmaps_ports") {
        return;
    }
    let _serial = serial();
    let services = |xml: &str| -> String {
        let at = xml.find("<scaninfo").expect("a scaninfo");
        let tail = &xml[at..];
        let s = tail.find(" services=\"").unwrap() + 11;
        tail[s..s + tail[s..].find('"').unwrap()].to_string()
    };
    for args in [
        vec!["-F"],
        vec!["--top-ports", "1000"],
        vec!["--top-ports", "7"],
    ] {
        let mut ours = vec!["-sS", "-Pn", "-oX", "-"];
        ours.extend(&args);
        ours.push("127.0.0.1");
        let out = flagscan(&ours);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut theirs = Command::new("nmap");
        theirs
            .args(["-sS", "-Pn", "-n", "-oX", "-"])
            .args(&args)
            .arg("127.0.0.1");
        let nm = theirs.output().expect("nmap runs");
        assert!(nm.status.success());
        let (a, b) = (
            services(&String::from_utf8_lossy(&out.stdout)),
            services(&String::from_utf8_lossy(&nm.stdout)),
        );
        assert_eq!(a, b, "{args:?}");
        assert!(a.contains("443") && a.contains("80"), "{a}");
    }
}

/// `-v` tells each open port as it is found, on stderr (stdout keeps the
/// report); `--stats-every` prints stats lines while a slow scan runs.
#[test]
fn verbose_tells_open_ports_as_found_and_stats_every_ticks() {
    if !have_root("verbose_tells_open_ports_as_found_and_stats_every_ticks") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-verbose");
    let ns = lab.scan_ns();
    let out = flagscan(&[
        "--netns",
        &ns,
        "-v",
        "-sS",
        "-p",
        "20-25,80,111",
        "10.213.1.2",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let mut told: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("Discovered open port"))
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            "Discovered open port 22/tcp on 10.213.1.2",
            "Discovered open port 80/tcp on 10.213.1.2"
        ],
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Discovered"));
    // rej limits its ICMP errors: 30 UDP ports take several seconds.
    let out = flagscan(&[
        "--netns",
        &ns,
        "--stats-every",
        "1s",
        "-Pn",
        "-sU",
        "-p",
        "1-30",
        "10.213.1.6",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let stats: Vec<&str> = err.lines().filter(|l| l.starts_with("Stats: ")).collect();
    assert!(stats.len() >= 2, "{err}");
    assert!(
        stats.iter().all(|l| l.contains(" of 30 probes decided")),
        "{err}"
    );
    // Without -v there is no open-port line.
    assert!(!err.contains("Discovered open port"), "{err}");
    assert!(!err.contains("Timing:"), "{err}");
    // rstlim sends at most 200 RSTs a second: -v tells how the timing
    // answers it (loss, then the limiter confirmed), -d2 (nmap's spelling)
    // adds the timing every second and at the end.
    let limited = [
        "--netns",
        &ns,
        "-Pn",
        "-sS",
        "-p",
        "1-1500",
        "--limit-budget",
        "3",
        "10.213.1.4",
    ];
    let out = flagscan(&[&["-v"], &limited[..]].concat());
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Timing: answers to retransmissions show loss: probes in flight cut from"),
        "{err}"
    );
    assert!(
        err.contains("Timing: a rate limiter is suspected: confirming"),
        "{err}"
    );
    assert!(
        !err.contains("Timing: srtt"),
        "-v alone shows no timing state: {err}"
    );
    let out = flagscan(&[&["-d2"], &limited[..]].concat());
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let states = err
        .lines()
        .filter(|l| l.starts_with("Timing: srtt "))
        .count();
    assert!(states >= 1, "a timing line a second: {err}");
    let last = err
        .lines()
        .find(|l| l.starts_with("Final timing: srtt "))
        .unwrap_or_else(|| panic!("a final timing line: {err}"));
    assert!(
        last.contains("in flight 0") && last.contains("window "),
        "{last}"
    );
    assert!(
        err.contains("Discovered open port 22/tcp on 10.213.1.4"),
        "-d is -v too: {err}"
    );
}

/// masscan's `--shard I/N` and zmap's `--shards N --shard I`: four shards
/// of a lab scan hold every (host, port, technique) of the unsharded scan
/// once, with its state and reason.
#[test]
fn four_shards_union_equals_the_unsharded_scan() {
    if !have_root("four_shards_union_equals_the_unsharded_scan") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-shard");
    let ns = lab.scan_ns();
    let base = [
        "--netns",
        &ns,
        "-Pn",
        "-sS",
        "-sF",
        "-sU",
        "-p",
        "U:7,53,123,161,T:1-300,445,8080",
        "10.213.1.2",
        "10.213.1.3",
        "fd00:213:1::2",
    ];
    let whole = parse_jsonl(&run_json("shard-whole", &base));
    assert_eq!(whole.len(), 3 * (302 * 2 + 4));
    let mut union = std::collections::BTreeMap::new();
    for (i, shard) in [
        ["--shard", "1/4"],
        ["--shard", "2/4"],
        ["--shards=4", "--shard=2"],
        ["--shard", "4/4"],
    ]
    .iter()
    .enumerate()
    {
        let mut args = base.to_vec();
        args.extend(shard.iter().copied());
        let part = parse_jsonl(&run_json(&format!("shard-{i}"), &args));
        assert!(part.len() > whole.len() / 8, "shard {i}: {}", part.len());
        for (k, v) in part {
            assert!(union.insert(k.clone(), v).is_none(), "{k:?} in two shards");
        }
    }
    assert_eq!(union.len(), whole.len());
    for (k, v) in &whole {
        assert_eq!(union.get(k), Some(v), "{k:?}");
    }
    // A shard's text report holds its own ports: none of the other
    // shards' shows as "not concluded".
    let mut args = base.to_vec();
    args.extend(["--shard", "3/4"]);
    let out = flagscan(&args);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("not concluded"), "{text}");
    assert!(text.contains("/udp") && text.contains("/tcp"), "{text}");
}

/// masscan's `-oL`: a line per open (host, port, protocol), whatever
/// technique found it open, between `#flagscan` and `# end`.
#[test]
fn the_list_output_holds_every_open_port_once() {
    if !have_root("the_list_output_holds_every_open_port_once") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-olist");
    let ns = lab.scan_ns();
    let list = std::env::temp_dir().join(format!("flagscan-olist-{}.txt", std::process::id()));
    let json = run_json(
        "olist",
        &[
            "--netns",
            &ns,
            "-Pn",
            "-sS",
            "-sF",
            "-sU",
            "-p",
            "1-100,123,443,8080",
            "10.213.1.2",
            "10.213.1.3",
            "-oL",
            list.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&list).unwrap();
    let _ = std::fs::remove_file(&list);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        (lines[0], *lines.last().unwrap()),
        ("#flagscan", "# end"),
        "{text}"
    );
    let mut listed: Vec<(String, u64, String)> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!((f.len(), f[0]), (5, "open"), "{l}");
            (f[1].to_string(), f[2].parse().unwrap(), f[3].to_string())
        })
        .collect();
    listed.sort();
    let mut open: Vec<(String, u64, String)> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["state"] == "open")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("proto"), v["port"].as_u64().unwrap(), s("host"))
        })
        .collect();
    open.sort();
    open.dedup();
    assert_eq!(listed, open);
    // web's SSH and DNS, the resetting host's SSH: the lab is there.
    for want in [
        ("tcp", 22, "10.213.1.2"),
        ("udp", 53, "10.213.1.2"),
        ("tcp", 22, "10.213.1.3"),
    ] {
        assert!(
            listed.contains(&(want.0.to_string(), want.1, want.2.to_string())),
            "{want:?} in {text}"
        );
    }
}
