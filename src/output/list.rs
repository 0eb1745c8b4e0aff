//! masscan's list format (`-oL`): a line per open port, between a header
//! and an end line, for the scripts that read masscan's output.
//!
//! ```text
//! #flagscan
//! open tcp 22 10.213.1.2 1764651600
//! open udp 53 10.213.1.2 1764651600
//! # end
//! ```
//!
//! A port open to several techniques of one protocol is listed once; the
//! time is the scan's end (flagscan keeps no time per port).

use std::io::Write;

use crate::model::result::ScanResult;
use crate::model::technique::PortState;
use crate::output::hosts_iter;
use crate::output::xml::RunInfo;

pub fn write_list(out: &mut dyn Write, result: &ScanResult, run: &RunInfo) -> anyhow::Result<()> {
    let at = crate::sys::clock::epoch(run.start + result.stats.elapsed);
    writeln!(out, "#flagscan")?;
    for part in result.by_protocol() {
        let proto = part.protocol().as_str();
        for host in hosts_iter(&part).filter(|h| h.status.up) {
            for (port, findings) in &host.rows {
                if findings
                    .iter()
                    .flatten()
                    .any(|f| f.state == PortState::Open)
                {
                    writeln!(out, "open {proto} {port} {} {at}", host.host)?;
                }
            }
        }
    }
    writeln!(out, "# end")?;
    Ok(())
}
