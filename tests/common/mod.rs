//! Shared helpers for the tests that need root: running flagscan, building
//! a lab, running nmap as the oracle and reading both tools' outputs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// (host, port, technique) -> (state, reason)
pub type States = BTreeMap<(String, u16, String), (String, String)>;

pub fn flagscan_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flagscan"))
}

pub fn flagscan(args: &[&str]) -> Output {
    Command::new(flagscan_bin())
        .args(args)
        .output()
        .expect("cannot run the flagscan binary")
}

/// True when the test may use root. Under CI (CI=true) a test that needs
/// root must run, so missing root fails instead of skipping.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root and CI=true: run the tests as root");
    }
    eprintln!("skipped {test}: needs root (network namespaces and raw sockets)");
    false
}

/// Real scans share two cores; running them one at a time keeps timing
/// (and so nmap's and flagscan's retries) comparable.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A lab built by `flagscan lab up`, removed on drop (also on panic).
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    /// The prefix gets this process's id, so that two test runs on one
    /// machine (two checkouts, say) never share a lab.
    pub fn up(prefix: &str) -> Lab {
        let prefix = &format!("{prefix}-{}", std::process::id());
        let out = flagscan(&["lab", "up", "--prefix", prefix]);
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Lab {
            prefix: prefix.to_string(),
        }
    }

    pub fn scan_ns(&self) -> String {
        format!("{}-scan", self.prefix)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = flagscan(&["lab", "down", "--prefix", &self.prefix]);
    }
}

/// Reads flagscan's JSON Lines port records.
pub fn parse_jsonl(text: &str) -> States {
    let mut states = States::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        if v.get("type").is_some() {
            assert!(
                v.get("port").is_none(),
                "typed records carry no port: {line}"
            );
            continue;
        }
        let key = (
            v["host"].as_str().unwrap().to_string(),
            v["port"].as_u64().unwrap() as u16,
            v["scan"].as_str().unwrap().to_string(),
        );
        let val = (
            v["state"].as_str().unwrap().to_string(),
            v["reason"].as_str().unwrap().to_string(),
        );
        let udp = v["scan"] == "udp";
        assert_eq!(v["proto"], if udp { "udp" } else { "tcp" });
        assert!(
            states.insert(key, val).is_none(),
            "duplicate record: {line}"
        );
    }
    states
}

/// Runs nmap with `flag` (-sS, -sF, ...) from inside `netns` (None: here)
/// and returns every port's state, unfolding nmap's "extraports".
pub fn nmap(netns: Option<&str>, flag: &str, scan: &str, ports: &str, targets: &[&str]) -> States {
    nmap_with(netns, &[flag], scan, ports, targets)
}

/// As [`nmap`] with several flags (`-6 -sS`).
pub fn nmap_with(
    netns: Option<&str>,
    flags: &[&str],
    scan: &str,
    ports: &str,
    targets: &[&str],
) -> States {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nmap"]);
            c
        }
        None => Command::new("nmap"),
    };
    cmd.args(flags);
    cmd.args(["-p", ports, "-n", "-Pn", "--reason", "-T4", "-oX", "-"]);
    cmd.args(targets);
    let out = cmd
        .output()
        .expect("nmap must be installed (apt-get install nmap)");
    assert!(
        out.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_nmap_xml(&String::from_utf8_lossy(&out.stdout), scan)
}

pub fn expand_ports(list: &str) -> Vec<u16> {
    let mut v = Vec::new();
    for item in list.split(',').filter(|s| !s.is_empty()) {
        match item.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()),
            None => v.push(item.parse().unwrap()),
        }
    }
    v
}

/// An attribute of an XML element, or "" when it has none.
pub fn xml_attr(e: &quick_xml::events::BytesStart, name: &str) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .map(|a| a.unescape_value().unwrap().into_owned())
        .unwrap_or_default()
}

/// Runs flagscan with `args` and `-oJ` to a file of its own, named after
/// `name`; returns the JSON Lines. Fails the test if flagscan does.
#[allow(dead_code)]
pub fn run_json(name: &str, args: &[&str]) -> String {
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

/// Calls `each` with the name of every start or empty element of `xml`
/// and a way to read its attributes.
pub fn for_each_xml_element(xml: &str, mut each: impl FnMut(&[u8], &dyn Fn(&str) -> String)) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        let ev = reader.read_event().expect("nmap writes well-formed XML");
        let e = match &ev {
            Event::Start(e) | Event::Empty(e) => e.clone(),
            Event::Eof => break,
            _ => continue,
        };
        each(e.name().as_ref(), &|name| xml_attr(&e, name));
    }
}

pub fn parse_nmap_xml(xml: &str, scan: &str) -> States {
    let mut states = States::new();
    let (mut host, mut port, mut extra_state) = (String::new(), 0u16, String::new());
    for_each_xml_element(xml, |name, attr| match name {
        b"address" if attr("addrtype") != "mac" => host = attr("addr"),
        b"port" => port = attr("portid").parse().unwrap(),
        b"state" => {
            states.insert(
                (host.clone(), port, scan.to_string()),
                (attr("state"), attr("reason")),
            );
        }
        b"extraports" => extra_state = attr("state"),
        b"extrareasons" => {
            let ports = attr("ports");
            assert!(
                !ports.is_empty(),
                "this nmap does not list extraports' ports; need nmap >= 7.80"
            );
            for p in expand_ports(&ports) {
                states.insert(
                    (host.clone(), p, scan.to_string()),
                    (extra_state.clone(), attr("reason")),
                );
            }
        }
        _ => {}
    });
    states
}

/// Fails with the first differences (not two whole maps) when `ours` and
/// `theirs` differ.
#[allow(dead_code)]
pub fn assert_same_states(ours: &States, theirs: &States, what: &str) {
    let mut d: Vec<String> = Vec::new();
    for (k, v) in theirs {
        match ours.get(k) {
            Some(o) if o == v => {}
            o => d.push(format!("{k:?}: expected {v:?}, flagscan {o:?}")),
        }
    }
    for k in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        d.push(format!("{k:?}: only flagscan reports it ({:?})", ours[k]));
    }
    assert!(
        d.is_empty(),
        "{what}: {} differences, first ones:\n{}",
        d.len(),
        d[..d.len().min(20)].join("\n")
    );
}

/// Runs a command inside a lab namespace; fails the test if it fails.
#[allow(dead_code)]
pub fn in_ns(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The JSON Lines records of ports marked `rate_limited`.
pub fn marked(text: &str) -> std::collections::BTreeSet<(String, u16, String)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["rate_limited"] == true)
        .map(|v| {
            (
                v["host"].as_str().unwrap().to_string(),
                v["port"].as_u64().unwrap() as u16,
                v["scan"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn finding_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "host")
        .flat_map(|v| {
            v["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|f| f["id"].as_str().unwrap().to_string())
        })
        .collect()
}
