//! A finished scan as the outputs and the teaching code read it.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use crate::model::host::HostStatuses;
use crate::model::probe::ProbeSpace;
use crate::model::technique::{PortState, Protocol, Reason, Technique};
use rustc_hash::FxHashMap;

/// A port's final answer for one technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    pub state: PortState,
    pub reason: Reason,
    /// TTL of the deciding reply; `None` for no-response.
    pub ttl: Option<u8>,
}

/// Distinct findings that replies decided, each named by its position:
/// most replies of a scan decide one of a few (closed by a reset, with the
/// host's TTL), and a probe whose finding is here takes no map entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Palette {
    findings: Vec<Finding>,
    positions: FxHashMap<Finding, u8>,
    /// The position found last: replies mostly decide what the one before
    /// decided.
    last: u8,
}

impl Palette {
    /// `f`'s position, added if the palette holds fewer than `cap` (at
    /// most 256).
    pub(crate) fn position(&mut self, f: Finding, cap: usize) -> Option<u8> {
        if self.findings.get(usize::from(self.last)) == Some(&f) {
            return Some(self.last);
        }
        if let Some(&at) = self.positions.get(&f) {
            self.last = at;
            return Some(at);
        }
        let at = self.findings.len();
        if at >= cap.min(usize::from(u8::MAX) + 1) {
            return None;
        }
        self.findings.push(f);
        self.positions.insert(f, at as u8);
        Some(at as u8)
    }

    pub(crate) fn get(&self, at: u8) -> Option<Finding> {
        self.findings.get(usize::from(at)).copied()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.findings.capacity() * std::mem::size_of::<Finding>()
            + self.positions.capacity() * (std::mem::size_of::<(Finding, u8)>() + 1)
    }
}

/// Every probe's finding, in (host, port, technique) order: a byte per
/// probe, and a [`Finding`] kept only for probes a reply decided whose
/// finding is not among the [`Palette`]'s. A probe concluded on silence has
/// its technique's `no_response`, the same for all of them (a /8 would
/// otherwise take a `Finding` per address).
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Per probe: [`Findings::NONE`], [`Findings::SILENT`],
    /// [`Findings::ANSWERED`], or [`Findings::PALETTE`] plus a position in
    /// `palette`.
    codes: Vec<u8>,
    /// Per technique (`index % len`): what silence concludes.
    no_response: Vec<Finding>,
    palette: Palette,
    answered: FxHashMap<u64, Finding>,
}

impl Findings {
    /// Not concluded (an interrupted scan, a probe skipped, excluded or
    /// not asked).
    pub(crate) const NONE: u8 = 0;
    /// Concluded on silence: the technique's `no_response`.
    pub(crate) const SILENT: u8 = 1;
    /// Decided by a reply: in `answered`.
    pub(crate) const ANSWERED: u8 = 2;
    /// Decided by a reply: `PALETTE + i` is the palette's `i`th finding.
    pub(crate) const PALETTE: u8 = 3;
    /// How many findings the palette may hold.
    pub(crate) const PALETTE_LEN: usize = (u8::MAX - Findings::PALETTE) as usize + 1;

    /// No probe yet, for `techniques` (what their silence concludes).
    pub fn new(techniques: &[Technique]) -> Findings {
        Findings {
            codes: Vec::new(),
            no_response: techniques
                .iter()
                .map(|t| Finding {
                    state: t.no_response.state,
                    reason: t.no_response.reason,
                    ttl: None,
                })
                .collect(),
            palette: Palette::default(),
            answered: FxHashMap::default(),
        }
    }

    /// `findings` in probe order, for `techniques`.
    pub fn of(
        techniques: &[Technique],
        findings: impl IntoIterator<Item = Option<Finding>>,
    ) -> Findings {
        let mut out = Findings::new(techniques);
        for f in findings {
            out.push(f);
        }
        out
    }

