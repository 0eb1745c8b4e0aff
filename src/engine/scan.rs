//! One scan: opens the sockets, starts the sender and receiver threads, and
//! runs the tracker until every probe has an answer or its last timeout.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use rand::RngCore;

use crate::engine::connector;
use crate::engine::cookie::{probe_numbers, ScanKeys, MAX_TECHNIQUES};
use crate::engine::discovery::{self, PingPlan, Via};
use crate::engine::receiver::{self, Heard, ReceiverStats};
use crate::engine::sender::{self, SenderStats, Template};
use crate::engine::timing::{RateBudget, SharedRate, TimingParams};
use crate::engine::tracker::Tracker;
use crate::engine::validate::Validator;
use crate::error::{usage, Notify};
use crate::io::ping::PingSockets;
use crate::io::rawsock::{self as io, Capture, IoMode, IoPlan, PacketSender};
use crate::model::host::{HostReason, HostStatus, HostStatuses};
use crate::model::hosts::{Hosts, PerHost};
use crate::model::payloads::Payloads;
use crate::model::probe::{ProbeSpace, SendOrder};
use crate::model::reply::{Reply, ReplyEffect, Verdict};
use crate::model::result::{ScanResult, ScanStats};
use crate::model::tap::{Order, ProgressView, Taps, TimingNote};
use crate::model::technique::{CookieField, PortState, ProbeShape, Protocol, Technique};
use crate::route::nexthop::{NextHops, RouteKind};
use crate::route::RoutePlan;
use crate::wire::frame::Mac;
use crate::wire::{ProbeFields, ProbeTemplate};

pub struct ScanConfig {
    pub targets: Hosts,
    /// Every port probed (with TCP and UDP in one pass, both lists).
    pub ports: Vec<u16>,
    /// `-r`: probes in index order, not the seeded random one.
    pub in_order: bool,
    /// `--shard`: shard `.0` of `.1` (from 0).
    pub shard: Option<(u64, u64)>,
    /// TCP and UDP in one pass: each protocol's own ports (`-p
    /// U:53,T:22`). Empty: every technique asks every port.
    pub protocol_ports: Vec<(Protocol, Vec<u16>)>,
    pub techniques: Vec<Technique>,
    pub timing: TimingParams,
    /// Makes cookies, source ports and probe order reproducible.
    pub seed: Option<u64>,
    pub device: Option<String>,
    /// `-S`: the probes' source addresses (empty: the kernel's choice).
    /// With several, probes take them in turn, so each meets its own
    /// share of a target's per-destination rate limiters.
    pub sources: Vec<IpAddr>,
    pub max_rate: Option<f64>,
    /// `--min-rate`: sends go past the congestion window to keep this rate.
    pub min_rate: Option<f64>,
    /// Observers of every probe sent and every packet heard
    /// (`--packet-trace`, `--pcap`).
    pub taps: Taps,
    /// Where warnings and notices go (`None`: nowhere).
    pub notify: Option<Notify>,
    /// The progress line, if one is shown.
    pub progress: Option<Box<dyn ProgressView>>,
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
    /// (same seed) concluded; neither sent nor reported.
    pub resume: Option<Vec<Range<u64>>>,
    /// The capture ring, prepared while the rest of the scan was set up
    /// (fast path only; `None`: prepared when the sockets are opened).
    pub early_ring: Option<crate::io::ring::EarlyRing>,
    /// Host discovery beside the port scan; `None` (`-Pn`): every target
    /// is taken as up.
    pub discovery: Option<PingPlan>,
    /// How long a rate-limited host's silent probes may be confirmed.
    pub limit_budget: Duration,
    /// `-g`: every TCP probe's source port (`None`: the plan's, per
    /// technique and try).
    pub source_port: Option<u16>,
}

impl ScanConfig {
    /// The probes this scan asks: hosts x ports x techniques, less the
    /// ports of the other protocol in a pass of TCP and UDP.
    pub fn space(&self) -> ProbeSpace {
        let space = self.unsharded_space();
        match self.shard {
            Some((i, n)) => space.sharded(i, n),
            None => space,
        }
    }

    fn unsharded_space(&self) -> ProbeSpace {
        if self.protocol_ports.is_empty() {
            return ProbeSpace::new(
                self.targets.clone(),
                self.ports.clone(),
                self.techniques.len(),
            );
        }
        let lists: Vec<Vec<u16>> = self.protocol_ports.iter().map(|(_, p)| p.clone()).collect();
        let of: Vec<usize> = self
            .techniques
            .iter()
            .map(|t| {
                self.protocol_ports
                    .iter()
                    .position(|(p, _)| *p == t.protocol)
                    .unwrap_or(0)
            })
            .collect();
        ProbeSpace::with_protocols(self.targets.clone(), &lists, &of)
    }
}

