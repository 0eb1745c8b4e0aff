//! The text report, like nmap's: per host `PORT STATE SERVICE`, one column
//! per technique with a verdict when there are several, the host's
//! findings, and a closing line.

use std::io::{self, Write};

use rustc_hash::FxHashMap;

use crate::model::host::{HostReason, HostStatus};
use crate::model::result::{Finding, ScanResult};
use crate::model::services::Services;
use crate::model::technique::PortState;
use crate::output::{host_rows, hosts_line, reported, summary, Exporter, HostRows};
use crate::teach::findings::{self, PortRow};
use crate::teach::lang::Lang;
use crate::teach::portnotes;
use crate::teach::width::{pad, width};

/// Ports sharing one answer are folded into a "Not shown" line above this
/// many, as nmap does.
const FOLD_THRESHOLD: usize = 25;

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
    /// `--open`: only rows where some technique says open may be, and
    /// only hosts that have one.
    pub open_only: bool,
    pub lang: Lang,
}

pub fn write_text(
    w: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    opts: TextOptions,
) -> io::Result<()> {
    // A pass of TCP and UDP is reported as the two scans it stands for:
    // each host gets a table per protocol.
    let parts = result.by_protocol();
    let may_be_open = |f: &[Option<Finding>]| {
        f.iter()
            .flatten()
            .any(|c| crate::output::xml::may_be_open(c.state))
    };
    // Hosts an interrupted discovery never reached: one line for all of
    // them (a /8 would otherwise print 16 million reports of nothing).
    let not_asked = result.hosts.count(|h| h.reason == HostReason::NotAsked);
    for i in 0..result.space.hosts.len() {
        // Checked before a row is built: an interrupted /8 walks 16 million.
        if !reported(result, i) {
            continue;
        }
        // One host's rows at a time, per protocol part.
        let part_hosts: Vec<HostRows> = parts.iter().map(|p| host_rows(p, i)).collect();
        let Some(status) = part_hosts.first().map(|h| h.status) else {
            break;
        };
        // As nmap's: a host found down gets no report.
        if !status.up {
            continue;
        }
        if status.reason == HostReason::NotAsked {
            continue;
        }
        // -sn has no port to ask about: --open keeps every host up.
        let any_open = part_hosts
            .iter()
            .any(|h| h.rows.iter().any(|(_, f)| may_be_open(f)));
        if opts.open_only && !result.space.ports.is_empty() && !any_open {
            continue;
        }
        let addr = result.space.host_addr(i);
        match result.name_of(addr) {
            Some(name) => writeln!(w, "flagscan report for {name} ({addr})")?,
            None => writeln!(w, "flagscan report for {addr}")?,
        }
        writeln!(w, "{}", host_is_up(&status, opts.lang))?;
        if result.space.ports.is_empty() {
            // -sn: discovery only.
            writeln!(w)?;
            continue;
        }
        for (k, (part, host)) in parts.iter().zip(&part_hosts).enumerate() {
            if k > 0 {
                writeln!(w)?;
            }
            match part.space.is_sharded() {
                true => write_ports(w, part, &host.asked_only(part), services, opts)?,
                false => write_ports(w, part, host, services, opts)?,
            }
        }
        writeln!(w)?;
    }
    if not_asked > 0 {
        let line = match opts.lang {
            Lang::En => format!(
                "{not_asked} host{} not asked: host discovery was interrupted before \
                 reaching {}; --resume scans {}.",
                if not_asked == 1 { "" } else { "s" },
                if not_asked == 1 { "it" } else { "them" },
                if not_asked == 1 { "it" } else { "them" },
            ),
            Lang::Ja => format!(
                "未確認のホスト {not_asked} 台: ホスト発見が届く前に中断されました。--resume で続きをスキャンします。"
            ),
        };
        writeln!(w, "{line}")?;
        writeln!(w)?;
    }
    Ok(())
}

