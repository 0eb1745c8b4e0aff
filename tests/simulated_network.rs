//! The reply pipeline end to end, against a simulated network on a virtual
//! clock. No root, no sockets: pure logic.
//!
//! This is the scan loop of `src/engine/scan.rs` without threads: the tracker hands
//! out orders; each order becomes real probe bytes (`ProbeTemplate::write`
//! with the numbers scan.rs derives from the cookie); a simulated host reads
//! those bytes and answers by its personality with real reply bytes
//! (etherparse's builder); the network loses, duplicates, delays, reorders and
//! forges packets; and every packet that reaches the scanner goes through
//! `wire::parse_ip`, `receiver::Validator::check` and `Tracker::on_reply`.
//! Time is virtual: the loop jumps to the next event (a delivery or
//! `tracker.next_deadline()`), so a scan with seventy retries and two-second
//! delays takes milliseconds.
//!
//! The oracle is the technique table of design.md, written out in
//! [`expected`], not the technique files the tracker reads.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

/// The simulated network is IPv4: the engine's addresses, as it has them.
fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => panic!("the simulated network has no IPv6 host {a}"),
    }
}
use std::time::Duration;

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Type, NetSlice, PacketBuilder, PacketBuilderStep, SlicedPacket, TcpHeader, TransportSlice,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use flagscan::engine::cookie::{probe_numbers, CookieKey, PortPlan, ScanKeys, TRY_SLOTS};
use flagscan::engine::timing::TimingParams;
use flagscan::engine::tracker::Tracker;
use flagscan::engine::validate::Validator;
use flagscan::model::probe::{ProbeSpace, SendOrder, Time};
use flagscan::model::reply::Verdict;
use flagscan::model::reply::{Reply, ReplyEffect};
use flagscan::model::result::{Finding, LimitKind, RateLimit, TrackerStats};
use flagscan::model::technique::{builtin_by_name, PortState, Reason, ReplyKind, Technique};
use flagscan::wire::flag;
use flagscan::wire::{parse_ip, ProbeFields, ProbeTemplate};

const SCANNER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// A router between the scanner and the hosts; one hop away.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const GATEWAY_TTL: u8 = 254;
/// Technique index i of the scan is `TECHNIQUES[i]`.
const TECHNIQUES: [&str; 4] = ["syn", "fin", "null", "xmas"];
const PORTS: [u16; 20] = [
    21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 3306, 3389, 5432, 5900,
    8080,
];
/// Upper bound on loop iterations of one scan: a tracker bug fails the test
/// instead of hanging it (the largest scan here needs about 6 000).
const MAX_STEPS: u64 = 200_000;

// ---------------------------------------------------------------------------
// Hosts: ground truth per port and technique.

/// What a host (or the firewall in front of it) does with a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Silence,
    SynAck,
    Rst,
    Unreachable(u8),
}

#[derive(Debug, Clone)]
enum Personality {
    /// RFC 793/9293: open ports answer SYN with SYN/ACK and drop FIN, NULL
    /// and Xmas; closed ports reset everything.
    Rfc793 { open: &'static [u16] },
    /// Windows, many Cisco devices: open ports answer SYN with SYN/ACK, and
    /// every other probe, on any port, gets a reset.
    ResetsEverything { open: &'static [u16] },
    /// A firewall drops every probe to `dropped`; an RFC 793 stack behind it.
    SilentFilter {
        open: &'static [u16],
        dropped: &'static [u16],
    },
    /// A firewall rejects probes to `rejected` with ICMP 3/`code`, sent by the
    /// host itself or by the gateway on the way; an RFC 793 stack behind it.
    IcmpFilter {
        open: &'static [u16],
        rejected: &'static [u16],
        code: u8,
        via_gateway: bool,
    },
}

impl Personality {
    fn answer(&self, port: u16, probe_flags: u8) -> Answer {
        match self {
            Personality::Rfc793 { open } => rfc793(open, port, probe_flags),
            Personality::ResetsEverything { open } => {
                if open.contains(&port) && probe_flags & flag::SYN != 0 {
                    Answer::SynAck
                } else {
                    Answer::Rst
                }
            }
            Personality::SilentFilter { open, dropped } => {
                if dropped.contains(&port) {
                    Answer::Silence
                } else {
                    rfc793(open, port, probe_flags)
                }
            }
            Personality::IcmpFilter {
                open,
                rejected,
                code,
                ..
            } => {
                if rejected.contains(&port) {
                    Answer::Unreachable(*code)
                } else {
                    rfc793(open, port, probe_flags)
                }
            }
        }
    }
}

/// RFC 9293 3.10.7 for segments without ACK or RST (all of our probes): a
/// LISTEN port answers a SYN with SYN/ACK and drops anything else; a CLOSED
/// port answers with a reset.
fn rfc793(open: &[u16], port: u16, probe_flags: u8) -> Answer {
    match (open.contains(&port), probe_flags & flag::SYN != 0) {
        (true, true) => Answer::SynAck,
        (true, false) => Answer::Silence,
        (false, _) => Answer::Rst,
    }
}

#[derive(Debug, Clone)]
struct Host {
    addr: Ipv4Addr,
    personality: Personality,
    /// TTL of its packets when they reach the scanner.
    ttl: u8,
    /// Round trip before jitter.
    rtt: Duration,
    /// Token buckets on the answers it sends, as real stacks keep them.
    limits: Vec<Bucket>,
}

/// A token bucket on one kind of answer: `rate` a second, `burst` at most
/// (Linux: ICMP errors 1/s, burst 6, per destination, and 1000/s, burst 50,
/// per namespace; FreeBSD: 200 RSTs a second).
#[derive(Debug, Clone)]
struct Bucket {
    rst: bool,
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Time,
}

impl Bucket {
    fn new(rst: bool, rate: f64, burst: f64) -> Bucket {
        Bucket {
            rst,
            rate,
            burst,
            tokens: burst,
            last: Time::ZERO,
        }
    }

    fn linux_icmp() -> Vec<Bucket> {
        vec![
            Bucket::new(false, 1.0, 6.0),
            Bucket::new(false, 1000.0, 50.0),
        ]
    }

    fn refill(&mut self, now: Time) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }
}

impl Host {
    /// Whether the limiters let an answer of this kind out at `now`
    /// (taking a token from each bucket it passes).
    fn allows(&mut self, answer: Answer, now: Time) -> bool {
        let rst = match answer {
            Answer::Rst => true,
            Answer::Unreachable(_) => false,
            _ => return true,
        };
        let mut buckets: Vec<&mut Bucket> =
            self.limits.iter_mut().filter(|b| b.rst == rst).collect();
        for b in buckets.iter_mut() {
            b.refill(now);
        }
        if buckets.iter().any(|b| b.tokens < 1.0) {
            return false;
        }
        for b in buckets {
            b.tokens -= 1.0;
        }
        true
    }

