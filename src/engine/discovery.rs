//! Host discovery: which targets are up, before their ports are probed.
//!
//! As nmap does as root: ARP on the local link (an answer means up, none
//! after the last try means down); beyond it, an ICMP echo request, a TCP
//! SYN to 443, a TCP ACK to 80 and an ICMP timestamp request, any answer
//! from the target meaning up, and an ICMP unreachable from a router
//! meaning down. The scanner's own addresses are up without asking.
//!
//! [`Discovery`] is the pure part (what to send when, what an answer
//! means), driven by a virtual clock in its tests; [`run`] drives it with
//! the sockets of [`crate::io::ping`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::engine::cookie::{
    probe_numbers, quoted_fits, tcp_reply_fits, ScanKeys, TcpEcho, TRY_SLOTS,
};
use crate::engine::timing::{RttEstimator, SharedRate, TimingParams};
use crate::io::ping::{Heard, PingSockets};
use crate::model::host::{HostReason, HostStatus, HostStatuses};
use crate::model::hosts::{HostIndex, Hosts, PerHost};
use crate::model::probe::Time;
use crate::model::tap::Taps;
use crate::model::technique::{builtin_by_name, ProbeShape, Reason};
use crate::wire::icmp::{self, PingReply, Query};
use crate::wire::{arp, ndp};
use crate::wire::{parse_ip, v4, v6, Body, Packet, Parsed, ProbeFields, ProbeTemplate};

/// One discovery probe beyond the local link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    Echo,
    Timestamp,
    /// A TCP SYN to this port (`-PS`).
    Syn(u16),
    /// A TCP ACK to this port (`-PA`).
    Ack(u16),
}

/// What discovery sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingPlan {
    /// Ask ARP for targets on the local link (`-PR`; nmap's default as root).
    pub arp: bool,
    /// Probes for targets beyond the local link (and on it, without ARP).
    pub ip: Vec<Ping>,
}

impl Default for PingPlan {
    /// nmap's default as root: `-PR`, then `-PE -PS443 -PA80 -PP`.
    fn default() -> PingPlan {
        PingPlan {
            arp: true,
            ip: vec![Ping::Echo, Ping::Syn(443), Ping::Ack(80), Ping::Timestamp],
        }
    }
}

/// How a target is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// One of our own addresses: up without a probe.
    Local,
    /// On the link of the interface with this index: ARP for an IPv4
    /// target, a neighbour solicitation for an IPv6 one.
    Link { ifindex: u32 },
    /// The IP probes of the plan.
    Ip,
}

/// The probes of one try to one host, for the loop to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingOrder {
    pub host: usize,
    pub attempt: u8,
    pub via: Via,
}

/// What a validated answer says about its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Up {
        reason: HostReason,
        ttl: Option<u8>,
    },
    /// An ICMP unreachable from a router on the way.
    Down(Reason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Probing { attempt: u8, sent: Time },
    Retry { attempt: u8 },
    Done(HostStatus),
}

/// No discovery timeout is shorter than this: nmap's floor. A host that
/// answers later than its timeout is still taken as up until discovery
/// ends; one answering after that is missed, so the floor is not the
/// port scan's 10 ms.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// How long answers to IP probes are awaited after the last host asked
/// by IP was concluded down.
pub const IP_LISTEN: Duration = Duration::from_millis(500);
/// A host found down because nothing answered: most of a sparse
/// subnet's, held by [`Discovery`] without an entry each.
const SILENT: HostStatus = HostStatus {
    up: false,
    reason: HostReason::Reply(Reason::NoResponse),
    latency: None,
    ttl: None,
    mac: None,
};

/// One of our own addresses.
const LOCAL: HostStatus = HostStatus {
    up: true,
    reason: HostReason::LocalhostResponse,
    latency: None,
    ttl: None,
    mac: None,
};

/// Hosts whose tries are outstanding at once.
const MAX_HOSTS_IN_FLIGHT: usize = 4096;

pub struct Discovery {
    via: PerHost<Via>,
    /// Hosts from `next` on that are not here are waiting; hosts before
    /// it that are not here were found down on silence: a /8's empty
    /// addresses take no entry.
    state: FxHashMap<usize, State>,
    next: usize,
    retries: VecDeque<usize>,
    deadlines: BinaryHeap<Reverse<(Time, usize, u8)>>,
    in_flight: usize,
    done: usize,
    /// Round trips of ARP on the link and of IP probes, apart: a LAN's
    /// answers must not shorten a distant host's timeout.
    rtt_arp: RttEstimator,
    rtt_ip: RttEstimator,
    params: TimingParams,
    /// An ICMP unreachable from someone else than the target, per host:
    /// the reason it is down if nothing else answers by its last try.
    unreachable: FxHashMap<usize, Reason>,
    /// When the latest host asked by ARP, and by IP, was concluded down:
    /// answers that come later still show it up for a while
    /// ([`Discovery::listen_until`]).
    last_down_arp: Option<Time>,
    last_down_ip: Option<Time>,
    /// Tries per host: IP probes, then ARP (which is cheap and whose
    /// first request may meet a busy neighbour).
    ip_tries: u8,
    arp_tries: u8,
    /// Hosts concluded (or revised) since [`Discovery::take_news`].
    news: Vec<usize>,
}

