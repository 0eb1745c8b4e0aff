//! Property tests (proptest) over the pure parts the scan rests on: the
//! probe-order permutation, the source-port plan, the reply cookie check, and
//! the `-p` and target parsers.
//!
//! Each property is checked against an oracle written here, not against the
//! code under test: RFC 9293's reset rules for the cookie check, a plain
//! `BTreeSet` for ports, and a naive expansion for targets.
//!
//! No DNS: the target generators only produce tokens made of digits, dots,
//! dashes, commas and slashes, and arbitrary strings are filtered by
//! [`never_resolves`] to those the parser rejects before any lookup.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::slice;

use proptest::prelude::*;
use proptest::sample::select;

use flagscan::cli::targets::expand_targets;
use flagscan::engine::cookie::{
    tcp_reply_fits, Cookie, PortPlan, TcpEcho, MAX_TECHNIQUES, TRY_SLOTS,
};
use flagscan::engine::permutation::Permutation;
use flagscan::model::ports::parse_ports;
use flagscan::model::technique::{builtin, ProbeShape};
use flagscan::wire::flag;

// ---------------------------------------------------------------- permutation

proptest! {
    #[test]
    fn permutation_is_a_bijection_on_0_to_n(n in 1u64..5000, seed in any::<u64>()) {
        let p = Permutation::new(n, seed);
        prop_assert_eq!(p.len(), n);
        let mut seen = vec![false; n as usize];
        for (i, v) in p.iter().enumerate() {
            prop_assert!(v < n, "position {} maps to {} outside 0..{}", i, v, n);
            prop_assert!(!seen[v as usize], "{} visited twice", v);
            seen[v as usize] = true;
        }
        prop_assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn permutation_is_deterministic_per_seed(n in 1u64..5000, seed in any::<u64>()) {
        let a: Vec<u64> = Permutation::new(n, seed).iter().collect();
        let b: Vec<u64> = Permutation::new(n, seed).iter().collect();
        prop_assert_eq!(&a, &b);
        // `at` agrees with `iter` position by position.
        let p = Permutation::new(n, seed);
        for (i, v) in a.iter().enumerate().step_by(97) {
            prop_assert_eq!(p.at(i as u64), *v);
        }
    }
}

// ---------------------------------------------------------------- port plan

proptest! {
    #[test]
    fn source_ports_decode_to_technique_and_try_slot(
        seed in any::<u64>(),
        technique in 0..MAX_TECHNIQUES,
        attempt in any::<u8>(),
    ) {
        let plan = PortPlan::new(seed);
        let sport = plan.sport(technique, attempt);
        let (lo, hi) = plan.range();
        prop_assert!((lo..=hi).contains(&sport));
        prop_assert!(lo >= 33000 && hi <= 64000, "{}-{}", lo, hi);
        prop_assert_eq!(
            plan.decode(sport),
            Some((technique, attempt % TRY_SLOTS as u8))
        );
    }

    #[test]
    fn ports_outside_the_plan_decode_to_nothing(seed in any::<u64>(), port in any::<u16>()) {
        let plan = PortPlan::new(seed);
        let (lo, hi) = plan.range();
        prop_assert_eq!(plan.decode(port).is_some(), (lo..=hi).contains(&port));
    }
}

// ---------------------------------------------------------------- cookie check

/// Probe flags: the built-in techniques (syn, fin, null, xmas) plus the
/// ACK-carrying ones design.md plans (ack, window: ACK; maimon: FIN|ACK).
fn probe_flags() -> impl Strategy<Value = u8> {
    let mut flags: Vec<u8> = builtin().iter().map(|t| t.flags).collect();
    assert!(flags.len() >= 4, "the four built-in techniques");
    flags.extend([flag::ACK, flag::FIN | flag::ACK]);
    select(flags)
}

fn cookie() -> impl Strategy<Value = Cookie> {
    (any::<u32>(), any::<u32>()).prop_map(|(seq, ack)| Cookie { seq, ack })
}

/// Which field of a reply proves it, and the one value it must hold, by
/// RFC 9293 3.10.7.1 (reset generation) and 3.10.7.2 (LISTEN answers SYN).
#[derive(Debug, Clone, Copy)]
enum Proof {
    /// `<SEQ=SEG.ACK><CTL=RST>`: the probe carried ACK.
    RstSeq(u32),
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`: the probe had no ACK.
    RstAck(u32),
}

fn rfc_reset(c: Cookie, probe: u8) -> Proof {
    if probe & flag::ACK != 0 {
        // The probe's acknowledgment field carries the cookie's ack.
        Proof::RstSeq(c.ack)
    } else {
        // SEG.LEN counts SYN and FIN: one sequence number each.
        let len = u32::from(probe & flag::SYN != 0) + u32::from(probe & flag::FIN != 0);
        Proof::RstAck(c.seq.wrapping_add(len))
    }
}

proptest! {
    #[test]
    fn the_rfc_reset_fits_and_every_other_number_does_not(
        c in cookie(),
        probe in probe_flags(),
        noise in any::<u32>(),
        delta in 1u32..,
    ) {
        let (good, bad) = match rfc_reset(c, probe) {
            // The other number is noise: an RST's ack field says nothing here.
            Proof::RstSeq(seq) => (
                TcpEcho { flags: flag::RST, seq, ack: noise },
                TcpEcho { flags: flag::RST, seq: seq.wrapping_add(delta), ack: noise },
            ),
            Proof::RstAck(ack) => (
                TcpEcho { flags: flag::RST | flag::ACK, seq: noise, ack },
                TcpEcho { flags: flag::RST | flag::ACK, seq: noise, ack: ack.wrapping_add(delta) },
            ),
        };
        prop_assert!(tcp_reply_fits(c, ProbeShape::for_flags(probe), good), "probe {:#04x}: {:?}", probe, good);
        prop_assert!(!tcp_reply_fits(c, ProbeShape::for_flags(probe), bad), "probe {:#04x}: {:?}", probe, bad);
    }

    #[test]
    fn a_syn_ack_fits_only_a_syn_probe_with_ack_plus_one(
        c in cookie(),
        probe in probe_flags(),
        seq in any::<u32>(),
        delta in 1u32..,
    ) {
        let synack = |ack| TcpEcho { flags: flag::SYN | flag::ACK, seq, ack };
        let right = c.seq.wrapping_add(1);
        let is_syn_probe = probe & flag::SYN != 0;
        prop_assert_eq!(tcp_reply_fits(c, ProbeShape::for_flags(probe), synack(right)), is_syn_probe);
        prop_assert!(!tcp_reply_fits(c, ProbeShape::for_flags(probe), synack(right.wrapping_add(delta))));
    }

    #[test]
    fn an_arbitrary_reply_fits_exactly_when_the_rfc_says_so(
        c in cookie(),
        probe in probe_flags(),
        flags in any::<u8>(),
        seq in any::<u32>(),
        ack in any::<u32>(),
        // Half the cases get the right number, so both answers are exercised.
        use_right in any::<bool>(),
    ) {
        let (seq, ack) = match (use_right, rfc_reset(c, probe)) {
            (false, _) => (seq, ack),
            (true, _) if flags & flag::RST == 0 => (seq, c.seq.wrapping_add(1)),
            (true, Proof::RstSeq(s)) => (s, ack),
            (true, Proof::RstAck(a)) => (seq, a),
        };
        let reply = TcpEcho { flags, seq, ack };
        let expected = if flags & flag::RST != 0 {
            match rfc_reset(c, probe) {
                Proof::RstSeq(s) => seq == s,
                Proof::RstAck(a) => flags & flag::ACK != 0 && ack == a,
            }
        } else if flags & (flag::SYN | flag::ACK) == flag::SYN | flag::ACK {
            probe & flag::SYN != 0 && ack == c.seq.wrapping_add(1)
        } else {
            // Neither a reset nor a SYN-ACK answers a probe.
            false
        };
        prop_assert_eq!(
            tcp_reply_fits(c, ProbeShape::for_flags(probe), reply),
            expected,
            "probe {:#04x}, cookie {:?}, reply {:?}", probe, c, reply
        );
    }

    #[test]
    fn a_bare_rst_never_answers_a_probe_without_ack(
        c in cookie(),
        probe in probe_flags().prop_filter("no ACK", |p| p & flag::ACK == 0),
        seq in any::<u32>(),
        ack in any::<u32>(),
    ) {
        let bare = TcpEcho { flags: flag::RST, seq, ack };
        prop_assert!(!tcp_reply_fits(c, ProbeShape::for_flags(probe), bare), "{:?}", bare);
    }
}

// ---------------------------------------------------------------- -p parsing

/// Formats a set of ports as nmap would take it: runs of consecutive ports
/// as `lo-hi`, lone ports as singles, in a shuffled order, with optional
/// spaces and `T:` prefixes, and runs split in two at a random point so that
/// ranges meet and overlap.
fn port_list_text(ports: &BTreeSet<u16>, shuffle: &[usize], dress: &[u8]) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &p in ports {
        match runs.last_mut() {
            Some((_, hi)) if u32::from(*hi) + 1 == u32::from(p) => *hi = p,
            _ => runs.push((p, p)),
        }
    }
    let mut items: Vec<String> = Vec::new();
    for (i, &(lo, hi)) in runs.iter().enumerate() {
        let d = dress[i % dress.len()];
        let text = |lo: u16, hi: u16| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        };
        if d & 1 != 0 && hi > lo {
            // Split, overlapping by one port when the run allows.
            let mid = lo + (hi - lo) / 2;
            items.push(text(lo, mid));
            items.push(text(mid.saturating_sub(1).max(lo), hi));
        } else {
            items.push(text(lo, hi));
        }
    }
    // A deterministic shuffle driven by the generated indices.
    for (i, &j) in shuffle.iter().enumerate() {
        if items.len() > 1 {
            let (a, b) = (i % items.len(), j % items.len());
            items.swap(a, b);
        }
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let d = dress[(i + 1) % dress.len()];
            let prefix = if d & 2 != 0 { "T:" } else { "" };
            let pad = if d & 4 != 0 { " " } else { "" };
            format!("{pad}{prefix}{item}{pad}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Sets of ports that have long runs as well as lone ports.
fn port_set() -> impl Strategy<Value = BTreeSet<u16>> {
    let run = (any::<u16>(), 0u16..300).prop_map(|(lo, len)| (lo, lo.saturating_add(len)));
    prop::collection::vec(run, 1..12).prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(lo, hi)| lo..=hi)
            .collect::<BTreeSet<u16>>()
    })
}

proptest! {
    #[test]
    fn port_lists_round_trip(
        ports in port_set(),
        shuffle in prop::collection::vec(any::<usize>(), 0..20),
        dress in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let text = port_list_text(&ports, &shuffle, &dress);
        let parsed = parse_ports(&text);
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", text, parsed);
        let want: Vec<u16> = ports.into_iter().collect();
        prop_assert_eq!(parsed.unwrap(), want, "{:?}", text);
    }

    #[test]
    fn port_parsing_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = parse_ports(&s);
    }

    #[test]
    fn port_parsing_never_panics_on_near_miss_strings(s in "[0-9TtUu:, -]{0,24}") {
        // Whatever the answer, an accepted list is sorted and unique.
        if let Ok(ports) = parse_ports(&s) {
            prop_assert!(!ports.is_empty());
            prop_assert!(ports.windows(2).all(|w| w[0] < w[1]), "{:?}", s);
        }
    }
}

// ---------------------------------------------------------------- targets

/// A target token and, independently computed, the addresses it stands for
/// in nmap's order.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    addrs: Vec<Ipv4Addr>,
}

fn quad() -> impl Strategy<Value = Token> {
    any::<[u8; 4]>().prop_map(|o| Token {
        text: format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
        addrs: vec![Ipv4Addr::from(o)],
    })
}

/// `a.b.c.d/p`, p in 16..=32: the whole block, host bits or not, upward.
fn cidr() -> impl Strategy<Value = Token> {
    (any::<u32>(), 16u32..=32).prop_map(|(addr, prefix)| {
        let mask = u32::MAX << (32 - prefix);
        let first = addr & mask;
        let last = first | !mask;
        Token {
            text: format!("{}/{prefix}", Ipv4Addr::from(addr)),
            addrs: (first..=last).map(Ipv4Addr::from).collect(),
        }
    })
}

/// One octet in nmap syntax: a comma list of values and `lo-hi` ranges.
/// Returns the text and the values in written order without repeats.
fn octet_list(max_items: usize, max_width: u8) -> impl Strategy<Value = (String, Vec<u8>)> {
    let item = (any::<u8>(), 0..=max_width).prop_map(|(lo, w)| (lo, lo.saturating_add(w)));
    prop::collection::vec(item, 1..=max_items).prop_map(|items| {
        let text = items
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut values = Vec::new();
        for (lo, hi) in items {
            for v in lo..=hi {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        (text, values)
    })
}

fn octet_token(max_items: usize, max_width: u8) -> impl Strategy<Value = Token> {
    prop::array::uniform4(octet_list(max_items, max_width)).prop_map(|octets| {
        let text = octets
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let mut addrs = Vec::new();
        for &a in &octets[0].1 {
            for &b in &octets[1].1 {
                for &c in &octets[2].1 {
                    for &d in &octets[3].1 {
                        addrs.push(Ipv4Addr::new(a, b, c, d));
                    }
                }
            }
        }
        Token { text, addrs }
    })
}

/// Small CIDR blocks keep the many-token cases quick; one /16 (65536
/// addresses) per case is the most a case can hold.
fn target_token() -> impl Strategy<Value = Token> {
    prop_oneof![
        3 => quad(),
        2 => cidr().prop_filter("small block", |t| t.addrs.len() <= 4096),
        1 => cidr(),
        3 => octet_token(3, 4),
    ]
}

/// Exclude elements are split on commas, so octet lists cannot be used
/// there: single items per octet (values or ranges) only.
fn exclude_token() -> impl Strategy<Value = Token> {
    prop_oneof![quad(), cidr(), octet_token(1, 3)]
}

/// The reference: input order, first occurrence kept, excludes removed.
fn reference(targets: &[Token], excludes: &[Token]) -> Vec<Ipv4Addr> {
    let excluded: HashSet<Ipv4Addr> = excludes.iter().flat_map(|t| t.addrs.clone()).collect();
    let mut seen = HashSet::new();
    targets
        .iter()
        .flat_map(|t| t.addrs.iter().copied())
        .filter(|a| seen.insert(*a) && !excluded.contains(a))
        .collect()
}

/// Would the parser reject this token before resolving a host name? Only
/// tokens this accepts are given to it, so no property case touches DNS.
/// Mirrors the order of checks in targets.rs: ':' and '*' first; then the
/// part before '/' is either numeric (parsed as octets) or must contain a
/// character no host name has (rejected before the lookup).
fn never_resolves(token: &str) -> bool {
    let token = token.trim();
    if token.is_empty() || token.contains(':') || token.contains('*') {
        return true;
    }
    let host = token.split_once('/').map_or(token, |(host, _)| host);
    let numeric = host
        .bytes()
        .all(|b| b.is_ascii_digit() || b".-,".contains(&b));
    let has_forbidden_char = host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "-._".contains(c)));
    numeric || has_forbidden_char
}

fn strings(tokens: &[Token]) -> Vec<String> {
    tokens.iter().map(|t| t.text.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn target_expansion_matches_the_reference(
        targets in prop::collection::vec(target_token(), 1..5),
        excludes in prop::collection::vec(exclude_token(), 0..3),
    ) {
        let want = reference(&targets, &excludes);
        // Excludes go in as given on the command line: several per argument.
        let exclude_args: Vec<String> = excludes
            .chunks(2)
            .map(|c| strings(c).join(","))
            .collect();
        let got = expand_targets(&strings(&targets), &exclude_args);
        if want.is_empty() {
            let msg = got.expect_err("everything excluded is an error").to_string();
            prop_assert!(msg.starts_with("no targets left to scan"), "{}", msg);
        } else {
            let got = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_token_excluded_by_itself_leaves_nothing(
        t in target_token().prop_filter("excludes split on commas", |t| !t.text.contains(',')),
    ) {
        prop_assert_eq!(expand_targets(slice::from_ref(&t.text), &[]).unwrap(), t.addrs.clone());
        let msg = expand_targets(slice::from_ref(&t.text), slice::from_ref(&t.text))
            .expect_err("nothing left")
            .to_string();
        prop_assert!(msg.starts_with("no targets left to scan: the excludes remove all"), "{}", msg);
    }

    #[test]
    fn target_parsing_never_panics_on_numeric_soup(
        target in "[0-9./,-]{0,40}",
        exclude in "[0-9./-]{0,24}",
    ) {
        // Every token here is numeric: parsed as octets, never looked up.
        let _ = expand_targets(slice::from_ref(&target), &[]);
        let _ = expand_targets(&[target], &[exclude]);
    }

    #[test]
    fn target_parsing_never_panics_on_arbitrary_strings(
        target in any::<String>().prop_filter("no DNS lookup", |s| never_resolves(s)),
        exclude in any::<String>().prop_filter("no DNS lookup", |s| s.split(',').all(never_resolves)),
    ) {
        let _ = expand_targets(slice::from_ref(&target), &[]);
        let _ = expand_targets(&["10.0.0.1".to_string()], &[exclude]);
    }

    #[test]
    fn target_parsing_never_panics_on_near_host_names(
        s in "[0-9a-z./,:;* -]{0,30}".prop_filter("no DNS lookup", |s| never_resolves(s)),
    ) {
        let _ = expand_targets(&[s], &[]);
    }
}

#[test]
fn the_dns_filter_keeps_host_names_out() {
    for name in ["localhost", "scanme", "a.b", "x/24", "host-1.lab", " web "] {
        assert!(!never_resolves(name), "{name}");
    }
    for token in [
        "10.0.0.1",
        "10.0.0.1/24",
        "1-2.3,4.5.6",
        "a;b",
        "a b",
        "::1",
        "a*",
        "é",
    ] {
        assert!(never_resolves(token), "{token}");
    }
}