    /// Who sends the answer, and its TTL on arrival.
    fn replier(&self, answer: Answer) -> (Ipv4Addr, u8) {
        match (&self.personality, answer) {
            (
                Personality::IcmpFilter {
                    via_gateway: true, ..
                },
                Answer::Unreachable(_),
            ) => (GATEWAY, GATEWAY_TTL),
            _ => (self.addr, self.ttl),
        }
    }
}

fn lab() -> Vec<Host> {
    let host = |last: u8, personality, ttl, rtt_ms| Host {
        addr: Ipv4Addr::new(10, 0, 0, last),
        personality,
        ttl,
        rtt: Duration::from_millis(rtt_ms),
        limits: Vec::new(),
    };
    vec![
        host(
            1,
            Personality::Rfc793 {
                open: &[22, 80, 443],
            },
            64,
            2,
        ),
        host(
            2,
            Personality::ResetsEverything {
                open: &[135, 139, 445, 3389],
            },
            128,
            15,
        ),
        host(
            3,
            Personality::SilentFilter {
                open: &[22, 80, 8080],
                dropped: &[21, 23, 25, 80, 3306, 5432],
            },
            61,
            30,
        ),
        host(
            4,
            Personality::IcmpFilter {
                open: &[25, 110, 143],
                rejected: &[111, 139, 445, 3306],
                code: 3,
                via_gateway: false,
            },
            63,
            8,
        ),
        host(
            5,
            Personality::IcmpFilter {
                open: &[53, 993, 995],
                rejected: &[21, 22, 23, 53, 5900],
                code: 13,
                via_gateway: true,
            },
            57,
            40,
        ),
    ]
}

/// The oracle: design.md's table (nmap's reference guide) from what the host
/// does to what the scan must report.
fn expected(technique: &str, answer: Answer, ttl: u8) -> Finding {
    use PortState::*;
    let (state, reason) = match (technique, answer) {
        ("syn", Answer::SynAck) => (Open, Reason::SynAck),
        (_, Answer::Rst) => (Closed, Reason::Reset),
        (_, Answer::Unreachable(code)) => (Filtered, Reason::Unreachable(code)),
        ("syn", Answer::Silence) => (Filtered, Reason::NoResponse),
        ("fin" | "null" | "xmas", Answer::Silence) => (OpenFiltered, Reason::NoResponse),
        (t, a) => panic!("the {t} table has no row for {a:?}"),
    };
    Finding {
        state,
        reason,
        ttl: (answer != Answer::Silence).then_some(ttl),
    }
}

// ---------------------------------------------------------------------------
// Bytes on the simulated wire.

/// A probe as the simulated host reads it off the wire.
struct Probe {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
}

impl Probe {
    /// Parses with etherparse (not with the code under test), checking both
    /// checksums as a real stack would.
    fn parse(bytes: &[u8]) -> Probe {
        let p = SlicedPacket::from_ip(bytes).expect("a probe must parse");
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (&p.net, &p.transport)
        else {
            panic!("a probe must be TCP over IPv4: {bytes:02x?}");
        };
        let h = ip.header();
        assert_eq!(
            h.header_checksum(),
            h.to_header().calc_header_checksum(),
            "IPv4 checksum of a probe"
        );
        assert_eq!(
            Ok(tcp.checksum()),
            tcp.calc_checksum_ipv4(h.source(), h.destination()),
            "TCP checksum of a probe"
        );
        Probe {
            src: h.source_addr(),
            dst: h.destination_addr(),
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            seq: tcp.sequence_number(),
            flags: tcp.slice()[13],
        }
    }

    /// Sequence numbers the segment occupies: SYN and FIN count one each.
    fn seg_len(&self) -> u32 {
        u32::from(self.flags & flag::SYN != 0) + u32::from(self.flags & flag::FIN != 0)
    }

    /// A TCP segment from the probed port back to our source port.
    fn answer_from(&self, from: Ipv4Addr, ttl: u8, seq: u32) -> PacketBuilderStep<TcpHeader> {
        // Window 0, as Linux resets carry; no table here reads the window.
        PacketBuilder::ipv4(from.octets(), self.src.octets(), ttl)
            .tcp(self.dport, self.sport, seq, 0)
    }
}

fn tcp_bytes(b: PacketBuilderStep<TcpHeader>) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.size(0));
    b.write(&mut out, &[]).expect("a bare TCP header fits");
    out
}

/// RFC 9293 reset for a segment without ACK: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
fn rst_ack(from: Ipv4Addr, ttl: u8, probe: &Probe) -> Vec<u8> {
    tcp_bytes(
        probe
            .answer_from(from, ttl, 0)
            .rst()
            .ack(probe.seq.wrapping_add(probe.seg_len())),
    )
}

/// A LISTEN port's SYN/ACK: its own initial sequence number, our SYN acknowledged.
fn syn_ack(from: Ipv4Addr, ttl: u8, probe: &Probe, isn: u32) -> Vec<u8> {
    tcp_bytes(
        probe
            .answer_from(from, ttl, isn)
            .syn()
            .ack(probe.seq.wrapping_add(1)),
    )
}

/// ICMP destination unreachable quoting the probe's IPv4 header and the
/// first 8 bytes of its TCP header (RFC 792's minimum).
fn unreachable(from: Ipv4Addr, ttl: u8, code: u8, to: Ipv4Addr, probe_bytes: &[u8]) -> Vec<u8> {
    let ihl = usize::from(probe_bytes[0] & 0x0f) * 4;
    let quote = &probe_bytes[..ihl + 8];
    let header = DestUnreachableHeader::from_values(code, 0).expect("a known unreachable code");
    let b = PacketBuilder::ipv4(from.octets(), to.octets(), ttl)
        .icmpv4(Icmpv4Type::DestinationUnreachable(header));
    let mut out = Vec::with_capacity(b.size(quote.len()));
    b.write(&mut out, quote).expect("a short quote fits");
    out
}

/// Packets an off-path attacker sends while it sees nothing but the ports:
/// the ports are right, the numbers are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgery {
    /// RST/ACK from the probed port with a random acknowledgment.
    RstAck,
    /// SYN/ACK from the probed port with a random acknowledgment.
    SynAck,
    /// A bare RST with a random sequence number.
    BareRst,
    /// ICMP port unreachable quoting the probe with another sequence number.
    IcmpWrongSeq,
    /// The acknowledgment the probe expects, sent to the port of another try.
    OtherTry,
    /// The expected acknowledgment, sent to a port of our source range that
    /// no technique of this scan uses.
    OtherTechnique,
}

const FORGERIES: [Forgery; 6] = [
    Forgery::RstAck,
    Forgery::SynAck,
    Forgery::BareRst,
    Forgery::IcmpWrongSeq,
    Forgery::OtherTry,
    Forgery::OtherTechnique,
];

// ---------------------------------------------------------------------------
// The network.

#[derive(Debug, Clone, Copy, Default)]
struct Impairments {
    /// Chance that a packet is lost, in each direction independently.
    loss: f64,
    /// Chance that a reply is delivered twice (each copy with its own jitter).
    duplicate: f64,
    /// Extra reply delay, uniform in 0..=jitter; it reorders replies.
    jitter: Duration,
    /// Chance that a probe is followed by a forged packet.
    forge: f64,
}

