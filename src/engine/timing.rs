//! Round-trip time and the congestion window.
//!
//! RTT smoothing and the retransmission timeout follow RFC 6298; the window
//! follows nmap's scan engine: it grows with every reply and halves when an
//! answer arrives for a retransmission, the sign that the first try was lost.

use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingParams {
    /// Timeout before the first RTT sample.
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// Probes sent again after the first, before concluding no-response,
    /// while no loss is seen: one, as nmap starts with (it allows more
    /// only once a retransmission is answered, and so does the tracker).
    pub max_retries: u8,
    /// When answers to retransmissions show loss, the tracker allows more
    /// retries, up to this many (nmap -T4 allows 6).
    pub max_adaptive_retries: u8,
    pub initial_cwnd: f64,
    pub max_cwnd: f64,
    /// The window halves at most once per this long (or per timeout, if
    /// that is longer). It is nmap's timeout floor: lowering the floor made
    /// timeouts shorter, and must not make the window shrink ten times as
    /// often under steady random loss (measured: 10% loss, 10,000 ports,
    /// 0.7 s with this, 2.1 s with the 10 ms floor as the interval).
    pub window_hold: Duration,
}

impl Default for TimingParams {
    /// nmap -T4's values (initial 500 ms, ceiling 1250 ms), but a floor of
    /// 10 ms instead of 100 ms: the timeout comes from the measured round
    /// trips (RFC 6298), and a reply that comes after it is not lost, it
    /// revises the no-response conclusion (and doubles the floor) until
    /// the scan ends, which waits for such replies (see
    /// `Tracker::final_wait`). On a LAN, nmap's 100 ms floor is what most
    /// of a scan of a filtering host waits for.
    fn default() -> TimingParams {
        TimingParams {
            initial_rto: Duration::from_millis(500),
            min_rto: Duration::from_millis(10),
            max_rto: Duration::from_millis(1250),
            max_retries: 1,
            max_adaptive_retries: 6,
            initial_cwnd: 64.0,
            max_cwnd: 4096.0,
            window_hold: Duration::from_millis(100),
        }
    }
}

/// A timing template (`-T0`..`-T5`), nmap's names and spirit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Template {
    pub name: &'static str,
    pub params: TimingParams,
    /// Probes per second at most (`--max-rate` overrides).
    pub max_rate: Option<f64>,
}

/// The values `--help` and the README document for `-T0`..`-T5`.
pub fn template(level: u8) -> Option<Template> {
    let ms = Duration::from_millis;
    let base = TimingParams::default();
    // `hold` is nmap's timeout floor, kept for the window (see window_hold).
    let t =
        |name, initial, min, hold, max, cwnd: f64, max_cwnd: f64, adaptive, max_rate| Template {
            name,
            params: TimingParams {
                initial_rto: ms(initial),
                min_rto: ms(min),
                window_hold: ms(hold),
                max_rto: ms(max),
                initial_cwnd: cwnd,
                max_cwnd,
                max_adaptive_retries: adaptive,
                ..base
            },
            max_rate,
        };
    Some(match level {
        0 => t(
            "paranoid",
            5000,
            1000,
            1000,
            10_000,
            1.0,
            1.0,
            6,
            Some(1.0 / 300.0),
        ),
        1 => t(
            "sneaky",
            5000,
            1000,
            1000,
            10_000,
            1.0,
            1.0,
            6,
            Some(1.0 / 15.0),
        ),
        2 => t("polite", 1000, 100, 100, 10_000, 1.0, 16.0, 6, Some(2.5)),
        3 => t("normal", 1000, 100, 100, 10_000, 64.0, 4096.0, 7, None),
        4 => Template {
            name: "aggressive",
            params: base,
            max_rate: None,
        },
        5 => t("insane", 250, 5, 50, 300, 256.0, 8192.0, 2, None),
        _ => return None,
    })
}

/// RFC 6298 estimator.
#[derive(Debug, Clone, Default)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    pub fn rto(&self, p: &TimingParams) -> Duration {
        match self.srtt {
            None => p.initial_rto,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(p.min_rto, p.max_rto),
        }
    }
}

