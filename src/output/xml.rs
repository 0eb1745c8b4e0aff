//! nmap's XML (`-oX`), as nmap.dtd describes it and as its readers (ndiff,
//! Zenmap, Metasploit's importer, python-libnmap) need it: one `host` per
//! address with `status` and `address addrtype`, `scaninfo` with
//! `numservices`, ports folded into `extraports` by nmap's own rule, and
//! a document that is closed whatever happened (`exit="error"` when the
//! scan was interrupted).
//!
//! One `port` holds one `state`, and nmap runs one TCP scan type at a
//! time: a document holds one technique. A pass of several techniques
//! writes one document per technique ([`sibling`]), each what nmap's own
//! run of that scan type would have written, so `ndiff` compares them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use quick_xml::events::{BytesDecl, BytesEnd, BytesPI, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::model::host::HostReason;
use crate::model::result::{Finding, ScanResult};
use crate::model::services::Services;
use crate::model::technique::{PortState, Protocol};
use crate::output::{hosts_iter, hosts_line_in, HostRows};

/// What a document says about the run besides its results.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The command line, as typed.
    pub args: String,
    pub start: SystemTime,
    /// `--open`: only ports that may be open are listed.
    pub open_only: bool,
    /// Where an interrupted scan's resume file is, for the closing note.
    pub resume_file: Option<PathBuf>,
}

/// More ports than this in one state are folded into `extraports`
/// (nmap's `max_per_state` at verbosity 0).
const MAX_PER_STATE: usize = 25;

/// The file of technique `t` (of `n`) for an output named `path`: the name
/// as given for the first, and `NAME-TECHNIQUE.EXT` beside it for others.
pub fn sibling(path: &Path, technique: &str, t: usize) -> PathBuf {
    if t == 0 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{technique}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{technique}"),
    };
    path.with_file_name(name)
}

/// Whether nmap's `--open` shows a port in this state: open is a
/// possibility.
pub fn may_be_open(state: PortState) -> bool {
    matches!(
        state,
        PortState::Open | PortState::OpenFiltered | PortState::Unfiltered
    )
}

/// Whether a host gets a record: it is up, and with `--open` one of
/// technique `t`'s ports may be open (nmap leaves the others out).
pub fn shown(host: &HostRows, t: usize, open_only: bool) -> bool {
    // Not asked (an interrupted discovery) is not up; -sn lists hosts.
    host.status.up
        && host.status.reason != HostReason::NotAsked
        && (!open_only
            || host.rows.is_empty()
            || host.rows.iter().any(|(_, f)| {
                f.get(t)
                    .copied()
                    .flatten()
                    .is_some_and(|f| may_be_open(f.state))
            }))
}

/// nmap's port ranges: `1-21,23,25-79`.
pub fn ranges(ports: &[u16]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ports.len() {
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1] == ports[j] + 1 {
            j += 1;
        }
        out.push(match i == j {
            true => ports[i].to_string(),
            false => format!("{}-{}", ports[i], ports[j]),
        });
        i = j + 1;
    }
    out.join(",")
}

type Xml<'w> = Writer<&'w mut dyn Write>;

fn empty(w: &mut Xml, name: &str, attrs: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut e = BytesStart::new(name);
    for a in attrs {
        e.push_attribute(*a);
    }
    w.write_event(Event::Empty(e))?;
    Ok(())
}

fn start(w: &mut Xml, name: &str, attrs: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut e = BytesStart::new(name);
    for a in attrs {
        e.push_attribute(*a);
    }
    w.write_event(Event::Start(e))?;
    Ok(())
}

fn end(w: &mut Xml, name: &str) -> anyhow::Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

fn nl(w: &mut Xml) -> anyhow::Result<()> {
    w.get_mut().write_all(b"\n")?;
    Ok(())
}

