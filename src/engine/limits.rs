//! Hosts that rate-limit their answers: what gives them away, and how
//! their silent probes are confirmed.
//!
//! Linux sends at most one ICMP error per second per destination (a burst
//! of 6); BSD stacks and many devices cap RSTs (FreeBSD: 200 a second). A
//! probe whose answer the limiter ate is silent, exactly like one a DROP
//! rule ate. So a silent probe is *suspect* when its host shows a limiter
//! and an answer of the limited kind would change the probe's state (or,
//! for a few probes, only its reason). Suspects are sent again after the
//! main pass, paced to the answer rate measured while pacing, within a
//! per-host time budget; those still silent when it ends keep their state
//! and are marked unconfirmed.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::probe::Time;
use crate::model::result::LimitKind;

/// What one host's answers showed during the main pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerCounts {
    pub rst: u32,
    /// RSTs that answered a retry only (the first try got nothing).
    pub rst_late: u32,
    /// SYN/ACKs and ICMP errors, and those that answered a retry only.
    pub other: u32,
    pub other_late: u32,
    pub icmp: u32,
    pub icmp_first: Option<Time>,
    pub icmp_last: Option<Time>,
}

/// Linux's per-destination ICMP bucket: the burst and the refill per second.
pub const LINUX_ICMP_BURST: f64 = 6.0;
const LINUX_ICMP_PER_SEC: f64 = 1.0;

impl AnswerCounts {
    /// A limiter of ICMP errors may have eaten answers: the host sent
    /// about as many as Linux's bucket allows (a burst, then one a
    /// second; or two fewer, a bucket a recent scan left short), not
    /// fewer (then the bucket never ran dry) and not clearly more (then
    /// it does not limit them).
    pub fn icmp_limited(&self) -> bool {
        let (Some(first), Some(last)) = (self.icmp_first, self.icmp_last) else {
            return false;
        };
        let span = last.saturating_sub(first).as_secs_f64();
        let allowed = LINUX_ICMP_BURST + LINUX_ICMP_PER_SEC * (span + 1.0);
        f64::from(self.icmp) >= LINUX_ICMP_BURST - 2.0 && f64::from(self.icmp) <= allowed
    }

    /// Many RSTs came only to retries (the limiter refilled between
    /// tries): a quarter of them at least, where random loss of a few
    /// percent makes a few late ones; and RSTs far more often than the
    /// host's other answers, which loss would delay alike.
    pub fn rst_limited(&self) -> bool {
        let late = |n: u32, of: u32| f64::from(n) / f64::from(of.max(1));
        self.rst >= 5
            && self.rst_late >= 2
            && late(self.rst_late, self.rst) >= 0.25
            && (self.other == 0
                || late(self.other_late, self.other) * 3.0 < late(self.rst_late, self.rst))
    }
}

/// Tries a suspect gets while paced, before its silence is taken as real:
/// one whose own port answered another technique with an ICMP error, or
/// any suspect of a host that limits RSTs (most of its ports answer), gets
/// many; one suspected only because its host's ICMP errors ran out, a
/// few (an open port's FIN is silent whatever the limiter does).
pub const PACED_TRIES: u8 = 10;
pub const PACED_TRIES_WEAK: u8 = 3;
/// Paced probes are sent this many times faster than the measured answer
/// rate: a limiter drops what finds no token and keeps the token, so a
/// probe that arrives too early costs nothing but itself, and every token
/// finds a probe soon after it is made.
const OVERSEND: f64 = 1.5;
/// Wait before the first paced probe, so that the bucket refills (nmap
/// waits one second before a host's first retry round, RLD_TIME).
pub fn refill_wait(kind: LimitKind) -> Duration {
    match kind {
        LimitKind::Icmp => Duration::from_secs(1),
        LimitKind::Rst => Duration::from_millis(200),
    }
}
/// Sends before any answer measured the rate: nmap's first send delay
/// for TCP (5 ms), and for ICMP errors a guess at a tenth of a second.
fn first_interval(kind: LimitKind) -> Duration {
    match kind {
        LimitKind::Icmp => Duration::from_millis(100),
        LimitKind::Rst => Duration::from_millis(5),
    }
}
/// A pacing that has sent this many probes over this long with no answer
/// at all found no limiter: its probes are silent for real.
const NO_LIMITER_AFTER: (u32, Duration) = (8, Duration::from_secs(2));

