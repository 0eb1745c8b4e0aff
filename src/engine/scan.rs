//! One scan: opens the sockets, starts the sender and receiver threads, and
//! runs the tracker until every probe has an answer or its last timeout.

use std::io::Write;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use rand::{RngCore, SeedableRng};

use crate::engine::cookie::{probe_numbers, CookieKey, PortPlan, MAX_TECHNIQUES};
use crate::engine::receiver::{self, Heard, ReceiverStats, Validator, Verdict};
use crate::engine::sender::{self, Order, SendTrace, SenderStats};
use crate::engine::timing::{RateBudget, TimingParams};
use crate::engine::tracker::{Finding, ProbeSpace, Tracker, TrackerStats};
use crate::error::usage;
use crate::io::rawsock::{self, IoMode, IoPlan};
use crate::model::technique::Technique;
use crate::output::pcap::{PcapCounts, PcapSink};
use crate::output::trace::{self, TraceSink};
use crate::route::nexthop::NextHops;
use crate::route::{self, RoutePlan};
use crate::wire::{ProbeFields, ProbeTemplate};

pub struct ScanConfig {
    pub targets: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
    pub techniques: Vec<Technique>,
    pub timing: TimingParams,
    /// Makes cookies, source ports and probe order reproducible.
    pub seed: Option<u64>,
    pub device: Option<String>,
    pub source: Option<Ipv4Addr>,
    pub max_rate: Option<f64>,
    /// `--min-rate`: sends go past the congestion window to keep this rate.
    pub min_rate: Option<f64>,
    /// `--packet-trace`: a line per probe and per reply, as they happen.
    pub packet_trace: bool,
    /// `--pcap FILE`: every probe and every reply captured, to this file.
    pub pcap: Option<PathBuf>,
    /// Give up root once the sockets are open (`None`: keep it, as
    /// `--keep-privileges` and the demo, which must remove its lab, do).
    pub drop_privileges: Option<crate::sys::privilege::DropPlan>,
    /// `--io`: the fast Linux packet path (default) or the portable one.
    pub io: IoMode,
    /// Set (by [`crate::sys::interrupt::stop_flag`]) to stop the scan: no probe is
    /// sent after it, replies in flight are awaited for at most one
    /// retransmission timeout (capped at [`MAX_GRACE`]), and the result
    /// holds what was concluded, with `interrupted` set.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// `--resume`: positions in the probe order that the interrupted run
    /// (same seed) concluded; neither sent nor reported. A resumed scan
    /// appends to its `--pcap` file.
    pub resume: Option<Vec<Range<u64>>>,
    /// The capture ring, prepared while the rest of the scan was set up
    /// (fast path only; `None`: prepared when the sockets are opened).
    pub early_ring: Option<crate::io::ring::EarlyRing>,
}

#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub tracker: TrackerStats,
    pub captured: u64,
    pub invalid: u64,
    pub overflow: u64,
    pub send_failures: u64,
    /// Probes that left as Ethernet frames (layer 2); the others went
    /// through the kernel's IP layer.
    pub link_layer: u64,
    pub elapsed: Duration,
    /// Packets written with `--pcap`: `sent` is `tracker.sent` minus
    /// `send_failures` (a probe the kernel refused never left).
    pub pcap: Option<PcapCounts>,
    /// Probes concluded by the run this one resumed (not sent, not reported).
    pub skipped: u64,
}

pub struct ScanResult {
    pub space: ProbeSpace,
    pub techniques: Vec<Technique>,
    /// In (host, port, technique) order, one per probe.
    pub findings: Vec<Option<Finding>>,
    pub stats: ScanStats,
    pub route: RoutePlan,
    /// The seed the scan used (drawn at random without `--seed`).
    pub seed: u64,
    /// Stopped by [`ScanConfig::interrupt`] before every probe was concluded.
    pub interrupted: bool,
    /// When interrupted: positions in the probe order concluded so far, in
    /// this run or the one it resumed (what a resume file keeps).
    pub decided: Vec<Range<u64>>,
}

/// How often the receiver looks at the stop flag.
const CAPTURE_POLL: Duration = Duration::from_millis(20);
/// How often the progress line is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Orders the scan loop hands out before looking at replies again.
const SEND_BATCH: usize = 256;
/// The longest an interrupted scan waits for replies in flight (it waits
/// one retransmission timeout of the measured RTT, at most this).
pub const MAX_GRACE: Duration = Duration::from_secs(1);

/// Runs a scan; `--packet-trace` lines (if on) go to stdout.
pub fn run(cfg: ScanConfig) -> anyhow::Result<ScanResult> {
    run_with_trace(cfg, Box::new(std::io::stdout()))
}