/// How often the receiver looks at the stop flag.
const CAPTURE_POLL: Duration = Duration::from_millis(20);
/// How often `-d` shows the timing.
const TIMING_EVERY: Duration = Duration::from_secs(1);
/// How often the progress line is refreshed.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Orders the scan loop hands out before looking at replies again.
const SEND_BATCH: usize = 256;
/// The same for a connect scan: each connect() is a system call that runs
/// the handshake's first steps, tens of microseconds on loopback, and the
/// tracker times a probe from when it was handed out. A small batch keeps
/// that queue (and the round trips it would add) under a millisecond.
const CONNECT_BATCH: usize = 8;
/// A connect scan's congestion window at most (docs/performance.md).
const CONNECT_WINDOW: f64 = 512.0;
/// The longest an interrupted scan waits for replies in flight (it waits
/// one retransmission timeout of the measured RTT, at most this).
pub const MAX_GRACE: Duration = Duration::from_secs(1);

/// Runs a scan along `route` (the kernel's routes for `cfg.targets`, as
/// [`crate::route::plan`] gives them): opens the sockets, starts the receiver and
/// the sender, runs the tracker to the end, and collects the result.
pub fn run(mut cfg: ScanConfig, route: RoutePlan) -> anyhow::Result<ScanResult> {
    check(&cfg)?;
    // A drawn seed is kept: a resume file records it to redo the same
    // cookies, source ports and order.
    let seed = cfg.seed.unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    let mut keys = ScanKeys::from_seed(seed);
    keys.ports = keys.ports.with_fixed_sport(cfg.source_port);
    let early_ring = cfg.early_ring.take();
    let connect = cfg.techniques.iter().any(|t| t.connect);
    if connect {
        // A connect's outcome reaches the tracker through a thread that
        // must be scheduled: nmap's timeout floor, not the raw path's.
        // (Never past the ceiling: --max-rtt-timeout may be lower.)
        cfg.timing.min_rto = cfg
            .timing
            .min_rto
            .max(cfg.timing.window_hold)
            .min(cfg.timing.max_rto);
        // The window a raw scan grows to (4096) is more connects than one
        // thread and the kernel's handshakes keep up with: the queue reads
        // as late replies, and the timeouts double to their ceiling.
        cfg.timing.max_cwnd = cfg.timing.max_cwnd.min(CONNECT_WINDOW);
        cfg.timing.initial_cwnd = cfg.timing.initial_cwnd.min(cfg.timing.max_cwnd);
    }
    let next_hops = (cfg.io == IoMode::Fast && !connect)
        .then(|| Arc::new(NextHops::resolve(&cfg.targets, &route.kernel)));
    let sockets = match connect {
        true => Sockets::Connect(
            crate::io::connect::Connects::new().context("cannot start the connect scan")?,
        ),
        false => {
            let (tx, rx) = open_sockets(&cfg, &route, &keys, early_ring, next_hops.clone())?;
            Sockets::Raw(tx, rx)
        }
    };
    let pinging = match &cfg.discovery {
        Some(plan) => Some(discovery_sockets(&cfg, &route, plan)?),
        None => None,
    };
    // Every socket and file is open: nothing below needs root.
    if let Some(plan) = &cfg.drop_privileges {
        crate::sys::privilege::drop_privileges(plan)?;
    }
    let mut tracker = Tracker::new(
        cfg.space(),
        cfg.techniques.clone(),
        cfg.timing,
        keys.order_seed,
    );
    tracker.set_limit_budget(cfg.limit_budget);
    if cfg.in_order {
        tracker.set_in_order();
    }
    if let Some(decided) = &cfg.resume {
        tracker.skip_positions(decided);
    }
    if let Some((_, via)) = &pinging {
        // Discovery runs beside the scan: a host's probes wait for it,
        // but for our own addresses, which are up without asking.
        for (hosts, how) in via.runs() {
            if *how != Via::Local {
                tracker.hold_hosts(hosts);
            }
        }
    }
    let started = Instant::now();
    let clock = started;
    let threads = start_threads(&cfg, &keys, sockets, clock)?;
    let rate = cfg.max_rate.map(SharedRate::new);
    let probes = Probes {
        keys: &keys,
        sources: &route.sources,
        spread: if cfg.sources.len() > 1 {
            &cfg.sources
        } else {
            &[]
        },
        turns: Default::default(),
        probes: cfg.techniques.iter().map(Technique::shape).collect(),
        orders: &threads.orders,
    };
    let (news_tx, news_rx) = unbounded::<(usize, bool)>();
    let mut lp = ScanLoop {
        tracker: &mut tracker,
        replies: threads.replies.clone(),
        rstats: threads.rstats.clone(),
        taps: &cfg.taps,
        clock,
        news: news_rx,
        discovering: pinging.is_some(),
        progress: cfg.progress.as_deref(),
    };
    // Set when the scan loop fails: discovery stops with it.
    let abort = AtomicBool::new(false);
    let (scanned, found) = std::thread::scope(|s| {
        let discovery = match (&cfg.discovery, &pinging) {
            (Some(plan), Some((sockets, via))) => {
                let ask = Ask {
                    cfg: &cfg,
                    route: &route,
                    keys: &keys,
                    plan,
                    sockets,
                    via: via.clone(),
                    clock,
                    rate: rate.as_ref(),
                    hops: next_hops.as_deref(),
                    abort: &abort,
                };
                let tell = news_tx;
                Some(s.spawn(move || discover(ask, tell)))
            }
            _ => {
                drop(news_tx);
                None
            }
        };
        let scanned = lp
            .send_and_listen(&cfg, &probes, rate.as_ref())
            .and_then(|at| {
                lp.listen_for_late_replies(at.is_none().then_some(cfg.interrupt.as_ref()).flatten())
            });
        if let Some(view) = lp.progress {
            view.timing_state(&lp.tracker.timing_state(), true);
        }
        if scanned.is_err() {
            abort.store(true, Ordering::SeqCst);
        }
        let found = discovery.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("host discovery failed unexpectedly")))
        });
        (scanned, found.transpose())
    });
    let elapsed = started.elapsed();
    let (sstats, rstats) = threads.stop(&mut lp);
    scanned?;
    let found = found?;
    let mut result = collect(tracker, sstats, rstats, elapsed, seed, cfg.notify.as_ref());
    result.hosts = HostStatuses::all(HostStatus::ASSUMED_UP, cfg.targets.len());
    if let Some(found) = found {
        // A host discovery did not reach keeps its probes unconcluded
        // (for --resume), not excluded.
        result.hosts = found.statuses;
        result.stats.discovery = Some((found.sent, found.elapsed));
        // Interrupted before every host was asked: not done, even where no
        // port was left to probe (-sn, or nothing up yet).
        result.interrupted |= found.interrupted;
    }
    Ok(result)
}