#[derive(Debug, Clone, Copy)]
enum Origin {
    /// A host's answer to one of our probes, or a network duplicate of one.
    Genuine {
        probe: SendOrder,
        kind: ReplyKind,
        ttl: u8,
        copy: bool,
    },
    Forged(Forgery),
}

struct Delivery {
    at: Time,
    /// Creation order: a smaller id delivered after a larger one was reordered.
    id: u64,
    bytes: Vec<u8>,
    origin: Origin,
}

#[derive(Debug, Default, Clone)]
struct NetCounts {
    probes: u64,
    probes_lost: u64,
    /// Replies the hosts sent (before loss and duplication).
    replies: u64,
    replies_lost: u64,
    duplicated: u64,
    forged: [u64; FORGERIES.len()],
    /// Answers a limiter kept back.
    limited: u64,
}

struct SimNet {
    hosts: Vec<Host>,
    imp: Impairments,
    techniques: usize,
    rng: StdRng,
    /// Packets on their way to the scanner, by arrival time then creation.
    queue: BTreeMap<(Time, u64), (Vec<u8>, Origin)>,
    next_id: u64,
    counts: NetCounts,
}

impl SimNet {
    fn new(hosts: Vec<Host>, imp: Impairments, seed: u64) -> SimNet {
        SimNet {
            hosts,
            imp,
            techniques: TECHNIQUES.len(),
            rng: StdRng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            next_id: 0,
            counts: NetCounts::default(),
        }
    }

    fn addrs(&self) -> Vec<Ipv4Addr> {
        self.hosts.iter().map(|h| h.addr).collect()
    }

    fn host(&self, addr: Ipv4Addr) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.addr == addr)
            .unwrap_or_else(|| panic!("no host {addr} in the lab"))
    }

    /// What the scan must report for this port and technique.
    fn truth(&self, addr: Ipv4Addr, port: u16, technique: &Technique) -> Finding {
        let host = self.host(addr);
        let answer = host.personality.answer(port, technique.flags);
        expected(&technique.name, answer, host.replier(answer).1)
    }

    fn jitter(&mut self) -> Duration {
        let max = self.imp.jitter.as_micros() as u64;
        Duration::from_micros(self.rng.gen_range(0..=max))
    }

    fn schedule(&mut self, at: Time, bytes: Vec<u8>, origin: Origin) {
        self.queue.insert((at, self.next_id), (bytes, origin));
        self.next_id += 1;
    }

    /// The scanner puts a probe on the wire at `now`.
    fn transmit(&mut self, now: Time, order: &SendOrder, bytes: &[u8]) {
        let probe = Probe::parse(bytes);
        assert_eq!(
            (probe.src, probe.dst, probe.dport),
            (SCANNER, v4(order.host), order.port),
            "the probe bytes do not match the order"
        );
        self.counts.probes += 1;
        if self.rng.gen_bool(self.imp.forge) {
            self.forge(now, order, &probe, bytes);
        }
        if self.rng.gen_bool(self.imp.loss) {
            self.counts.probes_lost += 1;
            return;
        }
        let host = self
            .hosts
            .iter_mut()
            .find(|h| h.addr == probe.dst)
            .expect("a probe to a lab host");
        let answer = host.personality.answer(probe.dport, probe.flags);
        if !host.allows(answer, now) {
            self.counts.limited += 1;
            return;
        }
        let (from, ttl) = host.replier(answer);
        let rtt = host.rtt;
        let (reply, kind) = match answer {
            Answer::Silence => return,
            Answer::SynAck => (
                syn_ack(from, ttl, &probe, self.rng.gen()),
                ReplyKind::SynAck,
            ),
            Answer::Rst => (rst_ack(from, ttl, &probe), ReplyKind::Rst { window: 0 }),
            Answer::Unreachable(code) => (
                unreachable(from, ttl, code, probe.src, bytes),
                ReplyKind::Unreachable { code },
            ),
        };
        self.counts.replies += 1;
        if self.rng.gen_bool(self.imp.loss) {
            self.counts.replies_lost += 1;
            return;
        }
        let copies = if self.rng.gen_bool(self.imp.duplicate) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        for copy in 0..copies {
            let at = now + rtt + self.jitter();
            let origin = Origin::Genuine {
                probe: *order,
                kind,
                ttl,
                copy: copy > 0,
            };
            self.schedule(at, reply.clone(), origin);
        }
    }

    /// A forged packet racing the genuine answer to `probe`.
    fn forge(&mut self, now: Time, order: &SendOrder, probe: &Probe, bytes: &[u8]) {
        let which = self.rng.gen_range(0..FORGERIES.len());
        let kind = FORGERIES[which];
        self.counts.forged[which] += 1;
        let (from, ttl, rtt) = {
            let host = self.host(probe.dst);
            (host.addr, host.ttl, host.rtt)
        };
        // Any number but the probe's sequence number and the one after it:
        // those are all the tables accept, so the forgery is surely wrong.
        let mut wrong = || loop {
            let x = self.rng.next_u32();
            if x.wrapping_sub(probe.seq) > 1 {
                break x;
            }
        };
        let right = probe.seq.wrapping_add(probe.seg_len());
        let to_port = |dport: u16| Probe {
            src: probe.src,
            dst: probe.dst,
            sport: dport,
            dport: probe.dport,
            seq: probe.seq,
            flags: probe.flags,
        };
        let forged = match kind {
            Forgery::RstAck => tcp_bytes(probe.answer_from(from, ttl, 0).rst().ack(wrong())),
            Forgery::SynAck => {
                let isn = wrong();
                tcp_bytes(probe.answer_from(from, ttl, isn).syn().ack(wrong()))
            }
            Forgery::BareRst => tcp_bytes(probe.answer_from(from, ttl, wrong()).rst()),
            Forgery::IcmpWrongSeq => {
                let mut quoted = bytes.to_vec();
                let at = usize::from(quoted[0] & 0x0f) * 4 + 4;
                quoted[at..at + 4].copy_from_slice(&wrong().to_be_bytes());
                unreachable(from, ttl, 3, probe.src, &quoted)
            }
            Forgery::OtherTry => {
                let slot = u16::from(order.attempt) % TRY_SLOTS;
                let other = probe.sport - slot + (slot + 1) % TRY_SLOTS;
                tcp_bytes(to_port(other).answer_from(from, ttl, 0).rst().ack(right))
            }
            Forgery::OtherTechnique => {
                let beyond = (self.techniques - order.technique) as u16 * TRY_SLOTS;
                let other = probe.sport + beyond;
                tcp_bytes(to_port(other).answer_from(from, ttl, 0).rst().ack(right))
            }
        };
        let max = (rtt * 2 + self.imp.jitter).as_micros() as u64;
        let at = now + Duration::from_micros(self.rng.gen_range(0..=max));
        self.schedule(at, forged, Origin::Forged(kind));
    }

    fn next_at(&self) -> Option<Time> {
        self.queue.first_key_value().map(|((at, _), _)| *at)
    }

    /// The next packet arriving at or before `now`.
    fn pop_due(&mut self, now: Time) -> Option<Delivery> {
        if self.next_at()? > now {
            return None;
        }
        self.pop_next()
    }

    fn pop_next(&mut self) -> Option<Delivery> {
        let ((at, id), (bytes, origin)) = self.queue.pop_first()?;
        Some(Delivery {
            at,
            id,
            bytes,
            origin,
        })
    }
}

