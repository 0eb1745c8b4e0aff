//! JSON Lines (`-oJ`): one record per host, port and technique probed, a
//! `host` record with the findings after each host, then a `stats` record.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::model::result::ScanResult;
use crate::model::services::Services;
use crate::model::technique::PortState;
use crate::output::{host_rows, rate, reported, Exporter, PartHosts};
use crate::teach::findings::HostFinding;
use crate::teach::lang::Lang;
use crate::teach::portnotes;

#[derive(Serialize)]
struct PortRecord<'a> {
    host: &'a str,
    port: u16,
    proto: &'static str,
    scan: &'a str,
    state: &'static str,
    reason: &'static str,
    ttl: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    /// Open ports only: the IANA range class and the teaching note.
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    /// Silent where the host's rate limiter may have eaten the answer, and
    /// not confirmed within the host's budget.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rate_limited: bool,
}

#[derive(Serialize)]
struct StatsRecord {
    #[serde(rename = "type")]
    kind: &'static str,
    hosts: usize,
    hosts_up: usize,
    ports: usize,
    scans: Vec<String>,
    probes: u64,
    retransmissions: u64,
    replies: u64,
    duplicates: u64,
    invalid: u64,
    /// Valid replies dropped because the scan loop fell behind the
    /// receiver (the channel between them is bounded).
    overflow: u64,
    elapsed_s: f64,
    rate_pps: f64,
    /// Stopped by Ctrl-C or SIGTERM: the records above are what was
    /// concluded; `flagscan --resume` adds the rest.
    interrupted: bool,
    /// A resumed run: probes concluded by the run it resumed, whose
    /// records are earlier in the file.
    #[serde(skip_serializing_if = "is_zero")]
    skipped: u64,
    /// Replies that came after their probe's last try timed out, and
    /// turned a no-response conclusion into what they say.
    #[serde(skip_serializing_if = "is_zero")]
    late_replies: u64,
    /// Probes sent as Ethernet frames (`AF_PACKET`, `--io fast` with the
    /// next hop's MAC known); the rest went through the kernel's IP layer.
    #[serde(skip_serializing_if = "is_zero")]
    link_layer: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct HostRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host: IpAddr,
    /// The host name the target was given by, or null.
    name: Option<&'a str>,
    /// "up" or "down", and host discovery's reason in nmap's words.
    status: &'static str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_s: Option<f64>,
    /// A down host has none: nothing was probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    findings: Option<&'a [HostFinding]>,
}

/// One record per (host, port, technique) probed, a `host` record with the
/// findings after each host's ports, then a `stats` record.
pub fn write_jsonl(
    w: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    lang: Lang,
) -> io::Result<()> {
    // Records are serialized into memory a chunk of rows at a time, by
    // JSON_WORKERS threads taking turns, and written in order as chunks
    // come in: a full-range scan has 65,535 records per technique (13 ms of
    // serde's time on this machine, about half on two threads), and at
    // most JSON_WORKERS * 2 chunks wait in memory, however large the scan.
    // Every host has a row per port; hosts' rows are built a chunk at a
    // time (a /8's all at once took gigabytes).
    let n = result.space.hosts.len();
    let per_host = match n {
        0 => 0,
        _ => host_rows(result, 0).rows.len(),
    };
    let parts = result.by_protocol();
    let part_hosts = PartHosts::new(&parts);
    let total = n * per_host;
    let chunks = total.div_ceil(JSON_CHUNK_ROWS).max(1);
    let workers = JSON_WORKERS.min(chunks);
    std::thread::scope(|scope| -> io::Result<()> {
        let queues: Vec<_> = (0..workers)
            .map(|first| {
                let (tx, rx) = crossbeam_channel::bounded::<io::Result<Vec<u8>>>(2);
                let part_hosts = &part_hosts;
                scope.spawn(move || {
                    for chunk in (first..chunks).step_by(workers) {
                        let rows =
                            chunk * JSON_CHUNK_ROWS..((chunk + 1) * JSON_CHUNK_ROWS).min(total);
                        let records = jsonl_rows(
                            (n, per_host),
                            part_hosts,
                            rows,
                            total,
                            result,
                            services,
                            lang,
                        );
                        if tx.send(records).is_err() {
                            return;
                        }
                    }
                });
                rx
            })
            .collect();
        for chunk in 0..chunks {
            let records = queues[chunk % workers]
                .recv()
                .map_err(|_| io::Error::other("a JSON writer thread stopped"))??;
            w.write_all(&records)?;
        }
        Ok(())
    })?;
    let s = &result.stats;
    let rec = StatsRecord {
        kind: "stats",
        hosts: result.space.hosts.len(),
        hosts_up: result.hosts_up(),
        ports: result.space.ports.len(),
        scans: result.techniques.iter().map(|t| t.name.clone()).collect(),
        probes: s.tracker.sent,
        retransmissions: s.tracker.retransmissions,
        replies: s.tracker.replies,
        duplicates: s.tracker.duplicates,
        invalid: s.invalid,
        overflow: s.overflow,
        elapsed_s: s.elapsed.as_secs_f64(),
        rate_pps: rate(result),
        interrupted: result.interrupted,
        skipped: s.skipped,
        late_replies: s.tracker.revised,
        link_layer: s.link_layer,
    };
    serde_json::to_writer(&mut *w, &rec)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// The first record of a JSON Lines output: which flagscan, asked what,
/// when (a resumed scan appends one more, `"resumed":true`).
#[derive(Serialize)]
struct StartRecord<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    args: &'a [String],
    start: String,
    start_epoch: u64,
    resumed: bool,
}

