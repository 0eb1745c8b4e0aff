// The reply path under test, shared through `include!` by the fuzz target
// (fuzz/fuzz_targets/reply_path.rs) and the corpus replay test
// (tests/fuzz_corpus.rs), so both run exactly the same code:
//
//     bytes -> wire::parse_ip -> engine::validate::Validator::check -> Tracker::on_reply
//
// The scan is the lab scans the real fixtures in the corpus were captured
// from (src/wire/fixtures.rs), as one pass: `--seed 7`, techniques syn
// fin null xmas udp, hosts web/rst/far over IPv4 (10.213.1.2, 10.213.1.3,
// 10.213.2.2) and over IPv6 (fd00:213:1::2, fd00:213:1::3, fd00:213:2::2,
// the scanner being fd00:213:1::1), TCP ports 22,23,81,111,445 and UDP
// ports 53,111,123 (the cookies and source ports depend on the seed and
// the addresses alone). So the captured replies of either family reach
// the tracker and decide ports, and mutations of them exercise every
// branch of validation and classification, UDP's echoed fields, quoted
// checksums and ICMPv6 included.

#[allow(dead_code)]
mod reply_path {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use flagscan::engine::cookie::ScanKeys;
    use flagscan::engine::validate::Validator;
    use flagscan::model::payloads::Payloads;
    use flagscan::model::reply::Verdict;
    use flagscan::model::technique::{builtin_by_name, Technique};
    use flagscan::engine::timing::TimingParams;
    use flagscan::engine::tracker::Tracker;
    use flagscan::model::probe::ProbeSpace;
    use flagscan::model::reply::ReplyEffect;
    use flagscan::wire::{parse_ip, Parsed};

    /// What one input did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        Malformed,
        Ignored,
        /// Parsed, but failed validation (forged, stale, wrong slot).
        Invalid,
        /// Parsed, not addressed to our probes.
        NotOurs,
        /// Validated and given to the tracker.
        Reply(ReplyEffect),
    }

    pub const TECHNIQUES: [&str; 5] = ["syn", "fin", "null", "xmas", "udp"];
    /// The TCP techniques ask [`PORTS`], UDP [`UDP_PORTS`].
    const PROTOCOL_OF: [usize; 5] = [0, 0, 0, 0, 1];
    /// web, rst and far over IPv4, then over IPv6 (the lab's mirror of
    /// each address).
    pub const HOSTS: [IpAddr; 6] = [
        IpAddr::V4(Ipv4Addr::new(10, 213, 1, 2)),
        IpAddr::V4(Ipv4Addr::new(10, 213, 1, 3)),
        IpAddr::V4(Ipv4Addr::new(10, 213, 2, 2)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 2)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 3)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x213, 2, 0, 0, 0, 0, 2)),
    ];
    /// The scanner's own addresses, to which every reply is sent.
    pub const SCANNER: [IpAddr; 2] = [
        IpAddr::V4(Ipv4Addr::new(10, 213, 1, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 1)),
    ];
    pub const PORTS: [u16; 5] = [22, 23, 81, 111, 445];
    pub const UDP_PORTS: [u16; 3] = [53, 111, 123];
    const SEED: u64 = 7;
    const AT: Duration = Duration::from_millis(3);

    /// Key and source ports exactly as `scan::run` derives them from `--seed 7`.
    pub fn validator() -> &'static Validator {
        static VALIDATOR: OnceLock<Validator> = OnceLock::new();
        VALIDATOR.get_or_init(|| {
            let ScanKeys { key, ports, .. } = ScanKeys::from_seed(SEED);
            let probes = techniques().iter().map(Technique::shape).collect();
            Validator {
                key,
                ports,
                probes,
                udp: Some((4, Arc::new(Payloads::builtin()))),
            }
        })
    }

    /// Parsed once: the fuzzer builds a fresh tracker for every input.
    fn techniques() -> Vec<Technique> {
        static PARSED: OnceLock<Vec<Technique>> = OnceLock::new();
        PARSED
            .get_or_init(|| {
                TECHNIQUES
                    .iter()
                    .map(|n| builtin_by_name(n).expect("built in"))
                    .collect()
            })
            .clone()
    }

    /// A tracker with every probe of the lab scan sent (try 0) at time 0.
    pub fn tracker() -> Tracker {
        let space = ProbeSpace::with_protocols(
            HOSTS.to_vec(),
            &[PORTS.to_vec(), UDP_PORTS.to_vec()],
            &PROTOCOL_OF,
        );
        // A window wide enough for every probe (6 hosts x 23) at once.
        let params = TimingParams {
            initial_cwnd: 256.0,
            ..TimingParams::default()
        };
        let mut tracker = Tracker::new(space, techniques(), params, SEED);
        // The pairs of one protocol's port and the other's technique are
        // decided (not asked) from the start.
        let asked = tracker.space().len() - tracker.decided();
        while tracker.poll_send(Duration::ZERO).is_some() {}
        assert_eq!(tracker.in_flight() as u64, asked);
        tracker
    }

    /// Runs one packet through the path; panics only on a broken invariant.
    /// `tracker` is built (by [`tracker`]) only when a reply passes
    /// validation, which few inputs do: that keeps the fuzzer fast.
    pub fn run(validator: &Validator, tracker: &mut Option<Tracker>, bytes: &[u8]) -> Outcome {
        let parsed = parse_ip(bytes);
        let verdict = validator.check(parsed, AT);
        // Computed for --pcap/--packet-trace on every captured packet.
        let to_us = validator.addressed_to_us(&parsed, &verdict);
        match (parsed, verdict) {
            (Parsed::Malformed, Verdict::Invalid) => Outcome::Malformed,
            (Parsed::Ignored, Verdict::NotOurs) => Outcome::Ignored,
            (Parsed::Packet(_), Verdict::Invalid) => Outcome::Invalid,
            (Parsed::Packet(_), Verdict::NotOurs) => Outcome::NotOurs,
            (Parsed::Packet(_), Verdict::Reply(reply)) => {
                assert!(to_us, "a validated reply is addressed to us");
                let tracker = tracker.get_or_insert_with(self::tracker);
                let effect = tracker.on_reply(&reply);
                if let ReplyEffect::Decided { .. } = effect {
                    // The same reply again never decides twice.
                    assert_eq!(tracker.on_reply(&reply), ReplyEffect::Duplicate);
                }
                Outcome::Reply(effect)
            }
            (parsed, verdict) => panic!("{parsed:?} judged {verdict:?}"),
        }
    }
}