// ---------------------------------------------------------------------------
// The scanner: the loop of src/engine/scan.rs, single-threaded on a virtual clock.

/// What the run saw, for the bookkeeping checks.
#[derive(Debug, Default, Clone)]
struct Tally {
    sent: u64,
    retransmissions: u64,
    /// Genuine replies delivered (copies included), late ones included.
    genuine: u64,
    copies: u64,
    decided: u64,
    duplicate_effects: u64,
    forged_invalid: u64,
    /// Replies to a try that a retransmission had already followed.
    overtaken: u64,
    /// Replies delivered after one created later.
    reordered: u64,
    newest_delivered: Option<u64>,
    /// Replies delivered after the tracker was done (its final wait).
    late: u64,
    /// Replies for probes already concluded no-response: they revise it.
    after_no_response: u64,
    /// Replies (forged ones included) arriving after the final wait: the
    /// scan has ended and never hears them.
    unheard: u64,
    genuine_unheard: u64,
    /// Of those, network copies.
    copies_unheard: u64,
    steps: u64,
    finished_at: Time,
}

struct Scanner {
    names: Vec<&'static str>,
    /// When an interrupt stops the confirmation of rate-limited probes.
    stop_confirming_at: Option<Time>,
    tracker: Tracker,
    validator: Validator,
    key: CookieKey,
    ports: PortPlan,
    templates: Vec<ProbeTemplate>,
    ip_id: u16,
    /// Highest try sent per probe index.
    last_attempt: HashMap<u64, u8>,
}

impl Scanner {
    fn new(hosts: Vec<Ipv4Addr>, params: TimingParams, seed: u64) -> Scanner {
        Scanner::with(hosts, PORTS.to_vec(), &TECHNIQUES, params, seed)
    }

