//! nmap's options that users bring along (issue 14), on real scans (root)
//! with nmap as the oracle: `--scanflags`, `-g` and host names in the
//! outputs.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const WEB: &str = "10.213.1.2";
const RST: &str = "10.213.1.3";
const FAR: &str = "10.213.2.2";

/// A file of this test's own in the temporary directory, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Temp {
        Temp(std::env::temp_dir().join(format!("flagscan-habits-{name}-{}", std::process::id())))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// nmap's XML for `args` (with `-n -Pn --reason -T4`), run inside `netns`.
fn nmap_xml(netns: Option<&str>, args: &[&str]) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nmap"]);
            c
        }
        None => Command::new("nmap"),
    };
    cmd.args(["-n", "-Pn", "--reason", "-T4", "-oX", "-"])
        .args(args);
    let out = cmd
        .output()
        .expect("nmap must be installed (apt-get install nmap)");
    assert!(
        out.status.success(),
        "nmap {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The attributes of the first element named `name`.
fn attrs_of(xml: &str, name: &str, keys: &[&str]) -> Vec<String> {
    let mut found = None;
    for_each_xml_element(xml, |n, attr| {
        if found.is_none() && n == name.as_bytes() {
            found = Some(keys.iter().map(|k| attr(k)).collect());
        }
    });
    found.unwrap_or_else(|| panic!("no <{name}> in {xml}"))
}

/// Validates a flagscan document against nmap's DTD. The DTD allows only
/// `scanner="nmap"` (docs/output.md), so that one attribute is swapped.
fn assert_dtd_valid(xml: &str, what: &str) {
    let doc = Temp::new(&format!("{what}-dtd.xml"));
    std::fs::write(
        &doc.0,
        xml.replacen("scanner=\"flagscan\"", "scanner=\"nmap\"", 1),
    )
    .unwrap();
    let out = Command::new("xmllint")
        .args([
            "--noout",
            "--dtdvalid",
            "/usr/share/nmap/nmap.dtd",
            doc.path(),
        ])
        .output()
        .expect("xmllint must be installed (apt-get install libxml2-utils)");
    assert!(
        out.status.success(),
        "{what}: not valid against nmap.dtd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// flagscan's options, nmap's, the scan's name, nmap's type and flags.
type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a str, &'a str, &'a str);

/// `--scanflags` on the lab: the states nmap's `--scanflags` with the same
/// base technique reports, and nmap's `scaninfo` (base type, `scanflags`).
#[test]
fn scanflags_scans_match_nmaps_with_the_same_base() {
    if !have_root("scanflags_scans_match_nmaps_with_the_same_base") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-flags");
    let ns = lab.scan_ns();
    let ports = "1-40,80,111,135,443,445,5430-5433,8000-8003,8080";
    let cases: [Case; 3] = [
        (
            &["-sF", "--scanflags", "psh"],
            &["-sF", "--scanflags", "PSH"],
            "fin-psh",
            "fin",
            "PSH",
        ),
        (
            &["--scanflags", "SYNFIN"],
            &["--scanflags", "FINSYN"],
            "syn-finsyn",
            "syn",
            "FINSYN",
        ),
        (
            &["-sA", "--scanflags", "0x12"],
            &["-sA", "--scanflags", "18"],
            "ack-synack",
            "ack",
            "SYNACK",
        ),
    ];
    for (ours_opts, nmap_opts, scan, base, flags) in cases {
        let xml = Temp::new(&format!("{scan}.xml"));
        let mut args = vec![
            "--netns",
            &ns,
            "-p",
            ports,
            WEB,
            RST,
            FAR,
            "-oX",
            xml.path(),
        ];
        args.extend(ours_opts);
        let ours = parse_jsonl(&run_json(scan, &args));
        let mut nmap_args = nmap_opts.to_vec();
        nmap_args.extend(["-p", ports, WEB, RST, FAR]);
        let theirs_xml = nmap_xml(Some(&ns), &nmap_args);
        let theirs = parse_nmap_xml(&theirs_xml, scan);
        assert_eq!(ours.len(), 3 * expand_ports(ports).len(), "{scan}");
        assert_same_states(&ours, &theirs, scan);
        let keys = ["type", "scanflags", "protocol"];
        let want = [base, flags, "tcp"].map(String::from).to_vec();
        assert_eq!(attrs_of(&xml.read(), "scaninfo", &keys), want, "{scan}");
        assert_eq!(attrs_of(&theirs_xml, "scaninfo", &keys), want, "{scan}");
        assert_dtd_valid(&xml.read(), scan);
        // The lab tells these probes apart: a comparison over one state
        // everywhere would prove nothing.
        let state = |h: &str, p: u16| ours[&(h.to_string(), p, scan.to_string())].0.clone();
        match base {
            "fin" => {
                assert_eq!(state(WEB, 1), "closed");
                assert_eq!(state(WEB, 22), "open|filtered");
                assert_eq!(state(WEB, 111), "filtered");
            }
            "syn" => {
                assert_eq!(state(WEB, 1), "closed");
                // Linux drops SYN+FIN on a listening port.
                assert_eq!(state(WEB, 22), "filtered");
            }
            _ => {
                assert_eq!(state(WEB, 22), "unfiltered");
                assert_eq!(state(WEB, 135), "filtered");
            }
        }
    }
}

/// Bad values of these options: one line naming the problem, exit 2,
/// before anything is sent (no root needed).
#[test]
fn bad_values_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["--scanflags", "SYNX"], "--scanflags 'SYNX'"),
        (&["--scanflags", "256"], "above 255"),
        (&["--scanflags", ""], "empty"),
        (&["-sS", "-sF", "--scanflags", "PSH"], "has 2 (syn, fin)"),
        (&["-sU", "--scanflags", "PSH"], "has none"),
        (&["-g", "0"], "'0' for '--source-port"),
        (&["-g", "70000"], "70000"),
        (&["--source-port", "x"], "'x'"),
        (&["-g", "53", "-sS", "-sU"], "-g 53 with -sU"),
    ];
    for (opts, want) in cases {
        let mut args = opts.to_vec();
        args.push("127.0.0.1");
        let out = flagscan(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{opts:?}: {err}");
        assert!(err.contains(want), "{opts:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{opts:?}: {err}");
        assert!(out.stdout.is_empty(), "{opts:?}");
    }
}