/// Runs a scan; `--packet-trace` lines (if on) go to `trace_out` (stderr
/// when stdout carries JSON). `trace_out` is unused without the option.
pub fn run_with_trace(
    cfg: ScanConfig,
    trace_out: Box<dyn Write + Send>,
) -> anyhow::Result<ScanResult> {
    if cfg.techniques.len() > MAX_TECHNIQUES {
        return Err(usage(format!(
            "at most {MAX_TECHNIQUES} techniques per scan"
        )));
    }
    let route = route::plan(&cfg.targets, cfg.device.as_deref(), cfg.source)?;
    // A drawn seed is kept: a resume file records it to redo the same
    // cookies, source ports and order.
    let seed = cfg.seed.unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let key = CookieKey::new(rng.next_u64(), rng.next_u64());
    let ports = PortPlan::new(rng.next_u64());
    let order_seed = rng.next_u64();

    // Before any socket: a bad --pcap path is a usage error in a second.
    let pcap = match &cfg.pcap {
        Some(path) if cfg.resume.is_some() => Some(Arc::new(Mutex::new(PcapSink::append(path)?))),
        Some(path) => Some(Arc::new(Mutex::new(PcapSink::create(path)?))),
        None => None,
    };
    let trace_sink = cfg.packet_trace.then(|| TraceSink::new(trace_out));
    let next_hops =
        (cfg.io == IoMode::Fast).then(|| Arc::new(NextHops::resolve(&cfg.targets, &route.kernel)));

    // Capture first: anything sent from here on can be heard.
    let (tx_socket, rx_socket) = rawsock::open(
        cfg.io,
        &IoPlan {
            device: cfg.device.as_deref(),
            capture_ifindex: route.capture_ifindex,
            poll: CAPTURE_POLL,
            ports: ports.range(),
            any_flags: pcap.is_some() || trace_sink.is_some(),
            next_hops,
        },
        cfg.early_ring,
    )?;
    // Every socket and file is open: nothing below needs root.
    if let Some(plan) = &cfg.drop_privileges {
        crate::sys::privilege::drop_privileges(plan)?;
    }

    let validator = Validator {
        key: key.clone(),
        ports,
        probe_flags: cfg.techniques.iter().map(|t| t.flags).collect(),
    };
    let templates: Vec<ProbeTemplate> = cfg
        .techniques
        .iter()
        .map(|t| ProbeTemplate::new(t.flags))
        .collect();
    let space = ProbeSpace::new(cfg.targets.clone(), cfg.ports.clone(), cfg.techniques.len());
    // By host position, as the tracker gives it: no hash per probe.
    let sources = route.sources.clone();
    let probe_flags = validator.probe_flags.clone();
    let labels: Vec<(String, u8)> = cfg
        .techniques
        .iter()
        .map(|t| (t.name.clone(), t.flags))
        .collect();
    let mut tracker = Tracker::new(space, cfg.techniques, cfg.timing, order_seed);
    if let Some(decided) = &cfg.resume {
        tracker.skip_positions(decided);
    }
    let interrupt = cfg.interrupt.clone();
    let interrupted = || interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));

    let clock = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let rstats = Arc::new(ReceiverStats::default());
    let sstats = Arc::new(SenderStats::default());
    let (reply_tx, reply_rx) = bounded::<Heard>(1 << 16);
    let (ready_tx, ready_rx) = bounded(1);
    let (heard_all_tx, heard_all_rx) = bounded::<()>(1);
    let (order_tx, order_rx) = bounded::<Order>(SEND_BATCH);

    let receiver = {
        let (stop, rstats) = (stop.clone(), rstats.clone());
        let taps = receiver::Taps {
            pcap: pcap.clone(),
            trace: trace_sink.is_some(),
        };
        std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                receiver::run(
                    rx_socket,
                    validator,
                    clock,
                    reply_tx,
                    ready_tx,
                    heard_all_tx,
                    stop,
                    rstats,
                    taps,
                )
            })
            .context("cannot start the receiver thread")?
    };
    // The handshake: no probe leaves before the receiver is reading.
    ready_rx
        .recv()
        .context("the receiver thread stopped before it started")?;
    let (sent_tx, sent_rx) = bounded::<()>(1);
    let sender = {
        let sstats = sstats.clone();
        let taps = sender::Taps {
            pcap: pcap.clone(),
            trace: trace_sink.as_ref().map(|sink| SendTrace {
                sink: sink.clone(),
                clock,
                techniques: labels,
            }),
        };
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || sender::run(tx_socket, templates, order_rx, sstats, taps, sent_tx))
            .context("cannot start the sender thread")?
    };

    // Turns the tracker's decision into a probe for the sender.
    let hand_out = |o: crate::engine::tracker::SendOrder| -> anyhow::Result<()> {
        let src = sources
            .get(o.host_pos)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no source address planned for {}", o.host))?;
        let sport = ports.sport(o.technique, o.attempt);
        let (seq, ack) = probe_numbers(
            key.cookie(src, o.host, sport, o.port),
            probe_flags[o.technique],
        );
        let fields = ProbeFields {
            src,
            dst: o.host,
            sport,
            dport: o.port,
            seq,
            ack,
        };
        order_tx
            .send(Order {
                technique: o.technique,
                attempt: o.attempt,
                fields,
            })
            .map_err(|_| anyhow::anyhow!("the sender thread stopped unexpectedly"))
    };
    let mut rate = cfg.max_rate.map(RateBudget::new);
    let mut floor = cfg.min_rate.map(RateBudget::new);
    let progress = crate::output::progress::Progress::new(tracker.space().len());
    let mut shown_at = Duration::ZERO;
    // Set once interrupted: until when replies in flight are awaited.
    let mut grace_until: Option<Duration> = None;
    let mut heard: Vec<Heard> = Vec::with_capacity(REPLY_BATCH);
    while !tracker.is_done() {
        if grace_until.is_none() && interrupted() {
            let grace = tracker.rto().min(MAX_GRACE);
            grace_until = Some(clock.elapsed() + grace);
        }
        on_queued(&mut tracker, &reply_rx, &mut heard, trace_sink.as_ref());
        if let Some(until) = grace_until {
            // Interrupted: nothing more is sent. A last try that times out
            // now concludes as usual; earlier tries stay undecided.
            let now = clock.elapsed();
            tracker.expire(now);
            if now >= until || tracker.in_flight() == 0 {
                break;
            }
            if let Some(heard) = recv_reply(&reply_rx, (until - now).min(CAPTURE_POLL), &rstats)? {
                on_heard(&mut tracker, heard, trace_sink.as_ref());
            }
            continue;
        }
        let now = clock.elapsed();
        let allowed = rate
            .as_mut()
            .map_or(SEND_BATCH, |r| r.available(now).min(SEND_BATCH));
        let mut handed = 0;
        while handed < allowed {
            let Some(o) = tracker.poll_send(now) else {
                break;
            };
            hand_out(o)?;
            handed += 1;
        }
        if let Some(r) = rate.as_mut() {
            r.take(handed);
        }
        if let Some(f) = floor.as_mut() {
            // Behind the --min-rate floor: send past a full window.
            f.take(handed);
            let owed = f.available(now).min(allowed - handed);
            let mut forced = 0;
            while forced < owed {
                let Some(o) = tracker.poll_send_forced(now) else {
                    break;
                };
                hand_out(o)?;
                forced += 1;
            }
            f.take(forced);
            if let Some(r) = rate.as_mut() {
                r.take(forced);
            }
            handed += forced;
        }
        if progress.is_visible() && now >= shown_at + PROGRESS_EVERY {
            progress.update(tracker.decided(), tracker.open_found());
            shown_at = now;
        }
        if handed > 0 || tracker.is_done() {
            continue;
        }
        // Nothing may be sent now: wait for a reply, the next timeout, or
        // (when the rate cap is what holds probes back) the next token.
        let mut wait = tracker
            .next_deadline()
            .map_or(CAPTURE_POLL, |d| d.saturating_sub(clock.elapsed()));
        if let Some(r) = rate
            .as_ref()
            .filter(|_| allowed == 0 && tracker.has_unsent())
        {
            wait = wait.min(r.wait());
        }
        if let Some(f) = floor.as_ref().filter(|_| tracker.has_unsent()) {
            wait = wait.min(f.wait());
        }
        if progress.is_visible() {
            wait = wait.min(PROGRESS_EVERY);
        }
        if interrupt.is_some() {
            // Look at the stop flag at least this often.
            wait = wait.min(CAPTURE_POLL);
        }
        if let Some(heard) = recv_reply(&reply_rx, wait, &rstats)? {
            on_heard(&mut tracker, heard, trace_sink.as_ref());
        }
    }
    if let Some(until) = tracker.listen_until().filter(|_| tracker.is_done()) {
        // A timeout concluded silence, not an answer: listen a little
        // longer for replies that would revise the latest such conclusion.
        loop {
            let now = clock.elapsed();
            if now >= until || (grace_until.is_none() && interrupted()) {
                break;
            }
            if let Some(heard) = recv_reply(&reply_rx, (until - now).min(CAPTURE_POLL), &rstats)? {
                on_heard(&mut tracker, heard, trace_sink.as_ref());
            }
        }
    }
    let elapsed = clock.elapsed();
    drop(order_tx);
    stop.store(true, Ordering::Relaxed);
    // All sent, the taps let go and the sockets kept for the exit (or, in
    // a library, still being closed: the thread is not joined; see
    // sender::run).
    let _ = sent_rx.recv();
    drop(sender);
    // Every packet read and handed over, its taps let go, its socket kept
    // or being closed, as the senders'.
    let _ = heard_all_rx.recv();
    drop(receiver);
    // Late replies heard before the receiver stopped: all duplicates now,
    // but counted (and traced) like the others.
    while let Ok(heard) = reply_rx.try_recv() {
        on_heard(&mut tracker, heard, trace_sink.as_ref());
    }
    if let Some(sink) = &trace_sink {
        sink.flush();
    }
    // Both threads are gone, so this is the last holder of the sink.
    let pcap_counts = match pcap {
        Some(sink) => {
            let sink = Arc::try_unwrap(sink)
                .map_err(|_| anyhow::anyhow!("the --pcap file is still in use"))?
                .into_inner()
                .unwrap_or_else(|p| p.into_inner());
            Some(sink.finish()?.0)
        }
        None => None,
    };

    let stats = ScanStats {
        tracker: tracker.stats(),
        captured: rstats.captured.load(Ordering::Relaxed),
        invalid: rstats.invalid.load(Ordering::Relaxed),
        overflow: rstats.overflow.load(Ordering::Relaxed),
        send_failures: sstats.failed.load(Ordering::Relaxed),
        link_layer: sstats.link_layer.load(Ordering::Relaxed),
        elapsed,
        pcap: pcap_counts,
        skipped: tracker.skipped(),
    };
    if let Some(err) = sstats.last_error.lock().ok().and_then(|e| e.clone()) {
        eprintln!(
            "flagscan: warning: {} probes could not be sent; last error: {err}",
            stats.send_failures
        );
    }
    let findings = tracker.findings().map(|(_, _, _, f)| f).collect();
    let interrupted = !tracker.is_done();
    Ok(ScanResult {
        space: tracker.space().clone(),
        techniques: tracker.techniques().to_vec(),
        findings,
        stats,
        route,
        seed,
        interrupted,
        decided: if interrupted {
            tracker.decided_positions()
        } else {
            Vec::new()
        },
    })
}

