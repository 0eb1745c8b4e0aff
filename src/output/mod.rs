//! Formatters over a finished scan, one per format behind [`Exporter`]:
//! nmap-like text ([`text`]) and JSON Lines ([`json`]); `-` as a file name
//! means stdout. The taps of a running scan live here too: `--pcap`
//! ([`pcap`]) and `--packet-trace` ([`trace`]), and the progress line.

pub(crate) mod grepable;
pub(crate) mod json;
pub(crate) mod list;
pub(crate) mod pcap;
pub(crate) mod progress;
pub(crate) mod text;
pub(crate) mod trace;
pub(crate) mod xml;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;

use crate::model::host::{HostReason, HostStatus};
use crate::model::result::{Finding, LimitKind, RateLimit, ScanResult};
use crate::model::services::Services;
use crate::sys::files::{open_write, Existing};
use crate::teach::findings::{self, HostFinding, PortRow};
use crate::teach::lang::Lang;

/// One output format: writes a finished scan to any `io::Write`.
pub trait Exporter: Send + Sync {
    fn write(
        &self,
        out: &mut dyn Write,
        result: &ScanResult,
        services: &Services,
    ) -> anyhow::Result<()>;
}

/// Where an output goes: stdout for `-`, else a file opened by
/// [`crate::sys::files::open_write`].
pub struct Dest {
    pub writer: Box<dyn Write + Send>,
    /// The file, if this run created it (to be given to the sudo user).
    pub created: Option<File>,
}

/// Opens an output destination; `-` is stdout. `append` (`--resume`) adds
/// to an existing file instead of emptying it.
pub fn open(path: &Path, option: &str, append: bool) -> anyhow::Result<Dest> {
    if path.as_os_str() == "-" {
        return Ok(Dest {
            writer: Box::new(BufWriter::new(io::stdout())),
            created: None,
        });
    }
    let how = if append {
        Existing::Append
    } else {
        Existing::Truncate
    };
    let opened = open_write(path, &format!("{option} file"), how, 0o644)?;
    Ok(Dest {
        created: opened.created_handle(),
        writer: Box::new(BufWriter::new(opened.file)),
    })
}

/// One host's rows: port -> finding per technique.
pub(crate) struct HostRows {
    pub(crate) host: IpAddr,
    pub(crate) status: HostStatus,
    /// (port, technique) of the probes left unconfirmed by a rate
    /// limiter, sorted.
    pub(crate) limited: Vec<(u16, usize)>,
    pub(crate) limit: Option<RateLimit>,
    /// Built for one host at a time: [`ScanResult::findings`] holds no
    /// `Finding` per probe to borrow.
    pub(crate) rows: Vec<(u16, Vec<Option<Finding>>)>,
}