    /// From the tracker's store: `codes` as above, for `techniques`, with
    /// `palette` and `answered` holding what the codes name.
    pub(crate) fn from_parts(
        codes: Vec<u8>,
        techniques: &[Technique],
        palette: Palette,
        answered: FxHashMap<u64, Finding>,
    ) -> Findings {
        Findings {
            codes,
            palette,
            answered,
            ..Findings::new(techniques)
        }
    }

    /// Appends the next probe's finding.
    pub fn push(&mut self, f: Option<Finding>) {
        let index = self.codes.len() as u64;
        let code = match f {
            None => Findings::NONE,
            Some(f) if Some(&f) == self.silence_of(index) => Findings::SILENT,
            Some(f) => match self.palette.position(f, Findings::PALETTE_LEN) {
                Some(at) => Findings::PALETTE + at,
                None => {
                    self.answered.insert(index, f);
                    Findings::ANSWERED
                }
            },
        };
        self.codes.push(code);
    }

    fn silence_of(&self, index: u64) -> Option<&Finding> {
        match self.no_response.len() as u64 {
            0 => None,
            n => self.no_response.get((index % n) as usize),
        }
    }

    /// Probe `index`'s finding; `None` where it was not concluded or is
    /// out of range.
    pub fn get(&self, index: u64) -> Option<Finding> {
        match *self.codes.get(usize::try_from(index).ok()?)? {
            Findings::NONE => None,
            Findings::SILENT => self.silence_of(index).copied(),
            Findings::ANSWERED => self.answered.get(&index).copied(),
            c => self.palette.get(c - Findings::PALETTE),
        }
    }

    /// How many probes (concluded or not).
    pub fn len(&self) -> u64 {
        self.codes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Whether any probe of `range` was concluded.
    pub fn any_concluded(&self, range: std::ops::Range<u64>) -> bool {
        let end = (range.end as usize).min(self.codes.len());
        let start = (range.start as usize).min(end);
        self.codes[start..end].iter().any(|&c| c != Findings::NONE)
    }

    /// How many probes were concluded.
    pub fn concluded(&self) -> u64 {
        self.codes.iter().filter(|&&c| c != Findings::NONE).count() as u64
    }

    /// Every probe's finding, in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<Finding>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// About how many bytes the store holds on the heap.
    pub fn approx_heap_bytes(&self) -> usize {
        self.codes.capacity()
            + self.no_response.capacity() * std::mem::size_of::<Finding>()
            + self.palette.heap_bytes()
            + self.answered.capacity() * (std::mem::size_of::<(u64, Finding)>() + 1)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub sent: u64,
    pub retransmissions: u64,
    /// Replies that decided a port (revisions included).
    pub replies: u64,
    /// Replies that came after their probe was concluded on silence, and
    /// revised it ([`crate::model::reply::ReplyEffect::Revised`]).
    pub revised: u64,
    pub duplicates: u64,
    pub unmatched: u64,
    pub unexpected: u64,
}

/// How many packets went into the `--pcap` file, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapCounts {
    pub sent: u64,
    pub received: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub tracker: TrackerStats,
    pub captured: u64,
    pub invalid: u64,
    pub overflow: u64,
    pub send_failures: u64,
    /// Probes that left as Ethernet frames (layer 2); the others went
    /// through the kernel's IP layer.
    pub link_layer: u64,
    pub elapsed: Duration,
    /// Packets written with `--pcap`: `sent` is `tracker.sent` minus
    /// `send_failures` (a probe the kernel refused never left).
    pub pcap: Option<PcapCounts>,
    /// Probes concluded by the run this one resumed (not sent, not reported).
    pub skipped: u64,
    /// Host discovery's probes (ARP, ICMP, TCP) and its share of `elapsed`.
    pub discovery: Option<(u64, Duration)>,
}

/// The kind of answer a host rate-limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rst,
    Icmp,
}

impl LimitKind {
    pub fn finding_id(self) -> &'static str {
        match self {
            LimitKind::Rst => "rst-rate-limit",
            LimitKind::Icmp => "icmp-rate-limit",
        }
    }
}