/// One host's table of one protocol's ports, its open ports' notes and
/// its findings.
fn write_ports(
    w: &mut dyn Write,
    result: &ScanResult,
    host: &HostRows,
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
    let protocol = result.protocol();
    let proto = protocol.as_str();
    let may_be_open = |f: &[Option<Finding>]| {
        f.iter()
            .flatten()
            .any(|c| crate::output::xml::may_be_open(c.state))
    };
    // Fold the most common answer when it covers many ports.
    let mut counts: FxHashMap<RowKey, usize> = FxHashMap::default();
    let mut key = RowKey::new();
    // Unconfirmed rows are never folded: their mark must show.
    for (_, f) in host.rows.iter().filter(|(p, _)| !host.is_limited_port(*p)) {
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
            writeln!(w, "Not shown: {n} {s} {proto} ports ({r})")?;
        } else {
            writeln!(
                w,
                "Not shown: {n} {proto} ports answering {}",
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
        .filter(|(p, f)| {
            host.is_limited_port(*p) || folded.as_ref().is_none_or(|(k, _)| !has_key(f, k))
        })
        .filter(|(_, f)| f.iter().any(|c| c.is_some()))
        .collect();
    let before = shown.len();
    let shown: Vec<_> = shown
        .into_iter()
        .filter(|(_, f)| !opts.open_only || may_be_open(f))
        .collect();
    if before > shown.len() {
        let n = before - shown.len();
        match opts.lang {
            Lang::En => writeln!(
                w,
                "Not shown: {n} more {proto} {} not open (--open)",
                if n == 1 {
                    "port that is"
                } else {
                    "ports that are"
                }
            )?,
            Lang::Ja => writeln!(w, "非表示: openでない{proto}ポート {n} 個(--open)")?,
        }
    }
    // Every port folded or left out: the lines above say so, and the
    // findings below still apply.
    if !shown.is_empty() {
        // An unconfirmed silence (a rate limiter's doing, maybe) is marked.
        let cells: Vec<Vec<String>> = shown
            .iter()
            .map(|(port, f)| {
                f.iter()
                    .enumerate()
                    .map(|(t, c)| {
                        let mut text = cell(c, reason);
                        if host.is_limited(*port, t) {
                            text.push('*');
                        }
                        text
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..names.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|c| width(&c[i]))
                    .chain([width(&names[i]), 5])
                    .max()
                    .unwrap_or(5)
            })
            .collect();
        if single && reason {
            // nmap's --reason: a REASON column after SERVICE.
            let rows: Vec<(String, String, &str, String)> = shown
                .iter()
                .map(|(port, f)| {
                    let (state, why) = match f.first().copied().flatten() {
                        Some(f) => (
                            f.state.to_string(),
                            match f.ttl {
                                Some(ttl) => format!("{} ttl {ttl}", f.reason),
                                None => f.reason.to_string(),
                            },
                        ),
                        None => ("unknown".to_string(), String::new()),
                    };
                    let mark = if host.is_limited(*port, 0) { "*" } else { "" };
                    let svc = services.name_in(protocol, *port).unwrap_or("unknown");
                    (
                        format!("{port}/{proto}"),
                        format!("{state}{mark}"),
                        svc,
                        why,
                    )
                })
                .collect();
            let states = rows
                .iter()
                .map(|r| width(&r.1))
                .chain([5])
                .max()
                .unwrap_or(5);
            let svcs = rows
                .iter()
                .map(|r| width(r.2))
                .chain([7])
                .max()
                .unwrap_or(7);
            writeln!(
                w,
                "{:<9} {} {} REASON",
                "PORT",
                pad("STATE", states),
                pad("SERVICE", svcs)
            )?;
            for (port, state, svc, why) in &rows {
                let line = format!("{port:<9} {} {} {why}", pad(state, states), pad(svc, svcs));
                writeln!(w, "{}", line.trim_end())?;
            }
        } else if single {
            let columns = widths[0].max(width("STATE"));
            writeln!(w, "{:<9} {} SERVICE", "PORT", pad("STATE", columns))?;
            for ((port, _), c) in shown.iter().zip(&cells) {
                let svc = services.name_in(protocol, *port).unwrap_or("unknown");
                writeln!(
                    w,
                    "{:<9} {} {svc}",
                    format!("{port}/{proto}"),
                    pad(&c[0], columns)
                )?;
            }
        } else {
            let mut line = format!("{:<9} {:<15}", "PORT", "SERVICE");
            for (n, wd) in names.iter().zip(&widths) {
                line.push(' ');
                line.push_str(&pad(n, *wd));
            }
            line.push_str(" VERDICT");
            writeln!(w, "{}", line.trim_end())?;
            for ((port, f), c) in shown.iter().zip(&cells) {
                let svc = services.name_in(protocol, *port).unwrap_or("unknown");
                let mut line = format!("{:<9} {svc:<15}", format!("{port}/{proto}"));
                for (v, wd) in c.iter().zip(&widths) {
                    line.push(' ');
                    line.push_str(&pad(v, *wd));
                }
                let row = PortRow {
                    port: *port,
                    findings: f,
                    limited: host.is_limited_port(*port),
                };
                line.push(' ');
                line.push_str(&findings::verdict(&row, &result.techniques, opts.lang));
                writeln!(w, "{}", line.trim_end())?;
            }
        }
        if !host.limited.is_empty() {
            writeln!(
                w,
                "{}",
                match opts.lang {
                    Lang::En => "* unconfirmed: the host rate-limits its answers (see its finding)",
                    Lang::Ja => "* 未確認: ホストが応答数を制限しています(所見を参照)",
                }
            )?;
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
            Some(note) => writeln!(w, "  {port}/{proto} ({class}): {note}")?,
            None => writeln!(w, "  {port}/{proto} ({class})")?,
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
    Ok(())
}

/// "Host is up, received arp-response (0.00021s latency).", as nmap
/// says it with --reason.
fn host_is_up(status: &HostStatus, lang: Lang) -> String {
    let latency = status
        .latency
        .map(|l| format!(" ({:.5}s latency)", l.as_secs_f64()))
        .unwrap_or_default();
    let reason = status.reason.as_str();
    match (lang, status.reason) {
        (Lang::En, HostReason::UserSet) => "Host is up (-Pn: not asked).".to_string(),
        (Lang::En, HostReason::NotAsked) => {
            "Host not asked: host discovery was interrupted.".to_string()
        }
        (Lang::Ja, HostReason::NotAsked) => {
            "未確認のホスト: ホスト発見が中断されました。".to_string()
        }
        (Lang::En, _) => format!("Host is up, received {reason}{latency}."),
        (Lang::Ja, HostReason::UserSet) => {
            "ホストは稼働中とみなします (-Pn: 確認なし)。".to_string()
        }
        (Lang::Ja, _) => format!("ホストは稼働中: {reason} を受信{latency}。"),
    }
}

fn unconcluded_line(result: &ScanResult, n: usize, lang: Lang) -> String {
    let (interrupted, resumed) = (result.interrupted, result.stats.skipped > 0);
    let tcp = result.protocol().as_str();
    match (lang, interrupted, resumed) {
        (Lang::En, true, false) => format!("Not shown: {n} {tcp} ports not concluded (scan interrupted)"),
        (Lang::En, false, _) => {
            format!("Not shown: {n} {tcp} ports concluded by the interrupted run this one resumed")
        }
        (Lang::En, true, true) => format!(
            "Not shown: {n} {tcp} ports not concluded in this run (interrupted, or concluded by the run it resumed)"
        ),
        (Lang::Ja, true, false) => format!("非表示: 未確定の{tcp}ポート {n} 個(スキャン中断)"),
        (Lang::Ja, false, _) => format!("非表示: 再開元の中断したスキャンで確定した{tcp}ポート {n} 個"),
        (Lang::Ja, true, true) => format!(
            "非表示: この実行で未確定の{tcp}ポート {n} 個(中断、または再開元のスキャンで確定済み)"
        ),
    }
}

/// The text report with its closing line.
pub struct TextReport(pub TextOptions);

impl Exporter for TextReport {
    fn write(
        &self,
        w: &mut dyn Write,
        result: &ScanResult,
        services: &Services,
    ) -> anyhow::Result<()> {
        write_text(w, result, services, self.0)?;
        writeln!(w, "{}", summary(result))?;
        writeln!(w, "{}", hosts_line(result))?;
        Ok(())
    }
}

/// `-oN`: the text report between nmap's comment lines, `# ... scan
/// initiated ... as: ...` and `# ... done at ...`.
pub fn write_normal(
    w: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    opts: TextOptions,
    run: &crate::output::xml::RunInfo,
) -> anyhow::Result<()> {
    use crate::sys::clock::epoch;
    let version = env!("CARGO_PKG_VERSION");
    writeln!(
        w,
        "# flagscan {version} scan initiated {} as: {}",
        crate::sys::clock::ctime(epoch(run.start)),
        run.args
    )?;
    write_text(w, result, services, opts)?;
    writeln!(w, "{}", summary(result))?;
    writeln!(
        w,
        "# flagscan done at {} -- {}",
        crate::sys::clock::ctime(epoch(run.start + result.stats.elapsed)),
        crate::output::hosts_line_in(result, "seconds")
    )?;
    Ok(())
}

/// Writes the report to stdout; `quiet` (JSON on stdout): only the closing
/// line, to stderr.
pub fn report(
    result: &ScanResult,
    services: &Services,
    opts: TextOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    if quiet {
        eprintln!("{}", summary(result));
        eprintln!("{}", hosts_line(result));
        return Ok(());
    }
    // Block-buffered: stdout is line-buffered, a system call per line, and
    // the report of a /16 sweep has 458,753 lines (1.3 s of writes).
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    TextReport(opts).write(&mut w, result, services)?;
    w.flush()?;
    Ok(())
}
