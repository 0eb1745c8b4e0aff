//! Whether a target is up, and why: host discovery's answer per address.

use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::model::hosts::PerHost;

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

/// Every target's status, compactly: runs of a common status (every host
/// assumed up with `-Pn`; found down, or never asked, with discovery) and
/// the hosts that differ from their run (those that answered), so a /8
/// costs what its answers cost, not 16 million statuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStatuses {
    common: PerHost<HostStatus>,
    own: FxHashMap<usize, HostStatus>,
}

impl HostStatuses {
    /// `n` hosts of one status.
    pub fn all(status: HostStatus, n: usize) -> HostStatuses {
        HostStatuses::from_runs(PerHost::filled(status, n))
    }

    pub fn from_runs(common: PerHost<HostStatus>) -> HostStatuses {
        HostStatuses {
            common,
            own: FxHashMap::default(),
        }
    }

    /// Host `i`'s status differs from its run's.
    pub fn set(&mut self, i: usize, status: HostStatus) {
        match *self.common.get(i) == status {
            true => self.own.remove(&i),
            false => self.own.insert(i, status),
        };
    }

    pub fn len(&self) -> usize {
        self.common.len()
    }

    pub fn is_empty(&self) -> bool {
        self.common.is_empty()
    }

    /// Host `i`'s status; a host past the end (a result put together
    /// without statuses) is taken as up.
    pub fn get(&self, i: usize) -> HostStatus {
        match self.own.get(&i) {
            Some(s) => *s,
            None if i < self.len() => *self.common.get(i),
            None => HostStatus::ASSUMED_UP,
        }
    }

    /// How many hosts `pred` holds for, without visiting every host.
    pub fn count(&self, pred: impl Fn(&HostStatus) -> bool) -> usize {
        let by_runs: usize = self
            .common
            .runs()
            .filter(|(_, s)| pred(s))
            .map(|(r, _)| r.len())
            .sum();
        self.own.iter().fold(by_runs, |n, (&i, s)| {
            n + usize::from(pred(s)) - usize::from(pred(self.common.get(i)))
        })
    }
}

#[cfg(test)]
mod statuses_tests {
    use super::*;

    #[test]
    fn statuses_are_runs_and_exceptions_and_count_without_a_walk() {
        let down = HostStatus::down(Reason::NoResponse);
        let mut common = PerHost::new();
        common.push_n(down, 1 << 24);
        common.push_n(HostStatus::NOT_ASKED, 10);
        let mut s = HostStatuses::from_runs(common);
        let up = HostStatus::up(HostReason::EchoReply, None, Some(63));
        s.set(5, up);
        s.set(7, up);
        s.set(7, down);
        s.set((1 << 24) + 1, up);
        assert_eq!(s.get(5), up);
        assert_eq!(s.get(7), down);
        assert_eq!(s.get(1 << 24), HostStatus::NOT_ASKED);
        assert_eq!(s.count(|h| h.up), 11);
        assert_eq!(s.count(|h| h.up && h.reason != HostReason::NotAsked), 2);
    }
}