/// One host's paced confirmation.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub kind: LimitKind,
    pub queue: VecDeque<u64>,
    pub next_send: Time,
    pub interval: Duration,
    pub started: Time,
    pub budget_end: Time,
    /// Recent paced answers' arrival times (the measured rate).
    answers: VecDeque<Time>,
    pub sent: u32,
    /// `sent` when the latest answer came.
    sent_at_answer: u32,
    pub answered: u32,
    /// Probes paced in all.
    pub suspects: u32,
    /// Concluded silent and marked rate_limited: when the budget ended,
    /// or (`out_of_tries` of them) after every paced try.
    pub unconfirmed: u32,
    pub out_of_tries: u32,
    /// The same counts per protocol (TCP, UDP) of the suspects, for a pass
    /// of both, whose findings each protocol tells apart.
    pub lanes: [Tally; 2],
}

/// What pacing did for one protocol's suspects of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub paced: u32,
    pub confirmed: u32,
    pub unconfirmed: u32,
    pub out_of_tries: u32,
}

impl Pacing {
    pub fn new(kind: LimitKind, now: Time, budget: Duration) -> Pacing {
        let start = now + refill_wait(kind);
        Pacing {
            kind,
            queue: VecDeque::new(),
            next_send: start,
            interval: first_interval(kind),
            started: start,
            budget_end: start + budget,
            answers: VecDeque::new(),
            sent: 0,
            sent_at_answer: 0,
            answered: 0,
            suspects: 0,
            unconfirmed: 0,
            out_of_tries: 0,
            lanes: [Tally::default(); 2],
        }
    }

    /// A suspect of `lane` (0 TCP, 1 UDP) left unconfirmed: at the
    /// budget's end (`over`) or out of paced tries.
    pub fn mark(&mut self, lane: usize, over: bool) {
        self.unconfirmed += 1;
        self.out_of_tries += u32::from(!over);
        self.lanes[lane].unconfirmed += 1;
        self.lanes[lane].out_of_tries += u32::from(!over);
    }

    /// The next suspect to send at `now`, if its turn has come.
    pub fn next(&mut self, now: Time) -> Option<u64> {
        if now < self.next_send || now >= self.budget_end {
            return None;
        }
        let index = self.queue.pop_front()?;
        self.sent += 1;
        self.next_send = now + self.interval;
        Some(index)
    }

    /// A paced probe was answered at `at`: the limiter's rate is measured
    /// from the spacing of the answers.
    pub fn on_answer(&mut self, at: Time) {
        self.answered += 1;
        self.sent_at_answer = self.sent;
        self.answers.push_back(at);
        if self.answers.len() > 16 {
            self.answers.pop_front();
        }
        if let (Some(first), Some(last), n) = (
            self.answers.front(),
            self.answers.back(),
            self.answers.len(),
        ) {
            if n >= 3 && last > first {
                let spacing = (*last - *first).as_secs_f64() / (n - 1) as f64;
                let secs = (spacing / OVERSEND).clamp(0.0005, 1.0);
                self.interval = Duration::from_secs_f64(secs);
            }
        }
    }

    /// Whether the pacing has shown there is no limiter to wait for.
    pub fn found_nothing(&self, now: Time) -> bool {
        self.answered == 0
            && self.sent >= NO_LIMITER_AFTER.0
            && now >= self.started + NO_LIMITER_AFTER.1
    }

    /// Whether the suspects left are silent in truth: the limiter answered
    /// (a rate was measured), and has stopped although tries kept going
    /// out for three times as long as its longest pause between answers
    /// (and at least 2 s). Its bucket held tokens for them; they were not
    /// spent.
    pub fn gone_quiet(&self, now: Time) -> bool {
        let Some(&last) = self.answers.back() else {
            return false;
        };
        if self.answered < 3 || self.rate().is_none() {
            return false;
        }
        let longest = self
            .answers
            .iter()
            .zip(self.answers.iter().skip(1))
            .map(|(a, b)| *b - *a)
            .max()
            .unwrap_or_default();
        let quiet = (longest * 3).max(Duration::from_secs(2));
        self.sent >= self.sent_at_answer + 3 && now >= last + quiet
    }