/// Retries needed so that, with `loss` the share of answers that came only
/// on a retry, fewer than 0.01 of `probes` probes would fail every try and
/// be taken for silent. Clamped to `[base, cap]`.
pub fn retries_for_loss(loss: f64, probes: u64, base: u8, cap: u8) -> u8 {
    if loss <= 0.0 {
        return base;
    }
    let loss = loss.min(0.99);
    let tries = ((0.01 / probes.max(1) as f64).ln() / loss.ln()).ceil();
    let retries = (tries - 1.0).clamp(0.0, 255.0) as u8;
    retries.clamp(base, cap.max(base))
}

/// How many probes may be awaiting an answer at once.
#[derive(Debug, Clone)]
pub struct CongestionWindow {
    cwnd: f64,
    ssthresh: f64,
    max: f64,
}

impl CongestionWindow {
    pub fn new(p: &TimingParams) -> CongestionWindow {
        CongestionWindow {
            cwnd: p.initial_cwnd,
            ssthresh: p.max_cwnd,
            max: p.max_cwnd,
        }
    }

    pub fn size(&self) -> usize {
        self.cwnd as usize
    }

    pub fn on_reply(&mut self) {
        // Slow start doubles per window of replies, then linear growth.
        self.cwnd += if self.cwnd < self.ssthresh {
            1.0
        } else {
            1.0 / self.cwnd
        };
        self.cwnd = self.cwnd.min(self.max);
    }

    pub fn on_drop(&mut self) {
        self.ssthresh = (self.cwnd / 2.0).max(2.0).min(self.max);
        self.cwnd = self.ssthresh;
    }
}

/// A token bucket for `--max-rate`, kept by the scan loop (not the sender)
/// so that a probe's send time is when it really may leave: pacing inside
/// the sender would let queued probes time out before they were sent.
#[derive(Debug, Clone)]
pub struct RateBudget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl RateBudget {
    /// `rate` probes per second; bursts of at most 10 ms worth (and at
    /// least one probe), so an idle spell does not turn into a flood.
    pub fn new(rate: f64) -> RateBudget {
        let burst = (rate / 100.0).max(1.0);
        RateBudget {
            rate,
            burst,
            tokens: burst,
            last: Duration::ZERO,
        }
    }

    fn refill(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        // Two threads share one budget, each with its own `now`: an older
        // one must not move the clock back and be credited twice.
        self.last = self.last.max(now);
    }

    /// How many probes may go now.
    pub fn available(&mut self, now: Duration) -> usize {
        self.refill(now);
        self.tokens.floor() as usize
    }

    pub fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// How long until one more probe may go.
    pub fn wait(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }
}

/// One [`RateBudget`] drawn from by host discovery and by the port scan
/// running beside it: `--max-rate` caps both together.
pub struct SharedRate(Mutex<RateBudget>);