/// The interfaces (index, MAC) to ask on: ARP's, then neighbour
/// discovery's.
type LinkSockets = (Vec<(u32, Mac)>, Vec<(u32, Mac)>);

/// How each target is asked whether it is up: our own addresses are; on
/// an Ethernet link, ARP or (IPv6) a neighbour solicitation (with `-PR`);
/// else the IP probes of the plan.
fn discovery_routes(
    targets: &Hosts,
    route: &RoutePlan,
    plan: &PingPlan,
) -> (PerHost<Via>, LinkSockets) {
    let links: Vec<(u32, Mac)> = pnet::datalink::interfaces()
        .iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| Some((i.index, i.mac?.octets())))
        .filter(|(_, mac)| *mac != [0; 6])
        .collect();
    let (mut arp, mut ndp): LinkSockets = Default::default();
    let mut via = PerHost::new();
    // A run of targets under one route is asked one way.
    for (positions, r) in route.kernel.runs() {
        for (target, count, _) in targets.slice(positions).runs() {
            let how = match r {
                Some(r) if r.kind == RouteKind::Local => Via::Local,
                Some(r) if plan.arp && r.kind == RouteKind::Unicast && r.gateway.is_none() => {
                    match links.iter().find(|(i, _)| *i == r.oif) {
                        Some(&link) => {
                            let list = if target.is_ipv6() { &mut ndp } else { &mut arp };
                            if !list.contains(&link) {
                                list.push(link);
                            }
                            Via::Link { ifindex: r.oif }
                        }
                        None => Via::Ip,
                    }
                }
                _ => Via::Ip,
            };
            via.push_n(how, count);
        }
    }
    (via, (arp, ndp))
}

/// Opens discovery's sockets (while root may), for the targets that need them.
fn discovery_sockets(
    cfg: &ScanConfig,
    route: &RoutePlan,
    plan: &PingPlan,
) -> anyhow::Result<(PingSockets, PerHost<Via>)> {
    let (via, (arp, ndp)) = discovery_routes(&cfg.targets, route, plan);
    let ip = via.runs().any(|(_, v)| *v == Via::Ip);
    let ipv6 = cfg.targets.any_ipv6();
    Ok((
        PingSockets::open(ip, ipv6, &arp, &ndp, cfg.device.as_deref())?,
        via,
    ))
}

