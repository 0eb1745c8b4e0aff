//! flagscan: a raw-packet TCP port scanner.
//!
//! Each folder is one part of the design (see docs/architecture.md); data
//! flows one way: [`cli`] -> [`engine`] -> [`io`], and [`output`] and
//! [`teach`] read finished results.

pub mod cli;
pub mod engine;
pub mod error;
pub mod io;
pub mod lab;
pub mod model;
pub mod output;
pub mod route;
pub mod sys;
pub mod teach;
pub mod wire;