/// `-g 53` on the lab: the same states as without it, and the pcap shows
/// every probe leaving from port 53 (and only the probes: as many as the
/// stats count).
#[test]
fn a_fixed_source_port_gives_the_same_states_and_every_probe_leaves_from_it() {
    if !have_root("a_fixed_source_port_gives_the_same_states_and_every_probe_leaves_from_it") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-sport");
    let ns = lab.scan_ns();
    // Stateless rules only: with -g a SYN and a FIN to one port share a
    // 4-tuple, which a stateful firewall sees as one flow (docs/techniques.md).
    let ports = "1-30,80,111,135-139,443,445";
    let scan = |extra: &[&str], name: &str| {
        let mut args = vec!["--netns", &ns, "-sS", "-sF", "-p", ports, WEB, FAR];
        args.extend(extra);
        run_json(name, &args)
    };
    let plain = parse_jsonl(&scan(&[], "sport-plain"));
    let pcap = Temp::new("sport.pcap");
    let text = scan(&["-g", "53", "--pcap", pcap.path()], "sport-53");
    let fixed = parse_jsonl(&text);
    assert_eq!(plain.len(), 2 * 2 * expand_ports(ports).len());
    assert_same_states(&fixed, &plain, "-g 53 against no -g");
    let states: std::collections::BTreeSet<&str> =
        fixed.values().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        states.into_iter().collect::<Vec<_>>(),
        ["closed", "filtered", "open", "open|filtered"],
        "the lab shows every kind of answer"
    );
    let out = Command::new("tshark")
        .args(["-r", pcap.path(), "-n", "-T", "fields", "-E", "separator=|"])
        .args(["-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-Y", "ip.src == 10.213.1.1 && tcp && !icmp"])
        .output()
        .expect("tshark must be installed (apt-get install tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let stats: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(stats["invalid"], 0);
    let (probes, others): (Vec<&String>, Vec<&String>) =
        sent.iter().partition(|l| l.split('|').nth(1) == Some("53"));
    assert_eq!(probes.len() as u64, stats["probes"].as_u64().unwrap());
    // Host discovery keeps its own ports: FAR, beyond the link, gets
    // nmap's SYN to 443 and ACK to 80 (WEB answers ARP).
    let mut others: Vec<&str> = others
        .iter()
        .map(|l| l.rsplit('|').next().unwrap())
        .collect();
    others.sort();
    assert_eq!(others, ["443", "80"], "{sent:?}");
}