/// What host discovery beside the scan needs.
struct Ask<'a> {
    cfg: &'a ScanConfig,
    route: &'a RoutePlan,
    keys: &'a ScanKeys,
    plan: &'a PingPlan,
    sockets: &'a PingSockets,
    via: PerHost<Via>,
    clock: Instant,
    rate: Option<&'a SharedRate>,
    /// Where ARP's answers teach the scan its next hops' MACs.
    hops: Option<&'a NextHops>,
    abort: &'a AtomicBool,
}

/// Runs host discovery, telling the scan loop each host's conclusion (up
/// or not) as it is drawn, and says what it found when nothing is up.
fn discover(ask: Ask, tell: Sender<(usize, bool)>) -> anyhow::Result<discovery::Found> {
    let cfg = ask.cfg;
    let interrupt = cfg.interrupt.clone();
    let abort = ask.abort;
    let stop = move || {
        abort.load(Ordering::SeqCst) || interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    };
    let job = discovery::Job {
        keys: ask.keys,
        targets: &cfg.targets,
        sources: &ask.route.sources,
        via: ask.via,
        plan: ask.plan,
        params: cfg.timing,
        rate: ask.rate,
        taps: &cfg.taps,
        clock: ask.clock,
        stop: &stop,
    };
    let found = discovery::run(ask.sockets, job, &mut |macs, news| {
        // MACs first: the host's first probe takes its next hop's.
        if let (Some(hops), false) = (ask.hops, macs.is_empty()) {
            hops.learn_macs(macs);
        }
        for &(host, status) in news {
            // The scan loop gone (it failed) is told by `abort`.
            let _ = tell.send((host, status.up));
        }
    })?;
    let up = |h: &HostStatus| h.up && h.reason != HostReason::NotAsked;
    if !found.interrupted && found.statuses.count(up) == 0 {
        if let Some(notify) = &cfg.notify {
            notify(
                "no host answered host discovery; if a host is up but blocks those \
                 probes, scan it with -Pn",
            );
        }
    }
    Ok(found)
}

/// What the engine cannot run, before anything is opened: more techniques
/// than the source-port plan has room for.
pub fn check(cfg: &ScanConfig) -> anyhow::Result<()> {
    if cfg.techniques.len() > MAX_TECHNIQUES {
        return Err(usage(format!(
            "at most {MAX_TECHNIQUES} techniques per scan"
        )));
    }
    let udp = cfg
        .techniques
        .iter()
        .filter(|t| t.protocol == Protocol::Udp)
        .count();
    if udp > 1 {
        return Err(usage("one UDP technique per scan"));
    }
    if cfg.techniques.iter().any(|t| t.connect) {
        if cfg.techniques.len() > 1 {
            return Err(usage(
                "-sT runs on its own: the kernel's connect() cannot share a pass with raw \
                 probes; scan with -sT and the other techniques apart",
            ));
        }
        if !cfg.taps.is_empty() {
            return Err(usage(
                "-sT sends no packet of its own: --pcap and --packet-trace need a raw \
                 technique (-sS as root); capture with tcpdump instead",
            ));
        }
        if let Some(port) = cfg.source_port {
            return Err(usage(format!(
                "-g {port} with -sT: a connect's source port is the kernel's choice, and one \
                 fixed port would allow one connection at a time; leave -g out"
            )));
        }
    }
    if let (Some(port), true) = (cfg.source_port, udp > 0) {
        return Err(usage(format!(
            "-g {port} with -sU: a UDP probe's source port is its cookie (UDP echoes nothing \
             else of ours), so a fixed one would leave its answers unproven; scan UDP without -g"
        )));
    }
    Ok(())
}

/// Orders handed out per turn of the scan loop (and queued at most).
fn send_batch(cfg: &ScanConfig) -> usize {
    match cfg.techniques.iter().any(|t| t.connect) {
        true => CONNECT_BATCH,
        false => SEND_BATCH,
    }
}

/// Plans the capture and opens the sockets: capture first, so that
/// anything sent from then on can be heard.
fn open_sockets(
    cfg: &ScanConfig,
    route: &RoutePlan,
    keys: &ScanKeys,
    early_ring: Option<crate::io::ring::EarlyRing>,
    next_hops: Option<Arc<NextHops>>,
) -> anyhow::Result<(PacketSender, Capture)> {
    io::open(
        cfg.io,
        &IoPlan {
            device: cfg.device.as_deref(),
            capture_ifindex: route.capture_ifindex,
            poll: CAPTURE_POLL,
            ports: keys.ports.reply_ports(),
            any_flags: !cfg.taps.is_empty(),
            udp_ports: cfg
                .techniques
                .iter()
                .any(|t| t.protocol == Protocol::Udp)
                .then(|| keys.ports.udp_range()),
            ipv6: cfg.targets.any_ipv6(),
            next_hops,
            notify: cfg.notify.clone(),
        },
        early_ring,
    )
}

