//! The tracker: what was sent when, what came back, what each port is.
//!
//! Pure logic: it never touches a socket and takes the time as a parameter,
//! so tests drive it with a virtual clock and a simulated network. The scan
//! loop asks it what to send next ([`Tracker::poll_send`]), tells it about
//! replies ([`Tracker::on_reply`]) and sleeps until [`Tracker::next_deadline`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cookie::TRY_SLOTS;
use crate::permutation::Permutation;
use crate::technique::{Outcome, PortState, Reason, ReplyKind, Technique};
use crate::timing::{CongestionWindow, RttEstimator, TimingParams};

/// Time since the scan started.
pub type Time = Duration;

/// Hosts x ports x techniques, indexed without materialising the product.
#[derive(Debug, Clone)]
pub struct ProbeSpace {
    pub hosts: Vec<Ipv4Addr>,
    /// Sorted ascending (binary-searched when a reply comes in).
    pub ports: Vec<u16>,
    pub techniques: usize,
    host_index: HashMap<Ipv4Addr, u32>,
}

impl ProbeSpace {
    pub fn new(hosts: Vec<Ipv4Addr>, mut ports: Vec<u16>, techniques: usize) -> ProbeSpace {
        ports.sort_unstable();
        ports.dedup();
        let host_index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (*h, i as u32))
            .collect();
        ProbeSpace {
            hosts,
            ports,
            techniques,
            host_index,
        }
    }

    pub fn len(&self) -> u64 {
        self.hosts.len() as u64 * self.ports.len() as u64 * self.techniques as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Techniques vary fastest, so one port's techniques sit side by side.
    pub fn index(&self, host: Ipv4Addr, port: u16, technique: usize) -> Option<u64> {
        let h = *self.host_index.get(&host)? as u64;
        let p = self.ports.binary_search(&port).ok()? as u64;
        (technique < self.techniques)
            .then(|| (h * self.ports.len() as u64 + p) * self.techniques as u64 + technique as u64)
    }

    pub fn probe(&self, index: u64) -> (Ipv4Addr, u16, usize) {
        let t = (index % self.techniques as u64) as usize;
        let rest = index / self.techniques as u64;
        let p = (rest % self.ports.len() as u64) as usize;
        let h = (rest / self.ports.len() as u64) as usize;
        (self.hosts[h], self.ports[p], t)
    }
}

/// A probe the sender should put on the wire now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOrder {
    pub index: u64,
    pub host: Ipv4Addr,
    pub port: u16,
    pub technique: usize,
    /// 0 for the first try.
    pub attempt: u8,
}

/// A reply that passed validation, as the receiver hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub host: Ipv4Addr,
    pub port: u16,
    pub technique: usize,
    /// The try slot from the source port the reply was sent to.
    pub attempt_slot: u8,
    pub kind: ReplyKind,
    pub ttl: u8,
    /// When it was captured.
    pub at: Time,
}

/// A port's final answer for one technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub state: PortState,
    pub reason: Reason,
    /// TTL of the deciding reply; `None` for no-response.
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    InFlight {
        attempt: u8,
        sent: Time,
    },
    /// Timed out; waiting for window room to be sent again as `attempt`.
    Retry {
        attempt: u8,
    },
    Done(Finding),
}

/// What a reply did to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEffect {
    /// Decided the port, by this row of the technique's table.
    Decided { rule: usize, outcome: Outcome },
    /// The port was already decided (duplicate or late reply).
    Duplicate,
    /// No row of the technique's table covers this reply.
    Unmatched,
    /// Not a probe of this scan, or one not sent yet.
    Unexpected,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub sent: u64,
    pub retransmissions: u64,
    /// Replies that decided a port.
    pub replies: u64,
    pub duplicates: u64,
    pub unmatched: u64,
    pub unexpected: u64,
}

pub struct Tracker {
    space: ProbeSpace,
    techniques: Vec<Technique>,
    params: TimingParams,
    order: Permutation,
    next_new: u64,
    slots: Vec<Slot>,
    deadlines: BinaryHeap<Reverse<(Time, u64, u8)>>,
    retries: VecDeque<u64>,
    in_flight: usize,
    decided: u64,
    rtt: RttEstimator,
    window: CongestionWindow,
    stats: TrackerStats,
}