/// A host whose answers were rate-limited, and what confirming its silent
/// probes cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// The host's position in `space.hosts`.
    pub host: usize,
    pub kind: LimitKind,
    /// Answers per second measured while pacing (`None`: too few answers).
    pub rate: Option<f64>,
    /// Silent probes sent again, paced.
    pub paced: u32,
    /// Of those, answered.
    pub confirmed: u32,
    /// Still silent, marked `rate_limited`: when the time budget ended,
    /// or (`out_of_tries` of them) after every paced try.
    pub unconfirmed: u32,
    pub out_of_tries: u32,
    pub budget: Duration,
    /// In a pass of TCP and UDP, the protocol whose probes these counts
    /// are (`None`: the scan's only one).
    pub protocol: Option<Protocol>,
    /// An interrupt, not the budget, ended the confirming.
    pub stopped: bool,
}

impl RateLimit {
    /// How long confirming the probes the budget left unconfirmed would
    /// take at the measured rate (without a measure: Linux's one ICMP
    /// error a second, FreeBSD's 200 RSTs). Those out of paced tries would
    /// not answer to more time.
    pub fn time_to_confirm(&self) -> Duration {
        let rate = self.rate.unwrap_or(match self.kind {
            LimitKind::Icmp => 1.0,
            LimitKind::Rst => 200.0,
        });
        let at_budget = self.unconfirmed - self.out_of_tries.min(self.unconfirmed);
        Duration::from_secs_f64(f64::from(at_budget) / rate.max(0.001))
    }
}

#[derive(Clone)]
pub struct ScanResult {
    pub space: ProbeSpace,
    pub techniques: Vec<Technique>,
    /// In (host, port, technique) order, one per probe.
    pub findings: Findings,
    pub stats: ScanStats,
    /// The seed the scan used (drawn at random without `--seed`).
    pub seed: u64,
    /// Stopped by an interrupt before every probe was concluded.
    pub interrupted: bool,
    /// Every probe is decided (found down, skipped or concluded), even if
    /// an interrupt cut the confirming short: nothing is left to resume.
    pub complete: bool,
    /// When interrupted: positions in the probe order concluded so far, in
    /// this run or the one it resumed (what a resume file keeps).
    pub decided: Vec<Range<u64>>,
    /// Per host (in `space.hosts` order): up or down, and why. A down host
    /// has no findings.
    pub hosts: HostStatuses,
    /// Probes (indices in the probe space, ascending) whose silence a rate
    /// limiter may explain: not confirmed within the host's time budget.
    pub rate_limited: Vec<u64>,
    /// Hosts found rate-limiting their answers.
    pub limits: Vec<RateLimit>,
    /// The host names targets were given by (`localhost`), for the
    /// outputs; addresses given as addresses have none.
    pub names: Vec<(std::net::IpAddr, String)>,
}

