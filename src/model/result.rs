//! A finished scan as the outputs and the teaching code read it.

use std::ops::Range;
use std::time::Duration;

use crate::model::host::HostStatus;
use crate::model::probe::ProbeSpace;
use crate::model::technique::{PortState, Reason, Technique};

/// A port's final answer for one technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub state: PortState,
    pub reason: Reason,
    /// TTL of the deciding reply; `None` for no-response.
    pub ttl: Option<u8>,
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

pub struct ScanResult {
    pub space: ProbeSpace,
    pub techniques: Vec<Technique>,
    /// In (host, port, technique) order, one per probe.
    pub findings: Vec<Option<Finding>>,
    pub stats: ScanStats,
    /// The seed the scan used (drawn at random without `--seed`).
    pub seed: u64,
    /// Stopped by an interrupt before every probe was concluded.
    pub interrupted: bool,
    /// When interrupted: positions in the probe order concluded so far, in
    /// this run or the one it resumed (what a resume file keeps).
    pub decided: Vec<Range<u64>>,
    /// Per host (in `space.hosts` order): up or down, and why. A down host
    /// has no findings.
    pub hosts: Vec<HostStatus>,
    /// Probes (indices in the probe space, ascending) whose silence a rate
    /// limiter may explain: not confirmed within the host's time budget.
    pub rate_limited: Vec<u64>,
    /// Hosts found rate-limiting their answers.
    pub limits: Vec<RateLimit>,
}

impl ScanResult {
    /// The transport of the scan's ports (a scan's techniques share one).
    pub fn protocol(&self) -> crate::model::technique::Protocol {
        self.techniques
            .first()
            .map(|t| t.protocol)
            .unwrap_or_default()
    }

    /// Whether host `i` (a position in `space.hosts`) was found up.
    pub fn is_up(&self, i: usize) -> bool {
        self.hosts.get(i).is_none_or(|h| h.up)
    }

    pub fn is_rate_limited(&self, index: u64) -> bool {
        self.rate_limited.binary_search(&index).is_ok()
    }

    /// Hosts found up (not those an interrupted discovery never asked).
    pub fn hosts_up(&self) -> usize {
        (0..self.space.hosts.len())
            .filter(|&i| {
                self.hosts
                    .get(i)
                    .is_none_or(|h| h.up && h.reason != crate::model::host::HostReason::NotAsked)
            })
            .count()
    }
}