impl Discovery {
    pub fn new(via: PerHost<Via>, params: TimingParams) -> Discovery {
        let ip_tries = 1 + params.max_retries.max(1);
        let mut d = Discovery {
            state: FxHashMap::default(),
            via,
            next: 0,
            retries: VecDeque::new(),
            deadlines: BinaryHeap::new(),
            in_flight: 0,
            done: 0,
            rtt_arp: RttEstimator::default(),
            rtt_ip: RttEstimator::default(),
            params,
            unreachable: FxHashMap::default(),
            last_down_arp: None,
            last_down_ip: None,
            ip_tries,
            arp_tries: ip_tries.max(3),
            news: Vec::new(),
        };
        // Our own addresses are up without a probe, and need no entry:
        // the scan does not hold their probes (a /8 of them is possible).
        d.done = d
            .via
            .runs()
            .filter(|(_, v)| **v == Via::Local)
            .map(|(hosts, _)| hosts.len())
            .sum();
        d
    }

    /// What a host without an entry is: up if it is one of ours, else down
    /// on silence once asked, else waiting.
    fn state(&self, host: usize) -> State {
        match self.state.get(&host) {
            Some(s) => *s,
            None => self.implied(host),
        }
    }

    fn implied(&self, host: usize) -> State {
        match self.via(host) {
            Via::Local => State::Done(LOCAL),
            _ if host < self.next => State::Done(SILENT),
            _ => State::Waiting,
        }
    }

    fn set_state(&mut self, host: usize, state: State) {
        match state == self.implied(host) {
            true => self.state.remove(&host),
            false => self.state.insert(host, state),
        };
    }

    fn via(&self, host: usize) -> Via {
        *self.via.get(host)
    }

    fn conclude(&mut self, host: usize, status: HostStatus) {
        if !matches!(self.state(host), State::Done(_)) {
            self.done += 1;
        }
        self.unreachable.remove(&host);
        self.set_state(host, State::Done(status));
        self.news.push(host);
    }

    /// The MAC address a host's ARP reply came from, for its record.
    pub fn set_mac(&mut self, host: usize, mac: [u8; 6]) {
        if let State::Done(mut status) = self.state(host) {
            status.mac = Some(mac);
            self.set_state(host, State::Done(status));
        }
    }

    /// The hosts concluded, or revised by a late answer, since the last
    /// call, with their status: what the port scan beside it waits for.
    pub fn take_news(&mut self) -> Vec<(usize, HostStatus)> {
        let news = std::mem::take(&mut self.news);
        news.into_iter()
            .filter_map(|h| match self.state(h) {
                State::Done(status) => Some((h, status)),
                _ => None,
            })
            .collect()
    }

    pub fn is_done(&self) -> bool {
        self.done == self.via.len()
    }

    fn rtt(&self, host: usize) -> &RttEstimator {
        match self.via(host) {
            Via::Link { .. } => &self.rtt_arp,
            _ => &self.rtt_ip,
        }
    }

    fn timeout(&self, host: usize) -> Duration {
        self.rtt(host).rto(&self.params).max(MIN_TIMEOUT)
    }

    /// Until when answers are awaited once every host is concluded: a
    /// timeout after the latest host asked by ARP was concluded down, and
    /// at least [`IP_LISTEN`] after the latest asked by IP (a distant host
    /// among near ones answers after the near ones' timeouts).
    pub fn listen_until(&self) -> Option<Time> {
        let arp = self
            .last_down_arp
            .map(|t| t + self.rtt_arp.rto(&self.params).max(MIN_TIMEOUT));
        let ip = self
            .last_down_ip
            .map(|t| t + self.rtt_ip.rto(&self.params).max(IP_LISTEN));
        arp.max(ip)
    }

    /// The next host's next try, if one may go at `now`.
    pub fn poll_send(&mut self, now: Time) -> Option<PingOrder> {
        self.expire(now);
        if self.in_flight >= MAX_HOSTS_IN_FLIGHT {
            return None;
        }
        let (host, attempt) = loop {
            if let Some(h) = self.retries.pop_front() {
                if let State::Retry { attempt } = self.state(h) {
                    break (h, attempt);
                }
                continue;
            }
            if self.next < self.via.len() {
                let h = self.next;
                let waiting = self.state(h) == State::Waiting;
                self.next += 1;
                if waiting {
                    break (h, 0);
                }
                continue;
            }
            return None;
        };
        self.set_state(host, State::Probing { attempt, sent: now });
        self.in_flight += 1;
        self.deadlines
            .push(Reverse((now + self.timeout(host), host, attempt)));
        Some(PingOrder {
            host,
            attempt,
            via: self.via(host),
        })
    }

