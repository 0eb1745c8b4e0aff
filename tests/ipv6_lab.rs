//! Real scans over IPv6 (root): flagscan against `nmap -6` on the lab's
//! hosts, whose ip6tables rules mirror their iptables rules but for web's
//! (it has no rule for 137-139 over IPv6, the firewall written for IPv4
//! only that a scan should reveal).

mod common;

use common::*;

const WEB6: &str = "fd00:213:1::2";
const RST6: &str = "fd00:213:1::3";
const FAR6: &str = "fd00:213:2::2";
const WEB4: &str = "10.213.1.2";
const TECHNIQUES: [(&str, &str); 7] = [
    ("-sS", "syn"),
    ("-sF", "fin"),
    ("-sN", "null"),
    ("-sX", "xmas"),
    ("-sA", "ack"),
    ("-sW", "window"),
    ("-sM", "maimon"),
];

#[test]
fn every_technique_over_ipv6_matches_nmap_6_on_every_port() {
    if !have_root("every_technique_over_ipv6_matches_nmap_6_on_every_port") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6");
    let ns = lab.scan_ns();
    let mut args = vec!["--netns", ns.as_str(), "-Pn", "-p-"];
    args.extend(TECHNIQUES.iter().map(|(flag, _)| *flag));
    args.extend([WEB6, RST6, FAR6]);
    let text = run_json("ipv6-vs-nmap", &args);
    let ours = parse_jsonl(&text);
    assert_eq!(ours.len(), 3 * 65535 * TECHNIQUES.len());
    let mut theirs = States::new();
    for (flag, scan) in TECHNIQUES {
        theirs.extend(nmap_with(
            Some(&ns),
            &["-6", flag],
            scan,
            "1-65535",
            &[WEB6, RST6, FAR6],
        ));
    }
    assert_same_states(&ours, &theirs, "flagscan -6 against nmap -6");

    // The lab shows what the comparison is meant to cover: ICMPv6 errors
    // with their own reasons, silence, resets, a host behind a router.
    let at = |h: &str, p: u16, s: &str| ours[&(h.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(WEB6, 22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(WEB6, 111, "syn"), pair("filtered", "port-unreach"));
    assert_eq!(at(WEB6, 445, "fin"), pair("filtered", "admin-prohibited"));
    assert_eq!(at(WEB6, 135, "syn"), pair("filtered", "no-response"));
    assert_eq!(at(WEB6, 137, "syn"), pair("closed", "reset"));
    assert_eq!(at(RST6, 22, "fin"), pair("closed", "reset"));
    assert_eq!(at(FAR6, 25, "syn"), pair("filtered", "no-response"));
    let far = text
        .lines()
        .find(|l| l.contains(FAR6) && l.contains("\"port\":22,") && l.contains("\"syn\""))
        .unwrap();
    assert!(far.contains("\"ttl\":63"), "one router on the way: {far}");
    let stats: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(
        stats["invalid"], 0,
        "the lab's neighbour discovery is not ours"
    );
}

/// Both families of one host in one scan: each answers for itself, and the
/// port the IPv4 firewall drops is closed over IPv6. The XML names each
/// address's family.
#[test]
fn one_scan_of_both_families_shows_the_ipv4_only_firewall() {
    if !have_root("one_scan_of_both_families_shows_the_ipv4_only_firewall") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v46");
    let ns = lab.scan_ns();
    let dir = std::env::temp_dir().join(format!("flagscan-v46-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("both.xml");
    let text = run_json(
        "ipv6-and-ipv4",
        &[
            "--netns",
            &ns,
            "-Pn",
            "-sS",
            "-p",
            "22,111,135-139,445",
            "-oX",
            xml.to_str().unwrap(),
            WEB4,
            WEB6,
        ],
    );
    let ours = parse_jsonl(&text);
    let mut theirs = nmap(Some(&ns), "-sS", "syn", "22,111,135-139,445", &[WEB4]);
    theirs.extend(nmap_with(
        Some(&ns),
        &["-6", "-sS"],
        "syn",
        "22,111,135-139,445",
        &[WEB6],
    ));
    assert_same_states(&ours, &theirs, "both families against nmap and nmap -6");
    for p in 137..=139 {
        let four = &ours[&(WEB4.to_string(), p, "syn".to_string())];
        let six = &ours[&(WEB6.to_string(), p, "syn".to_string())];
        assert_eq!(
            (four.0.as_str(), six.0.as_str()),
            ("filtered", "closed"),
            "{p}"
        );
    }
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert!(
        xml.contains(&format!("addr=\"{WEB6}\" addrtype=\"ipv6\"")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("addr=\"{WEB4}\" addrtype=\"ipv4\"")),
        "{xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Host discovery over IPv6 (ICMPv6 echo, SYN to 443, ACK to 80) finds
/// the hosts `nmap -6 -sn` finds, beside IPv4 in the same scan; a scan
/// without -Pn then scans only those.
#[test]
fn ipv6_host_discovery_finds_what_nmap_6_finds() {
    if !have_root("ipv6_host_discovery_finds_what_nmap_6_finds") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6sn");
    let ns = lab.scan_ns();
    let mut targets: Vec<String> = (2..=9).map(|i| format!("fd00:213:1::{i}")).collect();
    targets.extend(["fd00:213:2::2".into(), "fd00:213:2::9".into(), WEB4.into()]);
    let mut args = vec!["--netns", ns.as_str(), "-sn"];
    args.extend(targets.iter().map(String::as_str));
    let text = run_json("ipv6-sn", &args);
    let mut ours: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "host" && v["status"] == "up")
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    ours.sort();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "nmap", "-sn", "-n", "-oG", "-"])
        .args(["-6"])
        .args(&targets[..targets.len() - 1])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("Status: Up"))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    theirs.push(WEB4.to_string());
    theirs.sort();
    assert_eq!(ours, theirs, "{text}");
    assert_eq!(
        ours.len(),
        7,
        "six IPv6 hosts and web's IPv4 address: {ours:?}"
    );
    // On the link a neighbour solicitation asks (as nmap's); behind the
    // gateway, the IP probes.
    let reason = |host: &str| {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["type"] == "host" && v["host"] == host)
            .map(|v| v["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(reason(WEB6), "nd-response");
    assert_eq!(reason(FAR6), "echo-reply");
    assert_eq!(reason(WEB4), "arp-response");

    // Without -Pn: the absent address is not scanned, the present one is.
    let text = run_json(
        "ipv6-discovered",
        &["--netns", &ns, "-p", "22", WEB6, "fd00:213:1::9"],
    );
    let ports = parse_jsonl(&text);
    assert_eq!(ports.len(), 1, "{text}");
    assert_eq!(
        ports[&(WEB6.to_string(), 22, "syn".to_string())],
        ("open".to_string(), "syn-ack".to_string())
    );
}

/// The lab names its hosts for `ip netns exec` in the scanner's namespace
/// (both families per name): `--resolve-all web` scans both of web's
/// addresses, and each one's host record says where they differ.
#[test]
fn both_families_of_one_name_get_the_families_differ_finding() {
    if !have_root("both_families_of_one_name_get_the_families_differ_finding") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6name");
    let ns = lab.scan_ns();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(flagscan_bin())
        .args([
            "--resolve-all",
            "-Pn",
            "-sS",
            "-p",
            "22,80,135-139",
            "-oJ",
            "-",
            "web",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "host")
        .collect();
    let mut addrs: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
    addrs.sort();
    assert_eq!(addrs, [WEB4, WEB6], "{text}");
    for h in &hosts {
        assert_eq!(h["name"], "web");
        let f = h["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == "families-differ")
            .unwrap_or_else(|| panic!("no families-differ finding: {h}"));
        assert_eq!(f["ports"], serde_json::json!([137, 138, 139]), "{f}");
        let words = f["text"].as_str().unwrap();
        assert!(
            words.contains("filtered over IPv4 and closed over IPv6"),
            "{words}"
        );
    }
}

/// Rate limiters over IPv6: rstlim's RST limit (ip6tables) and fwd's
/// ICMPv6 error limit (`net.ipv6.icmp.ratelimit`) are found and paced as
/// over IPv4; the ground truth is the same host with its limiter off.
#[test]
fn ipv6_rate_limiters_are_measured_and_paced() {
    if !have_root("ipv6_rate_limiters_are_measured_and_paced") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6lim");
    let ns = lab.scan_ns();
    const RSTLIM6: &str = "fd00:213:1::4";
    const FWD6: &str = "fd00:213:1::5";

    let text = run_json(
        "rstlim6",
        &["--netns", &ns, "-Pn", "-sS", "-p", "1-3000", RSTLIM6],
    );
    let ours = parse_jsonl(&text);
    assert!(
        finding_ids(&text).contains(&"rst-rate-limit".to_string()),
        "{text}"
    );
    assert!(marked(&text).is_empty(), "every RST waited for");
    in_ns(
        &format!("{}-rstlim", lab.prefix),
        &["ip6tables", "-F", "OUTPUT"],
    );
    let truth = nmap_with(Some(&ns), &["-6", "-sS"], "syn", "1-3000", &[RSTLIM6]);
    assert_same_states(&ours, &truth, "rstlim over IPv6, limiter off");

    let text = run_json(
        "fwd6",
        &[
            "--netns",
            &ns,
            "-Pn",
            "-sF",
            "-p",
            "1-100",
            "--limit-budget",
            "8",
            FWD6,
        ],
    );
    let ours = parse_jsonl(&text);
    let marks = marked(&text);
    let ids = finding_ids(&text);
    assert!(ids.contains(&"icmp-rate-limit".to_string()), "{ids:?}");
    assert!(!ids.contains(&"silent-filter".to_string()), "{ids:?}");
    let fwd = format!("{}-fwd", lab.prefix);
    // ICMPv6 errors take the per-destination bucket of their own and the
    // namespace's one shared with ICMP (icmp_msgs_per_sec).
    in_ns(&fwd, &["sysctl", "-w", "net.ipv6.icmp.ratelimit=0"]);
    in_ns(&fwd, &["sysctl", "-w", "net.ipv4.icmp_msgs_per_sec=100000"]);
    in_ns(&fwd, &["sysctl", "-w", "net.ipv4.icmp_msgs_burst=10000"]);
    let truth = parse_jsonl(&run_json(
        "fwd6-truth",
        &["--netns", &ns, "-Pn", "-sF", "-p", "1-100", FWD6],
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
    assert!(right >= 50, "only {right} of 100 right");
    let filtered = truth
        .values()
        .filter(|(s, r)| s == "filtered" && r == "admin-prohibited");
    assert!(filtered.count() >= 90, "the truth is REJECTs: {truth:?}");
}

/// A link-local target with its scope (`fe80::...%eth0`) is scanned
/// through that interface from our link-local address, as nmap -6 does.
#[test]
fn a_link_local_target_with_its_scope_matches_nmap_6() {
    if !have_root("a_link_local_target_with_its_scope_matches_nmap_6") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6ll");
    let ns = lab.scan_ns();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}-web", lab.prefix)])
        .args([
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let web_ll = text
        .split_whitespace()
        .find(|w| w.starts_with("fe80:"))
        .and_then(|w| w.split('/').next())
        .unwrap_or_else(|| panic!("web has no link-local address: {text}"))
        .to_string();
    let target = format!("{web_ll}%eth0");
    let ours = parse_jsonl(&run_json(
        "ipv6-link-local",
        &["--netns", &ns, "-sS", "-p", "1-1024", &target],
    ));
    let theirs = nmap_with(Some(&ns), &["-6", "-sS"], "syn", "1-1024", &[&target]);
    // nmap names the host with its scope; flagscan by the address.
    let theirs: States = theirs
        .into_iter()
        .map(|((_, p, s), v)| ((web_ll.clone(), p, s), v))
        .collect();
    assert_eq!(ours.len(), 1024);
    assert_same_states(&ours, &theirs, "link-local over eth0");
    assert_eq!(
        ours[&(web_ll.clone(), 137, "syn".to_string())].0,
        "closed",
        "web's IPv6 firewall"
    );
}

/// UDP and the connect scan over IPv6 equal `nmap -6 -sU` and `nmap -6
/// -sT`: UDP's answers (services, ICMPv6 port unreachable, an ICMPv6
/// admin-prohibited, silence), the kernel's connects over IPv6.
#[test]
fn udp_and_connect_over_ipv6_match_nmap_6() {
    if !have_root("udp_and_connect_over_ipv6_match_nmap_6") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-v6u");
    let ns = lab.scan_ns();
    let udp_ports = "7,53,111,123,161,514,9999";
    let ours = parse_jsonl(&run_json(
        "ipv6-udp",
        &["--netns", &ns, "-Pn", "-sU", "-p", udp_ports, WEB6, RST6],
    ));
    let theirs = nmap_with(Some(&ns), &["-6", "-sU"], "udp", udp_ports, &[WEB6, RST6]);
    assert_same_states(&ours, &theirs, "-sU over IPv6");
    let at = |h: &str, p: u16| ours[&(h.to_string(), p, "udp".to_string())].clone();
    assert_eq!(at(WEB6, 53).0, "open");
    assert_eq!(
        at(WEB6, 514),
        ("filtered".into(), "admin-prohibited".into())
    );
    assert_eq!(at(RST6, 53), ("closed".into(), "port-unreach".into()));

    let ours = parse_jsonl(&run_json(
        "ipv6-connect",
        &["--netns", &ns, "-Pn", "-sT", "-p", "1-1024", WEB6],
    ));
    let theirs = nmap_with(Some(&ns), &["-6", "-sT"], "connect", "1-1024", &[WEB6]);
    assert_eq!(ours.len(), 1024);
    assert_same_states(&ours, &theirs, "-sT over IPv6");
}
