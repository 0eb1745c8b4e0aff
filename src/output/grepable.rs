//! nmap's grepable output (`-oG`): one `Status` and one `Ports` line per
//! host up, the ports as `port/state/protocol//service///`, and the most
//! common state of more than 25 ports left out as `Ignored State`, as
//! nmap does. Like the XML, one technique per file.

use std::io::Write;

use crate::model::result::ScanResult;
use crate::model::services::Services;
use crate::model::technique::PortState;
use crate::output::xml::{may_be_open, shown, RunInfo};
use crate::output::{hosts_iter, hosts_line_in};

/// Writes technique `t`'s grepable file.
pub fn write_grepable(
    out: &mut dyn Write,
    result: &ScanResult,
    services: &Services,
    run: &RunInfo,
    t: usize,
) -> anyhow::Result<()> {
    let (part, t) = result.part_of(t);
    let result: &ScanResult = &part;
    let version = env!("CARGO_PKG_VERSION");
    let protocol = result.techniques[t].protocol;
    let proto = protocol.as_str();
    writeln!(
        out,
        "# flagscan {version} scan initiated {} as: {}",
        crate::sys::clock::ctime(crate::sys::clock::epoch(run.start)),
        run.args
    )?;
    for host in hosts_iter(result).filter(|h| shown(h, t, run.open_only)) {
        let name = result.name_of(host.host).unwrap_or("");
        writeln!(out, "Host: {} ({name})\tStatus: Up", host.host)?;
        // -sn: the status line alone, as nmap's.
        if host.rows.is_empty() {
            continue;
        }
        let rows: Vec<(u16, PortState, bool)> = host
            .rows
            .iter()
            .filter_map(|(port, f)| Some((*port, f.get(t).copied().flatten()?.state)))
            .map(|(port, s)| (port, s, host.is_limited(port, t)))
            .collect();
        // Unconfirmed rows are never folded, as in the XML.
        let mut counts: Vec<(PortState, usize)> = Vec::new();
        for (_, s, _) in rows.iter().filter(|r| !r.2) {
            match counts.iter_mut().find(|(x, _)| x == s) {
                Some((_, n)) => *n += 1,
                None => counts.push((*s, 1)),
            }
        }
        // Every folded state is left out, and named only when it is the
        // only one, as nmap's grepable output does.
        let folded: Vec<(PortState, usize)> = counts
            .iter()
            .copied()
            .filter(|&(s, n)| {
                s != PortState::Open && (n > 25 || (run.open_only && !may_be_open(s)))
            })
            .collect();
        let shown: Vec<String> = rows
            .iter()
            .filter(|(_, s, limited)| *limited || !folded.iter().any(|(f, _)| f == s))
            .map(|(port, s, _)| {
                format!(
                    "{port}/{}/{proto}//{}///",
                    s.as_str(),
                    services.name_in(protocol, *port).unwrap_or("")
                )
            })
            .collect();
        write!(
            out,
            "Host: {} ({name})\tPorts: {}",
            host.host,
            shown.join(", ")
        )?;
        if let [(state, n)] = folded.as_slice() {
            write!(out, "\tIgnored State: {} ({n})", state.as_str())?;
        }
        writeln!(out)?;
    }
    let finished = run.start + result.stats.elapsed;
    writeln!(
        out,
        "# flagscan done at {} -- {}",
        crate::sys::clock::ctime(crate::sys::clock::epoch(finished)),
        hosts_line_in(result, "seconds")
    )?;
    Ok(())
}