/// The document's start: declaration, doctype, stylesheet, the comment
/// nmap writes, and the open `nmaprun`.
fn open_document(w: &mut Xml, run: &RunInfo) -> anyhow::Result<()> {
    let started = crate::sys::clock::epoch(run.start);
    let startstr = crate::sys::clock::ctime(started);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    nl(w)?;
    w.write_event(Event::DocType(BytesText::from_escaped("nmaprun")))?;
    nl(w)?;
    w.write_event(Event::PI(BytesPI::new(
        "xml-stylesheet href=\"file:///usr/share/nmap/nmap.xsl\" type=\"text/xsl\"",
    )))?;
    nl(w)?;
    // A comment may not hold "--": nmap writes its second dash as an entity.
    let said = quick_xml::escape::escape(run.args.as_str()).replace("--", "-&#45;");
    w.write_event(Event::Comment(BytesText::from_escaped(format!(
        " flagscan scan initiated {startstr} as: {said} "
    ))))?;
    nl(w)?;
    start(
        w,
        "nmaprun",
        &[
            ("scanner", "flagscan"),
            ("args", &run.args),
            ("start", &started.to_string()),
            ("startstr", &startstr),
            ("version", env!("CARGO_PKG_VERSION")),
            ("xmloutputversion", "1.05"),
        ],
    )?;
    nl(w)
}

/// Writes technique `t`'s document.
pub fn write_xml(
    out: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    run: &RunInfo,
    t: usize,
) -> anyhow::Result<()> {
    // In a pass of TCP and UDP, a technique's document holds its
    // protocol's ports only, as nmap's own run of it would.
    let (part, t) = result.part_of(t);
    let result: &ScanResult = &part;
    let mut w: Xml = Writer::new(out);
    let technique = &result.techniques[t];
    open_document(&mut w, run)?;
    let ports = &result.space.ports;
    // -sn scans no port: nmap writes no scaninfo then.
    if !ports.is_empty() {
        // --scanflags: nmap names the scan by the type whose table reads
        // the answers, and the flags sent in an attribute of their own.
        let scanflags = technique
            .base
            .as_ref()
            .map(|_| crate::model::scanflags::nmap_string(technique.flags));
        let mut attrs = vec![("type", technique.base.as_deref().unwrap_or(&technique.name))];
        if let Some(flags) = &scanflags {
            attrs.push(("scanflags", flags));
        }
        let (numservices, services) = (ports.len().to_string(), ranges(ports));
        attrs.extend([
            ("protocol", technique.protocol.as_str()),
            ("numservices", &numservices),
            ("services", &services),
        ]);
        empty(&mut w, "scaninfo", &attrs)?;
        nl(&mut w)?;
    }
    empty(&mut w, "verbose", &[("level", "0")])?;
    nl(&mut w)?;
    empty(&mut w, "debugging", &[("level", "0")])?;
    nl(&mut w)?;
    for host in hosts_iter(result).filter(|h| shown(h, t, run.open_only)) {
        let name = result.name_of(host.host);
        write_host(&mut w, (&host, name), t, services, run, technique.protocol)?;
    }
    let up = result.hosts_up();
    let finished = run.start + result.stats.elapsed.max(Duration::ZERO);
    let finished_at = crate::sys::clock::epoch(finished);
    let finishedstr = crate::sys::clock::ctime(finished_at);
    let elapsed = format!("{:.2}", result.stats.elapsed.as_secs_f64());
    let summary = format!(
        "flagscan done at {finishedstr}; {}",
        hosts_line_in(result, "seconds")
    );
    let errormsg = match (&run.resume_file, result.interrupted) {
        (_, false) => None,
        // Stopped while confirming: every port has a state.
        (_, true) if result.complete => Some(
            "interrupted: every port has a state (any left unconfirmed are marked \
             rate_limited); nothing to resume"
                .to_string(),
        ),
        (Some(f), true) => Some(format!(
            "interrupted; finish with: flagscan --resume {}",
            f.display()
        )),
        (None, true) => Some("interrupted".to_string()),
    };
    start(&mut w, "runstats", &[])?;
    let finished_s = finished_at.to_string();
    let mut attrs: Vec<(&str, &str)> = vec![
        ("time", &finished_s),
        ("timestr", &finishedstr),
        ("summary", &summary),
        ("elapsed", &elapsed),
    ];
    match &errormsg {
        Some(msg) => {
            attrs.push(("exit", "error"));
            attrs.push(("errormsg", msg));
        }
        None => attrs.push(("exit", "success")),
    }
    empty(&mut w, "finished", &attrs)?;
    empty(
        &mut w,
        "hosts",
        &[
            ("up", &up.to_string()),
            ("down", &(result.space.hosts.len() - up).to_string()),
            ("total", &result.space.hosts.len().to_string()),
        ],
    )?;
    nl(&mut w)?;
    end(&mut w, "runstats")?;
    nl(&mut w)?;
    end(&mut w, "nmaprun")?;
    nl(&mut w)?;
    Ok(())
}

