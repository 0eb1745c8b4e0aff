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
//!
//! The `*-ipv6-*` files are IPv6 packets: replies captured from the lab over
//! IPv6 with the same scan (`reply-ipv6-*` without a `-behind-` or
//! `-trailing-` part, and our own probes as `notours-ipv6-*-probe`), and
//! variants of them made by hand (docs/fuzzing.md lists both). Two tests
//! below hold them to more than their names: every path has IPv6 inputs,
//! and the captured replies decide the states `nmap -6` gives.

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
    assert!(files.len() >= 100, "only {} corpus files", files.len());
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
    assert!(decided >= 35, "only {decided} inputs decided a port");
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

/// The replies captured from the lab over IPv6 (`reply-ipv6-NAME.bin`),
/// with the state and reason each decides: `nmap -6`'s on the same lab
/// (tests/ipv6_lab.rs compares the two on every port).
const CAPTURED_IPV6: [(&str, &str, &str); 15] = [
    ("syn-ack", "open", "syn-ack"),
    ("rst-ack-syn", "closed", "reset"),
    ("rst-ack-fin", "closed", "reset"),
    ("rst-ack-null", "closed", "reset"),
    ("rst-ack-xmas", "closed", "reset"),
    ("reject-tcp-reset", "closed", "reset"),
    ("reject-tcp-reset-xmas", "closed", "reset"),
    ("icmpv6-port-unreach", "filtered", "port-unreach"),
    ("icmpv6-admin-prohibited", "filtered", "admin-prohibited"),
    ("gateway-syn-ack", "open", "syn-ack"),
    ("gateway-rst-ack", "closed", "reset"),
    ("udp-dns-reply", "open", "udp-response"),
    ("udp-ntp-reply", "open", "udp-response"),
    ("icmpv6-port-unreach-udp", "closed", "port-unreach"),
    ("gateway-icmpv6-port-unreach-udp", "closed", "port-unreach"),
];

fn corpus_file(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_ipv6_seeds_take_every_path() {
    use flagscan::wire::{parse_ip, Parsed};
    let validator = reply_path::validator();
    let files: Vec<_> = corpus()
        .into_iter()
        .filter(|(n, _)| n.contains("-ipv6-"))
        .collect();
    assert!(files.len() >= 50, "only {} IPv6 seeds", files.len());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, bytes) in &files {
        // Version 6, even in the byte soup and the truncated header.
        assert_eq!(bytes.first().map(|b| b >> 4), Some(6), "{name}");
        let kind = name.split('-').next().unwrap();
        // What may be a reply parses as an IPv6 packet to the scanner.
        if matches!(kind, "reply" | "forged" | "notours") {
            let Parsed::Packet(p) = parse_ip(bytes) else {
                panic!("{name}: {:?}", parse_ip(bytes))
            };
            assert!(p.src.is_ipv6(), "{name}");
            if !name.ends_with("-probe.bin") {
                assert_eq!(p.dst, reply_path::SCANNER[1], "{name}");
            }
        }
        let outcome = reply_path::run(validator, &mut None, bytes);
        let path = match outcome {
            Outcome::Reply(ReplyEffect::Decided { .. }) => "Decided",
            Outcome::Reply(_) => "Reply",
            Outcome::Malformed => "Malformed",
            Outcome::Invalid => "Invalid",
            Outcome::Ignored => "Ignored",
            Outcome::NotOurs => "NotOurs",
        };
        *counts.entry(path).or_default() += 1;
    }
    eprintln!("{} IPv6 seeds: {counts:?}", files.len());
    for path in ["Decided", "Invalid", "Malformed", "Ignored", "NotOurs"] {
        assert!(counts.contains_key(path), "no IPv6 seed {path}: {counts:?}");
    }
    // The captured replies and the four well-formed variants.
    assert!(counts["Decided"] >= 19, "{counts:?}");
    // The regression seed of the jumbogram misreading: a whole RST with
    // the right numbers behind a payload length of 0 is no reply.
    let zero = corpus_file("malformed-ipv6-payload-length-zero.bin");
    assert_eq!(&zero[4..6], &[0, 0]);
    assert_eq!(parse_ip(&zero), Parsed::Malformed);
    let mut fixed = zero.clone();
    fixed[4..6].copy_from_slice(&((zero.len() - 40) as u16).to_be_bytes());
    assert_eq!(fixed, corpus_file("reply-ipv6-rst-ack-syn.bin"));
}