    fn tries(&self, host: usize) -> u8 {
        match self.via(host) {
            Via::Link { .. } => self.arp_tries,
            _ => self.ip_tries,
        }
    }

    /// Concludes hosts whose last try timed out; queues the others' next try.
    pub fn expire(&mut self, now: Time) {
        while let Some(&Reverse((at, host, attempt))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.state(host)
                != (State::Probing {
                    attempt,
                    sent: self.sent_of(host),
                })
            {
                continue;
            }
            self.in_flight -= 1;
            if attempt + 1 < self.tries(host) {
                self.set_state(
                    host,
                    State::Retry {
                        attempt: attempt + 1,
                    },
                );
                self.retries.push_back(host);
            } else {
                let reason = self.unreachable.remove(&host).unwrap_or(Reason::NoResponse);
                self.conclude(host, HostStatus::down(reason));
                match self.via(host) {
                    Via::Link { .. } => self.last_down_arp = Some(now),
                    _ => self.last_down_ip = Some(now),
                }
            }
        }
    }

    fn sent_of(&self, host: usize) -> Time {
        match self.state(host) {
            State::Probing { sent, .. } => sent,
            _ => Time::ZERO,
        }
    }

    /// The latest try sent to `host`, if it is still being asked.
    fn latest_try(&self, host: usize) -> Option<u8> {
        match self.state(host) {
            State::Probing { attempt, .. } => Some(attempt),
            State::Retry { attempt } => Some(attempt - 1),
            _ => None,
        }
    }

    /// A validated answer to try `attempt` (`None`: the answer does not
    /// say which, as ARP's) of `host`, heard at `at`. Returns whether it
    /// decided the host: answers to tries not sent yet, and answers after
    /// the host was concluded, change nothing.
    pub fn on_answer(
        &mut self,
        host: usize,
        attempt: Option<u8>,
        answer: Answer,
        at: Time,
    ) -> bool {
        if let State::Done(status) = self.state(host) {
            // Concluded down on silence, yet an answer to one of its
            // tries came: it is up (a slow host, not an empty address).
            return match answer {
                Answer::Up { reason, ttl }
                    if !status.up && attempt.is_none_or(|a| a < self.tries(host)) =>
                {
                    self.set_state(host, State::Done(HostStatus::up(reason, None, ttl)));
                    self.news.push(host);
                    true
                }
                _ => false,
            };
        }
        let Some(latest) = self.latest_try(host) else {
            return false;
        };
        if attempt.is_some_and(|a| a > latest) {
            return false;
        }
        let (reason, ttl) = match answer {
            Answer::Up { reason, ttl } => (reason, ttl),
            // A router's word: the host is down unless one of the other
            // probes (or tries) gets an answer from it.
            Answer::Down(reason) => {
                self.unreachable.insert(host, reason);
                return false;
            }
        };
        let mut latency = None;
        if let State::Probing {
            attempt: sent_try,
            sent,
        } = self.state(host)
        {
            self.in_flight -= 1;
            // Karn's rule: only an answer known to be to the latest try is timed.
            if attempt.unwrap_or(sent_try) == sent_try
                && at >= sent
                && (attempt.is_some() || sent_try == 0)
            {
                latency = Some(at - sent);
                let arp = matches!(self.via(host), Via::Link { .. });
                let rtt = if arp {
                    &mut self.rtt_arp
                } else {
                    &mut self.rtt_ip
                };
                let first = rtt.srtt().is_none();
                rtt.sample(at - sent);
                if first {
                    self.retime();
                }
            }
        }
        self.conclude(host, HostStatus::up(reason, latency, ttl));
        true
    }