/// What the probes go out through: raw sockets (a sender and a capture),
/// or the kernel's connect() (`-sT`).
enum Sockets {
    Raw(PacketSender, Capture),
    Connect(crate::io::connect::Connects),
}

/// The receiver and sender threads (or the connect scan's one) and the
/// scan loop's ends of their channels.
struct Threads {
    handles: Vec<std::thread::JoinHandle<()>>,
    replies: Receiver<Heard>,
    orders: Sender<Order>,
    stop: Arc<AtomicBool>,
    rstats: Arc<ReceiverStats>,
    sstats: Arc<SenderStats>,
    sent: Receiver<()>,
    heard_all: Receiver<()>,
}

/// Starts the receiver, waits until it reads (no probe leaves before),
/// then starts the sender; or, for a connect scan, its one thread.
fn start_threads(
    cfg: &ScanConfig,
    keys: &ScanKeys,
    sockets: Sockets,
    clock: Instant,
) -> anyhow::Result<Threads> {
    let stop = Arc::new(AtomicBool::new(false));
    let rstats = Arc::new(ReceiverStats::default());
    let sstats = Arc::new(SenderStats::default());
    let (reply_tx, replies) = bounded::<Heard>(1 << 16);
    let (heard_all_tx, heard_all) = bounded::<()>(1);
    let batch = send_batch(cfg);
    let (orders, order_rx) = bounded::<Order>(batch);
    let (sent_tx, sent) = bounded::<()>(1);
    let (tx_socket, rx_socket) = match sockets {
        Sockets::Raw(tx, rx) => (tx, rx),
        Sockets::Connect(conns) => {
            let open_files = crate::io::connect::raise_fd_limit();
            let plan = connector::Plan {
                bind: !cfg.sources.is_empty(),
                device: cfg.device.clone(),
                max_age: cfg.timing.max_rto + MAX_GRACE,
                // Room for the outputs, the channels and the libraries.
                max_open: open_files.saturating_sub(64).max(16),
            };
            let links = connector::Links {
                orders: order_rx,
                replies: reply_tx,
                stop: stop.clone(),
                rstats: rstats.clone(),
                sstats: sstats.clone(),
                sent: sent_tx,
                done: heard_all_tx,
            };
            let handle = std::thread::Builder::new()
                .name("connect".into())
                .spawn(move || connector::run(conns, plan, clock, links))
                .context("cannot start the connect thread")?;
            return Ok(Threads {
                handles: vec![handle],
                replies,
                orders,
                stop,
                rstats,
                sstats,
                sent,
                heard_all,
            });
        }
    };
    let payloads = Arc::new(Payloads::builtin());
    let udp = cfg
        .techniques
        .iter()
        .position(|t| t.protocol == Protocol::Udp);
    let validator = Validator {
        key: keys.key.clone(),
        ports: keys.ports,
        probes: cfg.techniques.iter().map(Technique::shape).collect(),
        udp: udp.map(|t| (t, payloads.clone())),
    };
    let (ready_tx, ready_rx) = bounded(1);
    let links = receiver::Links {
        replies: reply_tx,
        ready: ready_tx,
        done: heard_all_tx,
        stop: stop.clone(),
        stats: rstats.clone(),
    };
    let taps = cfg.taps.clone();
    let receiver = std::thread::Builder::new()
        .name("receiver".into())
        .spawn(move || receiver::run(rx_socket, validator, clock, taps, links))
        .context("cannot start the receiver thread")?;
    // The handshake: no probe leaves before the receiver is reading.
    ready_rx
        .recv()
        .context("the receiver thread stopped before it started")?;
    let templates: Vec<Template> = cfg
        .techniques
        .iter()
        .map(|t| match t.protocol {
            Protocol::Tcp => Template::Tcp(ProbeTemplate::new(t.flags)),
            Protocol::Udp => Template::Udp(payloads.clone()),
        })
        .collect();
    let (s, taps) = (sstats.clone(), cfg.taps.clone());
    let sender = std::thread::Builder::new()
        .name("sender".into())
        .spawn(move || sender::run(tx_socket, templates, order_rx, s, taps, clock, sent_tx))
        .context("cannot start the sender thread")?;
    Ok(Threads {
        handles: vec![receiver, sender],
        replies,
        orders,
        stop,
        rstats,
        sstats,
        sent,
        heard_all,
    })
}

