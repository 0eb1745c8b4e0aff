//! Replays the fuzz corpus (fuzz/corpus/reply_path/) through the same reply
//! path as the fuzz target, in a normal `cargo test`: no nightly, no
//! libFuzzer. See docs/fuzzing.md.
//!
//! A file's name says what it must do: `reply-*` is validated and decides a
//! port, `forged-*` fails validation, `malformed-*` does not parse,
//! `ignored-*` parses but is not TCP we care about, `notours-*` is TCP not
//! addressed to our probes. Any other name (`random-*`, inputs the fuzzer
//! found, `crash-*` regressions) must only not panic. The real captured
//! replies, the `*_FIXTURE` arrays of src/wire/fixtures.rs, must all be in the corpus
//! byte for byte: the test reads them out of the source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flagscan::model::reply::ReplyEffect;

include!("../fuzz/harness/reply_path.rs");

use reply_path::Outcome;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/reply_path")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/reply_path exists")
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The `pub const NAME_FIXTURE: [u8; N] = [0x.., ...];` arrays of src/wire/fixtures.rs.
fn wire_fixtures() -> Vec<(String, Vec<u8>)> {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire/fixtures.rs"))
            .expect("src/wire/fixtures.rs");
    let mut out = Vec::new();
    for decl in src.split("pub const ").skip(1) {
        let Some((name, rest)) = decl.split_once(':') else {
            continue;
        };
        if !name.ends_with("_FIXTURE") {
            continue;
        }
        let len: usize = rest
            .split_once("; ")
            .and_then(|(_, r)| r.split_once(']'))
            .and_then(|(n, _)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: no [u8; N] type"));
        let body = rest
            .split_once("= [")
            .unwrap()
            .1
            .split_once("];")
            .unwrap()
            .0;
        let bytes: Vec<u8> = body
            .lines()
            .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
            .flat_map(|code| code.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| u8::from_str_radix(t.trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), len, "{name}");
        out.push((name.to_string(), bytes));
    }
    out
}

#[test]
fn every_real_fixture_is_in_the_corpus() {
    let fixtures = wire_fixtures();
    assert!(fixtures.len() >= 12, "found {} fixtures", fixtures.len());
    let corpus = corpus();
    for (name, bytes) in &fixtures {
        let stem = name.trim_end_matches("_FIXTURE").to_lowercase();
        let file = format!("{}.bin", stem.replace('_', "-"));
        let found = corpus
            .iter()
            .find(|(n, _)| n.ends_with(&format!("-fixture-{file}")));
        let (n, b) = found.unwrap_or_else(|| panic!("no corpus file *-fixture-{file} for {name}"));
        assert_eq!(b, bytes, "{n} differs from {name} in src/wire/fixtures.rs");
    }
}

#[test]
fn the_corpus_replays_through_the_reply_path() {
    let files = corpus();
    // Real fixtures and their malformed variants: never vacuous.
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    let validator = reply_path::validator();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut decided = 0;
    for (name, bytes) in &files {
        // A fresh tracker per input, as the fuzz target does.
        let outcome = reply_path::run(validator, &mut None, bytes);
        let ok = match name.split('-').next().unwrap() {
            "reply" => matches!(outcome, Outcome::Reply(ReplyEffect::Decided { .. })),
            "forged" => outcome == Outcome::Invalid,
            "malformed" => outcome == Outcome::Malformed,
            "ignored" => outcome == Outcome::Ignored,
            "notours" => outcome == Outcome::NotOurs,
            _ => true,
        };
        assert!(ok, "{name}: {outcome:?}");
        if matches!(outcome, Outcome::Reply(ReplyEffect::Decided { .. })) {
            decided += 1;
        }
        let key = match outcome {
            Outcome::Reply(effect) => format!("{effect:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string(),
            other => format!("{other:?}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    eprintln!("{} corpus files: {counts:?}", files.len());
    assert!(decided >= 14, "only {decided} inputs decided a port");
    for kind in ["Malformed", "Invalid", "Ignored", "NotOurs"] {
        assert!(counts.contains_key(kind), "no {kind} input in {counts:?}");
    }
}

#[test]
fn all_captured_replies_decide_the_lab_scan_they_came_from() {
    // One tracker fed every real reply: each decides its own port once.
    let validator = reply_path::validator();
    let mut tracker = Some(reply_path::tracker());
    let mut states = Vec::new();
    for (name, bytes) in corpus() {
        if !name.starts_with("reply-fixture-") {
            continue;
        }
        match reply_path::run(validator, &mut tracker, &bytes) {
            Outcome::Reply(ReplyEffect::Decided { outcome, .. }) => {
                states.push((name, outcome.state.as_str()))
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(tracker.unwrap().stats().replies, 14);
    let state = |file: &str| {
        states
            .iter()
            .find(|(n, _)| n == &format!("reply-fixture-{file}.bin"))
            .unwrap()
            .1
    };
    // nmap's words, as design.md's table gives them.
    assert_eq!(state("syn-ack"), "open");
    assert_eq!(state("rst-ack-syn"), "closed");
    assert_eq!(state("rst-ack-null"), "closed");
    assert_eq!(state("icmp-port-unreach"), "filtered");
    assert_eq!(state("icmp-admin-prohibited"), "filtered");
    // UDP: a service's answer is open, the kernel's port-unreach closed.
    assert_eq!(state("udp-dns-reply"), "open");
    assert_eq!(state("udp-ntp-reply"), "open");
    assert_eq!(state("icmp-port-unreach-udp"), "closed");
}