impl HostRows {
    pub(crate) fn port_rows(&self) -> Vec<PortRow<'_>> {
        self.rows
            .iter()
            .map(|(port, findings)| PortRow {
                port: *port,
                findings,
                limited: self.is_limited_port(*port),
            })
            .collect()
    }

    /// Whether any probe of `port` was left unconfirmed.
    pub(crate) fn is_limited_port(&self, port: u16) -> bool {
        let at = self.limited.partition_point(|(p, _)| *p < port);
        self.limited.get(at).is_some_and(|(p, _)| *p == port)
    }

    /// Whether technique `t`'s probe of `port` was left unconfirmed.
    pub(crate) fn is_limited(&self, port: u16, t: usize) -> bool {
        self.limited.binary_search(&(port, t)).is_ok()
    }

    /// The rows of the ports this scan asked about: a shard's own
    /// (`--shard`), not the other shards'.
    pub(crate) fn asked_only(&self, result: &ScanResult) -> HostRows {
        let space = &result.space;
        let asked = |port: u16| {
            (0..result.techniques.len()).any(|t| {
                space
                    .index(self.host, port, t)
                    .is_some_and(|x| space.asks(x))
            })
        };
        HostRows {
            host: self.host,
            status: self.status,
            limited: self.limited.clone(),
            limit: self.limit,
            rows: self
                .rows
                .iter()
                .filter(|(p, _)| asked(*p))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn findings(&self, result: &ScanResult, lang: Lang) -> Vec<HostFinding> {
        let mut out = findings::host_findings(&self.port_rows(), &result.techniques, lang);
        // A host that limits its ICMP errors makes any silence ambiguous:
        // no silence of it is a DROP's evidence.
        if self.limit.is_some_and(|l| l.kind == LimitKind::Icmp) {
            out.retain(|f| f.id != "silent-filter" && f.id != "drops-udp");
        }
        // In a pass of TCP and UDP, one part tells the limit (the other's
        // copy has no counts): see ScanResult::by_protocol.
        if let Some(limit) = self
            .limit
            .filter(|l| l.paced > 0 || !self.limited.is_empty())
        {
            let limit = &limit;
            let mut ports: Vec<u16> = self.limited.iter().map(|(p, _)| *p).collect();
            ports.dedup();
            out.push(findings::rate_limit_finding(limit, ports, lang));
        }
        out.extend(self.families_finding(result, lang));
        out
    }

    /// `families-differ`, when this address was given by a name whose
    /// address of the other family is scanned too.
    fn families_finding(&self, result: &ScanResult, lang: Lang) -> Option<HostFinding> {
        let name = result.name_of(self.host)?;
        let (other, _) = result
            .names
            .iter()
            .find(|(a, n)| n == name && a.is_ipv6() != self.host.is_ipv6())?;
        let other_rows = host_rows(result, result.space.host_position(*other)?);
        findings::families_finding(
            name,
            (self.host, *other),
            &self.port_rows(),
            &other_rows.port_rows(),
            &result.techniques,
            lang,
        )
    }
}

/// The hosts of a pass of TCP and UDP, per protocol part
/// ([`ScanResult::by_protocol`]): each part's findings are its own, and
/// its rows are built for one host when asked (holding every host's rows
/// of both parts would cost a row set per address of a /8).
pub(crate) struct PartHosts<'a> {
    parts: &'a [std::borrow::Cow<'a, ScanResult>],
}

impl<'a> PartHosts<'a> {
    pub(crate) fn new(parts: &'a [std::borrow::Cow<'a, ScanResult>]) -> PartHosts<'a> {
        PartHosts { parts }
    }

    /// Host `i`'s findings: `host`'s own (a result of one protocol: its
    /// rows tell all), or each part's in turn.
    pub(crate) fn findings(
        &self,
        i: usize,
        host: &HostRows,
        result: &ScanResult,
        lang: Lang,
    ) -> Vec<HostFinding> {
        if self.parts.len() < 2 {
            return host.findings(result, lang);
        }
        self.parts
            .iter()
            .filter(|part| i < part.space.hosts.len())
            .flat_map(|part| host_rows(part, i).findings(part, lang))
            .collect()
    }
}

/// The hosts' rows one at a time: a writer that needs one host at a time
/// holds one, not a row set per address of a /8.
pub(crate) fn hosts_iter(result: &ScanResult) -> impl Iterator<Item = HostRows> + '_ {
    (0..result.space.hosts.len())
        .filter(|&i| reported(result, i))
        .map(move |i| host_rows(result, i))
}

/// Whether host `i` is in the outputs: every host of a finished scan; of
/// an interrupted one, those it reached (a probe concluded, or host
/// discovery's word on it). The others are its resume's: an interrupted
/// /8 reports the thousands of hosts it probed, not 16 million blanks.
pub(crate) fn reported(result: &ScanResult, i: usize) -> bool {
    if !result.interrupted {
        return true;
    }
    let status = result.hosts.get(i);
    // Taken as up without an answer (-Pn, our own addresses), or not
    // asked: only a concluded probe says the scan got to it.
    let assumed = matches!(
        status.reason,
        HostReason::UserSet | HostReason::NotAsked | HostReason::LocalhostResponse
    );
    if !assumed {
        return true;
    }
    let per_host = (result.space.ports.len() * result.techniques.len()) as u64;
    let first = i as u64 * per_host;
    result.findings.any_concluded(first..first + per_host)
}