impl Threads {
    /// Stops both threads once the scan loop is done, and applies what was
    /// heard before the receiver stopped.
    fn stop(self, lp: &mut ScanLoop) -> (Arc<SenderStats>, Arc<ReceiverStats>) {
        drop(self.orders);
        self.stop.store(true, Ordering::Relaxed);
        // All sent, the taps let go and the sockets kept for the exit (or,
        // in a library, still being closed: the thread is not joined; see
        // sender::run).
        let _ = self.sent.recv();
        // Every packet read and handed over, its taps let go, its socket
        // kept or being closed, as the senders'.
        let _ = self.heard_all.recv();
        drop(self.handles);
        // Late replies heard before the receiver stopped: all duplicates
        // now, but counted (and traced) like the others.
        while let Ok(heard) = self.replies.try_recv() {
            lp.on_heard(heard);
        }
        (self.sstats, self.rstats)
    }
}

/// Turns the tracker's decisions into probes for the sender.
struct Probes<'a> {
    keys: &'a ScanKeys,
    /// By host position, as the tracker gives it: no hash per probe.
    sources: &'a PerHost<IpAddr>,
    /// `-S` with several addresses: every probe, retries and paced tries
    /// included, takes its host's next one, so that each address carries
    /// an even share of every host's probes.
    spread: &'a [IpAddr],
    turns: std::cell::RefCell<rustc_hash::FxHashMap<usize, usize>>,
    probes: Vec<ProbeShape>,
    orders: &'a Sender<Order>,
}

impl Probes<'_> {
    fn hand_out(&self, o: SendOrder) -> anyhow::Result<()> {
        let src = if self.spread.is_empty() {
            match o.host_pos < self.sources.len() {
                true => *self.sources.get(o.host_pos),
                false => anyhow::bail!("no source address planned for {}", o.host),
            }
        } else {
            let mut turns = self.turns.borrow_mut();
            let turn = turns.entry(o.host_pos).or_insert(0);
            *turn += 1;
            self.spread[*turn % self.spread.len()]
        };
        let shape = self.probes[o.technique];
        let (sport, seq, ack) = match shape.cookie {
            // UDP echoes nothing but the ports: the source port is the
            // cookie, and seq and ack carry the rest to the sender.
            CookieField::Sport => {
                let cookie = self.keys.key.cookie(src, o.host, 0, o.port);
                let sport = self.keys.ports.udp_sport(cookie, o.attempt);
                (sport, cookie.seq, cookie.ack)
            }
            _ => {
                // With -g the wire's port is fixed; the plan's goes into
                // the cookie all the same (see PortPlan).
                let sport = self.keys.ports.sport(o.technique, o.attempt);
                let (seq, ack) =
                    probe_numbers(self.keys.key.cookie(src, o.host, sport, o.port), shape);
                (self.keys.ports.wire_sport(o.technique, o.attempt), seq, ack)
            }
        };
        let fields = ProbeFields {
            src,
            dst: o.host,
            sport,
            dport: o.port,
            seq,
            ack,
        };
        self.orders
            .send(Order {
                technique: o.technique,
                attempt: o.attempt,
                fields,
            })
            .map_err(|_| anyhow::anyhow!("the sender thread stopped unexpectedly"))
    }
}

/// The tracker and what feeds it replies.
struct ScanLoop<'a> {
    tracker: &'a mut Tracker,
    replies: Receiver<Heard>,
    rstats: Arc<ReceiverStats>,
    taps: &'a Taps,
    clock: Instant,
    /// Host discovery's conclusions, (host, up), as they are drawn.
    news: Receiver<(usize, bool)>,
    /// Discovery is still running: hosts may yet be released.
    discovering: bool,
    /// The progress view, told of ports found open.
    progress: Option<&'a dyn ProgressView>,
}

/// How often the scan loop looks for hosts discovery found, while it runs.
const NEWS_POLL: Duration = Duration::from_millis(5);

