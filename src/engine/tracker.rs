//! The tracker: what was sent when, what came back, what each port is.
//!
//! Pure logic: it never touches a socket and takes the time as a parameter,
//! so tests drive it with a virtual clock and a simulated network. The scan
//! loop asks it what to send next ([`Tracker::poll_send`]), tells it about
//! replies ([`Tracker::on_reply`]) and sleeps until [`Tracker::next_deadline`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use crate::engine::cookie::TRY_SLOTS;
use crate::engine::limits::{AnswerCounts, Pacing, PACED_TRIES, PACED_TRIES_WEAK};
use crate::engine::permutation::Permutation;
use crate::engine::timing::{CongestionWindow, RttEstimator, TimingParams};
use crate::model::probe::{prefetch, ProbeSpace, SendOrder, Time};
use crate::model::reply::{Reply, ReplyEffect};
use crate::model::result::{Finding, Findings, LimitKind, Palette, RateLimit, TrackerStats};
use crate::model::technique::{PortState, Protocol, Reason, ReplyKind, Technique};
use rustc_hash::{FxHashMap, FxHashSet};

/// A probe's state, one byte each: a /8 has 16,777,216 probes, and a
/// state that carried its data would cost tens of bytes for every one of
/// them. What a state needs besides lives in maps holding only the probes
/// in it: `Tracker::tries` (in flight or waiting for a retry) and
/// `Tracker::answered_findings` (decided by a reply whose finding is not
/// in the palette). `PENDING` is zero so a new tracker's states are zeroed
/// memory, which costs nothing up front.
mod state {
    pub const PENDING: u8 = 0;
    /// Sent; its try and when are in `tries`.
    pub const IN_FLIGHT: u8 = 1;
    /// Timed out; waiting for window room to be sent again as the try in
    /// `tries`.
    pub const RETRY: u8 = 2;
    /// Decided by a reply: its finding is in `answered_findings`.
    pub const DONE: u8 = 3;
    /// Decided by an earlier run this one resumes: never sent, never reported.
    pub const SKIPPED: u8 = 4;
    /// Its host was found down: never sent, never reported.
    pub const EXCLUDED: u8 = 5;
    /// Its host is still being asked whether it is up: not sent yet.
    pub const HELD: u8 = 6;
    /// Not part of the scan: a port of another protocol than the
    /// technique's, in a pass of TCP and UDP. Decided from the start.
    pub const NOT_ASKED: u8 = 7;
    /// `SILENT + last`: concluded on silence after try `last` (its finding
    /// is the technique's `no_response`); a reply to any of its tries that
    /// still comes in before the scan ends revises it. A `last` of
    /// `MAX_CODED_LAST` or more is kept in `Tracker::long_silent`.
    pub const SILENT: u8 = 8;
    pub const MAX_CODED_LAST: u8 = 63;
    /// `PALETTE + i`: decided by a reply, whose finding is the `i`th of
    /// `Tracker::palette`.
    pub const PALETTE: u8 = SILENT + MAX_CODED_LAST + 1;
    pub const PALETTE_LEN: usize = (u8::MAX - PALETTE) as usize + 1;

    pub fn is_silent(s: u8) -> bool {
        (SILENT..PALETTE).contains(&s)
    }

    /// Decided by a reply.
    pub fn is_done(s: u8) -> bool {
        s == DONE || s >= PALETTE
    }
}

/// The try a probe in flight or waiting for a retry is at.
#[derive(Debug, Clone, Copy)]
struct Try {
    attempt: u8,
    /// When it was sent (in flight only).
    sent: Time,
}

/// How many probes concluded on silence [`Tracker::silent_log`] lists in
/// the order they were concluded (8 MiB). Beyond it they are found by
/// their state, in index order: the same probes get the extra tries when
/// loss grows and the same ones are suspects of a rate limiter, only
/// queued in another order, and where a host has more reason-only
/// suspects than [`REASON_ONLY_PER_HOST`] some others of them are picked.
/// Only a sweep of a large block concludes this many on silence, and
/// there the order they were concluded in is the permutation's, no more
/// telling than the index order.
const SILENT_LOG_CAP: usize = 1 << 20;

fn in_flight_bit(index: u64) -> (usize, u64) {
    ((index / 64) as usize, 1 << (index % 64))
}

/// How many probes ahead [`Tracker::next_order`] prefetches states.
const PREFETCH_AHEAD: u64 = 8;

pub struct Tracker {
    space: ProbeSpace,
    techniques: Vec<Technique>,
    params: TimingParams,
    order: Permutation,
    next_new: u64,
    /// `order.at(pos)` for the next [`PREFETCH_AHEAD`] new positions, at
    /// `pos % PREFETCH_AHEAD` ([`Tracker::upcoming`]).
    ahead: [u64; PREFETCH_AHEAD as usize],
    /// Per probe, a [`state`].
    states: Vec<u8>,
    /// Probes in flight or waiting for a retry: bounded by the window and
    /// the retry queue, not by the scan's size.
    tries: FxHashMap<u64, Try>,
    /// The findings replies decided, by the states that name them.
    palette: Palette,
    /// Findings of probes decided by a reply, when the palette is full.
    answered_findings: FxHashMap<u64, Finding>,
    /// Silent probes whose last try does not fit in their state.
    long_silent: FxHashMap<u64, u8>,
    deadlines: BinaryHeap<Reverse<(Time, u64, u8)>>,
    retries: VecDeque<u64>,
    in_flight: usize,
    /// One bit per probe, set while it is in flight: most timeouts popped
    /// from `deadlines` are of probes answered since, and this (8 KiB per
    /// 65,536 probes, in cache) says so without loading their slot.
    in_flight_bits: Vec<u64>,
    /// Done or skipped.
    decided: u64,
    skipped: u64,
    /// Positions from here on were never skipped ([`Tracker::skip_positions`]).
    skip_end: u64,
    rtt: RttEstimator,
    /// Per host, so one slow host does not stretch every other host's
    /// timeouts (and a fast one is not held to the global mean): of the
    /// hosts that answered, the others have no sample.
    host_rtt: FxHashMap<usize, RttEstimator>,
    window: CongestionWindow,
    stats: TrackerStats,
    /// Probes decided `open`, for the progress line.
    open_found: u64,
    /// Replies that decided a probe, and how many of them answered a retry:
    /// the loss the retries must cover.
    answered: u64,
    answered_late: u64,
    /// Retries a probe gets now (grows with observed loss).
    retry_budget: u8,
    /// Probes concluded on silence, in that order (their last try is in
    /// their state): if loss turns out higher, they get the extra tries
    /// too, and a rate limiter's suspects are picked among them. Entries
    /// whose probe a late reply revised stay until the next prune. At most
    /// `silent_log_cap` ([`SILENT_LOG_CAP`]); past it, `silent_overflow`.
    silent_log: Vec<u64>,
    silent_log_cap: usize,
    silent_overflow: bool,
    /// How many entries `silent_log` would hold were it not capped.
    silent_listed: u64,
    /// Of those, probes revised since the last prune.
    silent_revised: u64,
    /// When the window last shrank: at most once per timeout, as TCP's
    /// fast recovery does, or random loss would pin it at the floor.
    last_drop: Option<Time>,
    /// No timeout is shorter than this: `min_rto`, doubled by every reply
    /// that came after its probe was concluded on silence, and by replies
    /// to a try that a retransmission already followed (the timeout was
    /// too short, not the packet lost; at most once per timeout).
    floor: Duration,
    last_backoff: Option<Time>,
    /// The longest round trip measured.
    max_rtt: Duration,
    /// When the latest conclusion from silence was drawn.
    last_silent: Option<Time>,
    /// RSTs and ICMP errors per host, for spotting rate limiters.
    answers: FxHashMap<usize, AnswerCounts>,
    /// Hosts whose suspect probes are being confirmed, paced.
    pacing: FxHashMap<usize, Pacing>,
    /// Paced tries per suspect probe: (made, allowed).
    paced_tries: FxHashMap<u64, (u8, u8)>,
    /// Suspects still silent when their host's budget ended.
    rate_limited: Vec<u64>,
    /// The main pass is over and suspects were picked.
    confirm_planned: bool,
    /// An interrupt stopped the scan (the main pass or the confirming).
    stopped: bool,
    /// How long a host's suspects may be paced.
    limit_budget: Duration,
    /// The scan probes UDP.
    udp: bool,
    /// Held probes the order reached, by host, until discovery concludes
    /// the host: sent then (up) or dropped (down).
    deferred: FxHashMap<usize, Vec<u64>>,
    deferred_count: usize,
    /// Probes still held.
    held: u64,
    /// Deferred probes of hosts found up, to be sent before new ones.
    released: VecDeque<u64>,
}

/// How many held probes the order may pass before it waits for discovery:
/// bounds the memory they take, and the holes (at most this many) in an
/// interrupted scan's decided positions.
const DEFER_LIMIT: usize = 1 << 16;

/// Probes per host whose answer would only change their reason (SYN's
/// `filtered`, by ICMP or by silence) that are confirmed.
const REASON_ONLY_PER_HOST: u32 = 8;
/// How long a rate-limited host's silent probes are confirmed by default:
/// about what nmap spends on such a host before it gives up.
pub const DEFAULT_LIMIT_BUDGET: Duration = Duration::from_secs(40);

impl Tracker {
    pub fn new(
        space: ProbeSpace,
        techniques: Vec<Technique>,
        params: TimingParams,
        seed: u64,
    ) -> Tracker {
        assert_eq!(space.techniques, techniques.len());
        let n = space.len();
        let order = Permutation::new(n, seed);
        let udp = techniques.iter().any(|t| t.protocol == Protocol::Udp);
        let ahead = std::array::from_fn(|pos| {
            let pos = pos as u64;
            if pos < n {
                order.at(pos)
            } else {
                0
            }
        });
        let (states, not_asked) = initial_states(&space);
        // Sized for a full window from the start: growing it as the window
        // opens rehashes on the hot path.
        let window = (params.max_cwnd as usize).min(1 << 16);
        Tracker {
            order,
            states,
            tries: FxHashMap::with_capacity_and_hasher(window, Default::default()),
            palette: Palette::default(),
            answered_findings: FxHashMap::default(),
            long_silent: FxHashMap::default(),
            window: CongestionWindow::new(&params),
            space,
            techniques,
            params,
            next_new: 0,
            ahead,
            deadlines: BinaryHeap::new(),
            retries: VecDeque::new(),
            in_flight: 0,
            in_flight_bits: vec![0; n.div_ceil(64) as usize],
            decided: not_asked,
            skipped: 0,
            skip_end: 0,
            rtt: RttEstimator::default(),
            host_rtt: FxHashMap::default(),
            stats: TrackerStats::default(),
            open_found: 0,
            answered: 0,
            answered_late: 0,
            retry_budget: params.max_retries,
            silent_log: Vec::new(),
            silent_log_cap: SILENT_LOG_CAP,
            silent_overflow: false,
            silent_listed: 0,
            silent_revised: 0,
            last_drop: None,
            floor: params.min_rto,
            last_backoff: None,
            max_rtt: Duration::ZERO,
            last_silent: None,
            answers: FxHashMap::default(),
            pacing: FxHashMap::default(),
            paced_tries: FxHashMap::default(),
            rate_limited: Vec::new(),
            confirm_planned: false,
            stopped: false,
            limit_budget: DEFAULT_LIMIT_BUDGET,
            udp,
            deferred: FxHashMap::default(),
            deferred_count: 0,
            held: 0,
            released: VecDeque::new(),
        }
    }

    /// Probes go in index order (host, then port, then technique) rather
    /// than the seeded random one: nmap's `-r`. Before anything is sent.
    pub fn set_in_order(&mut self) {
        debug_assert_eq!(self.next_new, 0);
        self.order = Permutation::identity(self.order.len());
        let n = self.order.len();
        self.ahead = std::array::from_fn(|pos| if (pos as u64) < n { pos as u64 } else { 0 });
    }