#[test]
fn all_captured_ipv6_replies_decide_the_lab_scan_they_came_from() {
    use flagscan::wire::{parse_ip, Parsed};
    // One tracker fed every real IPv6 reply: each decides its own port
    // once, with nmap's words.
    let validator = reply_path::validator();
    let mut tracker = Some(reply_path::tracker());
    for (name, state, reason) in CAPTURED_IPV6 {
        let file = format!("reply-ipv6-{name}.bin");
        let bytes = corpus_file(&file);
        let Parsed::Packet(p) = parse_ip(&bytes) else {
            panic!("{file}: {:?}", parse_ip(&bytes))
        };
        assert!(reply_path::HOSTS[3..].contains(&p.src), "{file}: {p:?}");
        // far is one routed hop away: hop limit 63.
        let hops = if name.starts_with("gateway-") { 63 } else { 64 };
        assert_eq!(p.ttl, hops, "{file}");
        match reply_path::run(validator, &mut tracker, &bytes) {
            Outcome::Reply(ReplyEffect::Decided { outcome, .. }) => assert_eq!(
                (outcome.state.as_str(), outcome.reason.as_str()),
                (state, reason),
                "{file}"
            ),
            other => panic!("{file}: {other:?}"),
        }
    }
    // The same RST behind well-formed extension headers, or with bytes
    // after its payload, is the same reply again.
    for variant in [
        "behind-destination-options",
        "behind-hop-by-hop",
        "behind-atomic-fragment",
        "trailing-bytes",
    ] {
        let file = format!("reply-ipv6-rst-ack-{variant}.bin");
        assert_eq!(
            reply_path::run(validator, &mut tracker, &corpus_file(&file)),
            Outcome::Reply(ReplyEffect::Duplicate),
            "{file}"
        );
    }
    // Duplicates are not counted as replies.
    assert_eq!(tracker.unwrap().stats().replies, CAPTURED_IPV6.len() as u64);
}

/// A small, deterministic stand-in for the fuzzer in every `cargo test`:
/// each IPv6 seed cut at every length, and with a few random bytes
/// changed (the payload length and next-header bytes most often, so that
/// the parser's length checks and extension-header walk are the ones
/// hit), goes through the whole path; `reply_path::run` panics on any
/// broken invariant, and nothing may panic below it.
#[test]
fn ipv6_seeds_cut_and_mutated_never_break_the_path() {
    let validator = reply_path::validator();
    let mut x: u64 = 0x6eed_0015;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut runs = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (_, bytes) in corpus().into_iter().filter(|(n, _)| n.contains("-ipv6-")) {
        for n in 0..bytes.len() {
            reply_path::run(validator, &mut None, &bytes[..n]);
            runs += 1;
        }
        for _ in 0..300 {
            let mut m = bytes.clone();
            for _ in 0..1 + next() % 3 {
                let at = match next() % 4 {
                    0 => 4 + (next() % 2) as usize,
                    1 => 6,
                    _ => (next() % m.len() as u64) as usize,
                };
                if at < m.len() {
                    m[at] = next() as u8;
                }
            }
            let outcome = reply_path::run(validator, &mut None, &m);
            let key = format!("{outcome:?}");
            *outcomes
                .entry(key.split([' ', '(']).next().unwrap().to_string())
                .or_default() += 1;
            runs += 1;
        }
    }
    eprintln!("{runs} cut and mutated IPv6 inputs: {outcomes:?}");
    assert!(runs > 15_000, "{runs}");
    // The mutations reach past the parser: some still validate, some are
    // caught by the cookie check.
    for path in ["Malformed", "Invalid", "Reply"] {
        assert!(outcomes.contains_key(path), "{path}: {outcomes:?}");
    }
}