impl ScanLoop<'_> {
    /// Releases (or excludes) the probes of hosts discovery concluded.
    fn take_news(&mut self) {
        loop {
            match self.news.try_recv() {
                Ok((host, up)) => {
                    self.tracker.conclude_host(host, up);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => return,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.discovering = false;
                    return;
                }
            }
        }
    }

    /// Every probe is decided and no host may be released any more.
    fn finished(&self) -> bool {
        self.tracker.is_done() && !self.discovering
    }

    /// Sends what the tracker allows and applies replies until every probe
    /// is decided, or until the grace period after an interrupt ends.
    /// Returns when it was interrupted, if it was.
    fn send_and_listen(
        &mut self,
        cfg: &ScanConfig,
        probes: &Probes,
        rate: Option<&SharedRate>,
    ) -> anyhow::Result<Option<Duration>> {
        let interrupt = cfg.interrupt.clone();
        let interrupted = || interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
        let clock = self.clock;
        let mut floor = cfg.min_rate.map(RateBudget::new);
        let progress = cfg.progress.as_deref();
        let total = self.tracker.space().asked();
        let not_asked = self.tracker.space().len() - total;
        let mut shown_at = Duration::ZERO;
        let mut timing = self.tracker.timing_state();
        let mut timing_shown_at = Duration::ZERO;
        let mut lowest_window = usize::MAX;
        // Set once interrupted: until when replies in flight are awaited.
        let mut grace_until: Option<Duration> = None;
        let mut heard: Vec<Heard> = Vec::with_capacity(REPLY_BATCH);
        while !self.finished() {
            self.take_news();
            if grace_until.is_none() && interrupted() {
                let grace = self.tracker.rto().min(MAX_GRACE);
                grace_until = Some(clock.elapsed() + grace);
                self.tracker.stop_confirming(clock.elapsed());
            }
            self.on_queued(&mut heard);
            if let Some(until) = grace_until {
                // Interrupted: nothing more is sent. A last try that times
                // out now concludes as usual; earlier tries stay undecided.
                let now = clock.elapsed();
                self.tracker.expire(now);
                if now >= until || self.tracker.in_flight() == 0 {
                    break;
                }
                self.wait_for_reply((until - now).min(CAPTURE_POLL))?;
                continue;
            }
            if !self.discovering && self.tracker.held() > 0 {
                // Discovery ended (failed) without concluding every host:
                // its error is the scan's, and their probes never go.
                break;
            }
            let now = clock.elapsed();
            let batch = send_batch(cfg);
            let allowed = rate.map_or(batch, |r| r.available(now).min(batch));
            let mut handed = 0;
            while handed < allowed {
                let Some(o) = self.tracker.poll_send(now) else {
                    break;
                };
                probes.hand_out(o)?;
                handed += 1;
            }
            if let Some(r) = rate {
                r.take(handed);
            }
            if let Some(f) = floor.as_mut() {
                // Behind the --min-rate floor: send past a full window.
                f.take(handed);
                let owed = f.available(now).min(allowed - handed);
                let mut forced = 0;
                while forced < owed {
                    let Some(o) = self.tracker.poll_send_forced(now) else {
                        break;
                    };
                    probes.hand_out(o)?;
                    forced += 1;
                }
                f.take(forced);
                if let Some(r) = rate {
                    r.take(forced);
                }
                handed += forced;
            }
            if let Some(view) = progress.filter(|_| now >= shown_at + PROGRESS_EVERY) {
                view.update(
                    self.tracker.decided() + self.tracker.confirming() - not_asked,
                    total,
                    self.tracker.open_found(),
                );
                shown_at = now;
                let state = self.tracker.timing_state();
                for note in TimingNote::between(&timing, &state) {
                    if let TimingNote::WindowShrank { to, .. } = note {
                        // A limiter saws the window up and down all scan
                        // long: only a new low is news.
                        if to >= lowest_window {
                            continue;
                        }
                        lowest_window = to;
                    }
                    view.timing_note(&note, &state);
                }
                // Compared with the last look, so that a slow change (the
                // timeout creeping up) is not told step by step.
                timing = state;
                if now >= timing_shown_at + TIMING_EVERY {
                    view.timing_state(&state, false);
                    timing_shown_at = now;
                }
            }
            if handed > 0 || self.finished() {
                continue;
            }
            // Nothing may be sent now: wait for a reply, the next timeout,
            // or (when the rate cap is what holds probes back) the next token.
            // Held back by the rate cap, a paced send's turn (already due)
            // is no reason to wake: the cap's next token is.
            let capped = allowed == 0 && rate.is_some();
            let next = match capped {
                true => self.tracker.next_timeout(),
                false => self.tracker.next_deadline(),
            };
            let mut wait = next.map_or(CAPTURE_POLL, |d| d.saturating_sub(clock.elapsed()));
            if let Some(r) = rate.filter(|_| allowed == 0 && self.tracker.has_unsent()) {
                wait = wait.min(r.wait());
            }
            if self.discovering {
                wait = wait.min(NEWS_POLL);
            }
            if let Some(f) = floor.as_ref().filter(|_| self.tracker.has_unsent()) {
                wait = wait.min(f.wait());
            }
            if progress.is_some() {
                wait = wait.min(PROGRESS_EVERY);
            }
            if interrupt.is_some() {
                // Look at the stop flag at least this often.
                wait = wait.min(CAPTURE_POLL);
            }
            self.wait_for_reply(wait)?;
        }
        Ok(grace_until)
    }

    /// A timeout concluded silence, not an answer: listens a little longer
    /// for replies that would revise the latest such conclusion (until an
    /// interrupt, if `interrupt` is given).
    fn listen_for_late_replies(
        &mut self,
        interrupt: Option<&Arc<AtomicBool>>,
    ) -> anyhow::Result<()> {
        let Some(until) = self
            .tracker
            .listen_until()
            .filter(|_| self.tracker.is_done())
        else {
            return Ok(());
        };
        loop {
            let now = self.clock.elapsed();
            if now >= until || interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                return Ok(());
            }
            self.wait_for_reply((until - now).min(CAPTURE_POLL))?;
        }
    }

    /// Waits up to `wait` for what the receiver heard, and applies it.
    fn wait_for_reply(&mut self, wait: Duration) -> anyhow::Result<()> {
        if let Some(heard) = recv_reply(&self.replies, wait, &self.rstats)? {
            self.on_heard(heard);
        }
        Ok(())
    }

    /// Applies every reply queued now, [`REPLY_BATCH`] at a time.
    fn on_queued(&mut self, batch: &mut Vec<Heard>) {
        loop {
            batch.clear();
            batch.extend(self.replies.try_iter().take(REPLY_BATCH));
            if batch.is_empty() {
                return;
            }
            self.tracker
                .prefetch_for(batch.iter().filter_map(|h| match h {
                    Heard::Reply(reply) => Some(reply),
                    Heard::Traced(_) => None,
                }));
            for h in batch.drain(..) {
                self.on_heard(h);
            }
        }
    }

    /// Applies what the receiver heard to the tracker and shows the taps
    /// that want it what it did.
    fn on_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Reply(reply) => {
                let effect = self.tracker.on_reply(&reply);
                self.tell_open(&reply, effect);
            }
            Heard::Traced(t) => {
                let effect = match t.verdict {
                    Verdict::Reply(reply) => {
                        let effect = self.tracker.on_reply(&reply);
                        self.tell_open(&reply, effect);
                        Some(effect)
                    }
                    Verdict::Invalid | Verdict::NotOurs => None,
                };
                for tap in self.taps {
                    tap.heard(&t, effect);
                }
            }
        }
    }

    /// A port found open is told to the progress view as it is found.
    fn tell_open(&self, reply: &Reply, effect: ReplyEffect) {
        let Some(view) = self.progress else { return };
        if let ReplyEffect::Decided { outcome, .. } | ReplyEffect::Revised { outcome, .. } = effect
        {
            if outcome.state == PortState::Open {
                let techniques = self.tracker.techniques();
                view.found_open(
                    reply.host,
                    reply.port,
                    &techniques[reply.technique],
                    techniques.len(),
                );
            }
        }
    }
}

