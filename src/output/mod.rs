//! Formatters over a finished scan: nmap-like text and JSON Lines.
//! Each writes to any `io::Write`; `-` as a file name means stdout.

pub mod pcap;
pub mod progress;
pub mod trace;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::engine::scan::ScanResult;
use crate::engine::tracker::Finding;
use crate::error::usage;
use crate::model::services::Services;
use crate::model::technique::PortState;
use crate::teach::findings::{self, HostFinding, Lang, PortRow};
use crate::teach::portnotes;

/// Ports sharing one answer are folded into a "Not shown" line above this
/// many, as nmap does.
const FOLD_THRESHOLD: usize = 25;

/// Opens an output destination; `-` is stdout.
pub fn open(path: &Path, option: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file = File::create(path).map_err(|e| {
        usage(format!(
            "cannot write {option} file {}: {e}",
            path.display()
        ))
    })?;
    Ok(Box::new(BufWriter::new(file)))
}

/// Like [`open`], but appends to an existing file (`--resume` adds the
/// records of the probes it concludes to the interrupted run's file).
pub fn open_append(path: &Path, option: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        return open(path, option);
    }
    let file = File::options()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            usage(format!(
                "cannot append to {option} file {}: {e}",
                path.display()
            ))
        })?;
    Ok(Box::new(BufWriter::new(file)))
}

/// One host's rows: port -> finding per technique.
struct HostRows<'a> {
    host: Ipv4Addr,
    rows: Vec<(u16, &'a [Option<Finding>])>,
}

impl HostRows<'_> {
    fn port_rows(&self) -> Vec<PortRow<'_>> {
        self.rows
            .iter()
            .map(|(port, findings)| PortRow {
                port: *port,
                findings,
            })
            .collect()
    }

    fn findings(&self, result: &ScanResult, lang: Lang) -> Vec<HostFinding> {
        findings::host_findings(&self.port_rows(), &result.techniques, lang)
    }
}

fn hosts(result: &ScanResult) -> Vec<HostRows<'_>> {
    let per_host = result.space.ports.len() * result.techniques.len();
    result
        .space
        .hosts
        .iter()
        .zip(result.findings.chunks(per_host.max(1)))
        .map(|(host, chunk)| HostRows {
            host: *host,
            rows: result
                .space
                .ports
                .iter()
                .copied()
                .zip(chunk.chunks(result.techniques.len().max(1)))
                .collect(),
        })
        .collect()
}

fn cell(f: &Option<Finding>, reason: bool) -> String {
    match f {
        None => "unknown".to_string(),
        Some(f) if reason => match f.ttl {
            Some(ttl) => format!("{} ({} ttl {ttl})", f.state, f.reason),
            None => format!("{} ({})", f.state, f.reason),
        },
        Some(f) => f.state.to_string(),
    }
}

/// The key ports are folded by: every technique's state and reason.
type RowKey = Vec<
    Option<(
        crate::model::technique::PortState,
        crate::model::technique::Reason,
    )>,
>;

/// Fills `key` with the row's key (one allocation per report, not per row:
/// a full-range scan has 65,535 rows).
fn row_key_into(findings: &[Option<Finding>], key: &mut RowKey) {
    key.clear();
    key.extend(findings.iter().map(|f| f.map(|f| (f.state, f.reason))));
}

fn has_key(findings: &[Option<Finding>], key: &RowKey) -> bool {
    findings.len() == key.len()
        && findings
            .iter()
            .zip(key)
            .all(|(f, k)| f.map(|f| (f.state, f.reason)) == *k)
}

/// How the text view is written.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    /// Show the reason and the reply's TTL in every cell.
    pub reason: bool,
    pub lang: Lang,
}