/// A target given as `localhost`: nmap's `hostname` element (type "user")
/// in the XML, "report for localhost (127.0.0.1)" as nmap's normal output,
/// `Host: 127.0.0.1 (localhost)` in the grepable file and `"name"` in JSON
/// Lines; a target given as an address has none.
#[test]
fn host_names_given_as_targets_are_in_every_output_as_nmaps_are() {
    if !have_root("host_names_given_as_targets_are_in_every_output_as_nmaps_are") {
        return;
    }
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (xml, gnmap, normal) = (
        Temp::new("h.xml"),
        Temp::new("h.gnmap"),
        Temp::new("h.nmap"),
    );
    let args = [
        "-p",
        &port,
        "localhost",
        "-oX",
        xml.path(),
        "-oG",
        gnmap.path(),
        "-oN",
        normal.path(),
    ];
    let json = run_json("hostname", &args);
    let theirs_normal = Temp::new("nmap.nmap");
    let theirs = nmap_xml(
        None,
        &["-sS", "-p", &port, "localhost", "-oN", theirs_normal.path()],
    );
    let hostnames = |xml: &str| {
        let mut v = Vec::new();
        for_each_xml_element(xml, |n, attr| {
            if n == b"hostname" {
                v.push((attr("name"), attr("type")));
            }
        });
        v
    };
    let want = vec![("localhost".to_string(), "user".to_string())];
    assert_eq!(hostnames(&theirs), want, "nmap -n names the host as given");
    assert_eq!(hostnames(&xml.read()), want);
    assert_dtd_valid(&xml.read(), "hostname");
    let report = |text: &str, tool: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(tool)?
                    .strip_prefix(" scan report for ")
                    .or(l.strip_prefix("flagscan report for "))
            })
            .map(String::from)
            .unwrap_or_else(|| panic!("no report line: {text}"))
    };
    assert_eq!(report(&normal.read(), "flagscan"), "localhost (127.0.0.1)");
    assert_eq!(
        report(&theirs_normal.read(), "Nmap"),
        "localhost (127.0.0.1)"
    );
    let g = gnmap.read();
    assert!(g.contains("Host: 127.0.0.1 (localhost)\tStatus: Up"), "{g}");
    assert!(g.contains("Host: 127.0.0.1 (localhost)\tPorts: "), "{g}");
    let host_record = |json: &str| -> serde_json::Value {
        json.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["type"] == "host")
            .unwrap()
    };
    assert_eq!(host_record(&json)["name"], "localhost");
    // The port is open: the name is on the host that was scanned.
    assert!(json.contains(&format!(
        "\"port\":{port},\"proto\":\"tcp\",\"scan\":\"syn\",\"state\":\"open\""
    )));
    let by_address = run_json("no-hostname", &["-p", &port, "127.0.0.1"]);
    assert!(host_record(&by_address)["name"].is_null(), "{by_address}");
    drop(listener);
}