    /// How long a rate-limited host's silent probes may be confirmed
    /// (`--limit-budget`); zero confirms none.
    pub fn set_limit_budget(&mut self, budget: Duration) {
        self.limit_budget = budget;
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

    /// A host's timeout: from its own round trips once it has answered,
    /// from the scan's until then.
    fn rto_for(&self, host: usize) -> Duration {
        let rto = match self.host_rtt.get(&host) {
            Some(own) if own.srtt().is_some() => own.rto(&self.params),
            _ => self.rtt.rto(&self.params),
        };
        rto.max(self.floor)
    }

    /// The scan's timeout now (from all hosts' round trips).
    pub fn rto(&self) -> Duration {
        self.rtt.rto(&self.params).max(self.floor)
    }

    /// How long the scan listens after its last conclusion, for replies
    /// that would revise a conclusion drawn from silence: the scan's
    /// timeout, or the longest round trip seen if that is longer (at most
    /// `max_rto`). The last try has then had two timeouts to be answered,
    /// on a network that is quiet by now (the longest round trips are seen
    /// at full speed, with queues).
    pub fn final_wait(&self) -> Duration {
        self.rto().max(self.max_rtt.min(self.params.max_rto))
    }

    /// Until when the scan listens for late replies: [`Tracker::final_wait`]
    /// after the latest conclusion drawn from silence (often well before
    /// the scan's last reply, so there is nothing left to wait for). `None`
    /// when nothing was concluded on silence.
    pub fn listen_until(&self) -> Option<Time> {
        if self.silent_listed == 0 {
            return None;
        }
        self.last_silent.map(|t| t + self.final_wait())
    }

    /// Probes decided `open` so far.
    pub fn open_found(&self) -> u64 {
        self.open_found
    }

    pub fn is_done(&self) -> bool {
        self.decided == self.space.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The timing as `-d` shows it.
    pub fn timing_state(&self) -> crate::model::tap::TimingState {
        crate::model::tap::TimingState {
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            timeout: self.rto(),
            window: self.window.size(),
            in_flight: self.in_flight,
            retries: self.retry_budget,
            confirming: self.confirming(),
        }
    }

    /// Marks probes an earlier run decided (`--resume`) as done without a
    /// finding: they are neither sent nor reported, and count as decided.
    /// `indices` are probe indices ([`ProbeSpace::index`]); only probes not
    /// yet sent are skipped (out-of-range indices and probes already under
    /// way are ignored). Returns how many were newly skipped.
    pub fn skip(&mut self, indices: impl IntoIterator<Item = u64>) -> u64 {
        let mut n = 0;
        for index in indices {
            if let Some(s @ &mut state::PENDING) = self.states.get_mut(index as usize) {
                *s = state::SKIPPED;
                n += 1;
            }
        }
        self.skipped += n;
        self.decided += n;
        if n > 0 {
            // Positions unknown: any may be skipped.
            self.skip_end = self.order.len();
        }
        n
    }

    /// [`Tracker::skip`] for probes given by their positions in the seeded
    /// probe order (what a resume file stores): with the same seed and
    /// probe space, the same positions name the same probes.
    pub fn skip_positions(&mut self, positions: &[Range<u64>]) -> u64 {
        let n = self.order.len();
        let order = self.order.clone();
        let end = self.skip_end;
        let skipped = self.skip(
            positions
                .iter()
                .flat_map(|r| r.start.min(n)..r.end.min(n))
                .map(move |pos| order.at(pos)),
        );
        let last = positions.iter().map(|r| r.end.min(n)).max().unwrap_or(0);
        self.skip_end = end.max(last);
        skipped
    }

    /// Leaves out every probe of the hosts found down (by position in
    /// [`ProbeSpace::hosts`]): they are neither sent nor reported, take no
    /// part in the timing, and count as decided. Returns how many probes.
    pub fn exclude_hosts(&mut self, down: impl IntoIterator<Item = usize>) -> u64 {
        down.into_iter().map(|h| self.conclude_host(h, false)).sum()
    }

    /// Holds every probe not yet decided until [`Tracker::conclude_host`]
    /// says whether its host is up: host discovery runs beside the scan,
    /// and the order passes the probes of hosts not yet concluded.
    pub fn hold_all(&mut self) {
        self.hold_hosts(0..self.space.hosts.len());
    }

    /// Holds the probes of `hosts` (positions) until discovery concludes
    /// each ([`Tracker::conclude_host`]).
    pub fn hold_hosts(&mut self, hosts: Range<usize>) {
        let per_host = self.space.ports.len() * self.space.techniques;
        let mut held = 0;
        for s in &mut self.states[hosts.start * per_host..hosts.end * per_host] {
            if *s == state::PENDING {
                *s = state::HELD;
                held += 1;
            }
        }
        self.held += held;
    }

    /// Probes whose host discovery has not concluded.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Host discovery concluded `host` (its position in
    /// [`ProbeSpace::hosts`]): up, its held probes may go, those the order
    /// already passed first; down, they are excluded as
    /// [`Tracker::exclude_hosts`] does. A host found down and then up (a
    /// late answer) gets its excluded probes back. Returns how many
    /// probes changed.
    pub fn conclude_host(&mut self, host: usize, up: bool) -> u64 {
        let per_host = self.space.ports.len() * self.space.techniques;
        let to = match up {
            true => state::PENDING,
            false => state::EXCLUDED,
        };
        let mut n = 0;
        let mut revived = 0;
        for s in self.states.iter_mut().skip(host * per_host).take(per_host) {
            if *s == state::HELD {
                self.held -= 1;
            }
            if *s == state::HELD || (!up && *s == state::PENDING) {
                *s = to;
                n += 1;
            } else if up && *s == state::EXCLUDED {
                *s = state::PENDING;
                revived += 1;
            }
        }
        let passed = self.deferred.remove(&host).unwrap_or_default();
        self.deferred_count -= passed.len();
        if up {
            self.released.extend(passed);
            if revived > 0 {
                // Where the order passed them while excluded, they go as
                // released ones; where it has not, the first to meet them
                // sends them and the other finds them under way.
                self.decided -= revived;
                let first = (host * per_host) as u64;
                self.released.extend(
                    (first..first + per_host as u64)
                        .filter(|&i| self.states[i as usize] == state::PENDING),
                );
            }
            n + revived
        } else {
            // Unlike skipped probes, excluded ones do not move `skip_end`:
            // an interrupt lists decided positions only up to the probes
            // handed out, where excluded ones fill the holes of the prefix.
            self.decided += n;
            n
        }
    }

    /// Probes skipped with [`Tracker::skip`].
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// How many probes are decided (in this run or skipped).
    pub fn decided(&self) -> u64 {
        self.decided
    }

    /// Positions in the probe order whose probe is decided, in this run or
    /// skipped, as sorted, disjoint, non-adjacent ranges. The scan walks
    /// the order from the start, so an interrupted scan's decided set is a
    /// prefix with a few holes (probes in flight or waiting for a retry):
    /// a handful of ranges however large the scan.
    pub fn decided_positions(&self) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        // Only probes handed out or skipped can be decided.
        for pos in 0..self.next_new.max(self.skip_end) {
            let index = self.order.at(pos);
            let s = self.states[index as usize];
            let decided = matches!(s, state::SKIPPED | state::EXCLUDED | state::NOT_ASKED)
                || state::is_done(s)
                || state::is_silent(s);
            if !decided {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.end == pos => r.end = pos + 1,
                _ => out.push(pos..pos + 1),
            }
        }
        out
    }

    /// The next probe to send at `now`, if the window has room.
    pub fn poll_send(&mut self, now: Time) -> Option<SendOrder> {
        self.expire(now);
        // Paced probes are few and spaced: the window does not hold them.
        if let Some(o) = self.next_paced(now) {
            return Some(o);
        }
        if self.in_flight >= self.window.size() {
            return None;
        }
        self.next_order(now)
    }

    /// Like [`Tracker::poll_send`] but past a full window: `--min-rate`
    /// puts a floor under the rate that congestion control may not cross.
    pub fn poll_send_forced(&mut self, now: Time) -> Option<SendOrder> {
        self.expire(now);
        self.next_order(now)
    }

    fn set_in_flight(&mut self, index: u64, on: bool) {
        let (word, bit) = in_flight_bit(index);
        if on {
            self.in_flight_bits[word] |= bit;
        } else {
            self.in_flight_bits[word] &= !bit;
        }
    }

    fn is_in_flight(&self, index: u64) -> bool {
        let (word, bit) = in_flight_bit(index);
        self.in_flight_bits[word] & bit != 0
    }

    /// Asks the CPU to fetch what [`Tracker::on_reply`] will look at for
    /// each of `replies`, a cache miss each otherwise (most of its time,
    /// measured): the scan loop calls this for a batch before handling it.
    /// Two passes: finding a slot needs the port table's entry.
    pub fn prefetch_for<'a>(&self, replies: impl Iterator<Item = &'a Reply> + Clone) {
        for reply in replies.clone() {
            self.space.prefetch_port(reply.port);
        }
        for reply in replies {
            if let Some(index) = self.space.index(reply.host, reply.port, reply.technique) {
                prefetch(&self.states[index as usize]);
            }
        }
    }

    /// `order.at(pos)`, where `pos` is the next new position. The order
    /// jumps across a state table of up to megabytes, and a state looked at
    /// cold waits for memory: so the positions are computed
    /// [`PREFETCH_AHEAD`] early and their states prefetched.
    fn upcoming(&mut self, pos: u64) -> u64 {
        let at = (pos % PREFETCH_AHEAD) as usize;
        let index = self.ahead[at];
        let later = pos + PREFETCH_AHEAD;
        if later < self.order.len() {
            let next = self.order.at(later);
            self.ahead[at] = next;
            prefetch(&self.states[next as usize]);
        }
        index
    }

    fn next_order(&mut self, now: Time) -> Option<SendOrder> {
        // Retransmissions first: they are the oldest unanswered work.
        let (index, attempt) = loop {
            if let Some(index) = self.retries.pop_front() {
                if let Some(attempt) = self.retry_of(index) {
                    break (index, attempt);
                }
                continue;
            }
            if let Some(index) = self.released.pop_front() {
                if self.states[index as usize] == state::PENDING {
                    break (index, 0);
                }
                continue;
            }
            if self.next_new < self.order.len() && self.deferred_count < DEFER_LIMIT {
                let index = self.upcoming(self.next_new);
                self.next_new += 1;
                match self.states[index as usize] {
                    state::PENDING => break (index, 0),
                    state::HELD => {
                        let host = self.space.host_of(index);
                        self.deferred.entry(host).or_default().push(index);
                        self.deferred_count += 1;
                    }
                    // Skipped (an earlier run decided it) or excluded.
                    _ => {}
                }
                continue;
            }
            return None;
        };
        Some(self.launch(index, attempt, now))
    }

    /// Puts try `attempt` of probe `index` in flight at `now`.
    fn launch(&mut self, index: u64, attempt: u8, now: Time) -> SendOrder {
        self.states[index as usize] = state::IN_FLIGHT;
        self.tries.insert(index, Try { attempt, sent: now });
        self.set_in_flight(index, true);
        self.in_flight += 1;
        self.stats.sent += 1;
        if attempt > 0 {
            self.stats.retransmissions += 1;
        }
        let (host, port, technique) = self.space.probe(index);
        let host_pos = self.space.host_of(index);
        let rto = self.rto_for(host_pos);
        self.deadlines.push(Reverse((now + rto, index, attempt)));
        SendOrder {
            index,
            host,
            host_pos,
            port,
            technique,
            attempt,
        }
    }