    /// The measured rate of answers, per second.
    pub fn rate(&self) -> Option<f64> {
        let (first, last) = (self.answers.front()?, self.answers.back()?);
        let n = self.answers.len();
        (n >= 2 && last > first).then(|| (n - 1) as f64 / (*last - *first).as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Duration::from_millis(n)
    }

    #[test]
    fn icmp_counts_that_fit_linuxs_bucket_and_those_that_do_not() {
        let c = |n, first, last| AnswerCounts {
            icmp: n,
            icmp_first: Some(ms(first)),
            icmp_last: Some(ms(last)),
            ..Default::default()
        };
        // A burst of 6 within a tenth of a second: the bucket ran dry.
        assert!(c(6, 0, 100).icmp_limited());
        // Two REJECTed ports: the bucket never ran dry.
        assert!(!c(2, 0, 100).icmp_limited());
        // Four: a bucket a recent scan left two short.
        assert!(c(4, 0, 100).icmp_limited());
        // Eight in half a second: more than the bucket gives, no limiter.
        assert!(!c(8, 0, 500).icmp_limited());
        // Twelve over six seconds: a burst and one a second.
        assert!(c(12, 0, 6000).icmp_limited());
        assert!(!AnswerCounts::default().icmp_limited());
    }

    #[test]
    fn rsts_mostly_answering_retries_show_a_limiter_and_a_few_do_not() {
        let c = |rst, rst_late| AnswerCounts {
            rst,
            rst_late,
            ..Default::default()
        };
        assert!(c(3000, 2900).rst_limited());
        assert!(!c(3000, 300).rst_limited(), "10% loss");
        // One retry round of a short scan: 5 in the burst, 3 refilled.
        assert!(c(8, 3).rst_limited());
        assert!(!c(4, 4).rst_limited(), "too few to tell");
        // Heavy loss delays SYN/ACKs as much as RSTs: no limiter.
        let lossy = AnswerCounts {
            other: 20,
            other_late: 10,
            ..c(300, 150)
        };
        assert!(!lossy.rst_limited());
        let limited = AnswerCounts {
            other: 20,
            other_late: 1,
            ..c(300, 250)
        };
        assert!(limited.rst_limited());
    }

    #[test]
    fn pacing_waits_for_the_refill_and_follows_the_measured_rate() {
        let mut p = Pacing::new(LimitKind::Icmp, ms(0), Duration::from_secs(30));
        p.queue.extend(0..100);
        assert_eq!(p.next(ms(999)), None, "the bucket refills first");
        assert_eq!(p.next(ms(1000)), Some(0));
        assert_eq!(p.next(ms(1050)), None, "paced");
        assert_eq!(p.next(ms(1100)), Some(1));
        // Answers a second apart: probes go 1.5 times a second.
        for s in 1..=4 {
            p.on_answer(ms(1000 * s));
        }
        assert_eq!(p.interval.as_millis(), 666);
        assert!((p.rate().unwrap() - 1.0).abs() < 1e-9);
        // Nothing is sent once the budget is spent.
        p.next_send = ms(0);
        assert_eq!(p.next(ms(31_000)), None);
    }

    #[test]
    fn a_limiter_that_stops_answering_while_tries_go_on_has_gone_quiet() {
        let mut p = Pacing::new(LimitKind::Icmp, ms(0), Duration::from_secs(30));
        p.queue.extend(0..100);
        let mut now = ms(1000);
        // An answer a second (the bucket's refill), the tries going out
        // 1.5 times as fast.
        for s in 1..=5u64 {
            while now < ms(1000 * s) {
                p.next(now);
                now += ms(10);
            }
            p.on_answer(ms(1000 * s));
            assert!(!p.gone_quiet(now), "answering at {s} s");
        }
        // Silence: quiet once three of the longest pauses (1 s) passed
        // with tries going out, not before.
        while now < ms(7900) {
            p.next(now);
            now += ms(10);
            assert!(!p.gone_quiet(now), "{now:?}");
        }
        while now < ms(8100) {
            p.next(now);
            now += ms(10);
        }
        assert!(p.gone_quiet(now));
        // Without tries in the silence, it proves nothing.
        let mut idle = Pacing::new(LimitKind::Icmp, ms(0), Duration::from_secs(30));
        for s in 1..=5u64 {
            idle.on_answer(ms(1000 * s));
        }
        assert!(!idle.gone_quiet(ms(20_000)));
    }

    #[test]
    fn a_pacing_without_answers_finds_no_limiter() {
        let mut p = Pacing::new(LimitKind::Rst, ms(0), Duration::from_secs(30));
        p.queue.extend(0..100);
        let mut now = ms(200);
        while !p.found_nothing(now) {
            p.next(now);
            now += ms(5);
            assert!(now < ms(5000));
        }
        assert!(p.sent >= 8);
    }

    #[test]
    fn the_time_to_confirm_follows_the_rate() {
        let r = crate::model::result::RateLimit {
            host: 0,
            kind: LimitKind::Icmp,
            rate: None,
            paced: 194,
            confirmed: 40,
            unconfirmed: 154,
            out_of_tries: 0,
            budget: Duration::from_secs(40),
            protocol: None,
            stopped: false,
        };
        assert_eq!(r.time_to_confirm(), Duration::from_secs(154));
        // Those out of paced tries take no more time: they would not answer.
        let r = crate::model::result::RateLimit {
            out_of_tries: 54,
            ..r
        };
        assert_eq!(r.time_to_confirm(), Duration::from_secs(100));
    }
}
