//! One scan: opens the sockets, starts the sender and receiver threads, and
//! runs the tracker until every probe has an answer or its last timeout.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, RecvTimeoutError};
use rand::{RngCore, SeedableRng};

use crate::capture::{PcapCounts, PcapSink};
use crate::cookie::{probe_numbers, CookieKey, PortPlan, MAX_TECHNIQUES};
use crate::error::usage;
use crate::rawsock::{RawReceiver, RawSender};
use crate::receiver::{self, Heard, ReceiverStats, Validator, Verdict};
use crate::route::{self, RoutePlan};
use crate::sender::{self, Order, SendTrace, SenderStats};
use crate::technique::Technique;
use crate::timing::{RateBudget, TimingParams};
use crate::trace::{self, TraceSink};
use crate::tracker::{Finding, ProbeSpace, Tracker, TrackerStats};
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
    /// `--packet-trace`: a line per probe and per reply, as they happen.
    pub packet_trace: bool,
    /// `--pcap FILE`: every probe and every reply captured, to this file.
    pub pcap: Option<PathBuf>,
    /// Give up root once the sockets are open (`None`: keep it, as
    /// `--keep-privileges` and the demo, which must remove its lab, do).
    pub drop_privileges: Option<crate::privilege::DropPlan>,
}

#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub tracker: TrackerStats,
    pub captured: u64,
    pub invalid: u64,
    pub overflow: u64,
    pub send_failures: u64,
    pub elapsed: Duration,
    /// Packets written with `--pcap`: `sent` is `tracker.sent` minus
    /// `send_failures` (a probe the kernel refused never left).
    pub pcap: Option<PcapCounts>,
}

pub struct ScanResult {
    pub space: ProbeSpace,
    pub techniques: Vec<Technique>,
    /// In (host, port, technique) order, one per probe.
    pub findings: Vec<Option<Finding>>,
    pub stats: ScanStats,
    pub route: RoutePlan,
}

/// How often the receiver looks at the stop flag.
const CAPTURE_POLL: Duration = Duration::from_millis(20);
/// Orders the scan loop hands out before looking at replies again.
const SEND_BATCH: usize = 256;

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
    let mut rng = match cfg.seed {
        Some(s) => rand::rngs::StdRng::seed_from_u64(s),
        None => rand::rngs::StdRng::from_entropy(),
    };
    let key = CookieKey::new(rng.next_u64(), rng.next_u64());
    let ports = PortPlan::new(rng.next_u64());
    let order_seed = rng.next_u64();

    // Before any socket: a bad --pcap path is a usage error in a second.
    let pcap = match &cfg.pcap {
        Some(path) => Some(Arc::new(Mutex::new(PcapSink::create(path)?))),
        None => None,
    };
    let trace_sink = cfg.packet_trace.then(|| TraceSink::new(trace_out));

    // Capture first: anything sent from here on can be heard.
    let rx_socket = RawReceiver::open(route.capture_ifindex, CAPTURE_POLL)?;
    let tx_socket = RawSender::open(cfg.device.as_deref())?;
    // Every socket and file is open: nothing below needs root.
    if let Some(plan) = &cfg.drop_privileges {
        crate::privilege::drop_privileges(plan)?;
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
    let source_of: std::collections::HashMap<Ipv4Addr, Ipv4Addr> = cfg
        .targets
        .iter()
        .copied()
        .zip(route.sources.iter().copied())
        .collect();
    let probe_flags = validator.probe_flags.clone();
    let labels: Vec<(String, u8)> = cfg
        .techniques
        .iter()
        .map(|t| (t.name.clone(), t.flags))
        .collect();
    let mut tracker = Tracker::new(space, cfg.techniques, cfg.timing, order_seed);

    let clock = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let rstats = Arc::new(ReceiverStats::default());
    let sstats = Arc::new(SenderStats::default());
    let (reply_tx, reply_rx) = bounded::<Heard>(1 << 16);
    let (ready_tx, ready_rx) = bounded(1);
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
                    rx_socket, validator, clock, reply_tx, ready_tx, stop, rstats, taps,
                )
            })
            .context("cannot start the receiver thread")?
    };
    // The handshake: no probe leaves before the receiver is reading.
    ready_rx
        .recv()
        .context("the receiver thread stopped before it started")?;
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
            .spawn(move || sender::run(tx_socket, templates, order_rx, sstats, taps))
            .context("cannot start the sender thread")?
    };

    let mut rate = cfg.max_rate.map(RateBudget::new);
    while !tracker.is_done() {
        while let Ok(heard) = reply_rx.try_recv() {
            on_heard(&mut tracker, heard, trace_sink.as_ref());
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
            let src = source_of[&o.host];
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
            if order_tx
                .send(Order {
                    technique: o.technique,
                    attempt: o.attempt,
                    fields,
                })
                .is_err()
            {
                anyhow::bail!("the sender thread stopped unexpectedly");
            }
            handed += 1;
        }
        if let Some(r) = rate.as_mut() {
            r.take(handed);
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
        match reply_rx.recv_timeout(wait) {
            Ok(heard) => on_heard(&mut tracker, heard, trace_sink.as_ref()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let why = rstats.error.lock().ok().and_then(|e| e.clone());
                anyhow::bail!(
                    "the receiver thread stopped: {}",
                    why.unwrap_or_else(|| "unknown reason".into())
                );
            }
        }
    }
    let elapsed = clock.elapsed();
    drop(order_tx);
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let _ = receiver.join();
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
        elapsed,
        pcap: pcap_counts,
    };
    if let Some(err) = sstats.last_error.lock().ok().and_then(|e| e.clone()) {
        eprintln!(
            "flagscan: warning: {} probes could not be sent; last error: {err}",
            stats.send_failures
        );
    }
    let findings = tracker.findings().map(|(_, _, _, f)| f).collect();
    Ok(ScanResult {
        space: tracker.space().clone(),
        techniques: tracker.techniques().to_vec(),
        findings,
        stats,
        route,
    })
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