    /// The tries sent before the first round trip was measured wait for
    /// the initial guess (500 ms at -T4); once a host has answered, they
    /// wait for the measured timeout instead.
    fn retime(&mut self) {
        let entries: Vec<_> = self.deadlines.drain().collect();
        for Reverse((at, host, attempt)) in entries {
            let at = match self.state(host) {
                State::Probing { attempt: a, sent } if a == attempt => {
                    (sent + self.timeout(host)).min(at)
                }
                _ => at,
            };
            self.deadlines.push(Reverse((at, host, attempt)));
        }
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn has_unsent(&self) -> bool {
        !self.retries.is_empty() || self.next < self.via.len()
    }

    /// Every host's status; [`HostStatus::NOT_ASKED`] for hosts not
    /// concluded (an interrupted discovery).
    pub fn statuses(&self) -> HostStatuses {
        let mut common = PerHost::new();
        for (hosts, via) in self.via.runs() {
            if *via == Via::Local {
                common.push_n(LOCAL, hosts.len() as u64);
                continue;
            }
            let asked = hosts.start..hosts.end.min(self.next).max(hosts.start);
            common.push_n(SILENT, asked.len() as u64);
            common.push_n(HostStatus::NOT_ASKED, (hosts.end - asked.end) as u64);
        }
        let mut out = HostStatuses::from_runs(common);
        for (&h, st) in &self.state {
            match st {
                State::Done(st) => out.set(h, *st),
                _ => out.set(h, HostStatus::NOT_ASKED),
            }
        }
        out
    }
}

/// What [`run`] found: each target's status, and the MACs ARP taught us.
pub struct Found {
    /// `None`: not concluded, discovery was interrupted.
    pub statuses: HostStatuses,
    pub interrupted: bool,
    pub sent: u64,
    pub elapsed: Duration,
}

/// The source ports of the TCP pings: just below the scan's own range, one
/// per kind and try, so a reply names both.
fn ping_sport(keys: &ScanKeys, syn: bool, attempt: u8) -> u16 {
    let base = keys.ports.range().0 - 2 * TRY_SLOTS;
    base + if syn { 0 } else { TRY_SLOTS } + u16::from(attempt) % TRY_SLOTS
}

fn decode_sport(keys: &ScanKeys, port: u16) -> Option<(bool, u8)> {
    let base = keys.ports.range().0 - 2 * TRY_SLOTS;
    let off = port.checked_sub(base)?;
    (off < 2 * TRY_SLOTS).then_some((off < TRY_SLOTS, (off % TRY_SLOTS) as u8))
}

/// The ICMP identifier and data a query to `dst` from `src` carries.
fn icmp_cookie(keys: &ScanKeys, src: IpAddr, dst: IpAddr) -> (u16, [u8; icmp::ECHO_DATA]) {
    // Port 0 both ways: no TCP probe uses it, so this cookie is ICMP's own.
    let c = keys.key.cookie(src, dst, 0, 0);
    let mut data = [0; icmp::ECHO_DATA];
    data[..4].copy_from_slice(&c.seq.to_be_bytes());
    data[4..].copy_from_slice(&c.ack.to_be_bytes());
    ((c.ack >> 16) as u16, data)
}

/// Everything the loop needs to build and check probes.
struct Pinger<'a> {
    keys: &'a ScanKeys,
    targets: &'a Hosts,
    sources: &'a PerHost<IpAddr>,
    plan: &'a PingPlan,
    index: HostIndex,
    syn: ProbeShape,
    ack: ProbeShape,
    syn_template: ProbeTemplate,
    ack_template: ProbeTemplate,
}

impl Pinger<'_> {
    fn packets(&self, o: &PingOrder) -> Vec<Vec<u8>> {
        let (src, dst) = (*self.sources.get(o.host), self.targets.at(o.host));
        let (id, data) = icmp_cookie(self.keys, src, dst);
        let ip_id = id ^ u16::from(o.attempt);
        self.plan
            .ip
            .iter()
            // ICMPv6 has no timestamp request (RFC 4443).
            .filter(|p| !(dst.is_ipv6() && **p == Ping::Timestamp))
            .map(|p| match *p {
                Ping::Echo | Ping::Timestamp => Query {
                    kind: if *p == Ping::Echo {
                        icmp::ECHO_REQUEST
                    } else {
                        icmp::TIMESTAMP_REQUEST
                    },
                    id,
                    seq: u16::from(o.attempt),
                    data,
                }
                .packet(src, dst, ip_id),
                Ping::Syn(port) | Ping::Ack(port) => {
                    let syn = matches!(p, Ping::Syn(_));
                    let sport = ping_sport(self.keys, syn, o.attempt);
                    let shape = if syn { self.syn } else { self.ack };
                    let (seq, ack) =
                        probe_numbers(self.keys.key.cookie(src, dst, sport, port), shape);
                    let fields = ProbeFields {
                        src,
                        dst,
                        sport,
                        dport: port,
                        seq,
                        ack,
                    };
                    let mut buf = Vec::new();
                    let t = if syn {
                        &self.syn_template
                    } else {
                        &self.ack_template
                    };
                    t.write(&fields, ip_id, &mut buf);
                    buf
                }
            })
            .collect()
    }

    /// Which host an IP packet answers, which try, and what it says; `None`
    /// for anything that does not carry our cookie.
    fn check_ip(&self, bytes: &[u8]) -> Option<(usize, Option<u8>, Answer)> {
        if let Some(r) = icmp::parse_ping_reply(bytes) {
            return self.check_icmp(r);
        }
        let Parsed::Packet(Packet {
            src,
            dst,
            ttl,
            body,
        }) = parse_ip(bytes)
        else {
            return None;
        };
        match body {
            // Discovery sends no UDP.
            Body::Udp(_) => None,
            Body::Tcp(seg) => {
                let host = self.index.get(src)? as usize;
                let (syn, attempt) = decode_sport(self.keys, seg.dport)?;
                if dst != *self.sources.get(host) {
                    return None;
                }
                let shape = if syn { self.syn } else { self.ack };
                let cookie = self.keys.key.cookie(dst, src, seg.dport, seg.sport);
                let echo = TcpEcho {
                    flags: seg.flags,
                    seq: seg.seq,
                    ack: seg.ack,
                };
                if !tcp_reply_fits(cookie, shape, echo) {
                    return None;
                }
                let reason = if seg.flags & crate::wire::flag::RST != 0 {
                    Reason::Reset
                } else {
                    Reason::SynAck
                };
                Some((
                    host,
                    Some(attempt),
                    Answer::Up {
                        reason: HostReason::Reply(reason),
                        ttl: Some(ttl),
                    },
                ))
            }
            Body::Unreachable { code, quoted } => {
                let host = self.index.get(quoted.dst)? as usize;
                let (_, attempt) = decode_sport(self.keys, quoted.sport)?;
                if quoted.src != *self.sources.get(host) {
                    return None;
                }
                let cookie =
                    self.keys
                        .key
                        .cookie(quoted.src, quoted.dst, quoted.sport, quoted.dport);
                if !quoted_fits(cookie, quoted.seq) {
                    return None;
                }
                Some((host, Some(attempt), unreachable(src, quoted.dst, code, ttl)))
            }
        }
    }

    fn check_icmp(&self, r: PingReply) -> Option<(usize, Option<u8>, Answer)> {
        match r {
            PingReply::Answer {
                from,
                to,
                ttl,
                kind,
                id,
                seq,
                data,
            } => {
                let host = self.index.get(from)? as usize;
                let (want_id, want_data) = icmp_cookie(self.keys, *self.sources.get(host), from);
                let n = if kind == icmp::ECHO_REPLY {
                    icmp::ECHO_DATA
                } else {
                    4
                };
                if to != *self.sources.get(host) || id != want_id || data[..n] != want_data[..n] {
                    return None;
                }
                let attempt = u8::try_from(seq).ok()?;
                let reason = if kind == icmp::ECHO_REPLY {
                    HostReason::EchoReply
                } else {
                    HostReason::TimestampReply
                };
                Some((
                    host,
                    Some(attempt),
                    Answer::Up {
                        reason,
                        ttl: Some(ttl),
                    },
                ))
            }
            PingReply::Unreachable {
                from,
                ttl,
                code,
                source,
                target,
                kind,
                checksum,
                id,
                seq,
            } => {
                let host = self.index.get(target)? as usize;
                let (want_id, data) = icmp_cookie(self.keys, *self.sources.get(host), target);
                let attempt = u8::try_from(seq).ok()?;
                // The quoted checksum covers the secret data: with the
                // identifier, 32 bits a forger must guess.
                let sent = Query {
                    kind,
                    id: want_id,
                    seq,
                    data,
                };
                if source != *self.sources.get(host)
                    || id != want_id
                    || checksum != sent.checksum(source, target)
                {
                    return None;
                }
                Some((host, Some(attempt), unreachable(from, target, code, ttl)))
            }
        }
    }
}