/// Writes the start record.
pub fn write_start(
    w: &mut dyn Write,
    args: &[String],
    start: std::time::SystemTime,
    resumed: bool,
) -> io::Result<()> {
    let secs = crate::sys::clock::epoch(start);
    let rec = StartRecord {
        kind: "start",
        version: env!("CARGO_PKG_VERSION"),
        args,
        start: crate::sys::clock::iso8601_utc(secs),
        start_epoch: secs,
        resumed,
    };
    serde_json::to_writer(&mut *w, &rec)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Rows per chunk of JSON records (about 800 KB of text).
const JSON_CHUNK_ROWS: usize = 8192;
/// Threads serializing JSON records (the text report takes the main one).
const JSON_WORKERS: usize = 2;

/// The JSON lines of the port records of `rows` (positions among all
/// hosts' rows, `total` of them), with each host's record after its last
/// row.
fn jsonl_rows(
    (n, per_host): (usize, usize),
    part_hosts: &PartHosts<'_>,
    rows: std::ops::Range<usize>,
    total: usize,
    result: &ScanResult,
    services: &Services,
    lang: Lang,
) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(rows.len() * 128);
    // Every host has a row per port: the chunk's hosts are found by
    // division, not by walking all hosts (a /8 has 16 million).
    let span = match per_host {
        0 => 0..n,
        k => (rows.start / k).min(n)..rows.end.div_ceil(k).min(n),
    };
    for h in 0..span.len() {
        // An interrupted scan says nothing of a host it did not get to
        // (its resume will): decided before any row of it is built.
        if !reported(result, span.start + h) {
            continue;
        }
        let host = &host_rows(result, span.start + h);
        debug_assert_eq!(host.rows.len(), per_host);
        let first = (span.start + h) * per_host;
        let own = first..first + per_host;
        let (from, to) = (own.start.max(rows.start), own.end.min(rows.end));
        if from < to {
            let addr = host.host.to_string();
            for (port, findings) in &host.rows[from - own.start..to - own.start] {
                for (ti, (t, f)) in result.techniques.iter().zip(findings.iter()).enumerate() {
                    let Some(f) = f else { continue };
                    let is_open = f.state == PortState::Open;
                    let rec = PortRecord {
                        host: &addr,
                        port: *port,
                        proto: t.protocol.as_str(),
                        scan: &t.name,
                        state: f.state.as_str(),
                        reason: f.reason.as_str(),
                        ttl: f.ttl,
                        service: services.name_in(t.protocol, *port),
                        class: is_open.then(|| crate::model::ports::port_class(*port).name()),
                        note: is_open.then(|| portnotes::note_text(*port, lang)).flatten(),
                        rate_limited: host.is_limited(*port, ti),
                    };
                    serde_json::to_writer(&mut buf, &rec)?;
                    buf.push(b'\n');
                }
            }
        }
        // The host's record goes with its last row (a host without rows:
        // where its rows would have been).
        let last = if own.is_empty() {
            own.start
        } else {
            own.end - 1
        };
        let in_chunk =
            rows.contains(&last) || (own.is_empty() && last == total && rows.end == total);
        if in_chunk {
            let findings = match host.status.up {
                true => part_hosts.findings(span.start + h, host, result, lang),
                false => Vec::new(),
            };
            let rec = HostRecord {
                kind: "host",
                host: host.host,
                name: result.name_of(host.host),
                status: host.status.status_word(),
                reason: host.status.reason.as_str(),
                latency_s: host.status.latency.map(|l| l.as_secs_f64()),
                findings: host.status.up.then_some(&findings[..]),
            };
            serde_json::to_writer(&mut buf, &rec)?;
            buf.push(b'\n');
        }
    }
    Ok(buf)
}

/// JSON Lines, with findings' texts in `lang`.
pub struct JsonLines(pub Lang);