    /// A suspect whose paced turn has come, if any.
    fn next_paced(&mut self, now: Time) -> Option<SendOrder> {
        if self.pacing.is_empty() {
            return None;
        }
        loop {
            let index = self.pacing.values_mut().find_map(|p| p.next(now))?;
            // A suspect revised by a late answer while queued is done.
            if let Some(attempt) = self.retry_of(index) {
                return Some(self.launch(index, attempt, now));
            }
        }
    }
    /// Moves probes whose timeout passed to the retry queue, or concludes
    /// no-response after the last try.
    pub fn expire(&mut self, now: Time) {
        while let Some(Reverse((deadline, index, attempt))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            // Stale entry: the probe was answered or sent again since.
            if !self.is_in_flight(index) {
                continue;
            }
            // In flight, so in `tries`.
            let Some(current) = self.tries.get_mut(&index) else {
                continue;
            };
            if current.attempt != attempt {
                continue;
            }
            self.in_flight -= 1;
            let (word, bit) = in_flight_bit(index);
            self.in_flight_bits[word] &= !bit;
            if let Some((tries, allowed)) = self.paced_tries.get_mut(&index) {
                *tries += 1;
                let host = self.space.host_of(index);
                let (tries, allowed) = (*tries, *allowed);
                let pacing = self
                    .pacing
                    .get_mut(&host)
                    .expect("a paced probe's host is paced");
                let over = now >= pacing.budget_end;
                // Only UDP stops early on a quiet limiter: its silent
                // ports are many and each try costs a token's wait.
                let udp = self.techniques[(index % self.space.techniques as u64) as usize].protocol
                    == Protocol::Udp;
                let quiet = udp && pacing.gone_quiet(now);
                if tries < allowed && !over && !pacing.found_nothing(now) && !quiet {
                    pacing.queue.push_back(index);
                    self.set_retry(index, attempt + 1);
                } else {
                    // Out of budget, or out of tries on a host whose limiter
                    // answered others: the silence may still be the
                    // limiter's, so it is marked, not taken as a filter
                    // (unless the port is open to another technique, which
                    // explains a FIN's silence as RFC 793 does).
                    let confirmed = pacing.answered > 0;
                    if over || (confirmed && !self.port_open_elsewhere(index)) {
                        let lane = self.lane(index);
                        let pacing = self.pacing.get_mut(&host).expect("paced host");
                        pacing.mark(lane, over);
                        self.rate_limited.push(index);
                    }
                    self.conclude_silent(index, attempt, now);
                }
                continue;
            }
            if attempt < self.retry_budget {
                current.attempt = attempt + 1;
                self.states[index as usize] = state::RETRY;
                self.retries.push_back(index);
            } else {
                self.conclude_silent(index, attempt, now);
            }
        }
        self.end_pacing(now);
        self.maybe_plan_confirmation(now);
    }

    /// Which protocol's tally a probe counts in: 0 TCP, 1 UDP.
    fn lane(&self, index: u64) -> usize {
        let t = (index % self.space.techniques as u64) as usize;
        usize::from(self.techniques[t].protocol == Protocol::Udp)
    }

    /// Concludes probe `index` on silence after try `last`.
    fn conclude_silent(&mut self, index: u64, last: u8, now: Time) {
        self.tries.remove(&index);
        self.states[index as usize] = state::SILENT + last.min(state::MAX_CODED_LAST);
        if last >= state::MAX_CODED_LAST {
            self.long_silent.insert(index, last);
        }
        self.decided += 1;
        self.silent_listed += 1;
        if self.silent_overflow {
            // Found by its state from now on.
        } else if self.silent_log.len() < self.silent_log_cap {
            self.silent_log.push(index);
        } else {
            self.silent_log = Vec::new();
            self.silent_overflow = true;
        }
        self.last_silent = Some(now);
    }

    /// The last try of probe `index`, concluded on silence.
    fn silent_last(&self, index: u64) -> Option<u8> {
        let s = self.states[index as usize];
        if !state::is_silent(s) {
            return None;
        }
        match s - state::SILENT {
            state::MAX_CODED_LAST => self.long_silent.get(&index).copied(),
            last => Some(last),
        }
    }

    /// The try probe `index` waits to send again, if it waits.
    fn retry_of(&self, index: u64) -> Option<u8> {
        match self.states[index as usize] {
            state::RETRY => self.tries.get(&index).map(|t| t.attempt),
            _ => None,
        }
    }

    /// Probe `index` waits for window room (or its paced turn) to be sent
    /// again as try `attempt`.
    fn set_retry(&mut self, index: u64, attempt: u8) {
        let s = &mut self.states[index as usize];
        if state::is_silent(*s) {
            self.long_silent.remove(&index);
        }
        *s = state::RETRY;
        self.tries
            .entry(index)
            .and_modify(|t| t.attempt = attempt)
            .or_insert(Try {
                attempt,
                sent: Time::ZERO,
            });
    }