/// An ICMP unreachable from the target itself shows it up (a REJECT rule
/// answered); from anyone else (a router, or our own stack when the
/// neighbour never answered), it says the target is not reachable.
fn unreachable(from: IpAddr, target: IpAddr, code: u8, ttl: u8) -> Answer {
    if from == target {
        Answer::Up {
            reason: HostReason::Reply(Reason::Unreachable(code)),
            ttl: Some(ttl),
        }
    } else {
        Answer::Down(Reason::Unreachable(code))
    }
}

/// A `--packet-trace` line for a valid answer.
fn trace_answer(taps: &Taps, at: Time, target: IpAddr, answer: Answer, decided: bool) {
    if taps.is_empty() {
        return;
    }
    let what = match (answer, decided) {
        (Answer::Up { reason, .. }, true) => format!("{target}: {} -> up", reason.as_str()),
        (Answer::Up { reason, .. }, false) => {
            format!("{target}: {} (already concluded)", reason.as_str())
        }
        (Answer::Down(reason), _) => format!(
            "{target}: {} from a router (down unless the host itself answers)",
            reason.as_str()
        ),
    };
    for tap in taps {
        tap.discovery(at, &what);
    }
}

/// How long the loop waits for packets at most between looks at the clock.
const POLL: Duration = Duration::from_millis(20);
/// Hosts asked per turn of the loop.
const SEND_BATCH: usize = 32;

/// What [`run`] asks, and with what it shares the scan beside it.
pub struct Job<'a> {
    pub keys: &'a ScanKeys,
    pub targets: &'a Hosts,
    /// Our address towards each target.
    pub sources: &'a PerHost<IpAddr>,
    pub via: PerHost<Via>,
    pub plan: &'a PingPlan,
    pub params: TimingParams,
    /// `--max-rate`, shared with the port scan running beside discovery.
    pub rate: Option<&'a SharedRate>,
    pub taps: &'a Taps,
    /// The scan's clock: discovery's times are the scan's.
    pub clock: Instant,
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

/// MACs that ARP and neighbour discovery taught us, as (interface,
/// address, MAC).
pub type Macs = [(u32, IpAddr, [u8; 6])];
/// Hosts concluded, with their status.
pub type News = [(usize, HostStatus)];