/// The document of a scan that failed before it had results: the run's
/// header and a `finished` with `exit="error"` and why.
pub fn write_failure(out: &mut dyn Write, run: &RunInfo, why: &str) -> anyhow::Result<()> {
    let mut w: Xml = Writer::new(out);
    open_document(&mut w, run)?;
    let now = crate::sys::clock::epoch(SystemTime::now());
    start(&mut w, "runstats", &[])?;
    empty(
        &mut w,
        "finished",
        &[
            ("time", &now.to_string()),
            ("timestr", &crate::sys::clock::ctime(now)),
            ("summary", why),
            ("elapsed", "0.00"),
            ("exit", "error"),
            ("errormsg", why),
        ],
    )?;
    empty(
        &mut w,
        "hosts",
        &[("up", "0"), ("down", "0"), ("total", "0")],
    )?;
    nl(&mut w)?;
    end(&mut w, "runstats")?;
    nl(&mut w)?;
    end(&mut w, "nmaprun")?;
    nl(&mut w)?;
    Ok(())
}

fn write_host(
    w: &mut Xml,
    (host, name): (&HostRows, Option<&str>),
    t: usize,
    services: &Services,
    run: &RunInfo,
    protocol: Protocol,
) -> anyhow::Result<()> {
    let proto = protocol.as_str();
    let ttl = host.status.ttl.unwrap_or(0).to_string();
    start(w, "host", &[])?;
    empty(
        w,
        "status",
        &[
            ("state", "up"),
            ("reason", host.status.reason.as_str()),
            ("reason_ttl", &ttl),
        ],
    )?;
    nl(w)?;
    empty(
        w,
        "address",
        &[
            ("addr", &host.host.to_string()),
            (
                "addrtype",
                if host.host.is_ipv6() { "ipv6" } else { "ipv4" },
            ),
        ],
    )?;
    nl(w)?;
    if let Some(mac) = host.status.mac {
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02X}")).collect();
        empty(
            w,
            "address",
            &[("addr", &mac.join(":")), ("addrtype", "mac")],
        )?;
        nl(w)?;
    }
    start(w, "hostnames", &[])?;
    nl(w)?;
    // nmap's type "user": the name as given on the command line.
    if let Some(name) = name {
        empty(w, "hostname", &[("name", name), ("type", "user")])?;
        nl(w)?;
    }
    end(w, "hostnames")?;
    nl(w)?;
    if host.rows.is_empty() {
        end(w, "host")?;
        nl(w)?;
        return Ok(());
    }
    // This technique's concluded ports; unconcluded ones (an interrupt)
    // are left out, as nmap leaves out what it did not scan.
    let rows: Vec<(u16, Finding, bool)> = host
        .rows
        .iter()
        .filter_map(|(port, f)| Some((*port, f.get(t).copied().flatten()?)))
        .map(|(port, f)| (port, f, host.is_limited(port, t)))
        .collect();
    // Unconfirmed rows are never folded: their mark must show.
    let mut counts: Vec<(PortState, usize)> = Vec::new();
    for (_, f, _) in rows.iter().filter(|r| !r.2) {
        match counts.iter_mut().find(|(s, _)| *s == f.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.state, 1)),
        }
    }
    // nmap's rule: open ports are always listed; another state with more
    // than 25 ports is folded; with --open, every state open is not a
    // possibility of is.
    let folded = |state: PortState, n: usize| {
        state != PortState::Open && (n > MAX_PER_STATE || (run.open_only && !may_be_open(state)))
    };
    start(w, "ports", &[])?;
    let mut extra: Vec<(PortState, usize)> = counts
        .iter()
        .copied()
        .filter(|&(s, n)| folded(s, n))
        .collect();
    // The largest first, as nmap orders them.
    // The largest first; on a tie, nmap's lower state number (closed,
    // filtered, unfiltered, open|filtered, closed|filtered: our order).
    extra.sort_by_key(|e| (std::cmp::Reverse(e.1), e.0));
    for (state, n) in &extra {
        start(
            w,
            "extraports",
            &[("state", state.as_str()), ("count", &n.to_string())],
        )?;
        nl(w)?;
        let mut reasons: Vec<(&str, Vec<u16>)> = Vec::new();
        for (port, f, _) in rows.iter().filter(|(_, f, l)| f.state == *state && !l) {
            let r = f.reason.as_str();
            match reasons.iter_mut().find(|(x, _)| *x == r) {
                Some((_, ports)) => ports.push(*port),
                None => reasons.push((r, vec![*port])),
            }
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1.len()));
        for (reason, ports) in reasons {
            empty(
                w,
                "extrareasons",
                &[
                    ("reason", reason),
                    ("count", &ports.len().to_string()),
                    ("proto", proto),
                    ("ports", &ranges(&ports)),
                ],
            )?;
            nl(w)?;
        }
        end(w, "extraports")?;
        nl(w)?;
    }
    for (port, f, limited) in &rows {
        let n = counts
            .iter()
            .find(|(s, _)| *s == f.state)
            .map_or(0, |c| c.1);
        if !limited && folded(f.state, n) {
            continue;
        }
        let portid = port.to_string();
        start(w, "port", &[("protocol", proto), ("portid", &portid)])?;
        let ttl = f.ttl.unwrap_or(0).to_string();
        empty(
            w,
            "state",
            &[
                ("state", f.state.as_str()),
                ("reason", f.reason.as_str()),
                ("reason_ttl", &ttl),
            ],
        )?;
        // nmap writes no service for a port its table does not name.
        if let Some(name) = services.name_in(protocol, *port) {
            empty(
                w,
                "service",
                &[("name", name), ("method", "table"), ("conf", "3")],
            )?;
        }
        if *limited {
            // nmap's schema has no word for it; readers keep scripts.
            empty(
                w,
                "script",
                &[
                    ("id", "flagscan-rate-limited"),
                    (
                        "output",
                        "unconfirmed: the host rate-limits its answers and this silence was \
                         not confirmed within the per-host budget",
                    ),
                ],
            )?;
        }
        end(w, "port")?;
        nl(w)?;
    }
    end(w, "ports")?;
    nl(w)?;
    end(w, "host")?;
    nl(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_written_as_nmap_writes_them() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[65535]), "65535");
    }

    #[test]
    fn the_first_technique_keeps_the_name_given() {
        let p = Path::new("/tmp/scan.xml");
        assert_eq!(sibling(p, "syn", 0), PathBuf::from("/tmp/scan.xml"));
        assert_eq!(sibling(p, "fin", 1), PathBuf::from("/tmp/scan-fin.xml"));
        assert_eq!(
            sibling(Path::new("out"), "null", 2),
            PathBuf::from("out-null")
        );
    }
}
