//! The two packet I/O paths (`--io fast`, the default, and `--io portable`)
//! give the same answers: one lab host, every port, two techniques.

mod common;

use common::*;

const WEB: &str = "10.213.1.2";
const NOTICE: &str = "fast packet path is unavailable";

fn scan(ns: &str, io: &str) -> (States, serde_json::Value) {
    let json = std::env::temp_dir().join(format!(
        "flagscan-io-paths-{io}-{}.jsonl",
        std::process::id()
    ));
    let out = flagscan(&[
        "--netns",
        ns,
        "--io",
        io,
        "-sS",
        "-sF",
        "-p-",
        WEB,
        "-oJ",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--io {io} failed: {stderr}");
    // On this kernel the fast path is there: no fallback notice.
    assert!(!stderr.contains(NOTICE), "--io {io}: {stderr}");
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let stats = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "stats")
        .unwrap_or_else(|| panic!("--io {io}: no stats record"));
    (parse_jsonl(&text), stats)
}

#[test]
fn portable_and_fast_io_agree_on_every_port() {
    if !have_root("portable_and_fast_io_agree_on_every_port") {
        return;
    }
    let _serial = serial();
    let lab = Lab::up("fst-io");
    let ns = lab.scan_ns();
    let (fast, fast_stats) = scan(&ns, "fast");
    let (portable, portable_stats) = scan(&ns, "portable");
    assert_eq!(fast.len(), 65535 * 2, "one record per port and technique");
    let differences: Vec<String> = fast
        .iter()
        .filter(|(k, v)| portable.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: fast {v:?}, portable {:?}", portable.get(k)))
        .collect();
    assert!(
        differences.is_empty() && fast.len() == portable.len(),
        "{} differences, first ones:\n{}",
        differences.len(),
        differences[..differences.len().min(20)].join("\n")
    );
    for stats in [&fast_stats, &portable_stats] {
        assert_eq!(stats["invalid"], 0, "{stats}");
    }
    // The lab's behaviours are there, so an empty lab cannot pass.
    let at = |p: u16, s: &str| fast[&(WEB.to_string(), p, s.to_string())].clone();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(at(22, "syn"), pair("open", "syn-ack"));
    assert_eq!(at(23, "syn"), pair("closed", "reset"));
    assert_eq!(at(111, "fin"), pair("filtered", "port-unreach"));
    assert_eq!(at(135, "syn"), pair("filtered", "no-response"));
}

#[test]
fn an_unknown_io_path_is_a_usage_error() {
    let out = flagscan(&["--io", "turbo", "-p", "1", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("turbo"), "{stderr}");
    assert!(stderr.contains("portable"), "{stderr}");
}