impl Exporter for JsonLines {
    fn write(
        &self,
        w: &mut dyn Write,
        result: &ScanResult,
        services: &Services,
    ) -> anyhow::Result<()> {
        write_jsonl(w, result, services, self.0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::probe::ProbeSpace;
    use crate::model::result::ScanStats;
    use crate::model::result::{Finding, Findings};
    use crate::model::technique::{builtin_by_name, Reason};
    use std::net::Ipv4Addr;

    /// Three hosts of 6,000 ports: 18,000 rows, so chunks of
    /// `JSON_CHUNK_ROWS` end inside hosts and the workers take turns. Then
    /// 20,000 hosts of one port: many hosts per chunk.
    #[test]
    fn json_chunks_come_out_in_order_with_each_host_record_after_its_ports() {
        json_order(3, 6000);
        json_order(20_000, 1);
    }

    /// An interrupted pass of TCP and UDP over three hosts, the first of
    /// which nothing concluded: it has no record, and each other host's
    /// findings are its own (its UDP part's rate limit), not a neighbour's.
    #[test]
    fn an_interrupted_pass_of_tcp_and_udp_gives_each_host_reached_its_own_findings() {
        use crate::model::host::{HostStatus, HostStatuses};
        use crate::model::result::{LimitKind, RateLimit};
        use crate::model::technique::Protocol;
        let hosts: Vec<IpAddr> = (1..=3u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let space = ProbeSpace::with_protocols(hosts.clone(), &[vec![80], vec![53]], &[0, 1]);
        let techniques = vec![
            builtin_by_name("syn").unwrap(),
            builtin_by_name("udp").unwrap(),
        ];
        let findings = Findings::of(
            &techniques,
            (0..space.len()).map(|i| {
                let (host, _, t) = space.probe(i);
                (host != hosts[0] && space.asks(i)).then_some(Finding {
                    state: [PortState::Closed, PortState::OpenFiltered][t],
                    reason: [Reason::Reset, Reason::NoResponse][t],
                    ttl: None,
                })
            }),
        );
        let marked = space.index(hosts[2], 53, 1).unwrap();
        let limit = RateLimit {
            host: 2,
            kind: LimitKind::Icmp,
            rate: Some(1.0),
            paced: 5,
            confirmed: 4,
            unconfirmed: 1,
            out_of_tries: 1,
            budget: std::time::Duration::from_secs(40),
            protocol: Some(Protocol::Udp),
            stopped: false,
        };
        let result = ScanResult {
            space,
            techniques,
            findings,
            stats: ScanStats::default(),
            seed: 1,
            interrupted: true,
            complete: false,
            decided: vec![],
            hosts: HostStatuses::all(HostStatus::ASSUMED_UP, 3),
            rate_limited: vec![marked],
            limits: vec![limit],
            names: Vec::new(),
        };
        let mut out = Vec::new();
        write_jsonl(&mut out, &result, &Services::load(), Lang::En).unwrap();
        let ids = |host: &str| -> Option<Vec<String>> {
            String::from_utf8(out.clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|r| r["type"] == "host" && r["host"] == host)
                .map(|r| {
                    r["findings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["id"].as_str().unwrap().to_string())
                        .collect()
                })
        };
        assert_eq!(ids("10.0.0.1"), None, "not reached: no record");
        assert_eq!(ids("10.0.0.2"), Some(vec![]));
        assert!(
            ids("10.0.0.3")
                .unwrap()
                .contains(&"icmp-rate-limit".to_string()),
            "{:?}",
            ids("10.0.0.3")
        );
    }

    fn json_order(host_count: u32, port_count: u16) {
        let hosts: Vec<IpAddr> = (0..host_count)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let ports: Vec<u16> = (1..=port_count).collect();
        let n = hosts.len() * ports.len();
        assert!(n > 2 * JSON_CHUNK_ROWS);
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let findings = Findings::of(
            &techniques,
            (0..n).map(|i| {
                Some(Finding {
                    state: if i % 1000 == 0 {
                        PortState::Open
                    } else {
                        PortState::Closed
                    },
                    reason: if i % 1000 == 0 {
                        Reason::SynAck
                    } else {
                        Reason::Reset
                    },
                    ttl: Some(64),
                })
            }),
        );
        let result = ScanResult {
            space: ProbeSpace::new(hosts.clone(), ports.clone(), 1),
            techniques,
            findings,
            stats: ScanStats::default(),
            seed: 1,
            interrupted: false,
            complete: true,
            decided: vec![],
            hosts: Default::default(),
            rate_limited: Vec::new(),
            limits: Vec::new(),
            names: vec![(hosts[0], "first".to_string())],
        };
        let mut out = Vec::new();
        write_jsonl(&mut out, &result, &Services::load(), Lang::En).unwrap();
        let records: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut expected = Vec::new();
        for h in &hosts {
            for p in &ports {
                expected.push(format!("{h}:{p}"));
            }
            expected.push(format!("host {h}"));
        }
        expected.push("stats".to_string());
        let got: Vec<String> = records
            .iter()
            .map(|r| match r["type"].as_str() {
                Some("host") => format!("host {}", r["host"].as_str().unwrap()),
                Some(kind) => kind.to_string(),
                None => format!("{}:{}", r["host"].as_str().unwrap(), r["port"]),
            })
            .collect();
        assert_eq!(got, expected);
        // Row 0 is open, the next row (of the same host or the next) closed.
        assert_eq!(records[0]["state"], "open");
        let next = if port_count > 1 { 1 } else { 2 };
        assert_eq!(records[next]["state"], "closed");
        // Every host record names its host's name, null where it has none.
        let names: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| r["type"] == "host")
            .map(|r| &r["name"])
            .collect();
        assert_eq!(names[0], "first");
        assert!(names[1..].iter().all(|n| n.is_null()), "{names:?}");
    }
}