impl ScanResult {
    /// One result per protocol, in the order the techniques name them: a
    /// pass of TCP and UDP reads, and is reported, as the two scans it
    /// stands for (each with its own ports, techniques and findings). A
    /// result of one protocol is its own only part.
    pub fn by_protocol(&self) -> Vec<Cow<'_, ScanResult>> {
        let mut protocols: Vec<Protocol> = Vec::new();
        for t in &self.techniques {
            if !protocols.contains(&t.protocol) {
                protocols.push(t.protocol);
            }
        }
        if protocols.len() <= 1 {
            return vec![Cow::Borrowed(self)];
        }
        protocols
            .iter()
            .map(|&p| Cow::Owned(self.part(p)))
            .collect()
    }

    /// The part of [`ScanResult::by_protocol`] that holds technique `t`,
    /// and `t`'s position in it.
    pub fn part_of(&self, t: usize) -> (Cow<'_, ScanResult>, usize) {
        let Some(proto) = self.techniques.get(t).map(|x| x.protocol) else {
            return (Cow::Borrowed(self), t);
        };
        if self.techniques.iter().all(|x| x.protocol == proto) {
            return (Cow::Borrowed(self), t);
        }
        let local = self.techniques[..t]
            .iter()
            .filter(|x| x.protocol == proto)
            .count();
        (Cow::Owned(self.part(proto)), local)
    }

    /// The probes of `proto`'s techniques, on the ports they asked.
    fn part(&self, proto: Protocol) -> ScanResult {
        let ts: Vec<usize> = (0..self.techniques.len())
            .filter(|&t| self.techniques[t].protocol == proto)
            .collect();
        let nt = self.techniques.len() as u64;
        let (hosts, ports) = (&self.space.hosts, &self.space.ports);
        // A port is in the part if any host asks it with one of the
        // part's techniques (a shard asks a port of some hosts only).
        let np = ports.len() as u64;
        let asked: Vec<u16> = ports
            .iter()
            .enumerate()
            .filter(|&(p, _)| {
                (0..hosts.len() as u64).any(|h| {
                    ts.iter()
                        .any(|&t| self.space.asks((h * np + p as u64) * nt + t as u64))
                })
            })
            .map(|(_, &port)| port)
            .collect();
        let space = ProbeSpace::new(hosts.clone(), asked.clone(), ts.len());
        let space = match self.space.shard() {
            Some((i, n)) => space.sharded(i, n),
            None => space,
        };
        let old = |h: usize, port: u16, t: usize| {
            self.space
                .index(self.space.host_addr(h), port, t)
                .expect("a part's probe is the whole's")
        };
        let techniques: Vec<Technique> = ts.iter().map(|&t| self.techniques[t].clone()).collect();
        let mut findings = Findings::new(&techniques);
        for h in 0..hosts.len() {
            for &port in &asked {
                for &t in &ts {
                    findings.push(self.findings.get(old(h, port, t)));
                }
            }
        }
        let mut rate_limited: Vec<u64> = self
            .rate_limited
            .iter()
            .filter_map(|&i| {
                let (host, port, t) = self.space.probe(i);
                let local = ts.iter().position(|&x| x == t)?;
                space.index(host, port, local)
            })
            .collect();
        rate_limited.sort_unstable();
        // Each part tells its own protocol's limit. A host's ICMP limit
        // found through the other protocol still weighs this part's
        // silences (no `silent-filter`), as a copy without counts, which
        // tells nothing.
        let mut limits: Vec<RateLimit> = self
            .limits
            .iter()
            .filter(|l| l.protocol.is_none_or(|p| p == proto))
            .copied()
            .collect();
        let borrowed: Vec<RateLimit> = self
            .limits
            .iter()
            .filter(|l| l.protocol.is_some_and(|p| p != proto) && l.kind == LimitKind::Icmp)
            .filter(|l| !limits.iter().any(|own| own.host == l.host))
            .map(|l| RateLimit {
                paced: 0,
                confirmed: 0,
                unconfirmed: 0,
                out_of_tries: 0,
                ..*l
            })
            .collect();
        limits.extend(borrowed);
        limits.sort_by_key(|l| l.host);
        ScanResult {
            space,
            techniques,
            findings,
            stats: self.stats.clone(),
            seed: self.seed,
            interrupted: self.interrupted,
            complete: self.complete,
            decided: self.decided.clone(),
            hosts: self.hosts.clone(),
            rate_limited,
            limits,
            names: self.names.clone(),
        }
    }

    /// The host name `host` was given by, if it was given by one.
    pub fn name_of(&self, host: std::net::IpAddr) -> Option<&str> {
        self.names
            .iter()
            .find(|(a, _)| *a == host)
            .map(|(_, n)| n.as_str())
    }

    /// The transport of the scan's ports (a scan's techniques share one).
    pub fn protocol(&self) -> crate::model::technique::Protocol {
        self.techniques
            .first()
            .map(|t| t.protocol)
            .unwrap_or_default()
    }

    /// Whether host `i` (a position in `space.hosts`) was found up.
    pub fn is_up(&self, i: usize) -> bool {
        self.hosts.get(i).up
    }

    pub fn is_rate_limited(&self, index: u64) -> bool {
        self.rate_limited.binary_search(&index).is_ok()
    }

    /// Hosts found up (not those an interrupted discovery never asked).
    pub fn hosts_up(&self) -> usize {
        let up = |h: &crate::model::host::HostStatus| {
            h.up && h.reason != crate::model::host::HostReason::NotAsked
        };
        // Hosts past the statuses (none given) are taken as up.
        let beyond = self.space.hosts.len().saturating_sub(self.hosts.len());
        self.hosts.count(up) + beyond
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::technique::builtin_by_name;
    use std::net::{IpAddr, Ipv4Addr};

    const H: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    /// A pass of SYN and UDP splits into the two scans it stands for:
    /// each with its own ports, findings, marks, and the host's ICMP limit
    /// told by the part with its unconfirmed probes.
    #[test]
    fn a_pass_of_tcp_and_udp_splits_by_protocol() {
        let space = ProbeSpace::with_protocols(vec![H], &[vec![22, 80], vec![53, 80]], &[0, 1]);
        let techniques = vec![
            builtin_by_name("syn").unwrap(),
            builtin_by_name("udp").unwrap(),
        ];
        let finding = |state| Finding {
            state,
            reason: Reason::NoResponse,
            ttl: None,
        };
        let findings = Findings::of(
            &techniques,
            (0..space.len()).map(|i| {
                let (_, port, t) = space.probe(i);
                let state = match (t, port) {
                    (0, 22) => PortState::Open,
                    (0, _) => PortState::Closed,
                    _ => PortState::OpenFiltered,
                };
                space.asks(i).then(|| finding(state))
            }),
        );
        let marked = space.index(H, 53, 1).unwrap();
        let limit = RateLimit {
            host: 0,
            kind: LimitKind::Icmp,
            rate: Some(1.0),
            paced: 5,
            confirmed: 4,
            unconfirmed: 1,
            out_of_tries: 1,
            budget: Duration::from_secs(40),
            protocol: Some(Protocol::Udp),
            stopped: false,
        };
        let whole = ScanResult {
            space,
            techniques,
            findings,
            stats: ScanStats::default(),
            seed: 1,
            interrupted: false,
            complete: true,
            decided: Vec::new(),
            hosts: HostStatuses::all(crate::model::host::HostStatus::ASSUMED_UP, 1),
            rate_limited: vec![marked],
            limits: vec![limit],
            names: Vec::new(),
        };
        let parts = whole.by_protocol();
        assert_eq!(parts.len(), 2);
        let (tcp, udp) = (&parts[0], &parts[1]);
        assert_eq!(tcp.space.ports, vec![22, 80]);
        assert_eq!(udp.space.ports, vec![53, 80]);
        assert_eq!(tcp.techniques[0].name, "syn");
        assert_eq!(udp.techniques[0].name, "udp");
        let states = |r: &ScanResult| -> Vec<PortState> {
            r.findings.iter().map(|f| f.unwrap().state).collect()
        };
        assert_eq!(states(tcp), vec![PortState::Open, PortState::Closed]);
        assert_eq!(states(udp), vec![PortState::OpenFiltered; 2]);
        assert!(tcp.rate_limited.is_empty());
        assert_eq!(udp.rate_limited, vec![udp.space.index(H, 53, 0).unwrap()]);
        assert_eq!(udp.limits[0].paced, 5);
        assert_eq!(tcp.limits[0].paced, 0, "told by the UDP part alone");
        assert_eq!(
            tcp.limits[0].kind,
            LimitKind::Icmp,
            "but it weighs TCP's silences"
        );
        let (part, t) = whole.part_of(1);
        assert_eq!((part.techniques[0].name.as_str(), t), ("udp", 0));
        // One protocol: the result itself.
        assert!(matches!(tcp.by_protocol()[0], Cow::Borrowed(_)));
    }
}