/// Waits up to `wait` for what the receiver heard.
fn recv_reply(
    rx: &Receiver<Heard>,
    wait: Duration,
    rstats: &ReceiverStats,
) -> anyhow::Result<Option<Heard>> {
    match rx.recv_timeout(wait) {
        Ok(heard) => Ok(Some(heard)),
        Err(RecvTimeoutError::Timeout) => Ok(None),
        Err(RecvTimeoutError::Disconnected) => {
            let why = rstats.error.lock().ok().and_then(|e| e.clone());
            anyhow::bail!(
                "the receiver thread stopped: {}",
                why.unwrap_or_else(|| "unknown reason".into())
            );
        }
    }
}

/// Replies handled together: the tracker prefetches what each will touch
/// before handling any.
const REPLY_BATCH: usize = 64;

/// Applies every reply queued now, [`REPLY_BATCH`] at a time.
fn on_queued(
    tracker: &mut Tracker,
    rx: &Receiver<Heard>,
    batch: &mut Vec<Heard>,
    trace: Option<&TraceSink>,
) {
    loop {
        batch.clear();
        batch.extend(rx.try_iter().take(REPLY_BATCH));
        if batch.is_empty() {
            return;
        }
        tracker.prefetch_for(batch.iter().filter_map(|h| match h {
            Heard::Reply(reply) => Some(reply),
            Heard::Traced(_) => None,
        }));
        for h in batch.drain(..) {
            on_heard(tracker, h, trace);
        }
    }
}

/// Applies what the receiver heard to the tracker and, with
/// `--packet-trace`, prints it with what it did.
fn on_heard(tracker: &mut Tracker, heard: Heard, trace: Option<&TraceSink>) {
    match heard {
        Heard::Reply(reply) => {
            tracker.on_reply(&reply);
        }
        Heard::Traced(t) => {
            let effect = match t.verdict {
                Verdict::Reply(reply) => Some(tracker.on_reply(&reply)),
                Verdict::Invalid | Verdict::NotOurs => None,
            };
            if let Some(sink) = trace {
                sink.line(trace::rcvd_line(&t, effect, tracker.techniques()));
            }
        }
    }
}