/// The finished scan, from the tracker and the threads' counters.
fn collect(
    tracker: Tracker,
    sstats: Arc<SenderStats>,
    rstats: Arc<ReceiverStats>,
    elapsed: Duration,
    seed: u64,
    notify: Option<&Notify>,
) -> ScanResult {
    let stats = ScanStats {
        tracker: tracker.stats(),
        captured: rstats.captured.load(Ordering::Relaxed),
        invalid: rstats.invalid.load(Ordering::Relaxed),
        overflow: rstats.overflow.load(Ordering::Relaxed),
        send_failures: sstats.failed.load(Ordering::Relaxed),
        link_layer: sstats.link_layer.load(Ordering::Relaxed),
        elapsed,
        pcap: None,
        skipped: tracker.skipped(),
        discovery: None,
    };
    if let Some(err) = sstats.last_error.lock().ok().and_then(|e| e.clone()) {
        if let Some(notify) = notify {
            notify(&format!(
                "warning: {} probes could not be sent; last error: {err}",
                stats.send_failures
            ));
        }
    }
    // Stopped while confirming, every probe has a state (the unconfirmed
    // ones marked) and nothing is left to resume; still interrupted.
    let unfinished = !tracker.is_done();
    let interrupted = unfinished || tracker.stopped();
    ScanResult {
        space: tracker.space().clone(),
        techniques: tracker.techniques().to_vec(),
        stats,
        seed,
        interrupted,
        complete: !unfinished,
        decided: if unfinished {
            tracker.decided_positions()
        } else {
            Vec::new()
        },
        hosts: HostStatuses::default(),
        rate_limited: tracker.rate_limited(),
        limits: tracker.limits(),
        names: Vec::new(),
        // Last, as it moves the tracker's store rather than copying it.
        findings: tracker.into_findings(),
    }
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
