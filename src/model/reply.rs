//! What comes back: a validated reply, what validation says of a captured
//! packet, and what a reply did to the tracker.

use std::net::IpAddr;

use crate::model::probe::Time;
use crate::model::technique::{Outcome, ReplyKind};
use crate::wire::Packet;

/// A reply that passed validation, as the receiver hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub host: IpAddr,
    pub port: u16,
    pub technique: usize,
    /// The try slot from the source port the reply was sent to.
    pub attempt_slot: u8,
    pub kind: ReplyKind,
    pub ttl: u8,
    /// When it was captured.
    pub at: Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reply(Reply),
    /// Addressed to our probe ports but forged, stale or malformed.
    Invalid,
    /// Other traffic (including our own probes looping back on `lo`).
    NotOurs,
}

/// A captured packet as `--packet-trace` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    pub at: Time,
    /// Bytes captured.
    pub len: usize,
    /// `None` when the packet was malformed.
    pub packet: Option<Packet>,
    pub verdict: Verdict,
}

/// What a reply did to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEffect {
    /// Decided the port, by this row of the technique's table.
    Decided { rule: usize, outcome: Outcome },
    /// A reply to a probe concluded on silence: its try timed out, but the
    /// answer came before the scan ended. Silence is only the absence of
    /// evidence, so the reply decides (by this row), and timeouts grow.
    Revised { rule: usize, outcome: Outcome },
    /// The port was already decided by a reply (a duplicate, or an answer
    /// to an earlier try).
    Duplicate,
    /// No row of the technique's table covers this reply.
    Unmatched,
    /// Not a probe of this scan, or one not sent yet.
    Unexpected,
}
