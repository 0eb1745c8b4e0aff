//! The connect scan's thread (`-sT`): takes the tracker's orders as the
//! sender does, starts a `connect()` for each, and hands what each comes
//! to back to the scan loop as the receiver hands replies, so the tracker,
//! its timing and every output work as for a raw scan.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use rustc_hash::FxHashMap;

use crate::engine::cookie::TRY_SLOTS;
use crate::engine::receiver::{Heard, ReceiverStats};
use crate::engine::sender::SenderStats;
use crate::io::connect::{Connected, Connects, Started};
use crate::model::reply::Reply;
use crate::model::tap::Order;
use crate::model::technique::ReplyKind;

/// What the thread is joined to.
pub struct Links {
    pub orders: Receiver<Order>,
    pub replies: Sender<Heard>,
    pub stop: Arc<AtomicBool>,
    pub rstats: Arc<ReceiverStats>,
    pub sstats: Arc<SenderStats>,
    /// Sent once it has stopped starting connections.
    pub sent: Sender<()>,
    /// Sent once its last outcome is handed over.
    pub done: Sender<()>,
}

/// How the thread runs.
pub struct Plan {
    /// Bind each socket to the probe's source address (`-S`); otherwise
    /// the kernel chooses, as it would for the routes planned.
    pub bind: bool,
    /// `-e`: the interface every connection leaves through.
    pub device: Option<String>,
    /// A connection still pending after this long is closed: the tracker
    /// has concluded silence or sent its next try by then (the longest
    /// timeout), and the socket is better spent on another probe.
    pub max_age: Duration,
    /// Sockets in flight at most (below the open-files limit).
    pub max_open: usize,
}

/// How long one wait for outcomes lasts when orders may be waiting.
const POLL: Duration = Duration::from_millis(1);

/// One probe in flight.
struct Flight {
    slot: usize,
    host: IpAddr,
    port: u16,
    technique: usize,
    attempt: u8,
}

/// Runs until `links.stop` is set.
pub fn run(mut conns: Connects, plan: Plan, clock: Instant, links: Links) {
    let Links {
        orders,
        replies,
        stop,
        rstats,
        sstats,
        sent,
        done,
    } = links;
    let mut flights: FxHashMap<u64, Flight> = FxHashMap::default();
    // A probe's earlier try is closed when the next one starts: its
    // answer would be the tracker's late reply, and the socket is needed.
    let mut by_probe: FxHashMap<(IpAddr, u16, usize), u64> = FxHashMap::default();
    // Every flight has the same age limit, so start order is expiry order.
    let mut ages: VecDeque<(Duration, u64)> = VecDeque::new();
    let mut next_token = 0u64;
    let mut outcomes = Vec::new();
    let mut orders_open = true;
    // An order taken while sleeping for one, started on the next turn.
    let mut held: Option<Order> = None;
    let hand = |flight: &Flight, outcome: Connected, at: Duration| {
        let kind = match outcome {
            Connected::Open => ReplyKind::SynAck,
            Connected::Refused => ReplyKind::Rst { window: 0 },
            Connected::Unreachable(code) => ReplyKind::Unreachable { code },
            Connected::Silent => return,
        };
        rstats.captured.fetch_add(1, Ordering::Relaxed);
        let reply = Reply {
            host: flight.host,
            port: flight.port,
            technique: flight.technique,
            attempt_slot: (u16::from(flight.attempt) % TRY_SLOTS) as u8,
            kind,
            // connect() does not tell the reply's TTL.
            ttl: 0,
            at,
        };
        if let Err(TrySendError::Full(_)) = replies.try_send(Heard::Reply(reply)) {
            rstats.overflow.fetch_add(1, Ordering::Relaxed);
        }
    };
    let failed = |e: std::io::Error| {
        sstats.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = sstats.last_error.lock() {
            *last = Some(e.to_string());
        }
    };
    while !stop.load(Ordering::Relaxed) {
        // Start what the tracker ordered, while sockets are free.
        while conns.open() < plan.max_open {
            let next = match held.take() {
                Some(o) => Ok(o),
                None if orders_open => orders.try_recv(),
                None => break,
            };
            let order = match next {
                Ok(o) => o,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    orders_open = false;
                    break;
                }
            };
            let f = order.fields;
            let key = (f.dst, f.dport, order.technique);
            if let Some(old) = by_probe.remove(&key).and_then(|t| flights.remove(&t)) {
                if let Some(late) = conns.close_reading(old.slot) {
                    hand(&old, late, clock.elapsed());
                }
            }
            let token = next_token;
            next_token += 1;
            let src = plan.bind.then_some(f.src);
            let started = conns.start(
                (src, plan.device.as_deref()),
                std::net::SocketAddr::new(f.dst, f.dport),
                token,
            );
            let at = clock.elapsed();
            let flight = Flight {
                slot: usize::MAX,
                host: f.dst,
                port: f.dport,
                technique: order.technique,
                attempt: order.attempt,
            };
            match started {
                Ok((slot, Started::Pending)) => {
                    sstats.sent.fetch_add(1, Ordering::Relaxed);
                    flights.insert(token, Flight { slot, ..flight });
                    by_probe.insert(key, token);
                    ages.push_back((at + plan.max_age, token));
                }
                Ok((_, Started::Done(outcome))) => {
                    sstats.sent.fetch_add(1, Ordering::Relaxed);
                    hand(&flight, outcome, at);
                }
                Err(e) => failed(e),
            }
        }
        let wait = match (conns.open(), orders_open) {
            (0, true) => {
                // Nothing in flight: sleep until the next order.
                match orders.recv_timeout(Duration::from_millis(5)) {
                    Ok(o) => held = Some(o),
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        orders_open = false;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                }
                continue;
            }
            (0, false) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            _ => POLL,
        };
        outcomes.clear();
        if let Err(e) = conns.wait(wait, &mut outcomes) {
            failed(e);
        }
        let at = clock.elapsed();
        for (token, outcome) in outcomes.drain(..) {
            let Some(flight) = flights.remove(&token) else {
                continue;
            };
            let key = (flight.host, flight.port, flight.technique);
            if by_probe.get(&key) == Some(&token) {
                by_probe.remove(&key);
            }
            match outcome {
                Ok(outcome) => hand(&flight, outcome, at),
                Err(e) => failed(e),
            }
        }
        while let Some(&(deadline, token)) = ages.front() {
            if deadline > at {
                break;
            }
            ages.pop_front();
            if let Some(flight) = flights.remove(&token) {
                if let Some(late) = conns.close_reading(flight.slot) {
                    hand(&flight, late, at);
                }
                let key = (flight.host, flight.port, flight.technique);
                if by_probe.get(&key) == Some(&token) {
                    by_probe.remove(&key);
                }
            }
        }
    }
    let _ = sent.send(());
    // Closing every socket in flight: their outcomes are no one's now.
    drop(conns);
    let _ = done.send(());
}
