//! Whether a target is up, and why: host discovery's answer per address.

use std::time::Duration;

use crate::model::technique::Reason;

/// Why a host was found up or down, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostReason {
    /// `-Pn`: assumed up, not asked.
    UserSet,
    /// One of the scanner's own addresses.
    LocalhostResponse,
    ArpResponse,
    /// A neighbour advertisement answered our solicitation (IPv6).
    NdResponse,
    EchoReply,
    TimestampReply,
    /// A TCP ping's answer, or an ICMP error from the target itself, or
    /// silence after every try (down).
    Reply(Reason),
    /// Host discovery was interrupted before it asked this host: its
    /// ports stay unconcluded, for `--resume`.
    NotAsked,
}

impl HostReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HostReason::UserSet => "user-set",
            HostReason::LocalhostResponse => "localhost-response",
            HostReason::ArpResponse => "arp-response",
            HostReason::NdResponse => "nd-response",
            HostReason::EchoReply => "echo-reply",
            HostReason::TimestampReply => "timestamp-reply",
            HostReason::Reply(r) => r.as_str(),
            HostReason::NotAsked => "not-asked",
        }
    }
}

/// A target's status after host discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus {
    pub up: bool,
    pub reason: HostReason,
    /// Round trip of the answer that showed it up.
    pub latency: Option<Duration>,
    /// TTL of that answer (none for ARP).
    pub ttl: Option<u8>,
    /// The MAC address its ARP reply came from (hosts on the link).
    pub mac: Option<[u8; 6]>,
}

impl HostStatus {
    pub const ASSUMED_UP: HostStatus = HostStatus {
        up: true,
        reason: HostReason::UserSet,
        latency: None,
        ttl: None,
        mac: None,
    };

    /// Not asked (an interrupted discovery): kept, so that its probes
    /// stay unconcluded rather than excluded.
    pub const NOT_ASKED: HostStatus = HostStatus {
        up: true,
        reason: HostReason::NotAsked,
        latency: None,
        ttl: None,
        mac: None,
    };

    pub fn up(reason: HostReason, latency: Option<Duration>, ttl: Option<u8>) -> HostStatus {
        HostStatus {
            up: true,
            reason,
            latency,
            ttl,
            mac: None,
        }
    }

    pub fn down(reason: Reason) -> HostStatus {
        HostStatus {
            up: false,
            reason: HostReason::Reply(reason),
            latency: None,
            ttl: None,
            mac: None,
        }
    }

    pub fn status_word(&self) -> &'static str {
        match (self.up, self.reason) {
            (_, HostReason::NotAsked) => "unknown",
            (true, _) => "up",
            (false, _) => "down",
        }
    }
}