impl Tracker {
    pub fn new(
        space: ProbeSpace,
        techniques: Vec<Technique>,
        params: TimingParams,
        seed: u64,
    ) -> Tracker {
        assert_eq!(space.techniques, techniques.len());
        let n = space.len();
        Tracker {
            order: Permutation::new(n, seed),
            slots: vec![Slot::Pending; n as usize],
            window: CongestionWindow::new(&params),
            space,
            techniques,
            params,
            next_new: 0,
            deadlines: BinaryHeap::new(),
            retries: VecDeque::new(),
            in_flight: 0,
            decided: 0,
            rtt: RttEstimator::default(),
            stats: TrackerStats::default(),
        }
    }

    pub fn space(&self) -> &ProbeSpace {
        &self.space
    }

    pub fn techniques(&self) -> &[Technique] {
        &self.techniques
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    pub fn is_done(&self) -> bool {
        self.decided == self.space.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next probe to send at `now`, if the window has room.
    pub fn poll_send(&mut self, now: Time) -> Option<SendOrder> {
        self.expire(now);
        if self.in_flight >= self.window.size() {
            return None;
        }
        // Retransmissions first: they are the oldest unanswered work.
        let (index, attempt) = loop {
            if let Some(index) = self.retries.pop_front() {
                if let Slot::Retry { attempt } = self.slots[index as usize] {
                    break (index, attempt);
                }
                continue;
            }
            if self.next_new < self.order.len() {
                let index = self.order.at(self.next_new);
                self.next_new += 1;
                break (index, 0);
            }
            return None;
        };
        self.slots[index as usize] = Slot::InFlight { attempt, sent: now };
        self.in_flight += 1;
        self.stats.sent += 1;
        if attempt > 0 {
            self.stats.retransmissions += 1;
        }
        self.deadlines
            .push(Reverse((now + self.rtt.rto(&self.params), index, attempt)));
        let (host, port, technique) = self.space.probe(index);
        Some(SendOrder {
            index,
            host,
            port,
            technique,
            attempt,
        })
    }

    /// Moves probes whose timeout passed to the retry queue, or concludes
    /// no-response after the last try.
    pub fn expire(&mut self, now: Time) {
        while let Some(Reverse((deadline, index, attempt))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let slot = &mut self.slots[index as usize];
            // Stale entry: the probe was answered or sent again since.
            if !matches!(*slot, Slot::InFlight { attempt: a, .. } if a == attempt) {
                continue;
            }
            self.in_flight -= 1;
            if attempt < self.params.max_retries {
                *slot = Slot::Retry {
                    attempt: attempt + 1,
                };
                self.retries.push_back(index);
            } else {
                let technique = (index % self.space.techniques as u64) as usize;
                let o = self.techniques[technique].no_response;
                *slot = Slot::Done(Finding {
                    state: o.state,
                    reason: o.reason,
                    ttl: None,
                });
                self.decided += 1;
            }
        }
    }

    pub fn on_reply(&mut self, reply: &Reply) -> ReplyEffect {
        let Some(index) = self.space.index(reply.host, reply.port, reply.technique) else {
            self.stats.unexpected += 1;
            return ReplyEffect::Unexpected;
        };
        let slot = self.slots[index as usize];
        let current = match slot {
            Slot::Done(_) => {
                self.stats.duplicates += 1;
                return ReplyEffect::Duplicate;
            }
            Slot::Pending => {
                self.stats.unexpected += 1;
                return ReplyEffect::Unexpected;
            }
            Slot::InFlight { attempt, .. } => attempt,
            // `Retry` holds the try waiting to go out; the last one sent is before it.
            Slot::Retry { attempt } => attempt - 1,
        };
        if reply.attempt_slot as u16 >= TRY_SLOTS || reply.attempt_slot > current {
            // Answers a try we have not sent: forged or stale from another scan.
            self.stats.unexpected += 1;
            return ReplyEffect::Unexpected;
        }
        let Some((rule, outcome)) = self.techniques[reply.technique].classify(reply.kind) else {
            self.stats.unmatched += 1;
            return ReplyEffect::Unmatched;
        };
        if let Slot::InFlight { attempt, sent } = slot {
            self.in_flight -= 1;
            // Karn's rule: only a reply to the latest try times a round trip.
            if reply.attempt_slot == attempt % TRY_SLOTS as u8 && reply.at >= sent {
                self.rtt.sample(reply.at - sent);
            }
        }
        self.window.on_reply();
        if reply.attempt_slot > 0 {
            // The first try got no answer but a later one did: a drop.
            self.window.on_drop();
        }
        self.slots[index as usize] = Slot::Done(Finding {
            state: outcome.state,
            reason: outcome.reason,
            ttl: Some(reply.ttl),
        });
        self.decided += 1;
        self.stats.replies += 1;
        ReplyEffect::Decided { rule, outcome }
    }

    /// When the next timeout falls, if any probe is waiting for one.
    pub fn next_deadline(&self) -> Option<Time> {
        self.deadlines.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Whether there is something to send if the window allows.
    pub fn has_unsent(&self) -> bool {
        !self.retries.is_empty() || self.next_new < self.order.len()
    }

    /// Decided findings in (host, port, technique) order; `None` where a
    /// probe was not concluded (an interrupted scan).
    pub fn findings(&self) -> impl Iterator<Item = (Ipv4Addr, u16, usize, Option<Finding>)> + '_ {
        self.slots.iter().enumerate().map(|(i, slot)| {
            let (h, p, t) = self.space.probe(i as u64);
            let f = match slot {
                Slot::Done(f) => Some(*f),
                _ => None,
            };
            (h, p, t, f)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::technique::builtin_by_name;

    const H1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const H2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn tracker(ports: Vec<u16>, names: &[&str]) -> Tracker {
        let techniques: Vec<Technique> =
            names.iter().map(|n| builtin_by_name(n).unwrap()).collect();
        let space = ProbeSpace::new(vec![H1, H2], ports, techniques.len());
        let params = TimingParams {
            initial_cwnd: 4.0,
            ..TimingParams::default()
        };
        Tracker::new(space, techniques, params, 7)
    }

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    fn reply_to(o: &SendOrder, kind: ReplyKind, at: Time) -> Reply {
        Reply {
            host: o.host,
            port: o.port,
            technique: o.technique,
            attempt_slot: o.attempt,
            kind,
            ttl: 64,
            at,
        }
    }

    #[test]
    fn space_indexes_round_trip() {
        let s = ProbeSpace::new(vec![H1, H2], vec![80, 22, 443, 22], 3);
        assert_eq!(s.len(), 2 * 3 * 3);
        for i in 0..s.len() {
            let (h, p, t) = s.probe(i);
            assert_eq!(s.index(h, p, t), Some(i));
        }
        assert_eq!(s.index(H1, 23, 0), None);
        assert_eq!(s.index(Ipv4Addr::new(1, 1, 1, 1), 22, 0), None);
        assert_eq!(s.index(H1, 22, 3), None);
    }

    #[test]
    fn window_limits_what_is_in_flight() {
        let mut t = tracker((1..=100).collect(), &["syn"]);
        let sent: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        assert_eq!(sent.len(), 4);
        assert_eq!(t.in_flight(), 4);
        t.on_reply(&reply_to(&sent[0], ReplyKind::Rst { window: 0 }, ms(1)));
        // One reply frees a slot and grows the window by one.
        assert_eq!(std::iter::from_fn(|| t.poll_send(ms(1))).count(), 2);
    }

    #[test]
    fn silence_is_concluded_only_after_the_last_retry() {
        let mut t = tracker(vec![22], &["fin"]);
        let mut now = ms(0);
        let mut tries = Vec::new();
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                tries.push((now, o));
            }
            now = t.next_deadline().expect("work left means a deadline");
            t.expire(now);
        }
        // Two hosts, three tries each (first + 2 retries), one RTO apart.
        assert_eq!(tries.len(), 6);
        let per_host: Vec<_> = tries.iter().filter(|(_, o)| o.host == H1).collect();
        assert_eq!(
            per_host.iter().map(|(_, o)| o.attempt).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(
            per_host[1].0 - per_host[0].0,
            TimingParams::default().initial_rto
        );
        let f: Vec<_> = t.findings().collect();
        assert!(f.iter().all(|(_, _, _, f)| *f
            == Some(Finding {
                state: PortState::OpenFiltered,
                reason: Reason::NoResponse,
                ttl: None
            })));
        assert_eq!(t.stats().retransmissions, 4);
    }

    #[test]
    fn duplicates_and_late_replies_do_not_count_twice() {
        let mut t = tracker(vec![22], &["syn"]);
        let o = t.poll_send(ms(0)).unwrap();
        let r = reply_to(&o, ReplyKind::SynAck, ms(2));
        assert!(matches!(
            t.on_reply(&r),
            ReplyEffect::Decided { rule: 0, .. }
        ));
        assert_eq!(t.on_reply(&r), ReplyEffect::Duplicate);
        // A later contradicting reply does not change the decision.
        assert_eq!(
            t.on_reply(&reply_to(&o, ReplyKind::Rst { window: 0 }, ms(3))),
            ReplyEffect::Duplicate
        );
        let s = t.stats();
        assert_eq!((s.replies, s.duplicates), (1, 2));
        let f = t
            .findings()
            .find(|(h, _, _, _)| *h == o.host)
            .unwrap()
            .3
            .unwrap();
        assert_eq!(
            (f.state, f.reason, f.ttl),
            (PortState::Open, Reason::SynAck, Some(64))
        );
        assert_eq!(t.rtt().srtt(), Some(ms(2)));
    }

    #[test]
    fn replies_to_unsent_tries_or_unknown_probes_are_unexpected() {
        let mut t = tracker(vec![22], &["syn"]);
        let o = t.poll_send(ms(0)).unwrap();
        let mut r = reply_to(&o, ReplyKind::SynAck, ms(1));
        r.attempt_slot = 1;
        assert_eq!(t.on_reply(&r), ReplyEffect::Unexpected);
        r.attempt_slot = 0;
        r.port = 23;
        assert_eq!(t.on_reply(&r), ReplyEffect::Unexpected);
        // A table without a row for the reply: FIN scan answered by SYN-ACK.
        let mut f = tracker(vec![22], &["fin"]);
        let o = f.poll_send(ms(0)).unwrap();
        assert_eq!(
            f.on_reply(&reply_to(&o, ReplyKind::SynAck, ms(1))),
            ReplyEffect::Unmatched
        );
        assert!(!f.is_done());
    }

    #[test]
    fn a_reply_to_a_try_still_waiting_to_be_sent_is_unexpected() {
        let mut t = tracker(vec![22], &["syn"]);
        let first = t.poll_send(ms(0)).unwrap();
        // Time out both hosts' probes; the window is then kept full so the
        // retries wait in the queue.
        t.expire(TimingParams::default().initial_rto);
        let mut r = reply_to(&first, ReplyKind::SynAck, ms(501));
        r.attempt_slot = 1;
        assert_eq!(t.on_reply(&r), ReplyEffect::Unexpected);
        r.attempt_slot = 0;
        assert!(matches!(t.on_reply(&r), ReplyEffect::Decided { .. }));
    }

    #[test]
    fn an_answered_retransmission_shrinks_the_window() {
        let mut t = tracker(vec![22, 23, 24, 25], &["syn"]);
        let first: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        assert_eq!(first.len(), 4);
        let rto = TimingParams::default().initial_rto;
        let again: Vec<_> = std::iter::from_fn(|| t.poll_send(rto)).collect();
        assert!(again.iter().all(|o| o.attempt == 1));
        assert_eq!(again.len(), 4);
        // The reply to try 0 arrives late: no drop; the window grows.
        t.on_reply(&reply_to(
            &first[0],
            ReplyKind::Rst { window: 0 },
            rto + ms(1),
        ));
        // A reply to try 1 of another probe: its try 0 was lost; the
        // window, grown to 6 by the two replies, halves to 3.
        let other = again.iter().find(|o| o.index != first[0].index).unwrap();
        assert!(matches!(
            t.on_reply(&reply_to(other, ReplyKind::Rst { window: 0 }, rto + ms(1))),
            ReplyEffect::Decided { .. }
        ));
        assert_eq!(t.in_flight(), 2);
        let more: Vec<_> = std::iter::from_fn(|| t.poll_send(rto + ms(2))).collect();
        assert_eq!(more.len(), 1, "sent {more:?}");
        assert_eq!(t.in_flight(), 3);
    }
}