pub fn write_text(
    w: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    opts: TextOptions,
) -> io::Result<()> {
    let reason = opts.reason;
    let names: Vec<String> = result
        .techniques
        .iter()
        .map(|t| t.name.to_uppercase())
        .collect();
    let single = names.len() == 1;
    for host in hosts(result) {
        writeln!(w, "flagscan report for {}", host.host)?;
        // Fold the most common answer when it covers many ports.
        let mut counts: FxHashMap<RowKey, usize> = FxHashMap::default();
        let mut key = RowKey::new();
        for (_, f) in &host.rows {
            row_key_into(f, &mut key);
            match counts.get_mut(key.as_slice()) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(key.clone(), 1);
                }
            }
        }
        let folded = counts
            .iter()
            .filter(|(k, n)| **n > FOLD_THRESHOLD && k.iter().all(|c| c.is_some()))
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| (k.clone(), *n));
        if let Some((key, n)) = &folded {
            let states: Vec<String> = key
                .iter()
                .flatten()
                .map(|(s, r)| format!("{s} ({r})"))
                .collect();
            if single {
                let (s, r) = key[0].expect("folded rows are complete");
                writeln!(w, "Not shown: {n} {s} tcp ports ({r})")?;
            } else {
                writeln!(
                    w,
                    "Not shown: {n} tcp ports answering {}",
                    states.join(" / ")
                )?;
            }
        }
        // Ports with no answer concluded in this run (interrupted, or
        // concluded by the run this one resumed) are counted, not listed.
        let unconcluded = host
            .rows
            .iter()
            .filter(|(_, f)| f.iter().all(|c| c.is_none()))
            .count();
        if unconcluded > 0 {
            writeln!(w, "{}", unconcluded_line(result, unconcluded, opts.lang))?;
        }
        let shown: Vec<_> = host
            .rows
            .iter()
            .filter(|(_, f)| folded.as_ref().is_none_or(|(k, _)| !has_key(f, k)))
            .filter(|(_, f)| f.iter().any(|c| c.is_some()))
            .collect();
        if shown.is_empty() && unconcluded > 0 {
            writeln!(w)?;
            continue;
        }
        if shown.is_empty() {
            writeln!(
                w,
                "All {} scanned ports are shown above as folded.",
                host.rows.len()
            )?;
            writeln!(w)?;
            continue;
        }
        let cells: Vec<Vec<String>> = shown
            .iter()
            .map(|(_, f)| f.iter().map(|c| cell(c, reason)).collect())
            .collect();
        let widths: Vec<usize> = (0..names.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].len())
                    .chain([names[i].len(), 5])
                    .max()
                    .unwrap_or(5)
            })
            .collect();
        if single {
            let head = if reason {
                "STATE (REASON TTL)"
            } else {
                "STATE"
            };
            let width = widths[0].max(head.len());
            writeln!(w, "{:<9} {:<width$} SERVICE", "PORT", head)?;
            for ((port, _), c) in shown.iter().zip(&cells) {
                let svc = services.name(*port).unwrap_or("unknown");
                writeln!(w, "{:<9} {:<width$} {svc}", format!("{port}/tcp"), c[0])?;
            }
        } else {
            let mut line = format!("{:<9} {:<15}", "PORT", "SERVICE");
            for (n, wd) in names.iter().zip(&widths) {
                line.push_str(&format!(" {n:<wd$}"));
            }
            line.push_str(" VERDICT");
            writeln!(w, "{}", line.trim_end())?;
            for ((port, f), c) in shown.iter().zip(&cells) {
                let svc = services.name(*port).unwrap_or("unknown");
                let mut line = format!("{:<9} {svc:<15}", format!("{port}/tcp"));
                for (v, wd) in c.iter().zip(&widths) {
                    line.push_str(&format!(" {v:<wd$}"));
                }
                let row = PortRow {
                    port: *port,
                    findings: f,
                };
                line.push(' ');
                line.push_str(&findings::verdict(&row, &result.techniques, opts.lang));
                writeln!(w, "{}", line.trim_end())?;
            }
        }
        let open: Vec<u16> = shown
            .iter()
            .filter(|(_, f)| f.iter().flatten().any(|f| f.state == PortState::Open))
            .map(|(p, _)| *p)
            .collect();
        if !open.is_empty() {
            writeln!(w)?;
            writeln!(
                w,
                "{}",
                match opts.lang {
                    Lang::En => "Open ports:",
                    Lang::Ja => "オープンポート:",
                }
            )?;
        }
        for port in open {
            let class = portnotes::class_name(port, opts.lang);
            match portnotes::note_text(port, opts.lang) {
                Some(note) => writeln!(w, "  {port}/tcp ({class}): {note}")?,
                None => writeln!(w, "  {port}/tcp ({class})")?,
            }
        }
        let host_findings = host.findings(result, opts.lang);
        if !host_findings.is_empty() {
            writeln!(w)?;
            for f in &host_findings {
                writeln!(w, "* {} [{}]", findings::narrate_id(f.id, opts.lang), f.id)?;
                writeln!(w, "  {}", f.text)?;
            }
        }
        writeln!(w)?;
    }
    Ok(())
}

