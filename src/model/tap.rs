//! Taps: observers of the packets a scan sends and hears (`--pcap` and
//! `--packet-trace` are two, in `output/`). The engine calls them
//! and knows nothing of what they write; without taps it never builds
//! what they would be shown.

use std::net::IpAddr;

use crate::model::probe::Time;
use crate::model::reply::{ReplyEffect, Traced};
use crate::model::technique::Technique;
use crate::wire::ProbeFields;

/// One probe to send, fully decided by the scan loop.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    pub technique: usize,
    /// 0 for the first try (shown by `--packet-trace`).
    pub attempt: u8,
    pub fields: ProbeFields,
}

/// Called from the sender thread (probes), the receiver thread (captured
/// packets) and the scan loop (what a packet did). With any tap the
/// sender sends from one thread, so calls keep the order in which probes
/// left.
pub trait Tap: Send + Sync {
    /// A probe left: its IPv4 packet, at scan time `at`.
    fn sent(&self, at: Time, order: &Order, packet: &[u8]);
    /// The kernel refused a probe; it counts as sent and unanswered.
    fn send_failed(&self, at: Time, order: &Order, error: &str);
    /// A packet addressed to our probe ports was captured (believed or not).
    fn captured(&self, packet: &[u8]);
    /// Whether [`Tap::heard`] is wanted: the receiver then hands the scan
    /// loop every packet addressed to us, not only believed replies.
    fn wants_heard(&self) -> bool {
        false
    }
    /// A captured packet, with what validation and the tracker made of it
    /// (`effect` is `None` for a packet that was not believed).
    fn heard(&self, _packet: &Traced, _effect: Option<ReplyEffect>) {}
    /// Host discovery asked a host or heard from one (a line for
    /// `--packet-trace`).
    fn discovery(&self, _at: Time, _what: &str) {}
    /// An IPv4 packet of host discovery: a ping sent (`sent`), or an
    /// answer believed (for `--pcap`; ARP, not IPv4, is not given).
    fn ping_packet(&self, _sent: bool, _packet: &[u8]) {}
}

/// The taps of one scan (none, usually).
pub type Taps = Vec<std::sync::Arc<dyn Tap>>;

/// A live view of a scan's progress (the progress line on a terminal),
/// updated a few times a second from the scan loop.
pub trait ProgressView: Send + Sync {
    /// `decided` of `total` probes decided; `open` ports found so far.
    fn update(&self, decided: u64, total: u64, open: u64);
    /// A reply just found `port` open on `host` to `technique` (of
    /// `techniques` in the scan): `-v` tells it at once.
    fn found_open(&self, _host: IpAddr, _port: u16, _technique: &Technique, _techniques: usize) {}
    /// The scan's timing changed its mind (`-v` tells it).
    fn timing_note(&self, _note: &TimingNote, _now: &TimingState) {}
    /// The timing as it stands, about once a second and once at the end
    /// (`last`) (`-d` shows it).
    fn timing_state(&self, _now: &TimingState, _last: bool) {}
}

/// The scan's timing at one moment: what nmap's `-d` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimingState {
    /// Smoothed round trip, once one is measured.
    pub srtt: Option<std::time::Duration>,
    pub rttvar: std::time::Duration,
    /// The timeout a probe gets now.
    pub timeout: std::time::Duration,
    /// Probes allowed in flight (the congestion window).
    pub window: usize,
    pub in_flight: usize,
    /// Retries a silent probe gets now.
    pub retries: u8,
    /// Silent probes being confirmed at a rate limiter's pace.
    pub confirming: u64,
}

/// A change of the scan's timing worth telling (`-v`), found by comparing
/// two [`TimingState`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingNote {
    /// Answers to retransmissions showed loss: the window shrank.
    WindowShrank { from: usize, to: usize },
    /// Loss seen: silent probes get more retries.
    MoreRetries { to: u8 },
    /// Replies came after their timeout: timeouts grew.
    LongerTimeout {
        from: std::time::Duration,
        to: std::time::Duration,
    },
    /// Rate-limited answers are being confirmed, this many probes.
    Confirming { probes: u64 },
}

impl TimingNote {
    /// What changed from `before` to `now`, in the order it is told.
    pub fn between(before: &TimingState, now: &TimingState) -> Vec<TimingNote> {
        let mut notes = Vec::new();
        // The window halves on loss; anything less is a reply's growth
        // undone by rounding, not news.
        if now.window * 4 <= before.window * 3 {
            notes.push(TimingNote::WindowShrank {
                from: before.window,
                to: now.window,
            });
        }
        if now.retries > before.retries {
            notes.push(TimingNote::MoreRetries { to: now.retries });
        }
        // The timeout doubles when replies come late; it drifts with every
        // round trip otherwise.
        if now.timeout >= before.timeout * 2 && !before.timeout.is_zero() {
            notes.push(TimingNote::LongerTimeout {
                from: before.timeout,
                to: now.timeout,
            });
        }
        if now.confirming > 0 && before.confirming == 0 {
            notes.push(TimingNote::Confirming {
                probes: now.confirming,
            });
        }
        notes
    }
}