impl SharedRate {
    pub fn new(rate: f64) -> SharedRate {
        SharedRate(Mutex::new(RateBudget::new(rate)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateBudget> {
        // A panicked holder left whole numbers: still a budget.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn available(&self, now: Duration) -> usize {
        self.lock().available(now)
    }

    pub fn take(&self, n: usize) {
        self.lock().take(n)
    }

    pub fn wait(&self) -> Duration {
        self.lock().wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_shared_rate_is_not_credited_twice_for_one_interval() {
        // 1,000 a second, bursts of 10; two threads look at it with their
        // own clocks, one lagging behind the other.
        let r = SharedRate::new(1000.0);
        let mut sent = 0;
        for t in 0..1000u64 {
            for now in [ms(t), ms(t.saturating_sub(3))] {
                let n = r.available(now);
                r.take(n);
                sent += n;
            }
        }
        assert!(
            sent <= 1000 + 10,
            "{sent} sent in one second at 1,000 a second"
        );
        assert!(sent >= 990, "{sent}");
    }

    #[test]
    fn rto_follows_rfc6298_and_is_clamped() {
        let p = TimingParams {
            min_rto: ms(10),
            ..TimingParams::default()
        };
        let mut e = RttEstimator::default();
        assert_eq!(e.rto(&p), p.initial_rto);
        e.sample(ms(100));
        // srtt 100, rttvar 50 -> 300.
        assert_eq!(e.rto(&p), ms(300));
        e.sample(ms(100));
        // rttvar 37.5 -> 250.
        assert_eq!(e.rto(&p), ms(250));
        let mut fast = RttEstimator::default();
        fast.sample(Duration::from_micros(50));
        assert_eq!(fast.rto(&p), ms(10));
        let mut slow = RttEstimator::default();
        slow.sample(Duration::from_secs(5));
        assert_eq!(slow.rto(&p), p.max_rto);
    }

    #[test]
    fn templates_slow_down_from_5_to_0() {
        assert_eq!(template(4).unwrap().params, TimingParams::default());
        assert!(template(6).is_none());
        let rates: Vec<f64> = (0..=5)
            .map(|l| template(l).unwrap().max_rate.unwrap_or(f64::INFINITY))
            .collect();
        assert!(rates.windows(2).all(|w| w[0] <= w[1]), "{rates:?}");
        let rto: Vec<Duration> = (0..=5)
            .map(|l| template(l).unwrap().params.initial_rto)
            .collect();
        assert!(rto.windows(2).all(|w| w[0] >= w[1]), "{rto:?}");
        // A one-probe window stays one probe even after a drop.
        let mut w = CongestionWindow::new(&template(0).unwrap().params);
        w.on_drop();
        assert_eq!(w.size(), 1);
    }

    #[test]
    fn retries_grow_with_observed_loss() {
        // No loss seen: the configured retries.
        assert_eq!(retries_for_loss(0.0, 10_000, 2, 6), 2);
        // 10% of answers needed a retry: 10,000 probes need 6 tries.
        assert_eq!(retries_for_loss(0.1, 10_000, 2, 6), 5);
        // A stray late answer among thousands: no change.
        assert_eq!(retries_for_loss(2.0 / 65_537.0, 65_535, 2, 6), 2);
        // Heavy loss hits the cap; the cap never goes below the base.
        assert_eq!(retries_for_loss(0.5, 10_000, 2, 6), 6);
        assert_eq!(retries_for_loss(0.5, 10_000, 7, 6), 7);
    }

    #[test]
    fn rate_budget_paces_and_does_not_bank_idle_time() {
        let mut b = RateBudget::new(1000.0);
        // Burst of 10 ms worth.
        assert_eq!(b.available(Duration::ZERO), 10);
        b.take(10);
        assert_eq!(b.available(Duration::ZERO), 0);
        assert_eq!(b.wait(), ms(1));
        assert_eq!(b.available(ms(5)), 5);
        b.take(5);
        // A long idle spell refills only the burst.
        assert_eq!(b.available(Duration::from_secs(10)), 10);
        // Over a second of steady use, about `rate` probes go.
        let mut b = RateBudget::new(300.0);
        let mut sent = 0;
        for t in 0..=1000 {
            let n = b.available(ms(t));
            b.take(n);
            sent += n;
        }
        assert!((300..=304).contains(&sent), "{sent}");
    }

    #[test]
    fn window_grows_on_replies_and_halves_on_drops() {
        let p = TimingParams {
            initial_cwnd: 10.0,
            max_cwnd: 100.0,
            ..TimingParams::default()
        };
        let mut w = CongestionWindow::new(&p);
        for _ in 0..10 {
            w.on_reply();
        }
        assert_eq!(w.size(), 20);
        w.on_drop();
        assert_eq!(w.size(), 10);
        // After a drop, growth is linear: ten replies add about one.
        for _ in 0..10 {
            w.on_reply();
        }
        assert_eq!(w.size(), 10);
        for _ in 0..100_000 {
            w.on_reply();
        }
        assert_eq!(w.size(), 100);
    }
}