/// Runs discovery until every host is concluded or `job.stop` says so;
/// hands each conclusion (and the MACs learnt with it) to `news` as it
/// is drawn, so the port scan of a host found up starts at once.
pub fn run(
    sockets: &PingSockets,
    job: Job,
    news: &mut dyn FnMut(&Macs, &News),
) -> anyhow::Result<Found> {
    let Job {
        keys,
        targets,
        sources,
        via,
        plan,
        params,
        rate,
        taps,
        clock,
        stop,
    } = job;
    let shape = |name: &str| {
        builtin_by_name(name)
            .expect("syn and ack are built in")
            .shape()
    };
    let pinger = Pinger {
        keys,
        targets,
        sources,
        plan,
        index: HostIndex::new(targets),
        syn: shape("syn"),
        ack: shape("ack"),
        syn_template: ProbeTemplate::new(shape("syn").flags),
        ack_template: ProbeTemplate::new(shape("ack").flags),
    };
    let mut d = Discovery::new(via, params);
    let mut macs = Vec::new();
    let mut fresh = 0;
    let mut sent = 0u64;
    let started = clock.elapsed();
    let mut heard = Vec::new();
    while !stop() {
        news(&macs[fresh..], &d.take_news());
        fresh = macs.len();
        if d.is_done() && d.listen_until().is_none_or(|t| clock.elapsed() >= t) {
            break;
        }
        let now = clock.elapsed();
        // A batch at a time, so that answers are read (and timed) between
        // batches rather than after the whole sweep was sent.
        let mut asked = 0;
        while asked < SEND_BATCH {
            if rate.is_some_and(|r| r.available(now) == 0) {
                break;
            }
            let Some(o) = d.poll_send(now) else { break };
            asked += 1;
            for tap in taps {
                let how = match o.via {
                    Via::Local => "one of our addresses".to_string(),
                    Via::Link { .. } if targets.at(o.host).is_ipv6() => {
                        "neighbour solicitation".to_string()
                    }
                    Via::Link { .. } => "ARP request".to_string(),
                    Via::Ip => plan
                        .ip
                        .iter()
                        .map(|p| match p {
                            Ping::Echo => "ICMP echo".to_string(),
                            Ping::Timestamp => "ICMP timestamp".to_string(),
                            Ping::Syn(port) => format!("TCP SYN to {port}"),
                            Ping::Ack(port) => format!("TCP ACK to {port}"),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                tap.discovery(
                    now,
                    &format!("{} try {}: {how}", targets.at(o.host), o.attempt + 1),
                );
            }
            match o.via {
                Via::Local => {}
                Via::Link { ifindex } if targets.at(o.host).is_ipv6() => {
                    let (packet, mac) = ndp::solicitation(
                        sockets.ndp_mac(ifindex).unwrap_or_default(),
                        v6(*sources.get(o.host)),
                        v6(targets.at(o.host)),
                    );
                    sockets.send_ndp(ifindex, &packet, mac)?;
                    sent += 1;
                    if let Some(r) = rate {
                        r.take(1);
                    }
                }
                Via::Link { ifindex } => {
                    let req = arp::request(
                        sockets.arp_mac(ifindex).unwrap_or_default(),
                        v4(*sources.get(o.host)),
                        v4(targets.at(o.host)),
                    );
                    sockets.send_arp(ifindex, &req)?;
                    sent += 1;
                    if let Some(r) = rate {
                        r.take(1);
                    }
                }
                Via::Ip => {
                    for p in pinger.packets(&o) {
                        // A refused send (no route, a full buffer) is a
                        // probe that got no answer: the next try may go.
                        if sockets.send_ip(&p, targets.at(o.host)).is_ok() {
                            for tap in taps {
                                tap.ping_packet(true, &p);
                            }
                        }
                        sent += 1;
                    }
                    if let Some(r) = rate {
                        r.take(plan.ip.len());
                    }
                }
            }
        }
        // A full batch: more may go at once. Otherwise the next timeout
        // (or the rate cap's next token) is the next thing to happen.
        let next = d
            .next_deadline()
            .or(d.listen_until().filter(|_| d.is_done()));
        let mut wait = match next {
            _ if asked == SEND_BATCH => Duration::ZERO,
            Some(t) => t.saturating_sub(clock.elapsed()).min(POLL),
            None => POLL,
        };
        if d.has_unsent() {
            if let Some(r) = rate {
                wait = wait.min(r.wait());
            }
        }
        heard.clear();
        sockets.wait(wait, &mut heard)?;
        let at = clock.elapsed();
        for h in &heard {
            match h {
                Heard::Ip(bytes) | Heard::Ip6 { bytes, .. } => {
                    // Neighbour discovery answers what we asked on the link
                    // (as ARP, no cookie: only a neighbour sees the request,
                    // on the interface it was asked on).
                    if let Some(na) = ndp::parse_advert(bytes) {
                        let Some(host) =
                            pinger.index.get(IpAddr::V6(na.target)).map(|h| h as usize)
                        else {
                            continue;
                        };
                        let on = match h {
                            Heard::Ip6 { ifindex, .. } => Some(*ifindex),
                            _ => None,
                        };
                        if !matches!(d.via(host), Via::Link { ifindex } if Some(ifindex) == on)
                            || !na.solicited
                            || na.to != *sources.get(host)
                        {
                            continue;
                        }
                        let up = Answer::Up {
                            reason: HostReason::NdResponse,
                            ttl: None,
                        };
                        let decided = d.on_answer(host, None, up, at);
                        trace_answer(taps, at, targets.at(host), up, decided);
                        if let (true, Some(mac), Via::Link { ifindex }) =
                            (decided, na.mac, d.via(host))
                        {
                            macs.push((ifindex, targets.at(host), mac));
                            d.set_mac(host, mac);
                        }
                        continue;
                    }
                    if let Some((host, attempt, answer)) = pinger.check_ip(bytes) {
                        for tap in taps {
                            tap.ping_packet(false, bytes);
                        }
                        let decided = d.on_answer(host, attempt, answer, at);
                        trace_answer(taps, at, targets.at(host), answer, decided);
                    }
                }
                Heard::Arp { ifindex, bytes } => {
                    let Some(r) = arp::parse_reply(bytes) else {
                        continue;
                    };
                    let Some(host) = pinger.index.get(IpAddr::V4(r.ip)).map(|h| h as usize) else {
                        continue;
                    };
                    if d.via(host) != (Via::Link { ifindex: *ifindex })
                        || r.to != *sources.get(host)
                    {
                        continue;
                    }
                    let up = Answer::Up {
                        reason: HostReason::ArpResponse,
                        ttl: None,
                    };
                    let decided = d.on_answer(host, None, up, at);
                    trace_answer(taps, at, r.ip.into(), up, decided);
                    if decided {
                        macs.push((*ifindex, r.ip.into(), r.mac));
                        d.set_mac(host, r.mac);
                    }
                }
            }
        }
        d.expire(clock.elapsed());
    }
    news(&macs[fresh..], &d.take_news());
    Ok(Found {
        interrupted: !d.is_done(),
        statuses: d.statuses(),
        sent,
        elapsed: clock.elapsed() - started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    /// A network of `n` hosts, each with a behaviour, driven on a virtual
    /// clock until discovery is done. Returns the statuses and the orders.
    fn simulate(
        via: Vec<Via>,
        answer: impl Fn(&PingOrder) -> Vec<(Time, Option<u8>, Answer)>,
    ) -> (Vec<HostStatus>, Vec<(Time, PingOrder)>, Time) {
        let n = via.len();
        let mut d = Discovery::new(via.into(), TimingParams::default());
        let mut now = ms(0);
        let mut sent = Vec::new();
        // (when, host, try, answer), delivered in time order.
        let mut wire: Vec<(Time, usize, Option<u8>, Answer)> = Vec::new();
        let mut steps = 0;
        while !(d.is_done() && d.listen_until().is_none_or(|t| now >= t)) {
            steps += 1;
            assert!(steps < 100_000, "discovery never ends");
            while let Some(o) = d.poll_send(now) {
                for (delay, attempt, a) in answer(&o) {
                    wire.push((now + delay, o.host, attempt, a));
                }
                sent.push((now, o));
            }
            wire.sort_by_key(|w| w.0);
            let next_reply = wire.first().map(|w| w.0);
            let deadline = d
                .next_deadline()
                .or(d.listen_until().filter(|_| d.is_done()));
            let next = match (next_reply, deadline) {
                (Some(r), Some(t)) => r.min(t),
                (Some(r), None) => r,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            now = now.max(next);
            while wire.first().is_some_and(|w| w.0 <= now) {
                let (at, host, attempt, a) = wire.remove(0);
                d.on_answer(host, attempt, a, at);
            }
            d.expire(now);
        }
        let statuses = d.statuses();
        let st = (0..n)
            .map(|h| statuses.get(h))
            .inspect(|s| assert_ne!(*s, HostStatus::NOT_ASKED, "concluded"))
            .collect();
        (st, sent, now)
    }

    fn up(reason: HostReason) -> Answer {
        Answer::Up {
            reason,
            ttl: Some(64),
        }
    }

    #[test]
    fn live_hosts_are_up_and_silent_ones_down_after_their_last_try() {
        // Hosts 0 and 3 answer echo after 1 ms; the rest are empty addresses.
        let via = vec![Via::Ip; 6];
        let (st, sent, end) = simulate(via, |o| match o.host {
            0 | 3 => vec![(ms(1), Some(o.attempt), up(HostReason::EchoReply))],
            _ => vec![],
        });
        let up_hosts: Vec<usize> = (0..6).filter(|&h| st[h].up).collect();
        assert_eq!(up_hosts, vec![0, 3]);
        assert_eq!(st[0].reason, HostReason::EchoReply);
        assert_eq!(st[0].latency, Some(ms(1)));
        assert_eq!(st[1], HostStatus::down(Reason::NoResponse));
        // Each empty address got its two tries, the live ones one.
        for (h, status) in st.iter().enumerate() {
            let tries = sent.iter().filter(|(_, o)| o.host == h).count();
            assert_eq!(tries, if status.up { 1 } else { 2 }, "host {h}");
        }
        // Two timeouts at the floor, not the 500 ms initial guess twice
        // (the live hosts' answers measured the round trip first), then
        // the time late answers are awaited.
        assert!(end <= ms(250) + IP_LISTEN, "{end:?}");
    }

    #[test]
    fn a_routers_host_unreachable_is_why_a_silent_host_is_down_not_the_last_word() {
        // Host 0: a router answers every probe with host-unreachable.
        // Host 1: a router refuses the echo (admin-prohibited) before the
        // target's own RST to the TCP ping arrives.
        let (st, sent, _) = simulate(vec![Via::Ip; 2], |o| match o.host {
            0 => vec![(ms(2), Some(o.attempt), Answer::Down(Reason::Unreachable(1)))],
            _ => vec![
                (
                    ms(1),
                    Some(o.attempt),
                    Answer::Down(Reason::Unreachable(13)),
                ),
                (ms(3), Some(o.attempt), up(HostReason::Reply(Reason::Reset))),
            ],
        });
        assert_eq!(st[0], HostStatus::down(Reason::Unreachable(1)));
        assert_eq!(st[0].reason.as_str(), "host-unreach");
        assert_eq!(sent.iter().filter(|(_, o)| o.host == 0).count(), 2);
        assert!(st[1].up, "the target's own answer wins: {:?}", st[1]);
        assert_eq!(st[1].reason, HostReason::Reply(Reason::Reset));
    }

    #[test]
    fn an_answer_after_the_last_timeout_still_shows_the_host_up() {
        // 400 ms away, where the LAN's answers set a 100 ms timeout: both
        // tries time out before the first answer comes.
        let via = vec![Via::Link { ifindex: 2 }, Via::Ip, Via::Ip];
        let (st, _, _) = simulate(via, |o| match o.host {
            0 => vec![(ms(1), None, up(HostReason::ArpResponse))],
            1 => vec![(ms(1), Some(o.attempt), up(HostReason::EchoReply))],
            _ => vec![(ms(400), Some(o.attempt), up(HostReason::EchoReply))],
        });
        assert!(st.iter().all(|s| s.up), "{st:?}");
    }

    #[test]
    fn loss_duplicates_and_late_or_forged_answers() {
        // Host 0: its first try is lost, the second answered twice.
        // Host 1: answers the first try after 300 ms (after its timeout,
        // before the second try's). Host 2: silent, then a late
        // host-unreachable 3 s after each try, once it is concluded down.
        // Host 3: an answer naming try 5, which was never sent.
        let (st, sent, _) = simulate(vec![Via::Ip; 4], |o| match (o.host, o.attempt) {
            (0, 0) => vec![],
            (0, a) => vec![
                (ms(1), Some(a), up(HostReason::EchoReply)),
                (ms(2), Some(a), up(HostReason::EchoReply)),
            ],
            (1, 0) => vec![(ms(300), Some(0), up(HostReason::Reply(Reason::SynAck)))],
            (1, _) => vec![],
            (2, a) => vec![(ms(3000), Some(a), Answer::Down(Reason::Unreachable(1)))],
            (3, _) => vec![(ms(1), Some(5), up(HostReason::EchoReply))],
            _ => unreachable!(),
        });
        assert!(st[0].up);
        // Answered a retransmitted try: not timed against the first.
        assert!(st[1].up, "{:?}", st[1]);
        assert_eq!(st[2], HostStatus::down(Reason::NoResponse));
        assert_eq!(st[3], HostStatus::down(Reason::NoResponse));
        assert_eq!(sent.iter().filter(|(_, o)| o.host == 0).count(), 2);
    }

    #[test]
    fn own_addresses_are_up_without_a_probe_and_arp_gets_three_tries() {
        let via = vec![
            Via::Local,
            Via::Link { ifindex: 2 },
            Via::Link { ifindex: 2 },
        ];
        let (st, sent, _) = simulate(via, |o| match o.host {
            1 => vec![(ms(1), None, up(HostReason::ArpResponse))],
            _ => vec![],
        });
        assert_eq!(st[0].reason, HostReason::LocalhostResponse);
        assert!(st[0].up && st[1].up && !st[2].up);
        assert!(sent.iter().all(|(_, o)| o.host != 0));
        assert_eq!(sent.iter().filter(|(_, o)| o.host == 2).count(), 3);
    }

    #[test]
    fn tcp_ping_ports_are_their_own_and_decode() {
        let keys = ScanKeys::from_seed(7);
        let (lo, _) = keys.ports.range();
        for syn in [true, false] {
            for a in 0..3 {
                let p = ping_sport(&keys, syn, a);
                assert!(p < lo, "below the scan's range");
                assert_eq!(decode_sport(&keys, p), Some((syn, a)));
            }
        }
        assert_eq!(decode_sport(&keys, lo), None);
    }
}