    /// The probes [`Tracker::silent_log`] lists: those it holds, or past its
    /// cap every probe concluded on silence, in index order.
    fn silent_listed(&self) -> impl Iterator<Item = u64> + '_ {
        let scan = match self.silent_overflow {
            true => 0..self.space.len(),
            false => 0..0,
        };
        self.silent_log
            .iter()
            .copied()
            .chain(scan.filter(move |&i| state::is_silent(self.states[i as usize])))
    }

    /// Concludes the queued suspects of hosts whose budget is spent
    /// (unconfirmed: marked) or whose pacing found no limiter (silent).
    fn end_pacing(&mut self, now: Time) {
        if self.pacing.is_empty() {
            return;
        }
        let mut ended: Vec<(u64, bool, bool)> = Vec::new();
        let n = self.space.techniques as u64;
        let techniques = &self.techniques;
        let is_udp = |index: u64| techniques[(index % n) as usize].protocol == Protocol::Udp;
        for p in self.pacing.values_mut() {
            let over = now >= p.budget_end;
            if over || p.found_nothing(now) {
                ended.extend(p.queue.drain(..).map(|index| (index, over, false)));
            } else if self.udp && p.gone_quiet(now) {
                // Gone quiet: most likely silent in truth, but not proven,
                // so still marked. TCP suspects go on.
                p.queue.retain(|&index| {
                    let udp = is_udp(index);
                    if udp {
                        ended.push((index, false, true));
                    }
                    !udp
                });
            }
        }
        for (index, over, quiet) in ended {
            if let Some(attempt) = self.retry_of(index) {
                if over || quiet {
                    self.rate_limited.push(index);
                    let (host, lane) = (self.space.host_of(index), self.lane(index));
                    if let Some(p) = self.pacing.get_mut(&host) {
                        p.mark(lane, over);
                    }
                }
                self.conclude_silent(index, attempt - 1, now);
            }
        }
    }

    /// Once every probe is decided, the first time: picks the silent
    /// probes a rate limiter may explain and sends them again, paced.
    fn maybe_plan_confirmation(&mut self, now: Time) {
        if self.confirm_planned || !self.is_done() {
            return;
        }
        self.plan_confirmation(now);
    }

    /// Picks the suspects among the probes concluded silent so far and
    /// queues them for paced confirmation.
    fn plan_confirmation(&mut self, now: Time) {
        self.confirm_planned = true;
        // Without any RST or ICMP error nothing is suspect, but for UDP,
        // whose closed ports answer only through the limiter.
        let udp = self.techniques.iter().any(|t| t.protocol == Protocol::Udp);
        if self.answers.is_empty() && !udp {
            return;
        }
        // (index, last try, kind, tries allowed)
        let mut suspects: Vec<(u64, u8, LimitKind, u8)> = Vec::new();
        let mut reason_only: FxHashMap<usize, u32> = FxHashMap::default();
        // A port that answered one technique with an ICMP error and another
        // with silence proves its host's limiter: every silence of that
        // host an ICMP error would change is suspect then.
        let proven: FxHashSet<usize> = self
            .silent_listed()
            .filter(|&index| self.same_port_icmp(index))
            .map(|index| self.space.host_of(index))
            .collect();
        for index in self.silent_listed() {
            let Some(last) = self.silent_last(index) else {
                continue;
            };
            let host = self.space.host_of(index);
            let t = &self.techniques[(index % self.space.techniques as u64) as usize];
            // A UDP port's closed answer is an ICMP error, which Linux
            // limits: any silence may be the limiter's, even on a host
            // whose bucket a recent scan left dry (no error at all). A
            // host that limits nothing is found out in a few paced tries.
            let udp = t.protocol == Protocol::Udp;
            let counts = match self.answers.get(&host) {
                Some(c) => *c,
                None if udp => AnswerCounts::default(),
                None => continue,
            };
            let silent = t.no_response;
            let by = |kind| t.classify(kind).map(|(_, o)| o);
            let rst = by(ReplyKind::Rst { window: 0 });
            let icmp = by(ReplyKind::Unreachable { code: 3 });
            let same_port = self.same_port_icmp(index);
            // With several techniques a limiter leaves proof (a REJECTed
            // port gets several probes): counts alone would also fit a
            // host with a few REJECTed ports and no limiter at all.
            let alone = self
                .techniques
                .iter()
                .filter(|x| x.protocol == t.protocol)
                .count()
                == 1;
            let by_count = udp || (alone && counts.icmp_limited());
            // UDP in the pass spends the same ICMP bucket: a host that sent
            // any ICMP error may be out of tokens for a TCP probe's.
            let shares_bucket = self.udp && counts.icmp > 0;
            let icmp_evidence = by_count || shares_bucket || proven.contains(&host);
            // Likely REJECTed: its port answered ICMP to another technique,
            // or (with several techniques) answered nothing to any of them;
            // or a UDP port, most of which are closed and answer that way.
            let icmp_tries = if udp || same_port || self.port_silent_to_all(index) {
                PACED_TRIES
            } else {
                PACED_TRIES_WEAK
            };
            let kind = if counts.rst_limited() && rst.is_some_and(|o| o.state != silent.state) {
                Some((LimitKind::Rst, PACED_TRIES))
            } else if icmp_evidence && icmp.is_some_and(|o| o.state != silent.state) {
                Some((LimitKind::Icmp, icmp_tries))
            } else if icmp_evidence && icmp.is_some_and(|o| o.reason != silent.reason) {
                let n = reason_only.entry(host).or_default();
                *n += 1;
                (*n <= REASON_ONLY_PER_HOST).then_some((LimitKind::Icmp, icmp_tries))
            } else {
                None
            };
            if let Some((kind, tries)) = kind {
                suspects.push((index, last, kind, tries));
            }
        }
        // The likeliest answers first: those whose port answered already.
        suspects.sort_by_key(|s| std::cmp::Reverse(s.3));
        if suspects.is_empty() {
            return;
        }
        // RSTs are paced the faster way where a host limits both.
        let rst_hosts: FxHashSet<usize> = suspects
            .iter()
            .filter(|s| s.2 == LimitKind::Rst)
            .map(|s| self.space.host_of(s.0))
            .collect();
        for &(index, last, _, tries) in &suspects {
            let (host, lane) = (self.space.host_of(index), self.lane(index));
            let budget = self.limit_budget;
            let kind = if rst_hosts.contains(&host) {
                LimitKind::Rst
            } else {
                LimitKind::Icmp
            };
            let p = self
                .pacing
                .entry(host)
                .or_insert_with(|| Pacing::new(kind, now, budget));
            p.queue.push_back(index);
            p.suspects += 1;
            p.lanes[lane].paced += 1;
            self.set_retry(index, last + 1);
            self.paced_tries.insert(index, (0, tries));
            self.decided -= 1;
        }
        let paced = &self.paced_tries;
        self.silent_log.retain(|index| !paced.contains_key(index));
        self.silent_listed -= suspects.len() as u64;
        if self.limit_budget.is_zero() {
            // `--limit-budget 0`: nothing is confirmed, so every suspect is
            // marked unconfirmed at once, not taken for a filter's silence.
            for p in self.pacing.values_mut() {
                p.budget_end = now;
            }
            self.end_pacing(now);
        }
    }

    /// Whether another technique of the same protocol probing the same
    /// port (their states sit side by side) was decided as `pred` says.
    fn other_technique(&self, index: u64, pred: impl Fn(&Finding) -> bool) -> bool {
        let n = self.space.techniques as u64;
        let first = index - index % n;
        let t = (index % n) as usize;
        (first..first + n).any(|i| {
            i != index
                && self.space.same_protocol(t, (i - first) as usize)
                && state::is_done(self.states[i as usize])
                && self.finding(i).is_some_and(|f| pred(&f))
        })
    }

    /// Did another technique's probe of the same port get an ICMP error?
    /// A REJECT rule answers every probe of its port alike, so this one's
    /// silence is the limiter's doing.
    fn same_port_icmp(&self, index: u64) -> bool {
        self.other_technique(index, |f| matches!(f.reason, Reason::Unreachable(_)))
    }

    /// Did another technique find this probe's port open?
    fn port_open_elsewhere(&self, index: u64) -> bool {
        self.other_technique(index, |f| f.state == PortState::Open)
    }

    /// With several techniques of its protocol: was every probe of this
    /// probe's port silent?
    fn port_silent_to_all(&self, index: u64) -> bool {
        let n = self.space.techniques as u64;
        let first = index - index % n;
        let t = (index % n) as usize;
        let same: Vec<u64> = (first..first + n)
            .filter(|&i| self.space.same_protocol(t, (i - first) as usize))
            .collect();
        same.len() > 1
            && same
                .iter()
                .all(|&i| state::is_silent(self.states[i as usize]))
    }

    /// Counts the RSTs and ICMP errors a host sent (limiter evidence).
    fn note_answer(&mut self, index: u64, reply: &Reply) {
        let host = self.space.host_of(index);
        match reply.kind {
            ReplyKind::Rst { .. } => {
                let c = self.answers.entry(host).or_default();
                c.rst += 1;
                if reply.attempt_slot > 0 {
                    c.rst_late += 1;
                }
            }
            ReplyKind::Unreachable { .. } => {
                let c = self.answers.entry(host).or_default();
                c.icmp += 1;
                c.icmp_first.get_or_insert(reply.at);
                c.icmp_last = Some(reply.at);
                c.other += 1;
                c.other_late += u32::from(reply.attempt_slot > 0);
            }
            ReplyKind::SynAck | ReplyKind::Udp => {
                let c = self.answers.entry(host).or_default();
                c.other += 1;
                c.other_late += u32::from(reply.attempt_slot > 0);
            }
        }
    }

    /// The suspects left unconfirmed (ascending probe indices).
    pub fn rate_limited(&self) -> Vec<u64> {
        let mut v = self.rate_limited.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The hosts found rate-limiting, with what confirming them cost.
    /// In a pass of TCP and UDP, one per host and protocol whose suspects
    /// were paced (UDP's answers are ICMP errors, whatever the host's
    /// other limit).
    pub fn limits(&self) -> Vec<RateLimit> {
        let mixed = self.techniques.iter().any(|t| t.protocol == Protocol::Udp)
            && self.techniques.iter().any(|t| t.protocol == Protocol::Tcp);
        let mut v: Vec<RateLimit> = Vec::new();
        for (&host, p) in self
            .pacing
            .iter()
            .filter(|(_, p)| p.answered > 0 || p.unconfirmed > 0)
        {
            let whole = RateLimit {
                host,
                kind: p.kind,
                rate: p.rate(),
                paced: p.suspects,
                confirmed: p.answered,
                unconfirmed: p.unconfirmed,
                out_of_tries: p.out_of_tries,
                budget: self.limit_budget,
                protocol: None,
                stopped: self.stopped,
            };
            if !mixed {
                v.push(whole);
                continue;
            }
            for (lane, proto) in [Protocol::Tcp, Protocol::Udp].into_iter().enumerate() {
                let t = p.lanes[lane];
                if t.paced == 0 && t.unconfirmed == 0 {
                    continue;
                }
                v.push(RateLimit {
                    kind: match proto {
                        Protocol::Udp => LimitKind::Icmp,
                        Protocol::Tcp => p.kind,
                    },
                    paced: t.paced,
                    confirmed: t.confirmed,
                    unconfirmed: t.unconfirmed,
                    out_of_tries: t.out_of_tries,
                    protocol: Some(proto),
                    ..whole
                });
            }
        }
        v.sort_by_key(|r| (r.host, r.protocol.map(|p| p.as_str())));
        v
    }

    /// The probes sent before the first round trip was measured wait for
    /// the initial timeout (500 ms at -T4); once the real RTT is known,
    /// their deadlines are recomputed from it so a fast network does not
    /// wait out a guess. Happens once per scan, over at most a window of
    /// probes.
    fn retime_in_flight(&mut self) {
        let entries: Vec<_> = self.deadlines.drain().collect();
        for Reverse((deadline, index, attempt)) in entries {
            let flight = match self.states[index as usize] {
                state::IN_FLIGHT => self.tries.get(&index),
                _ => None,
            };
            let new = match flight {
                Some(t) if t.attempt == attempt => {
                    (t.sent + self.rto_for(self.space.host_of(index))).min(deadline)
                }
                // Stale: dropped when popped, as before.
                _ => deadline,
            };
            self.deadlines.push(Reverse((new, index, attempt)));
        }
    }

    /// Re-derives the retry budget from the loss seen so far; probes that
    /// were concluded silent with fewer retries are opened again.
    fn update_retry_budget(&mut self) {
        let loss = (self.answered_late as f64 + 1.0) / (self.answered as f64 + 2.0);
        let budget = crate::engine::timing::retries_for_loss(
            loss,
            self.space.len(),
            self.params.max_retries,
            self.params.max_adaptive_retries,
        );
        // Once every probe is decided the scan is over: late replies
        // drained after it must not reopen anything.
        if budget <= self.retry_budget || self.is_done() {
            return;
        }
        self.retry_budget = budget;
        self.silent_listed -= self.silent_revised;
        self.silent_revised = 0;
        if self.silent_overflow {
            for index in 0..self.space.len() {
                match self.silent_last(index) {
                    Some(had) if had < budget => self.reopen(index, had),
                    _ => {}
                }
            }
        } else {
            let mut log = std::mem::take(&mut self.silent_log);
            log.retain(|&index| match self.silent_last(index) {
                // Revised by a late reply since.
                None => false,
                Some(had) if had >= budget => true,
                Some(had) => {
                    self.reopen(index, had);
                    false
                }
            });
            self.silent_log = log;
        }
    }

    /// Probe `index`, concluded on silence after try `had`, gets another.
    fn reopen(&mut self, index: u64, had: u8) {
        self.set_retry(index, had + 1);
        self.retries.push_back(index);
        self.decided -= 1;
        self.silent_listed -= 1;
    }

    /// Retries a probe gets now.
    pub fn retry_budget(&self) -> u8 {
        self.retry_budget
    }

    pub fn on_reply(&mut self, reply: &Reply) -> ReplyEffect {
        let Some(index) = self.space.index(reply.host, reply.port, reply.technique) else {
            self.stats.unexpected += 1;
            return ReplyEffect::Unexpected;
        };
        let s = self.states[index as usize];
        // Taken out at once and put back where the reply changes nothing:
        // one map operation for the usual reply.
        let flight = match s {
            state::IN_FLIGHT | state::RETRY => self.tries.remove(&index).expect("a try under way"),
            s if state::is_done(s) => {
                self.stats.duplicates += 1;
                return ReplyEffect::Duplicate;
            }
            s if state::is_silent(s) => {
                let last = self.silent_last(index).expect("silent");
                return self.revise(index, last, reply);
            }
            // Not sent yet, or decided by the run this one resumes (its
            // cookies are the same: same seed), or its host is down, or
            // not asked.
            _ => {
                self.stats.unexpected += 1;
                return ReplyEffect::Unexpected;
            }
        };
        let current = match s {
            state::IN_FLIGHT => flight.attempt,
            // A retry's try is the one waiting to go out; the last one sent
            // is before it.
            _ => flight.attempt - 1,
        };
        if reply.attempt_slot as u16 >= TRY_SLOTS || reply.attempt_slot > current {
            // Answers a try we have not sent: forged or stale from another scan.
            self.tries.insert(index, flight);
            self.stats.unexpected += 1;
            return ReplyEffect::Unexpected;
        }
        let Some((rule, outcome)) = self.techniques[reply.technique].classify(reply.kind) else {
            self.tries.insert(index, flight);
            self.stats.unmatched += 1;
            return ReplyEffect::Unmatched;
        };
        let paced = self.paced_tries.contains_key(&index);
        let about_host = says_host_unreachable(reply);
        if reply.attempt_slot < current % TRY_SLOTS as u8 && !paced && !about_host {
            // A retransmission followed this try, yet the try was answered.
            self.back_off(reply.at);
        }
        self.note_answer(index, reply);
        if paced {
            let (host, lane) = (self.space.host_of(index), self.lane(index));
            if let Some(p) = self.pacing.get_mut(&host) {
                p.on_answer(reply.at);
                p.lanes[lane].confirmed += 1;
            }
        }
        if s == state::IN_FLIGHT {
            let Try { attempt, sent } = flight;
            self.in_flight -= 1;
            self.set_in_flight(index, false);
            // Karn's rule: only a reply to the latest try times a round trip.
            if reply.attempt_slot == attempt % TRY_SLOTS as u8 && reply.at >= sent && !about_host {
                let first = self.rtt.srtt().is_none();
                let rtt = reply.at - sent;
                self.rtt.sample(rtt);
                let host = self.space.host_of(index);
                match self.host_rtt.get_mut(&host) {
                    Some(own) => own.sample(rtt),
                    None => {
                        let mut own = RttEstimator::default();
                        own.sample(rtt);
                        self.host_rtt.insert(host, own);
                    }
                }
                self.max_rtt = self.max_rtt.max(rtt);
                if first {
                    // Retimed with the others, as still in flight.
                    self.tries.insert(index, flight);
                    self.retime_in_flight();
                    self.tries.remove(&index);
                }
            }
        }
        self.window.on_reply();
        self.answered += 1;
        if outcome.state == PortState::Open {
            self.open_found += 1;
        }
        // A UDP probe's ICMP error to a later try is most likely a
        // limiter's token come back, not a packet lost: it says nothing of
        // the path, and would slow the TCP probes of the same pass.
        let limiter_answer =
            self.lane(index) == 1 && matches!(reply.kind, ReplyKind::Unreachable { .. });
        if reply.attempt_slot > 0 && !paced && !about_host && !limiter_answer {
            // The first try got no answer but a later one did: a drop.
            self.answered_late += 1;
            let rto = self.rto().max(self.params.window_hold);
            if self.last_drop.is_none_or(|t| reply.at >= t + rto) {
                self.window.on_drop();
                self.last_drop = Some(reply.at);
            }
            self.update_retry_budget();
        }
        self.set_done(index, reply_finding(outcome, reply));
        self.decided += 1;
        self.stats.replies += 1;
        self.maybe_plan_confirmation(reply.at);
        ReplyEffect::Decided { rule, outcome }
    }

    /// Probe `index` was decided by a reply: `f`.
    fn set_done(&mut self, index: u64, f: Finding) {
        self.states[index as usize] = match self.palette.position(f, state::PALETTE_LEN) {
            Some(at) => state::PALETTE + at,
            None => {
                self.answered_findings.insert(index, f);
                state::DONE
            }
        };
    }

    /// A reply to a probe concluded on silence after try `last`.
    fn revise(&mut self, index: u64, last: u8, reply: &Reply) -> ReplyEffect {
        if reply.attempt_slot as u16 >= TRY_SLOTS || reply.attempt_slot > last {
            self.stats.unexpected += 1;
            return ReplyEffect::Unexpected;
        }
        let Some((rule, outcome)) = self.techniques[reply.technique].classify(reply.kind) else {
            self.stats.unmatched += 1;
            return ReplyEffect::Unmatched;
        };
        self.long_silent.remove(&index);
        self.set_done(index, reply_finding(outcome, reply));
        self.silent_revised += 1;
        self.note_answer(index, reply);
        if let Some(at) = self.rate_limited.iter().position(|&i| i == index) {
            // Marked unconfirmed at the budget's end, answered since.
            self.rate_limited.swap_remove(at);
            let (host, lane) = (self.space.host_of(index), self.lane(index));
            if let Some(p) = self.pacing.get_mut(&host) {
                p.unconfirmed -= 1;
                p.answered += 1;
                p.lanes[lane].unconfirmed -= 1;
                p.lanes[lane].confirmed += 1;
            }
        }
        if outcome.state == PortState::Open {
            self.open_found += 1;
        }
        self.stats.replies += 1;
        self.stats.revised += 1;
        // Our timeouts were too short for this reply: be more patient
        // from now on, as TCP backs off. Not for a host-unreachable: it
        // comes seconds late by design (the neighbour's ARP gave up), and
        // says nothing about this network's round trips.
        if !says_host_unreachable(reply) {
            self.double_floor();
        }
        ReplyEffect::Revised { rule, outcome }
    }

    /// A timeout fired although the reply was on its way: doubles the
    /// floor, at most once per timeout (one stall of the network delays
    /// many replies at once and should count once).
    fn back_off(&mut self, at: Time) {
        let rto = self.rto();
        if self.last_backoff.is_none_or(|t| at >= t + rto) {
            self.double_floor();
            self.last_backoff = Some(at);
        }
    }

    fn double_floor(&mut self) {
        self.floor = (self.floor * 2).min(self.params.max_rto.max(self.params.min_rto));
    }

    /// When the next timeout falls, if any probe is waiting for one.
    pub fn next_deadline(&self) -> Option<Time> {
        let timeout = self.deadlines.peek().map(|Reverse((t, _, _))| *t);
        let paced = self
            .pacing
            .values()
            .filter(|p| !p.queue.is_empty())
            .map(|p| p.next_send.min(p.budget_end))
            .min();
        match (timeout, paced) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether there is something to send if the window allows.
    pub fn has_unsent(&self) -> bool {
        !self.retries.is_empty()
            || !self.released.is_empty()
            || (self.next_new < self.order.len() && self.deferred_count < DEFER_LIMIT)
            || self.pacing.values().any(|p| !p.queue.is_empty())
    }

    /// The next timeout alone (not a paced send's turn): what a scan
    /// held back by its rate cap waits for besides the cap's next token.
    pub fn next_timeout(&self) -> Option<Time> {
        self.deadlines.peek().map(|Reverse((t, _, _))| *t)
    }

    /// An interrupt: no suspect is confirmed any more. Those queued are
    /// concluded now, those in flight at their timeout, all silent and
    /// marked unconfirmed; a main pass that ends from here on plans no
    /// confirmation.
    pub fn stop_confirming(&mut self, now: Time) {
        if !self.confirm_planned {
            // Interrupted in the main pass: the silences a limiter may
            // explain so far are picked as they would have been, and end
            // unconfirmed at once.
            self.plan_confirmation(now);
        }
        self.confirm_planned = true;
        self.stopped = true;
        for p in self.pacing.values_mut() {
            p.budget_end = p.budget_end.min(now);
        }
        self.end_pacing(now);
    }

    /// Silent probes being confirmed, paced, right now: decided once
    /// already, and again when their pacing ends (the progress line
    /// counts them as decided rather than going backwards).
    pub fn confirming(&self) -> u64 {
        self.paced_tries
            .keys()
            .filter(|&&i| {
                let s = self.states[i as usize];
                !state::is_done(s) && !state::is_silent(s)
            })
            .count() as u64
    }

    /// An interrupt stopped the scan ([`Tracker::stop_confirming`]).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Decided findings in (host, port, technique) order; `None` where a
    /// probe was not concluded (an interrupted scan).
    pub fn findings(&self) -> impl Iterator<Item = (IpAddr, u16, usize, Option<Finding>)> + '_ {
        (0..self.space.len()).map(|i| {
            let (h, p, t) = self.space.probe(i);
            (h, p, t, self.finding(i))
        })
    }

    /// Probe `index`'s finding, if it was concluded.
    pub fn finding(&self, index: u64) -> Option<Finding> {
        match *self.states.get(usize::try_from(index).ok()?)? {
            state::DONE => self.answered_findings.get(&index).copied(),
            s if state::is_silent(s) => Some(self.no_response(index)),
            s if state::is_done(s) => self.palette.get(s - state::PALETTE),
            _ => None,
        }
    }

    /// What silence concludes for probe `index`'s technique.
    fn no_response(&self, index: u64) -> Finding {
        let o = self.techniques[(index % self.space.techniques as u64) as usize].no_response;
        Finding {
            state: o.state,
            reason: o.reason,
            ttl: None,
        }
    }

    /// The findings, moved out of the tracker: its states, turned in place
    /// into [`Findings`]' codes, and the answered probes' findings.
    pub fn into_findings(self) -> Findings {
        const { assert!(state::PALETTE_LEN <= Findings::PALETTE_LEN) };
        let mut codes = self.states;
        for c in &mut codes {
            *c = match *c {
                state::DONE => Findings::ANSWERED,
                s if state::is_silent(s) => Findings::SILENT,
                s if s >= state::PALETTE => Findings::PALETTE + (s - state::PALETTE),
                _ => Findings::NONE,
            };
        }
        Findings::from_parts(
            codes,
            &self.techniques,
            self.palette,
            self.answered_findings,
        )
    }

    /// About how many bytes the tracker holds on the heap (its probe space
    /// and techniques aside): what a scan's size costs.
    pub fn approx_heap_bytes(&self) -> usize {
        fn map<K, V>(m: &FxHashMap<K, V>) -> usize {
            m.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        fn vec<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let deferred: usize = self.deferred.values().map(vec).sum();
        let paced: usize = self.pacing.values().map(|p| p.queue.capacity() * 8).sum();
        self.states.capacity()
            + vec(&self.in_flight_bits)
            + map(&self.tries)
            + self.palette.heap_bytes()
            + map(&self.answered_findings)
            + map(&self.long_silent)
            + self.deadlines.capacity() * std::mem::size_of::<Reverse<(Time, u64, u8)>>()
            + self.retries.capacity() * 8
            + map(&self.host_rtt)
            + vec(&self.silent_log)
            + map(&self.answers)
            + map(&self.pacing)
            + paced
            + map(&self.paced_tries)
            + vec(&self.rate_limited)
            + map(&self.deferred)
            + deferred
            + self.released.capacity() * 8
    }
}

/// Every probe's first state, and how many are not asked. Zeroed memory
/// (all pending) when every probe is asked; otherwise, unsharded, one
/// host's pattern repeated (whether a probe is asked depends on its port
/// and technique alone), so that a large scan starts at once.
fn initial_states(space: &ProbeSpace) -> (Vec<u8>, u64) {
    let n = space.len();
    let mark = |i: u64| match space.asks(i) {
        true => state::PENDING,
        false => state::NOT_ASKED,
    };
    let count = |v: &[u8]| v.iter().filter(|&&s| s == state::NOT_ASKED).count() as u64;
    if space.is_sharded() {
        let states: Vec<u8> = (0..n).map(mark).collect();
        let not_asked = count(&states);
        return (states, not_asked);
    }
    if space.asked() == n {
        return (vec![state::PENDING; n as usize], 0);
    }
    let per_host = (space.ports.len() * space.techniques) as u64;
    let pattern: Vec<u8> = (0..per_host).map(mark).collect();
    let hosts = n / per_host.max(1);
    (pattern.repeat(hosts as usize), count(&pattern) * hosts)
}

/// What a reply that decided a probe says of it.
fn reply_finding(outcome: crate::model::technique::Outcome, reply: &Reply) -> Finding {
    Finding {
        state: outcome.state,
        reason: outcome.reason,
        ttl: known_ttl(reply),
    }
}

/// An ICMP error about the host or its network (from a router, or from our
/// own stack when the neighbour never answered), not about the port: it
/// times no round trip and shows no loss.
fn says_host_unreachable(reply: &Reply) -> bool {
    // ICMPv6's no route and address unreachable count as their ICMP kin.
    matches!(
        reply.kind,
        ReplyKind::Unreachable { code }
            if matches!(crate::model::technique::icmp_equivalent(code), Some(0 | 1 | 6 | 7))
    )
}

/// The reply's TTL, `None` where it is not known: a connect scan's
/// outcomes carry 0, a TTL no packet arrives with.
fn known_ttl(reply: &Reply) -> Option<u8> {
    (reply.ttl != 0).then_some(reply.ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::technique::builtin_by_name;
    use crate::model::technique::{Reason, ReplyKind};
    use std::net::{IpAddr, Ipv4Addr};

    const H1: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const H2: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

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
        assert_eq!(s.index(Ipv4Addr::new(1, 1, 1, 1).into(), 22, 0), None);
        assert_eq!(s.index(H1, 22, 3), None);
    }

    #[test]
    fn hosts_found_down_are_never_probed_and_count_as_decided() {
        let mut t = tracker((1..=10).collect(), &["syn", "fin"]);
        assert_eq!(t.exclude_hosts([1]), 20);
        assert_eq!(t.decided(), 20);
        let mut now = ms(0);
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                assert_eq!(o.host, H1, "a probe to a host found down");
                t.on_reply(&reply_to(&o, ReplyKind::Rst { window: 0 }, now + ms(1)));
            }
            now += ms(5);
            t.expire(now);
        }
        let f: Vec<_> = t.findings().collect();
        assert!(f.iter().filter(|x| x.0 == H2).all(|x| x.3.is_none()));
        assert!(f.iter().filter(|x| x.0 == H1).all(|x| x.3.is_some()));
        assert_eq!(t.stats().sent, 20);
    }

    /// A host that REJECTs everything with ICMP behind Linux's limiter
    /// (burst 6, one a second), scanned with `names` in one pass: (TCP
    /// probes filtered, TCP probes in another state and unmarked: wrong).
    /// UDP in the pass must not blind TCP's limiter evidence.
    fn fin_on_a_limited_rejecting_host(names: &[&str]) -> (usize, usize) {
        limited_host(names, &(1..=40).collect::<Vec<u16>>())
    }

    /// [`fin_on_a_limited_rejecting_host`] where only the TCP ports
    /// `rejected` are REJECTed (the others reset, unlimited) and every UDP
    /// port is closed: UDP spends the ICMP bucket.
    fn limited_host(names: &[&str], rejected: &[u16]) -> (usize, usize) {
        const H: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
        let techniques: Vec<Technique> =
            names.iter().map(|n| builtin_by_name(n).unwrap()).collect();
        let ports: Vec<u16> = (1..=40).collect();
        let of: Vec<usize> = techniques
            .iter()
            .map(|t| usize::from(t.protocol == Protocol::Udp))
            .collect();
        let space = ProbeSpace::with_protocols(vec![H], &[ports.clone(), ports], &of);
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 3);
        let (mut tokens, mut last, mut now) = (6.0f64, ms(0), ms(0));
        while !t.is_done() && now < Duration::from_secs(300) {
            tokens = (tokens + (now - last).as_secs_f64()).min(6.0);
            last = now;
            while let Some(o) = t.poll_send(now) {
                let udp = t.techniques()[o.technique].protocol == Protocol::Udp;
                if !udp && !rejected.contains(&o.port) {
                    t.on_reply(&reply_to(&o, ReplyKind::Rst { window: 0 }, now + ms(1)));
                } else if tokens >= 1.0 {
                    tokens -= 1.0;
                    t.on_reply(&reply_to(
                        &o,
                        ReplyKind::Unreachable { code: 3 },
                        now + ms(1),
                    ));
                }
            }
            now += ms(5);
            t.expire(now);
        }
        assert!(t.is_done());
        let marked: Vec<u64> = t.rate_limited();
        let (mut filtered, mut unmarked) = (0, 0);
        let tcp = |tech: usize| t.techniques()[tech].protocol == Protocol::Tcp;
        for (i, (_, _, tech, f)) in t.findings().enumerate() {
            match f {
                // SYN's silence is `filtered` like its ICMP answer: only
                // the reason would change (confirmed for a few ports).
                Some(f)
                    if tcp(tech)
                        && f.reason == Reason::NoResponse
                        && f.state != PortState::Filtered =>
                {
                    unmarked += usize::from(marked.binary_search(&(i as u64)).is_err())
                }
                Some(_) if tcp(tech) => filtered += 1,
                _ => {}
            }
        }
        (filtered, unmarked)
    }

    #[test]
    fn udp_in_the_pass_leaves_fins_limiter_evidence_alone() {
        let (alone, alone_unmarked) = fin_on_a_limited_rejecting_host(&["fin"]);
        let (mixed, mixed_unmarked) = fin_on_a_limited_rejecting_host(&["fin", "udp"]);
        assert_eq!(
            (alone_unmarked, mixed_unmarked),
            (0, 0),
            "every silence marked"
        );
        assert!(
            alone >= 30 && mixed >= 20,
            "confirmed: alone {alone}, with UDP {mixed}"
        );
        // Two TCP techniques and UDP: the REJECTed ports' silences are
        // the limiter's too.
        let (_, unmarked) = fin_on_a_limited_rejecting_host(&["syn", "fin", "udp"]);
        assert_eq!(unmarked, 0);
        // The lab's rej: two REJECTed TCP ports, UDP's closed ports
        // spending the bucket first: SYN and FIN both silent there.
        for seed_ports in [[11, 25], [3, 30]] {
            let (_, unmarked) = limited_host(&["syn", "fin", "udp"], &seed_ports);
            assert_eq!(unmarked, 0, "{seed_ports:?}");
        }
    }

    /// `--limit-budget 0`: nothing is paced, and every silent UDP probe is
    /// marked unconfirmed rather than left looking like a filter's.
    #[test]
    fn a_zero_budget_marks_every_suspect_at_once() {
        let mut t = tracker((1..=10).collect(), &["udp"]);
        t.set_limit_budget(Duration::ZERO);
        let mut now = ms(0);
        while !t.is_done() {
            while t.poll_send(now).is_some() {}
            now += ms(5);
            t.expire(now);
        }
        assert_eq!(t.rate_limited().len(), 20);
        // Each probe's tries of the main pass, and no paced one.
        let tries = 1 + u64::from(TimingParams::default().max_retries);
        assert_eq!(t.stats().sent, 20 * tries, "nothing paced");
        let limits = t.limits();
        assert_eq!(limits.len(), 2);
        assert!(limits
            .iter()
            .all(|l| l.unconfirmed == 10 && l.confirmed == 0));
    }

    /// `-r`: the first tries go in index order (host, port, technique).
    #[test]
    fn in_order_sends_hosts_ports_and_techniques_in_turn() {
        let mut t = tracker((1..=20).collect(), &["syn", "fin"]);
        t.set_in_order();
        let mut sent = Vec::new();
        let mut now = ms(0);
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                sent.push(o.index);
                t.on_reply(&reply_to(&o, ReplyKind::Rst { window: 0 }, now + ms(1)));
            }
            now += ms(5);
            t.expire(now);
        }
        assert_eq!(sent, (0..80).collect::<Vec<u64>>());
    }

    /// A pass of TCP and UDP: each technique sends to its protocol's ports
    /// only, once each, and every probe asked is concluded.
    #[test]
    fn tcp_and_udp_in_one_pass_ask_each_protocol_its_own_ports() {
        let techniques: Vec<Technique> = ["syn", "fin", "udp"]
            .iter()
            .map(|n| builtin_by_name(n).unwrap())
            .collect();
        let (tcp, udp) = (vec![22, 80, 443], vec![53, 80, 161]);
        let space =
            ProbeSpace::with_protocols(vec![H1, H2], &[tcp.clone(), udp.clone()], &[0, 0, 1]);
        assert_eq!(space.ports, vec![22, 53, 80, 161, 443]);
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 11);
        // 2 hosts x 2 ports asked by one protocol only x the other's techniques.
        assert_eq!(t.decided(), 2 * (2 + 2 * 2));
        let mut sent: Vec<(IpAddr, u16, usize)> = Vec::new();
        let mut now = ms(0);
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                sent.push((o.host, o.port, o.technique));
                let kind = match (o.technique, o.port) {
                    (2, 53) => ReplyKind::Udp,
                    (2, _) => ReplyKind::Unreachable { code: 3 },
                    (0, 22) => ReplyKind::SynAck,
                    _ => ReplyKind::Rst { window: 0 },
                };
                t.on_reply(&reply_to(&o, kind, now + ms(1)));
            }
            now += ms(5);
            t.expire(now);
        }
        sent.sort();
        let mut want: Vec<(IpAddr, u16, usize)> = Vec::new();
        for h in [H1, H2] {
            want.extend(tcp.iter().flat_map(|&p| [(h, p, 0), (h, p, 1)]));
            want.extend(udp.iter().map(|&p| (h, p, 2)));
        }
        want.sort();
        assert_eq!(sent, want, "each probe asked goes once; no other goes");
        for (h, p, tech, f) in t.findings() {
            let asked = want.binary_search(&(h, p, tech)).is_ok();
            assert_eq!(f.is_some(), asked, "{h} {p} {tech}");
        }
    }

    /// A scan of `hosts` x 100 ports whose hosts discovery concludes
    /// beside it: host `h` at `(h % 7) * 3` ms, up when `up(h)`, and host 5
    /// down at first and up after all (a late answer). Every probe of a
    /// host up goes exactly once, none of a host down, and the scan
    /// begins before discovery ends.
    fn scan_beside_discovery(hosts: usize, up: impl Fn(usize) -> bool) {
        let targets: Vec<IpAddr> = (0..hosts as u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let space = ProbeSpace::new(targets.clone(), (1..=100).collect(), 1);
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 3);
        t.hold_all();
        let mut sent = vec![0u32; hosts * 100];
        let mut first_sent = None;
        let mut now = ms(0);
        let revived = 5;
        let concluded_at = |h: usize| ms((h % 7) as u64 * 3);
        let discovery_ends = ms(6 * 3 + 10);
        while !t.is_done() || now <= discovery_ends {
            for h in 0..hosts {
                if concluded_at(h) == now {
                    t.conclude_host(h, up(h) && h != revived);
                }
            }
            if now == discovery_ends {
                t.conclude_host(revived, true);
            }
            while let Some(o) = t.poll_send(now) {
                assert!(
                    up(o.host_pos) && (o.host_pos != revived || now >= discovery_ends),
                    "a probe to {} while it was held or down",
                    o.host
                );
                sent[o.index as usize] += 1;
                first_sent.get_or_insert(now);
                t.on_reply(&reply_to(&o, ReplyKind::Rst { window: 0 }, now));
            }
            now += ms(1);
            assert!(now < ms(60_000), "the scan never ended");
        }
        assert!(first_sent.unwrap() < discovery_ends);
        for (i, n) in sent.iter().enumerate() {
            let want = u32::from(up(i / 100));
            assert_eq!(*n, want, "probe {i} sent {n} times");
        }
        let found: Vec<_> = t.findings().collect();
        assert!(found
            .iter()
            .all(|f| f.3.is_some() == up(targets.iter().position(|h| *h == f.0).unwrap())));
    }

    #[test]
    fn hosts_concluded_beside_the_scan_are_scanned_once_or_never() {
        scan_beside_discovery(40, |h| h % 3 != 1);
    }

    #[test]
    fn the_order_passes_at_most_a_bounded_number_of_held_probes() {
        // 1,000 hosts x 100 ports: more held probes than the limit.
        scan_beside_discovery(1000, |h| h % 10 == 0 || h == 5);
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let targets: Vec<IpAddr> = (0..1000u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let space = ProbeSpace::new(targets, (1..=100).collect(), 1);
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 3);
        t.hold_all();
        assert_eq!(t.poll_send(ms(0)), None);
        assert_eq!(t.deferred_count, DEFER_LIMIT);
        // Nothing to send until discovery concludes a host: no busy wait.
        assert!(!t.has_unsent() && !t.is_done());
        assert_eq!(t.held(), 100_000);
        t.conclude_host(0, true);
        assert!(t.has_unsent());
        assert_eq!(t.held(), 99_900);
        // An interrupt now: nothing decided, nothing to resume past.
        assert!(t.decided_positions().is_empty());
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
        // Two hosts, two tries each (first + the default retry), one RTO apart.
        assert_eq!(tries.len(), 4);
        let per_host: Vec<_> = tries.iter().filter(|(_, o)| o.host == H1).collect();
        assert_eq!(
            per_host.iter().map(|(_, o)| o.attempt).collect::<Vec<_>>(),
            vec![0, 1]
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
        assert_eq!(t.stats().retransmissions, 2);
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

    /// Answers the probes sent as a simple host would, until `stop` have been
    /// sent (an interruption) or the tracker is done; then lets timeouts
    /// run out for `grace`. Returns the orders sent.
    fn run_until(t: &mut Tracker, stop: usize, grace: Time) -> Vec<SendOrder> {
        let mut now = ms(0);
        let mut sent = Vec::new();
        while !t.is_done() && sent.len() < stop {
            let batch: Vec<_> = std::iter::from_fn(|| t.poll_send(now)).collect();
            now += ms(1);
            // Every fifth port listens (SYN-ACK to SYN, silence to FIN);
            // every third probe's first try is lost, like a lossy link.
            for o in &batch {
                let kind = match (o.port % 5 == 0, o.technique) {
                    (true, 0) => ReplyKind::SynAck,
                    (true, _) => continue,
                    (false, _) => ReplyKind::Rst { window: 0 },
                };
                if o.attempt > 0 || o.index % 3 != 0 {
                    t.on_reply(&reply_to(o, kind, now));
                }
            }
            sent.extend(batch);
            if let Some(d) = t.next_deadline() {
                now = now.max(d.min(now + ms(50)));
            }
        }
        t.expire(now + grace);
        sent
    }

    fn reported(t: &Tracker) -> Vec<(u64, Finding)> {
        t.findings()
            .enumerate()
            .filter_map(|(i, (_, _, _, f))| f.map(|f| (i as u64, f)))
            .collect()
    }

    #[test]
    fn skipped_probes_are_neither_sent_nor_reported_and_count_as_decided() {
        let mut t = tracker((1..=50).collect(), &["syn", "fin"]);
        let n = t.space().len();
        let skipped: Vec<u64> = (0..n).filter(|i| i % 4 == 1).collect();
        assert_eq!(t.skip(skipped.iter().copied()), skipped.len() as u64);
        // Again, or out of range: nothing more.
        assert_eq!(t.skip([skipped[0], n, n + 7]), 0);
        assert_eq!(t.skipped(), skipped.len() as u64);
        let sent = run_until(&mut t, usize::MAX, ms(0));
        assert!(t.is_done());
        assert!(
            sent.iter().all(|o| o.index % 4 != 1),
            "a skipped probe was sent"
        );
        assert_eq!(
            sent.iter().filter(|o| o.attempt == 0).count() as u64,
            n - skipped.len() as u64
        );
        let got: Vec<u64> = reported(&t).iter().map(|(i, _)| *i).collect();
        assert_eq!(got, (0..n).filter(|i| i % 4 != 1).collect::<Vec<_>>());
        assert_eq!(t.decided(), n);
        assert_eq!(t.decided_positions(), vec![0..n]);
        // A reply to a skipped probe (a late answer to the earlier run,
        // whose cookies are the same) decides nothing.
        let (host, port, technique) = t.space().probe(skipped[0]);
        let late = Reply {
            host,
            port,
            technique,
            attempt_slot: 0,
            kind: ReplyKind::SynAck,
            ttl: 64,
            at: ms(1),
        };
        let mut u = tracker((1..=50).collect(), &["syn", "fin"]);
        u.skip([skipped[0]]);
        assert_eq!(u.on_reply(&late), ReplyEffect::Unexpected);
        assert!(u.findings().all(|(_, _, _, f)| f.is_none()));
    }

    #[test]
    fn an_interrupted_run_and_its_resumption_report_every_probe_once() {
        let ports: Vec<u16> = (1..=300).collect();
        let mut whole = tracker(ports.clone(), &["syn", "fin"]);
        run_until(&mut whole, usize::MAX, ms(0));
        let truth = reported(&whole);
        assert_eq!(truth.len() as u64, whole.space().len());
        let states: std::collections::HashSet<_> = truth.iter().map(|(_, f)| f.state).collect();
        assert_eq!(
            states.len(),
            3,
            "open, closed and open|filtered: {states:?}"
        );

        // Interrupted after 250 probes: some answered, some in flight.
        let mut first = tracker(ports.clone(), &["syn", "fin"]);
        run_until(&mut first, 250, ms(5));
        assert!(!first.is_done());
        let part = reported(&first);
        assert!(!part.is_empty() && part.len() < truth.len());
        let decided = first.decided_positions();
        assert_eq!(
            decided.iter().map(|r| r.end - r.start).sum::<u64>(),
            part.len() as u64
        );
        // The order is walked from the start: a prefix with few holes.
        assert!(decided.len() <= 1 + first.in_flight() + 250, "{decided:?}");

        // Resumed with the same seed: the rest, and only the rest.
        let mut second = tracker(ports.clone(), &["syn", "fin"]);
        assert_eq!(second.skip_positions(&decided), part.len() as u64);
        let sent = run_until(&mut second, usize::MAX, ms(0));
        assert!(second.is_done());
        let rest = reported(&second);
        assert_eq!(
            sent.iter().filter(|o| o.attempt == 0).count(),
            rest.len(),
            "every probe sent is one not concluded before"
        );
        let mut union: Vec<(u64, Finding)> = part.iter().chain(&rest).copied().collect();
        union.sort_by_key(|(i, _)| *i);
        assert_eq!(
            union, truth,
            "the union is the uninterrupted scan, no probe twice"
        );

        // Interrupted again: the new decided set holds both runs' probes.
        let mut third = tracker(ports, &["syn", "fin"]);
        third.skip_positions(&decided);
        run_until(&mut third, 100, ms(5));
        let both = third.decided_positions();
        let count: u64 = both.iter().map(|r| r.end - r.start).sum();
        assert_eq!(count, part.len() as u64 + reported(&third).len() as u64);
        for r in &decided {
            assert!(both.iter().any(|b| b.start <= r.start && r.end <= b.end));
        }
    }

    #[test]
    fn observed_loss_buys_silent_probes_more_tries() {
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let space = ProbeSpace::new(vec![H1, H2], (1..=10).collect(), 1);
        let params = TimingParams {
            initial_cwnd: 10.0,
            max_retries: 1,
            max_adaptive_retries: 3,
            ..TimingParams::default()
        };
        let rto = params.initial_rto;
        let mut t = Tracker::new(space, techniques, params, 3);
        let drain =
            |t: &mut Tracker, now| std::iter::from_fn(|| t.poll_send(now)).collect::<Vec<_>>();
        // Ten probes go unanswered through both tries and are concluded silent.
        let first = drain(&mut t, ms(0));
        assert_eq!(drain(&mut t, rto).len(), 10);
        let next = drain(&mut t, rto * 2);
        assert_eq!(next.len(), 10);
        assert!(next
            .iter()
            .all(|o| o.attempt == 0 && !first.iter().any(|f| f.index == o.index)));
        // The other ten are answered only on their retry: heavy loss.
        let retried = drain(&mut t, rto * 3);
        for o in &retried {
            t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, rto * 3 + ms(1)));
        }
        assert_eq!(t.retry_budget(), 3);
        // The ten silent ones are opened again and get a third try.
        assert!(!t.is_done());
        let open: Vec<u64> = t
            .findings()
            .enumerate()
            .filter(|(_, f)| f.3.is_none())
            .map(|(i, _)| i as u64)
            .collect();
        let mut silent: Vec<u64> = first.iter().map(|o| o.index).collect();
        silent.sort_unstable();
        assert_eq!(open, silent);
        let again = drain(&mut t, rto * 3 + ms(2));
        assert!(!again.is_empty());
        assert!(again
            .iter()
            .all(|o| o.attempt == 2 && silent.contains(&o.index)));
    }

    #[test]
    fn the_window_shrinks_at_most_once_per_timeout() {
        let mut t = tracker((1..=40).collect(), &["syn"]);
        let first: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        let rto = TimingParams::default().initial_rto;
        let again: Vec<_> = std::iter::from_fn(|| t.poll_send(rto)).collect();
        assert_eq!((first.len(), again.len()), (4, 4));
        // Four answers to retries in one burst halve the window once:
        // 4 + 1 = 5, halved to 2.5, then linear growth to about 3.56.
        // Halving on every one would leave it at the floor of 2.
        for o in &again {
            t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, rto + ms(1)));
        }
        assert_eq!(t.window.size(), 3);
    }

    #[test]
    fn under_steady_loss_the_window_halves_at_most_once_per_hold_not_per_short_timeout() {
        let mut t = tracker((1..=400).collect(), &["syn"]);
        let first: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        // A quick answer: timeouts drop to the 10 ms floor.
        t.on_reply(&reply_to(&first[0], ReplyKind::Rst { window: 0 }, ms(1)));
        for o in &first[1..] {
            t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, ms(1)));
        }
        assert_eq!(t.rto(), ms(10));
        // Rounds: one probe's first try is lost, its retry answered at the
        // time given; every other probe is answered at once.
        let mut sizes = Vec::new();
        for answer_at in [ms(20), ms(50), ms(140)] {
            let start = answer_at - ms(15);
            let batch: Vec<_> = std::iter::from_fn(|| t.poll_send(start)).collect();
            let (lost, rest) = batch.split_first().expect("room in the window");
            for o in rest {
                t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, start));
            }
            let retry = std::iter::from_fn(|| t.poll_send(answer_at - ms(1)))
                .find(|o| o.index == lost.index)
                .expect("the lost try is sent again after 10 ms");
            assert_eq!(retry.attempt, 1);
            let before = t.window.size();
            t.on_reply(&reply_to(&retry, ReplyKind::Rst { window: 0 }, answer_at));
            sizes.push((before, t.window.size()));
        }
        // The first drop halves; 30 ms later (three timeouts, but within
        // the 100 ms hold) the next does not; 120 ms later one does again.
        assert!(sizes[0].1 < sizes[0].0, "{sizes:?}");
        assert!(sizes[1].1 >= sizes[1].0, "{sizes:?}");
        assert!(sizes[2].1 < sizes[2].0, "{sizes:?}");
    }

    #[test]
    fn each_host_gets_its_own_timeout_once_it_answers() {
        let h3 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let space = ProbeSpace::new(vec![H1, H2, h3], vec![22], 1);
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 1);
        let sent: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        let to = |h| sent.iter().find(|o| o.host == h).unwrap();
        t.on_reply(&reply_to(to(H1), ReplyKind::SynAck, ms(10)));
        t.on_reply(&reply_to(to(H2), ReplyKind::SynAck, ms(400)));
        // H1: srtt 10, rttvar 5 -> 30 ms. H2: srtt 400, rttvar 200 ->
        // 1200 ms. H3 has not answered: the scan's estimate (srtt 58.75,
        // rttvar 101.25 -> 463.75 ms).
        assert_eq!(t.rto_for(0), ms(30));
        assert_eq!(t.rto_for(1), ms(1200));
        assert_eq!(t.rto_for(2), Duration::from_micros(463_750));
        assert_eq!(t.open_found(), 2);
    }

    #[test]
    fn the_first_round_trip_shortens_the_initial_guess() {
        let mut t = tracker(vec![22, 23], &["syn"]);
        let sent: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        assert_eq!(sent.len(), 4);
        assert_eq!(t.next_deadline(), Some(TimingParams::default().initial_rto));
        // One answer in 1 ms: the others' deadlines drop to the 10 ms floor.
        t.on_reply(&reply_to(&sent[0], ReplyKind::Rst { window: 0 }, ms(1)));
        assert_eq!(t.next_deadline(), Some(ms(10)));
        t.expire(ms(10));
        assert_eq!(
            t.in_flight(),
            0,
            "the three silent probes timed out at 10 ms"
        );
    }

    /// Sends and times out until every probe is decided; returns the orders.
    fn run_silent(t: &mut Tracker, mut now: Time) -> (Vec<SendOrder>, Time) {
        let mut orders = Vec::new();
        while !t.is_done() {
            orders.extend(std::iter::from_fn(|| t.poll_send(now)));
            now = t
                .next_deadline()
                .expect("undecided probes wait for a timeout");
            t.expire(now);
        }
        (orders, now)
    }

    #[test]
    fn a_late_reply_revises_silence_and_makes_timeouts_longer() {
        let mut t = tracker(vec![22, 23], &["syn"]);
        let (orders, end) = run_silent(&mut t, ms(0));
        assert!(t
            .findings()
            .all(|f| f.3.unwrap().reason == Reason::NoResponse));
        assert!(t.final_wait() >= t.rto());
        assert_eq!(t.listen_until(), Some(end + t.final_wait()));
        let floor = t.floor;
        // The first try's answer, after all three tries timed out.
        let first = orders.iter().find(|o| o.attempt == 0).unwrap();
        let late = reply_to(first, ReplyKind::SynAck, end + ms(1));
        assert!(matches!(
            t.on_reply(&late),
            ReplyEffect::Revised { rule: 0, .. }
        ));
        let f = t.findings().nth(first.index as usize).unwrap().3.unwrap();
        assert_eq!((f.state, f.ttl), (PortState::Open, Some(64)));
        assert_eq!(t.floor, floor * 2);
        assert_eq!(
            (t.stats().revised, t.stats().replies, t.open_found()),
            (1, 1, 1)
        );
        // Now decided by a reply: another copy is a duplicate.
        assert_eq!(t.on_reply(&late), ReplyEffect::Duplicate);
        // An answer to a try never sent (the fourth) is not believed.
        let other = orders
            .iter()
            .find(|o| o.index != first.index && o.attempt == 0)
            .unwrap();
        let mut forged = reply_to(other, ReplyKind::SynAck, end + ms(2));
        forged.attempt_slot = 3;
        assert_eq!(t.on_reply(&forged), ReplyEffect::Unexpected);
        assert!(t.is_done());
    }

    #[test]
    fn a_late_host_unreachable_neither_times_nor_slows_the_scan() {
        // An empty address: silence, then, seconds later, host-unreachable
        // (the neighbour's ARP gave up). Another host answers at once.
        let mut t = tracker(vec![22], &["syn"]);
        let sent: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        let live = sent.iter().find(|o| o.host == H1).unwrap();
        t.on_reply(&reply_to(live, ReplyKind::Rst { window: 0 }, ms(1)));
        let rto = t.rto();
        let (_, end) = run_silent(&mut t, ms(1));
        let floor = t.floor;
        let dead = sent.iter().find(|o| o.host == H2).unwrap();
        let late = reply_to(dead, ReplyKind::Unreachable { code: 1 }, end + ms(3000));
        assert!(matches!(t.on_reply(&late), ReplyEffect::Revised { .. }));
        assert_eq!(t.floor, floor, "no back-off for a host-unreachable");
        assert_eq!(t.rto(), rto, "and no three-second round trip");
        assert_eq!(t.retry_budget(), TimingParams::default().max_retries);
    }

    #[test]
    fn no_final_wait_when_every_probe_was_answered() {
        let mut t = tracker(vec![22], &["syn"]);
        let sent: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        for o in &sent {
            t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, ms(1)));
        }
        assert!(t.is_done());
        assert_eq!(t.listen_until(), None);
    }

    #[test]
    fn an_answer_overtaken_by_its_retransmission_doubles_the_floor_once_per_timeout() {
        let mut t = tracker((1..=4).collect(), &["syn"]);
        let first: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(0))).collect();
        assert_eq!(first.len(), 4);
        // One quick answer sets the RTT (3 ms, so the 10 ms floor rules)...
        t.on_reply(&reply_to(&first[0], ReplyKind::Rst { window: 0 }, ms(1)));
        assert_eq!(t.floor, ms(10));
        // ...the others time out at 10 ms and go again (before new probes)...
        let again: Vec<_> = std::iter::from_fn(|| t.poll_send(ms(10))).collect();
        assert_eq!(again.iter().filter(|o| o.attempt == 1).count(), 3);
        assert!(again[..3].iter().all(|o| o.attempt == 1));
        // ...and then their first tries' answers come: the timeout was too
        // short. Three such answers in one burst double the floor once.
        for o in &first[1..] {
            let effect = t.on_reply(&reply_to(o, ReplyKind::Rst { window: 0 }, ms(12)));
            assert!(matches!(effect, ReplyEffect::Decided { .. }));
        }
        assert_eq!(t.floor, ms(20));
        assert_eq!(t.rto(), ms(20));
        assert_eq!(t.stats().retransmissions, 3);
    }

    #[test]
    fn a_forced_send_passes_a_full_window() {
        let mut t = tracker((1..=10).collect(), &["syn"]);
        assert_eq!(std::iter::from_fn(|| t.poll_send(ms(0))).count(), 4);
        assert!(t.poll_send(ms(0)).is_none());
        assert!(t.poll_send_forced(ms(0)).is_some());
        assert_eq!(t.in_flight(), 5);
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

    /// 4,096 hosts x 4,096 ports (a /8's worth of probes) where nothing
    /// answers: what the tracker holds is a byte and a bit per probe, and
    /// otherwise what is under way, however many probes were concluded.
    #[test]
    fn a_silent_sweep_of_16_million_probes_costs_about_a_byte_per_probe() {
        let hosts: Vec<IpAddr> = (0..4096u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let space = ProbeSpace::new(hosts, (1..=4096).collect(), 1);
        let n = space.len();
        assert_eq!(n, 1 << 24);
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let mut t = Tracker::new(space, techniques, TimingParams::default(), 5);
        let budget = |t: &Tracker| t.approx_heap_bytes() as u64;
        let bound = n + n / 2 + (1 << 20);
        assert!(budget(&t) < bound, "new: {} bytes", budget(&t));
        let mut now = ms(0);
        let mut sent = 0;
        while sent < 5000 {
            sent += std::iter::from_fn(|| t.poll_send(now)).count();
            now = t.next_deadline().expect("probes wait for their timeouts");
            t.expire(now);
        }
        assert!(t.decided() > 1000, "some concluded: {}", t.decided());
        assert!(budget(&t) < bound, "{} bytes", budget(&t));
        assert!(t.host_rtt.is_empty() && t.answered_findings.is_empty());
        let concluded = t.decided();
        let f = t.into_findings();
        assert_eq!(f.len(), n);
        assert_eq!(f.concluded(), concluded);
        assert!((f.approx_heap_bytes() as u64) < n + (1 << 16));
    }

    /// Every kind of state comes out of the tracker, and through
    /// [`Findings`], as the probe ended: answered (open, closed), revised
    /// by a late reply, silent, skipped, excluded, not asked, and not
    /// concluded.
    #[test]
    fn findings_come_out_as_each_probe_ended() {
        let h3 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
        let techniques: Vec<Technique> = ["syn", "fin", "udp"]
            .iter()
            .map(|n| builtin_by_name(n).unwrap())
            .collect();
        let (tcp, udp) = ((1..=30).collect::<Vec<u16>>(), vec![5, 10, 53]);
        let space = ProbeSpace::with_protocols(vec![H1, H2, h3], &[tcp, udp], &[0, 0, 1]);
        let n = space.len();
        let mut t = Tracker::new(space, techniques.clone(), TimingParams::default(), 2);
        t.exclude_hosts([2]);
        let skipped: Vec<u64> = (0..n).filter(|i| i % 11 == 4 && t.space.asks(*i)).collect();
        t.skip(skipped.iter().copied());
        let mut now = ms(0);
        let mut late: Vec<Reply> = Vec::new();
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                let kind = match (o.technique, o.port % 5) {
                    (2, 0) => ReplyKind::Udp,
                    (2, _) => ReplyKind::Unreachable { code: 3 },
                    (_, 0) => continue,
                    (0, 1) => ReplyKind::SynAck,
                    (1, 1) => continue,
                    _ => ReplyKind::Rst { window: 0 },
                };
                let r = reply_to(&o, kind, now + ms(1));
                // Port 3's answers to FIN come after the scan gave up.
                if o.port == 3 && o.technique == 1 {
                    late.push(r);
                } else {
                    t.on_reply(&r);
                }
            }
            now += ms(5);
            t.expire(now);
        }
        for mut r in late.into_iter().filter(|r| r.attempt_slot == 0) {
            r.at = now;
            assert!(matches!(t.on_reply(&r), ReplyEffect::Revised { .. }));
        }
        let seen: Vec<Option<Finding>> = t.findings().map(|f| f.3).collect();
        for (i, f) in seen.iter().enumerate() {
            let i = i as u64;
            let (h, port, tech) = t.space.probe(i);
            assert_eq!(t.finding(i), *f);
            let want = if h == h3 || skipped.contains(&i) || !t.space.asks(i) {
                None
            } else {
                let (state, reason) = match (tech, port % 5, port) {
                    (2, 0, _) => (PortState::Open, Reason::UdpResponse),
                    (2, _, _) => (PortState::Closed, Reason::Unreachable(3)),
                    (0, 0, _) => (PortState::Filtered, Reason::NoResponse),
                    (_, 0, _) => (PortState::OpenFiltered, Reason::NoResponse),
                    (0, 1, _) => (PortState::Open, Reason::SynAck),
                    (1, 1, _) => (PortState::OpenFiltered, Reason::NoResponse),
                    // Port 3's FIN revised from silence.
                    (_, _, _) => (PortState::Closed, Reason::Reset),
                };
                Some((state, reason))
            };
            assert_eq!(f.map(|f| (f.state, f.reason)), want, "{h} {port} {tech}");
            if let Some(f) = f {
                let silent = f.reason == Reason::NoResponse;
                assert_eq!(f.ttl.is_none(), silent, "{f:?}");
            }
        }
        assert_eq!(t.stats().revised, 2, "port 3's FIN on two hosts");
        let findings = t.into_findings();
        assert_eq!(findings.len(), n);
        assert_eq!(findings.iter().collect::<Vec<_>>(), seen);
        let concluded = seen.iter().filter(|f| f.is_some()).count() as u64;
        assert_eq!(findings.concluded(), concluded);
        // Rebuilt probe by probe, the same.
        let again = Findings::of(&techniques, seen.iter().copied());
        assert_eq!(again.iter().collect::<Vec<_>>(), seen);
        assert_eq!(findings.get(n), None);
    }

    /// More distinct findings than a state byte can name (a TTL per
    /// port): the others are kept by probe, and every one comes out.
    #[test]
    fn findings_past_the_palette_come_out_too() {
        let techniques = vec![builtin_by_name("syn").unwrap()];
        let space = ProbeSpace::new(vec![H1], (1..=600).collect(), 1);
        let mut t = Tracker::new(space, techniques.clone(), TimingParams::default(), 4);
        let ttl = |port: u16| (port % 256) as u8;
        let mut now = ms(0);
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                let mut r = reply_to(&o, ReplyKind::Rst { window: 0 }, now + ms(1));
                r.ttl = ttl(o.port);
                t.on_reply(&r);
            }
            now += ms(5);
            t.expire(now);
        }
        assert!(!t.answered_findings.is_empty());
        let seen: Vec<Option<Finding>> = t.findings().map(|f| f.3).collect();
        for (i, f) in seen.iter().enumerate() {
            let port = t.space.probe(i as u64).1;
            let want = (ttl(port) != 0).then_some(ttl(port));
            assert_eq!(f.map(|f| f.ttl), Some(want), "port {port}");
        }
        let findings = t.into_findings();
        assert_eq!(findings.iter().collect::<Vec<_>>(), seen);
        assert_eq!(
            Findings::of(&techniques, seen.clone())
                .iter()
                .collect::<Vec<_>>(),
            seen
        );
    }

    /// What a scan sent (in any order), its findings, its marked probes
    /// and its retry budget at the end.
    type LossyScan = (Vec<(u64, u8)>, Vec<Option<Finding>>, Vec<u64>, u8);

    /// A scan on a lossy network whose answers depend on the probe and
    /// try alone (not on when they are sent), with `cap` as the silent
    /// log's cap. Every seventh port drops everything; of the others,
    /// `lost(index)` tries are lost first.
    fn lossy_scan_with_log_cap(cap: usize, lost: fn(u64) -> u8) -> LossyScan {
        let techniques: Vec<Technique> = ["syn", "udp"]
            .iter()
            .map(|n| builtin_by_name(n).unwrap())
            .collect();
        let ports: Vec<u16> = (1..=40).collect();
        let space = ProbeSpace::with_protocols(vec![H1, H2], &[ports.clone(), ports], &[0, 1]);
        let params = TimingParams {
            max_retries: 1,
            max_adaptive_retries: 4,
            ..TimingParams::default()
        };
        let mut t = Tracker::new(space, techniques, params, 9);
        t.silent_log_cap = cap;
        let mut sent = Vec::new();
        let mut now = ms(0);
        while !t.is_done() && now < Duration::from_secs(600) {
            while let Some(o) = t.poll_send(now) {
                sent.push((o.index, o.attempt));
                if o.port % 7 == 0 || o.attempt < lost(o.index) {
                    continue;
                }
                let kind = match (o.technique, o.port % 4) {
                    (1, 0) => ReplyKind::Udp,
                    (1, _) => ReplyKind::Unreachable { code: 3 },
                    (_, 0) => ReplyKind::SynAck,
                    _ => ReplyKind::Rst { window: 0 },
                };
                t.on_reply(&reply_to(&o, kind, now + ms(1)));
            }
            now += ms(5);
            t.expire(now);
        }
        assert!(t.is_done());
        assert_eq!(t.silent_overflow, cap < 100);
        sent.sort_unstable();
        let findings = t.findings().map(|f| f.3).collect();
        (sent, findings, t.rate_limited(), t.retry_budget())
    }

    /// Past its cap the silent log is given up and the probes concluded on
    /// silence are found by their state: the same ones get the extra tries
    /// that loss buys and are confirmed as a limiter's suspects.
    #[test]
    fn past_the_silent_logs_cap_the_same_probes_are_tried_again() {
        // Answers to retries: more tries for all, the silent ones reopened.
        let retried: fn(u64) -> u8 = |i| match (i % 3, i % 5) {
            (_, 0) => 2,
            (0, _) => 1,
            _ => 0,
        };
        // No answer to a retry, so no more tries: silences a limiter
        // would explain, confirmed and some marked.
        let limited: fn(u64) -> u8 = |i| if i % 3 == 0 { 2 } else { 0 };
        for (lost, what) in [(retried, "retried"), (limited, "limited")] {
            let whole = lossy_scan_with_log_cap(SILENT_LOG_CAP, lost);
            assert_eq!(whole.3 > 1, what == "retried", "{what}: loss bought tries");
            assert_eq!(!whole.2.is_empty(), what == "limited", "{what}: marked");
            assert_eq!(lossy_scan_with_log_cap(3, lost), whole, "{what}");
        }
    }

    /// A scan of TCP and UDP, concluded by the tracker, splits into the
    /// two scans it stands for with each probe's finding.
    #[test]
    fn a_tracked_pass_of_tcp_and_udp_splits_by_protocol() {
        let techniques: Vec<Technique> = ["syn", "udp"]
            .iter()
            .map(|n| builtin_by_name(n).unwrap())
            .collect();
        let (tcp, udp) = (vec![22, 80, 443], vec![53, 80]);
        let space = ProbeSpace::with_protocols(vec![H1, H2], &[tcp.clone(), udp.clone()], &[0, 1]);
        let mut t = Tracker::new(
            space.clone(),
            techniques.clone(),
            TimingParams::default(),
            6,
        );
        let mut now = ms(0);
        while !t.is_done() {
            while let Some(o) = t.poll_send(now) {
                let kind = match (o.technique, o.port) {
                    (0, 22) => ReplyKind::SynAck,
                    (0, 443) | (1, 53) => continue,
                    (0, _) => ReplyKind::Rst { window: 0 },
                    _ => ReplyKind::Unreachable { code: 3 },
                };
                t.on_reply(&reply_to(&o, kind, now + ms(1)));
            }
            now += ms(5);
            t.expire(now);
        }
        let whole: Vec<(IpAddr, u16, usize, Option<Finding>)> = t.findings().collect();
        let result = crate::model::result::ScanResult {
            space,
            techniques,
            findings: t.into_findings(),
            stats: Default::default(),
            seed: 6,
            interrupted: false,
            complete: true,
            decided: Vec::new(),
            hosts: Default::default(),
            rate_limited: Vec::new(),
            limits: Vec::new(),
            names: Vec::new(),
        };
        let parts = result.by_protocol();
        assert_eq!(parts.len(), 2);
        for (part, (proto, ports)) in parts.iter().zip([(0, &tcp), (1, &udp)]) {
            assert_eq!(&part.space.ports, ports);
            assert_eq!(part.findings.len(), 2 * ports.len() as u64);
            assert_eq!(part.findings.concluded(), part.findings.len());
            for i in 0..part.findings.len() {
                let (h, p, _) = part.space.probe(i);
                let want = whole
                    .iter()
                    .find(|w| (w.0, w.1, w.2) == (h, p, proto))
                    .and_then(|w| w.3);
                assert_eq!(part.findings.get(i), want, "{h} {p}");
            }
        }
        let states = |r: &crate::model::result::ScanResult| -> Vec<PortState> {
            r.findings.iter().map(|f| f.unwrap().state).collect()
        };
        use PortState::*;
        assert_eq!(
            states(&parts[0]),
            [Open, Closed, Filtered, Open, Closed, Filtered]
        );
        assert_eq!(
            states(&parts[1]),
            [OpenFiltered, Closed, OpenFiltered, Closed]
        );
    }
}