    fn with(
        hosts: Vec<Ipv4Addr>,
        port_list: Vec<u16>,
        names: &[&'static str],
        params: TimingParams,
        seed: u64,
    ) -> Scanner {
        let techniques: Vec<Technique> = names
            .iter()
            .map(|n| builtin_by_name(n).expect("a built-in technique"))
            .collect();
        // The per-scan secrets, as the scan derives them.
        let ScanKeys {
            key,
            ports,
            order_seed,
        } = ScanKeys::from_seed(seed);
        let validator = Validator {
            key: key.clone(),
            ports,
            probes: techniques.iter().map(Technique::shape).collect(),
            udp: None,
        };
        let templates = techniques
            .iter()
            .map(|t| ProbeTemplate::new(t.flags))
            .collect();
        let space = ProbeSpace::new(
            hosts.into_iter().map(IpAddr::V4).collect::<Vec<_>>(),
            port_list,
            techniques.len(),
        );
        Scanner {
            stop_confirming_at: None,
            names: names.to_vec(),
            tracker: Tracker::new(space, techniques, params, order_seed),
            validator,
            key,
            ports,
            templates,
            ip_id: 0,
            last_attempt: HashMap::new(),
        }
    }

    /// The probe for an order, computed as scan.rs and sender.rs do.
    fn probe(&mut self, o: &SendOrder) -> Vec<u8> {
        let sport = self.ports.sport(o.technique, o.attempt);
        let (seq, ack) = probe_numbers(
            self.key.cookie(SCANNER.into(), o.host, sport, o.port),
            self.validator.probes[o.technique],
        );
        let fields = ProbeFields {
            src: SCANNER.into(),
            dst: o.host,
            sport,
            dport: o.port,
            seq,
            ack,
        };
        let mut buf = Vec::with_capacity(64);
        self.templates[o.technique].write(&fields, self.ip_id, &mut buf);
        self.ip_id = self.ip_id.wrapping_add(1);
        buf
    }

    fn finding(&self, index: u64) -> Option<Finding> {
        self.tracker.findings().nth(index as usize)?.3
    }

    /// Runs the scan to its end and its final wait, as the real loop does;
    /// what arrives later is counted, never heard.
    fn run(mut self, net: &mut SimNet) -> Outcome {
        let mut t = Tally::default();
        let mut now = Time::ZERO;
        loop {
            t.steps += 1;
            assert!(
                t.steps < MAX_STEPS,
                "no end after {MAX_STEPS} steps at {now:?}: {:?}",
                self.tracker.stats()
            );
            // What the receiver captured by now, in arrival order.
            while let Some(d) = net.pop_due(now) {
                self.deliver(d, &mut t);
            }
            if self.stop_confirming_at.is_some_and(|t| now >= t) {
                self.tracker.stop_confirming(now);
                self.stop_confirming_at = None;
            }
            self.tracker.expire(now);
            while let Some(order) = self.tracker.poll_send(now) {
                let bytes = self.probe(&order);
                // On loopback the capture sees our own probes: never replies.
                assert_eq!(
                    self.validator.check(parse_ip(&bytes), now),
                    Verdict::NotOurs
                );
                self.last_attempt.insert(order.index, order.attempt);
                t.sent += 1;
                t.retransmissions += u64::from(order.attempt > 0);
                net.transmit(now, &order, &bytes);
            }
            if self.tracker.is_done() {
                break;
            }
            let next = [net.next_at(), self.tracker.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| panic!("at {now:?} the tracker waits for nothing"));
            assert!(next > now, "time must move on: {next:?} after {now:?}");
            now = next;
        }
        t.finished_at = now;
        let listen_until = self.tracker.listen_until().unwrap_or(now).max(now);
        while let Some(d) = net.pop_next() {
            if d.at > listen_until {
                t.unheard += 1;
                if let Origin::Genuine { copy, .. } = d.origin {
                    t.genuine_unheard += 1;
                    t.copies_unheard += u64::from(copy);
                }
                continue;
            }
            self.deliver(d, &mut t);
        }
        self.outcome(net, t)
    }

    /// parse_ip -> Validator::check -> Tracker::on_reply, as the receiver
    /// thread and the scan loop do, with checks at each step.
    fn deliver(&mut self, d: Delivery, t: &mut Tally) {
        let verdict = self.validator.check(parse_ip(&d.bytes), d.at);
        let (probe, kind, ttl, copy) = match d.origin {
            Origin::Forged(forgery) => {
                assert_eq!(verdict, Verdict::Invalid, "forged {forgery:?} not rejected");
                t.forged_invalid += 1;
                return;
            }
            Origin::Genuine {
                probe,
                kind,
                ttl,
                copy,
            } => (probe, kind, ttl, copy),
        };
        let Verdict::Reply(reply) = verdict else {
            panic!("genuine {kind:?} to {probe:?} rejected: {verdict:?}");
        };
        assert_eq!(
            reply,
            Reply {
                host: probe.host,
                port: probe.port,
                technique: probe.technique,
                attempt_slot: (u16::from(probe.attempt) % TRY_SLOTS) as u8,
                kind,
                ttl,
                at: d.at,
            },
            "the validator misattributed a reply"
        );
        t.genuine += 1;
        t.copies += u64::from(copy);
        if t.newest_delivered.is_some_and(|newest| d.id < newest) {
            t.reordered += 1;
        }
        t.newest_delivered = t.newest_delivered.max(Some(d.id));
        if self.last_attempt[&probe.index] > probe.attempt {
            t.overtaken += 1;
        }
        t.late += u64::from(self.tracker.is_done());
        let before = self.finding(probe.index);
        match self.tracker.on_reply(&reply) {
            ReplyEffect::Decided { .. } => {
                assert_eq!(before, None, "{probe:?} decided twice");
                t.decided += 1;
            }
            ReplyEffect::Revised { .. } => {
                let before = before.expect("a revision of an undecided probe");
                assert_eq!(before.reason, Reason::NoResponse, "{probe:?} revised");
                assert_ne!(self.finding(probe.index), Some(before));
                t.decided += 1;
                t.after_no_response += 1;
            }
            ReplyEffect::Duplicate => {
                let before = before.expect("a duplicate for an undecided probe");
                assert_ne!(
                    before.reason,
                    Reason::NoResponse,
                    "{probe:?}: silence is revised"
                );
                assert_eq!(
                    self.finding(probe.index),
                    Some(before),
                    "a duplicate changed the finding of {probe:?}"
                );
                t.duplicate_effects += 1;
            }
            other => panic!("genuine {kind:?} to {probe:?} had effect {other:?}"),
        }
    }

    fn outcome(&self, net: &SimNet, tally: Tally) -> Outcome {
        let techniques = self.tracker.techniques();
        let rows = self
            .tracker
            .findings()
            .map(|(host, port, t, got)| Row {
                host: v4(host),
                port,
                technique: self.names[t],
                got: got.expect("every probe concluded"),
                want: net.truth(v4(host), port, &techniques[t]),
            })
            .collect();
        let limited = self.tracker.rate_limited();
        Outcome {
            rate_limited: (0..self.tracker.space().len())
                .map(|i| limited.binary_search(&i).is_ok())
                .collect(),
            limits: self.tracker.limits(),
            rows,
            stats: self.tracker.stats(),
            tally,
            net: net.counts.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// Results and the checks every run must pass.

#[derive(Debug)]
struct Row {
    host: Ipv4Addr,
    port: u16,
    technique: &'static str,
    got: Finding,
    want: Finding,
}

impl Row {
    fn describe(&self) -> String {
        let show = |f: &Finding| format!("{} ({}, ttl {:?})", f.state, f.reason, f.ttl);
        format!(
            "{}:{} {}: got {}, want {}",
            self.host,
            self.port,
            self.technique,
            show(&self.got),
            show(&self.want)
        )
    }
}

struct Outcome {
    rows: Vec<Row>,
    /// Per row: left unconfirmed by the rate-limit pacing.
    rate_limited: Vec<bool>,
    limits: Vec<RateLimit>,
    stats: TrackerStats,
    tally: Tally,
    net: NetCounts,
}

impl Outcome {
    fn wrong(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.got != r.want).collect()
    }

    /// Probes that should be decided by a reply.
    fn answering(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.want.reason != Reason::NoResponse)
            .count()
    }

    fn assert_exact(&self) {
        let wrong: Vec<String> = self.wrong().iter().map(|r| r.describe()).collect();
        assert!(
            wrong.is_empty(),
            "{} of {} findings differ from the truth:\n{}",
            wrong.len(),
            self.rows.len(),
            wrong.join("\n")
        );
    }

    /// Every wrong finding is the technique's no-response outcome for a port
    /// that did answer: lost replies make ports look silent, never anything
    /// else. Returns how many findings are wrong.
    fn assert_errors_only_towards_no_response(&self) -> usize {
        let wrong = self.wrong();
        for r in &wrong {
            let silent = expected(r.technique, Answer::Silence, 0);
            assert!(
                r.want.reason != Reason::NoResponse && r.got == silent,
                "a wrong finding that loss cannot explain: {}",
                r.describe()
            );
        }
        wrong.len()
    }

    /// Counters of the tracker against what the simulation saw.
    fn check_bookkeeping(&self) {
        let (s, t, n) = (&self.stats, &self.tally, &self.net);
        assert_eq!((s.sent, s.retransmissions), (t.sent, t.retransmissions));
        assert_eq!(t.sent, n.probes);
        for r in &self.rows {
            assert_eq!(
                r.got.ttl.is_none(),
                r.got.reason == Reason::NoResponse,
                "{r:?}"
            );
        }
        let by_reply = self
            .rows
            .iter()
            .filter(|r| r.got.reason != Reason::NoResponse)
            .count() as u64;
        assert_eq!(s.replies, by_reply, "stats.replies counts deciding replies");
        assert_eq!(t.decided, by_reply);
        // All that was delivered: what the hosts sent, less losses, plus
        // copies, less what came after the final wait.
        assert_eq!(
            t.genuine,
            n.replies - n.replies_lost + n.duplicated - t.genuine_unheard
        );
        assert_eq!(s.revised, t.after_no_response);
        assert_eq!(t.copies + t.copies_unheard, n.duplicated);
        // Every genuine reply either decided its probe or was a duplicate...
        assert_eq!(s.duplicates, t.genuine - t.decided);
        assert_eq!(s.duplicates, t.duplicate_effects);
        // ...so each network copy added one duplicate at least.
        assert!(s.duplicates >= t.copies);
        assert_eq!((s.unexpected, s.unmatched), (0, 0));
        // Every forged packet heard reached the validator and was rejected.
        assert_eq!(
            t.forged_invalid,
            n.forged.iter().sum::<u64>() - (t.unheard - t.genuine_unheard)
        );
    }

    fn summary(&self, label: &str) -> String {
        let (s, t, n) = (&self.stats, &self.tally, &self.net);
        format!(
            "{label}: {} findings, {} wrong; sent {} ({} retransmissions), \
             probes lost {}, replies lost {}/{}, deciding replies {}, duplicates {}, \
             forged {}, overtaken {}, reordered {}, revisions of no-response {}, \
             in the final wait {}, never heard {}, virtual time {:?}, steps {}",
            self.rows.len(),
            self.wrong().len(),
            s.sent,
            s.retransmissions,
            n.probes_lost,
            n.replies_lost,
            n.replies,
            s.replies,
            s.duplicates,
            t.forged_invalid,
            t.overtaken,
            t.reordered,
            t.after_no_response,
            t.late,
            t.unheard,
            t.finished_at,
            t.steps,
        )
    }
}

fn simulate(label: &str, imp: Impairments, params: TimingParams, seed: u64) -> Outcome {
    let mut net = SimNet::new(lab(), imp, seed);
    let scanner = Scanner::new(
        net.addrs(),
        params,
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let outcome = scanner.run(&mut net);
    eprintln!("{}", outcome.summary(label));
    outcome.check_bookkeeping();
    outcome
}

/// nmap's 100 ms timeout floor rather than flagscan's 10 ms: with 50 ms of
/// jitter no timeout fires while a reply is on its way, so these tests can
/// count every probe (the default floor is tested on its own below).
fn retries(max_retries: u8) -> TimingParams {
    TimingParams {
        max_retries,
        min_rto: ms(100),
        ..TimingParams::default()
    }
}

/// Exactly `max_retries`, however much loss the tracker sees: for tests
/// about what happens when the retries run out.
fn fixed_retries(max_retries: u8) -> TimingParams {
    TimingParams {
        max_adaptive_retries: max_retries,
        ..retries(max_retries)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Jitter small enough that every reply (RTT at most 40 ms + 50 ms) comes
/// back before the smallest RTO (100 ms): only loss can make a try fail.
const SMALL_JITTER: Duration = Duration::from_millis(50);
/// With the largest RTT (40 ms), replies come back within 1.99 s.
const BIG_JITTER: Duration = Duration::from_millis(1950);

/// Upper bound on the chance that some answering probe is never heard. A try
/// fails when the probe or its reply is lost: q = 1-(1-p)^2. A probe's
/// finding is wrong only when all retries+1 tries fail: q^(retries+1) (when
/// every reply that is not lost comes back before the try's timeout). Union
/// bound over the `answering` probes.
fn miss_bound(loss: f64, retries: u8, answering: usize) -> f64 {
    let try_fails = 1.0 - (1.0 - loss).powi(2);
    answering as f64 * try_fails.powi(i32::from(retries) + 1)
}

// ---------------------------------------------------------------------------
// The tests.

/// The lab has 5 hosts x 20 ports x 4 techniques = 400 probes, of which 346
/// get an answer and 54 meet silence.
#[test]
fn the_lab_covers_every_row_of_the_tables() {
    let net = SimNet::new(lab(), Impairments::default(), 0);
    let mut seen = std::collections::BTreeSet::new();
    let mut answering = 0;
    for host in &net.hosts {
        for port in PORTS {
            for name in TECHNIQUES {
                let f = net.truth(host.addr, port, &builtin_by_name(name).unwrap());
                answering += usize::from(f.reason != Reason::NoResponse);
                seen.insert((name, f.state, f.reason));
            }
        }
    }
    assert_eq!(answering, 346);
    for name in TECHNIQUES {
        for (state, reason) in [
            (PortState::Closed, Reason::Reset),
            (PortState::Filtered, Reason::Unreachable(3)),
            (PortState::Filtered, Reason::Unreachable(13)),
        ] {
            assert!(seen.contains(&(name, state, reason)), "{name} {reason}");
        }
        let silent = expected(name, Answer::Silence, 0);
        assert!(
            seen.contains(&(name, silent.state, silent.reason)),
            "{name}"
        );
    }
    assert!(seen.contains(&("syn", PortState::Open, Reason::SynAck)));
}

#[test]
fn lossless_network_every_finding_is_the_truth() {
    let params = retries(2);
    let o = simulate(
        "lossless",
        Impairments {
            jitter: SMALL_JITTER,
            ..Impairments::default()
        },
        params,
        1,
    );
    // State, reason and TTL (the host's, or the gateway's for its ICMP).
    o.assert_exact();
    // Every answered probe is sent once; every silent one 1 + retries times.
    let answering = o.answering() as u64;
    let silent = o.rows.len() as u64 - answering;
    assert_eq!(o.stats.replies, answering);
    assert_eq!(
        o.stats.sent,
        answering + silent * (u64::from(params.max_retries) + 1)
    );
    assert_eq!(o.stats.duplicates, 0);
    assert!(o.tally.reordered > 0, "jitter should reorder replies");
    // Hosts that REJECT a few ports without a limiter are not paced.
    assert!(o.limits.is_empty(), "{:?}", o.limits);
}

/// Retries per loss rate (each way) such that the chance of any wrong
/// finding is below 1e-6 for all runs together, with n = 346 answering
/// probes (silent probes cannot be wrong: loss only removes packets):
///
/// | loss p | q = 1-(1-p)^2 | retries R | n * q^(R+1)                   |
/// |--------|---------------|-----------|-------------------------------|
/// | 10%    | 0.19          | 14        | 346 * 0.19^15 = 5.3e-9        |
/// | 30%    | 0.51          | 34        | 346 * 0.51^35 = 2.0e-8        |
/// | 50%    | 0.75          | 76        | 346 * 0.75^77 = 8.3e-8        |
///
/// (The hostile-network test adds 2.0e-8 more.) nmap-like 8 to 12 retries
/// are far from enough at 50%: 346 * 0.75^13 = 8.2 wrong ports expected.
const LOSS_PLANS: [(f64, u8); 3] = [(0.10, 14), (0.30, 34), (0.50, 76)];

#[test]
fn lost_packets_are_covered_by_enough_retries() {
    for (i, (loss, max_retries)) in LOSS_PLANS.into_iter().enumerate() {
        let o = simulate(
            &format!("loss {loss} retries {max_retries}"),
            Impairments {
                loss,
                jitter: SMALL_JITTER,
                ..Impairments::default()
            },
            retries(max_retries),
            10 + i as u64,
        );
        let bound = miss_bound(loss, max_retries, o.answering());
        assert!(bound < 1e-7, "p={loss} R={max_retries}: bound {bound:e}");
        assert!(o.net.probes_lost > 0 && o.net.replies_lost > 0);
        assert!(o.stats.retransmissions > 0);
        o.assert_exact();
    }
}

#[test]
fn default_retries_grow_to_cover_ten_percent_loss() {
    // 10% each way: a try goes unanswered with 0.19. The default retry
    // would miss 346 * 0.19^2 = 12.5 answering probes; seeing answers come
    // only on retries, the tracker raises its budget (to 6 here, nmap
    // -T4's cap: 346 * 0.19^7 = 0.003 expected misses) and gives probes
    // already concluded silent their extra tries.
    for seed in [30, 31, 32] {
        let o = simulate(
            "loss 0.1 default retries",
            Impairments {
                loss: 0.1,
                jitter: SMALL_JITTER,
                ..Impairments::default()
            },
            TimingParams::default(),
            seed,
        );
        assert!(o.stats.retransmissions > 0);
        o.assert_exact();
    }
    // Without the adaptation, the same network leaves ports wrong.
    let wrong: usize = [30, 31, 32]
        .into_iter()
        .map(|seed| {
            simulate(
                "loss 0.1 fixed retries",
                Impairments {
                    loss: 0.1,
                    jitter: SMALL_JITTER,
                    ..Impairments::default()
                },
                fixed_retries(2),
                seed,
            )
            .assert_errors_only_towards_no_response()
        })
        .sum();
    assert!(wrong > 0, "the fixed-retry runs should miss some answers");
}

#[test]
fn few_retries_at_high_loss_err_only_towards_no_response() {
    // 50% each way and 2 retries: an answering probe goes unheard with
    // 0.75^3 = 0.42; about 146 of 346 are expected wrong.
    let o = simulate(
        "loss 0.5 retries 2",
        Impairments {
            loss: 0.5,
            jitter: SMALL_JITTER,
            ..Impairments::default()
        },
        fixed_retries(2),
        20,
    );
    let wrong = o.assert_errors_only_towards_no_response();
    assert!(wrong > 50, "only {wrong} wrong: the test shows nothing");
    // In particular: no port is reported open, closed or ICMP-filtered unless
    // it is; a missed open port is reported filtered (no-response).
    for r in &o.rows {
        if r.got.reason != Reason::NoResponse {
            assert_eq!(r.got, r.want, "{r:?}");
        }
        if r.want.state == PortState::Open {
            assert!(
                matches!(r.got.state, PortState::Open | PortState::Filtered),
                "{r:?}"
            );
        }
    }
}

#[test]
fn the_default_floor_stays_exact_on_a_jittery_network() {
    // Replies jitter by up to 50 ms, far past a 10 ms timeout: early
    // timeouts fire while replies are on their way (most in the first
    // window, sent on the first RTT sample alone). Nothing is wrong for it,
    // and the cost is bounded. (That such answers double the floor, once
    // per timeout, is the tracker's unit test
    // an_answer_overtaken_by_its_retransmission_doubles_the_floor_once_per_timeout:
    // this lab is too small for the doubling to show in the counts.)
    let params = TimingParams::default();
    assert_eq!(params.min_rto, ms(10));
    let o = simulate(
        "default floor, 50 ms jitter",
        Impairments {
            jitter: SMALL_JITTER,
            ..Impairments::default()
        },
        params,
        2,
    );
    o.assert_exact();
    o.check_bookkeeping();
    assert!(o.tally.overtaken > 0, "{}", o.summary("floor"));
    // On a lossless network every retransmission of an answering probe is
    // spurious and draws one duplicate answer: fewer than one answering
    // probe in three was sent again for nothing.
    assert!(
        o.stats.duplicates * 3 < o.answering() as u64,
        "{}",
        o.summary("floor")
    );
}

#[test]
fn duplicated_replies_count_once() {
    let o = simulate(
        "duplicates",
        Impairments {
            duplicate: 0.5,
            jitter: SMALL_JITTER,
            ..Impairments::default()
        },
        retries(2),
        30,
    );
    o.assert_exact();
    assert!(o.net.duplicated > 100);
    // One deciding reply per answering probe; every extra copy a duplicate.
    assert_eq!(o.stats.replies, o.answering() as u64);
    assert_eq!(o.stats.duplicates, o.net.duplicated);
}

#[test]
fn forged_replies_never_become_results() {
    let o = simulate(
        "forgeries",
        Impairments {
            forge: 1.0,
            jitter: SMALL_JITTER,
            ..Impairments::default()
        },
        retries(2),
        40,
    );
    // Every forged packet was Verdict::Invalid (checked as delivered).
    assert_eq!(o.tally.forged_invalid, o.stats.sent);
    assert!(
        o.net.forged.iter().all(|&n| n > 20),
        "each kind of forgery is tried: {:?}",
        o.net.forged
    );
    o.assert_exact();
}

#[test]
fn replies_overtaken_by_retransmissions_still_decide() {
    // Replies take up to 1.99 s, more than any RTO here; but the last
    // conclusion comes 3 RTOs >= 2.1 s after the first try, so every first
    // reply arrives in time, often after a retransmission.
    let params = TimingParams {
        initial_rto: ms(1000),
        min_rto: ms(700),
        max_retries: 2,
        ..TimingParams::default()
    };
    let o = simulate(
        "delays up to 2 s, RTO >= 700 ms",
        Impairments {
            jitter: BIG_JITTER,
            ..Impairments::default()
        },
        params,
        50,
    );
    o.assert_exact();
    assert!(o.tally.overtaken > 50, "{}", o.tally.overtaken);
    assert!(o.tally.reordered > 50, "{}", o.tally.reordered);
}

#[test]
fn late_replies_revise_silence_until_the_final_wait() {
    // RTO at most 300 ms and 2 retries: a probe is concluded about 0.9 s
    // after its first try, and replies take up to 1.99 s.
    let params = TimingParams {
        initial_rto: ms(200),
        max_rto: ms(300),
        max_retries: 2,
        // Fixed, so that replies do arrive after silence was concluded.
        max_adaptive_retries: 2,
        ..TimingParams::default()
    };
    let o = simulate(
        "delays up to 2 s, RTO <= 300 ms",
        Impairments {
            duplicate: 0.2,
            jitter: BIG_JITTER,
            ..Impairments::default()
        },
        params,
        60,
    );
    // Replies that came after their probe was concluded on silence, during
    // the scan or its final wait, revised it (checked as delivered); each
    // one doubles the timeout floor, so the scan grows patient.
    assert!(o.tally.after_no_response > 10, "{}", o.summary("late"));
    o.check_bookkeeping();
    // What is still wrong are ports whose every reply came after the final
    // wait: they look silent, and nothing else.
    let wrong = o.assert_errors_only_towards_no_response();
    assert!(
        wrong as u64 <= o.tally.genuine_unheard,
        "{wrong} wrong, {}",
        o.summary("late")
    );
}

#[test]
fn hostile_network_everything_at_once() {
    // 30% loss each way, duplicates, delays up to 1.99 s (reordering), a
    // forged packet after every probe. The RTO never falls below 2 s, so every
    // reply not lost arrives before its try times out, and the loss table
    // applies: 346 * 0.51^35 = 2.0e-8.
    let (loss, max_retries) = (0.30, 34);
    let params = TimingParams {
        initial_rto: ms(2000),
        min_rto: ms(2000),
        max_rto: ms(3000),
        max_retries,
        ..TimingParams::default()
    };
    let o = simulate(
        "hostile",
        Impairments {
            loss,
            duplicate: 0.2,
            jitter: BIG_JITTER,
            forge: 1.0,
        },
        params,
        70,
    );
    assert!(miss_bound(loss, max_retries, o.answering()) < 1e-7);
    assert_eq!(o.tally.forged_invalid, o.stats.sent);
    assert!(o.net.duplicated > 0 && o.tally.reordered > 0);
    o.assert_exact();
}

// ---------------------------------------------------------------------------
// Hosts that rate-limit their answers.

/// One host with `limits`, scanned with `names` over `ports` on a network
/// with a little jitter and no loss. Returns the outcome and the net's count
/// of answers the limiters kept back.
fn simulate_limited(
    label: &str,
    personality: Personality,
    limits: Vec<Bucket>,
    ports: Vec<u16>,
    names: &[&'static str],
    seed: u64,
) -> (Outcome, u64) {
    simulate_limited_until(label, personality, limits, ports, names, seed, None)
}

/// [`simulate_limited`], with an interrupt stopping the confirmation at
/// `stop` (virtual time).
fn simulate_limited_until(
    label: &str,
    personality: Personality,
    limits: Vec<Bucket>,
    ports: Vec<u16>,
    names: &[&'static str],
    seed: u64,
    stop: Option<Time>,
) -> (Outcome, u64) {
    let host = Host {
        addr: Ipv4Addr::new(10, 0, 0, 9),
        personality,
        ttl: 64,
        rtt: Duration::from_millis(1),
        limits,
    };
    let imp = Impairments {
        jitter: Duration::from_micros(200),
        ..Impairments::default()
    };
    let mut net = SimNet::new(vec![host], imp, seed);
    net.techniques = names.len();
    let mut scanner = Scanner::with(
        net.addrs(),
        ports,
        names,
        TimingParams::default(),
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    scanner.stop_confirming_at = stop;
    let outcome = scanner.run(&mut net);
    eprintln!("{} limited {}", outcome.summary(label), net.counts.limited);
    outcome.check_bookkeeping();
    (outcome, net.counts.limited)
}

/// A Linux host with two REJECTed ports (the lab's `rej`).
const TWO_REJECTS: Personality = Personality::IcmpFilter {
    open: &[22, 80],
    rejected: &[111, 445],
    code: 3,
    via_gateway: false,
};

/// firewalld's default over ports 1..=last: 22 open, every other port
/// REJECTed with host-prohibited (the lab's `fwd`).
fn firewalld_like(last: u16) -> Personality {
    let rejected: &'static [u16] = Box::leak(
        (1..=last)
            .filter(|p| *p != 22)
            .collect::<Vec<u16>>()
            .into_boxed_slice(),
    );
    Personality::IcmpFilter {
        open: &[22],
        rejected,
        code: 10,
        via_gateway: false,
    }
}

#[test]
fn icmp_limited_rejects_in_a_four_technique_pass_come_out_exact_every_run() {
    // Linux's buckets (1/s, burst 6 per destination; 1000/s, burst 50):
    // two REJECTed ports answer 8 probes in one pass, and the bucket
    // gives 6.
    for seed in 1..=10 {
        let (o, limited) = simulate_limited(
            "two rejects, four techniques",
            TWO_REJECTS,
            Bucket::linux_icmp(),
            (1..=1000).collect(),
            &TECHNIQUES,
            seed,
        );
        assert!(limited > 0, "seed {seed}: the limiter never bit");
        o.assert_exact();
        assert!(o.rate_limited.iter().all(|l| !l));
        assert!(
            o.tally.finished_at < Duration::from_secs(10),
            "seed {seed}: {:?}",
            o.tally.finished_at
        );
    }
}

#[test]
fn a_bucket_nearly_dry_from_an_earlier_scan_still_comes_out_exact() {
    // Back to back with another scan: one token left. One REJECTed port
    // answers one technique, and that proves the limiter for the other,
    // which answered nothing at all.
    for seed in 1..=10 {
        let mut limits = Bucket::linux_icmp();
        limits[0].tokens = 1.0;
        let (o, limited) = simulate_limited(
            "two rejects, one token",
            TWO_REJECTS,
            limits,
            (1..=1000).collect(),
            &TECHNIQUES,
            seed,
        );
        assert!(limited >= 7, "seed {seed}: {limited}");
        o.assert_exact();
    }
}

#[test]
fn a_host_rejecting_everything_with_limited_icmp_is_paced_and_marked() {
    // firewalld's default: every port but one REJECTed with
    // host-prohibited, ICMP limited as Linux does. A FIN scan of 200 ports.

    let (o, limited) = simulate_limited(
        "firewalld-like, FIN",
        firewalld_like(200),
        Bucket::linux_icmp(),
        (1..=200).collect(),
        &["fin"],
        3,
    );
    assert!(limited > 100);
    let right = o.rows.iter().filter(|r| r.got == r.want).count();
    // nmap got 46 of 199 right in 45 s on such a host.
    assert!(right > 46, "{right} right");
    assert!(
        o.tally.finished_at <= Duration::from_secs(45),
        "{:?}",
        o.tally.finished_at
    );
    for (r, limited) in o.rows.iter().zip(&o.rate_limited) {
        if r.got != r.want {
            assert!(limited, "a wrong state not marked: {}", r.describe());
        }
    }
    let [l] = o.limits.as_slice() else {
        panic!("one limited host: {:?}", o.limits)
    };
    assert_eq!(l.kind, LimitKind::Icmp);
    let rate = l.rate.expect("a measured rate");
    assert!((0.5..2.0).contains(&rate), "{rate}/s measured, 1/s true");
    assert_eq!(
        l.unconfirmed as usize,
        o.rate_limited.iter().filter(|l| **l).count()
    );
    assert_eq!(
        l.paced,
        l.confirmed + l.unconfirmed + (l.paced - l.confirmed - l.unconfirmed)
    );
}

#[test]
fn a_host_limiting_rsts_to_200_a_second_comes_out_exact() {
    // FreeBSD's default: at most 200 RSTs a second. SYN over 3000 ports.
    let (o, limited) = simulate_limited(
        "RSTs at 200/s, SYN",
        Personality::Rfc793 {
            open: &[22, 80, 443],
        },
        vec![Bucket::new(true, 200.0, 5.0)],
        (1..=3000).collect(),
        &["syn"],
        5,
    );
    assert!(limited > 1000, "{limited}");
    o.assert_exact();
    // The limiter's own floor is 3000 / 200 = 15 s.
    assert!(
        o.tally.finished_at <= Duration::from_secs(20),
        "{:?}",
        o.tally.finished_at
    );
    let [l] = o.limits.as_slice() else {
        panic!("one limited host: {:?}", o.limits)
    };
    assert_eq!(l.kind, LimitKind::Rst);
}

#[test]
fn an_interrupt_while_confirming_keeps_every_finding_and_marks_the_unconfirmed() {
    let (o, _) = simulate_limited_until(
        "firewalld-like, FIN, interrupted at 5 s",
        firewalld_like(100),
        Bucket::linux_icmp(),
        (1..=100).collect(),
        &["fin"],
        4,
        Some(Duration::from_secs(5)),
    );
    // Every probe has its finding (Outcome::rows would have panicked
    // otherwise), and every wrong one is marked.
    assert!(
        o.tally.finished_at < Duration::from_secs(7),
        "{:?}",
        o.tally.finished_at
    );
    let marked = o.rate_limited.iter().filter(|m| **m).count();
    assert!(marked > 50, "{marked}");
    for (r, m) in o.rows.iter().zip(&o.rate_limited) {
        assert!(r.got == r.want || *m, "{}", r.describe());
    }
}
