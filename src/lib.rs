//! flagscan: a raw-packet TCP port scanner.
//!
//! Data flow (see docs/architecture.md):
//! targets x ports x techniques -> [`permutation`] -> [`sender`] thread -> [`rawsock`]
//! -> network -> [`receiver`] thread ([`wire`] parse, [`cookie`] validate) -> channel
//! -> [`tracker`] (states, retries, RTT) -> [`output`].

pub mod bpf;
pub mod capture;
pub mod cli;
pub mod cookie;
pub mod demo;
pub mod error;
pub mod explain;
pub mod findings;
pub mod handover;
pub mod interrupt;
pub mod lab;
pub mod nexthop;
pub mod output;
pub mod permutation;
pub mod portable_io;
pub mod portnotes;
pub mod ports;
pub mod privilege;
pub mod progress;
pub mod rawsock;
pub mod receiver;
pub mod resume;
pub mod ring;
pub mod route;
pub mod scan;
pub mod sender;
pub mod services;
pub mod sockopt;
pub mod targets;
pub mod teardown;
pub mod technique;
pub mod timing;
pub mod trace;
pub mod tracker;
pub mod wire;