/// Host `i`'s rows.
pub(crate) fn host_rows(result: &ScanResult, i: usize) -> HostRows {
    let nt = result.techniques.len();
    let per_host = (result.space.ports.len() * nt) as u64;
    let first = i as u64 * per_host;
    // A host the findings do not cover has no rows.
    let covered = per_host > 0 && first + per_host <= result.findings.len();
    let ports = match covered {
        true => &result.space.ports[..],
        false => &[],
    };
    HostRows {
        limited: limited_of(result, i),
        limit: result.limits.iter().find(|l| l.host == i).copied(),
        host: result.space.host_addr(i),
        status: result.hosts.get(i),
        rows: ports
            .iter()
            .enumerate()
            .map(|(p, &port)| {
                let row = first + (p * nt) as u64;
                (
                    port,
                    (row..row + nt as u64)
                        .map(|x| result.findings.get(x))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// The (port, technique) pairs of host `i`'s unconfirmed probes.
fn limited_of(result: &ScanResult, i: usize) -> Vec<(u16, usize)> {
    if result.rate_limited.is_empty() {
        return Vec::new();
    }
    let nt = result.techniques.len().max(1) as u64;
    let per_host = result.space.ports.len() as u64 * nt;
    let (first, end) = (i as u64 * per_host, (i as u64 + 1) * per_host);
    let from = result.rate_limited.partition_point(|&x| x < first);
    result.rate_limited[from..]
        .iter()
        .take_while(|&&x| x < end)
        .map(|&x| {
            let (_, port, t) = result.space.probe(x);
            (port, t)
        })
        .collect()
}

pub(crate) fn rate(result: &ScanResult) -> f64 {
    let secs = result.stats.elapsed.as_secs_f64();
    if secs > 0.0 {
        result.stats.tracker.sent as f64 / secs
    } else {
        0.0
    }
}

/// nmap's closing line: how many addresses, how many up, how long.
pub fn hosts_line(result: &ScanResult) -> String {
    hosts_line_in(result, "s")
}

/// [`hosts_line`] with the unit of time spelt `unit` (nmap's files say
/// "seconds").
pub(crate) fn hosts_line_in(result: &ScanResult, unit: &str) -> String {
    let n = result.space.hosts.len();
    let up = result.hosts_up();
    format!(
        "{n} IP address{} ({up} host{} up) scanned in {:.2} {unit}",
        if n == 1 { "" } else { "es" },
        if up == 1 { "" } else { "s" },
        result.stats.elapsed.as_secs_f64()
    )
}

/// The closing line.
pub fn summary(result: &ScanResult) -> String {
    let s = &result.stats;
    let names: Vec<&str> = result.techniques.iter().map(|t| t.name.as_str()).collect();
    let mut tail = String::new();
    if result.interrupted {
        let concluded = result.findings.concluded();
        tail.push_str(&format!(
            "; interrupted: {concluded} of {} probes concluded",
            result.space.asked() - s.skipped
        ));
    }
    if let Some((sent, took)) = s.discovery {
        tail.push_str(&format!(
            "; host discovery: {sent} probes, {:.2} s",
            took.as_secs_f64()
        ));
    }
    if s.skipped > 0 {
        tail.push_str(&format!("; resumed: {} probes concluded before", s.skipped));
    }
    if let Some((i, n)) = result.space.shard() {
        tail.push_str(&format!(
            "; shard {}/{n}: {} of the probes",
            i + 1,
            result.space.asked()
        ));
    }
    if s.tracker.revised > 0 {
        tail.push_str(&format!(
            "; {} late replies revised a no-response",
            s.tracker.revised
        ));
    }
    // A pass of TCP and UDP: each protocol's ports times its techniques.
    let parts = result.by_protocol();
    let shape = parts
        .iter()
        .map(|p| {
            let names: Vec<&str> = p.techniques.iter().map(|t| t.name.as_str()).collect();
            format!(
                "{} {} port(s) x {} ({})",
                p.space.ports.len(),
                p.protocol().as_str(),
                names.len(),
                names.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let shape = match parts.len() {
        1 => format!(
            "{} port(s) x {} ({})",
            result.space.ports.len(),
            names.len(),
            names.join(",")
        ),
        _ => format!("({shape})"),
    };
    format!(
        "flagscan {}: {} host(s) x {shape}: {} probes sent ({} retransmissions), \
         {} replies, {} invalid packets dropped, {:.2} s, {:.0} probes/s{tail}",
        if result.interrupted {
            "interrupted"
        } else {
            "done"
        },
        result.space.hosts.len(),
        s.tracker.sent,
        s.tracker.retransmissions,
        s.tracker.replies,
        s.invalid,
        s.elapsed.as_secs_f64(),
        rate(result)
    )
}