fn unconcluded_line(result: &ScanResult, n: usize, lang: Lang) -> String {
    let (interrupted, resumed) = (result.interrupted, result.stats.skipped > 0);
    match (lang, interrupted, resumed) {
        (Lang::En, true, false) => format!("Not shown: {n} tcp ports not concluded (scan interrupted)"),
        (Lang::En, false, _) => {
            format!("Not shown: {n} tcp ports concluded by the interrupted run this one resumed")
        }
        (Lang::En, true, true) => format!(
            "Not shown: {n} tcp ports not concluded in this run (interrupted, or concluded by the run it resumed)"
        ),
        (Lang::Ja, true, false) => format!("非表示: 未確定のtcpポート {n} 個(スキャン中断)"),
        (Lang::Ja, false, _) => format!("非表示: 再開元の中断したスキャンで確定したtcpポート {n} 個"),
        (Lang::Ja, true, true) => format!(
            "非表示: この実行で未確定のtcpポート {n} 個(中断、または再開元のスキャンで確定済み)"
        ),
    }
}

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
}

#[derive(Serialize)]
struct StatsRecord {
    #[serde(rename = "type")]
    kind: &'static str,
    hosts: usize,
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
    host: Ipv4Addr,
    findings: &'a [HostFinding],
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
    let hosts = hosts(result);
    let total: usize = hosts.iter().map(|h| h.rows.len()).sum();
    let chunks = total.div_ceil(JSON_CHUNK_ROWS).max(1);
    let workers = JSON_WORKERS.min(chunks);
    std::thread::scope(|scope| -> io::Result<()> {
        let queues: Vec<_> = (0..workers)
            .map(|first| {
                let (tx, rx) = crossbeam_channel::bounded::<io::Result<Vec<u8>>>(2);
                let hosts = &hosts;
                scope.spawn(move || {
                    for chunk in (first..chunks).step_by(workers) {
                        let rows =
                            chunk * JSON_CHUNK_ROWS..((chunk + 1) * JSON_CHUNK_ROWS).min(total);
                        let records = jsonl_rows(hosts, rows, total, result, services, lang);
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

/// Rows per chunk of JSON records (about 800 KB of text).
const JSON_CHUNK_ROWS: usize = 8192;
/// Threads serializing JSON records (the text report takes the main one).
const JSON_WORKERS: usize = 2;

/// The JSON lines of the port records of `rows` (positions among all
/// hosts' rows, `total` of them), with each host's record after its last
/// row.
fn jsonl_rows(
    hosts: &[HostRows<'_>],
    rows: std::ops::Range<usize>,
    total: usize,
    result: &ScanResult,
    services: &Services,
    lang: Lang,
) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(rows.len() * 128);
    // Every host has a row per port: the chunk's hosts are found by
    // division, not by walking all hosts (a /8 has 16 million).
    let per_host = hosts.first().map_or(0, |h| h.rows.len());
    let span = match per_host {
        0 => 0..hosts.len(),
        n => (rows.start / n).min(hosts.len())..rows.end.div_ceil(n).min(hosts.len()),
    };
    for (h, host) in hosts[span.clone()].iter().enumerate() {
        debug_assert_eq!(host.rows.len(), per_host);
        let first = (span.start + h) * per_host;
        let own = first..first + per_host;
        let (from, to) = (own.start.max(rows.start), own.end.min(rows.end));
        if from < to {
            let addr = host.host.to_string();
            for (port, findings) in &host.rows[from - own.start..to - own.start] {
                for (t, f) in result.techniques.iter().zip(findings.iter()) {
                    let Some(f) = f else { continue };
                    let is_open = f.state == PortState::Open;
                    let rec = PortRecord {
                        host: &addr,
                        port: *port,
                        proto: "tcp",
                        scan: &t.name,
                        state: f.state.as_str(),
                        reason: f.reason.as_str(),
                        ttl: f.ttl,
                        service: services.name(*port),
                        class: is_open.then(|| crate::model::ports::port_class(*port).name()),
                        note: is_open.then(|| portnotes::note_text(*port, lang)).flatten(),
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
            let findings = host.findings(result, lang);
            let rec = HostRecord {
                kind: "host",
                host: host.host,
                findings: &findings,
            };
            serde_json::to_writer(&mut buf, &rec)?;
            buf.push(b'\n');
        }
    }
    Ok(buf)
}

fn rate(result: &ScanResult) -> f64 {
    let secs = result.stats.elapsed.as_secs_f64();
    if secs > 0.0 {
        result.stats.tracker.sent as f64 / secs
    } else {
        0.0
    }
}

/// The closing line.
pub fn summary(result: &ScanResult) -> String {
    let s = &result.stats;
    let names: Vec<&str> = result.techniques.iter().map(|t| t.name.as_str()).collect();
    let mut tail = String::new();
    if result.interrupted {
        let concluded = result.findings.iter().filter(|f| f.is_some()).count();
        tail.push_str(&format!(
            "; interrupted: {concluded} of {} probes concluded",
            result.findings.len() as u64 - s.skipped
        ));
    }
    if s.skipped > 0 {
        tail.push_str(&format!("; resumed: {} probes concluded before", s.skipped));
    }
    if s.tracker.revised > 0 {
        tail.push_str(&format!(
            "; {} late replies revised a no-response",
            s.tracker.revised
        ));
    }
    format!(
        "flagscan {}: {} host(s) x {} port(s) x {} ({}): {} probes sent ({} retransmissions), \
         {} replies, {} invalid packets dropped, {:.2} s, {:.0} probes/s{tail}",
        if result.interrupted {
            "interrupted"
        } else {
            "done"
        },
        result.space.hosts.len(),
        result.space.ports.len(),
        names.len(),
        names.join(","),
        s.tracker.sent,
        s.tracker.retransmissions,
        s.tracker.replies,
        s.invalid,
        s.elapsed.as_secs_f64(),
        rate(result)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scan::ScanStats;
    use crate::engine::tracker::ProbeSpace;
    use crate::model::technique::{builtin_by_name, Reason};
    use crate::route::RoutePlan;

    /// Three hosts of 6,000 ports: 18,000 rows, so chunks of
    /// `JSON_CHUNK_ROWS` end inside hosts and the workers take turns. Then
    /// 20,000 hosts of one port: many hosts per chunk.
    #[test]
    fn json_chunks_come_out_in_order_with_each_host_record_after_its_ports() {
        json_order(3, 6000);
        json_order(20_000, 1);
    }

    fn json_order(host_count: u32, port_count: u16) {
        let hosts: Vec<Ipv4Addr> = (0..host_count)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
            .collect();
        let ports: Vec<u16> = (1..=port_count).collect();
        let n = hosts.len() * ports.len();
        assert!(n > 2 * JSON_CHUNK_ROWS);
        let findings = (0..n)
            .map(|i| {
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
            })
            .collect();
        let result = ScanResult {
            space: ProbeSpace::new(hosts.clone(), ports.clone(), 1),
            techniques: vec![builtin_by_name("syn").unwrap()],
            findings,
            stats: ScanStats::default(),
            route: RoutePlan {
                sources: vec![],
                interfaces: vec![],
                capture_ifindex: 0,
                kernel: vec![],
            },
            seed: 1,
            interrupted: false,
            decided: vec![],
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
    }
}
