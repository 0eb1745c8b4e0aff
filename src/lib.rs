//! flagscan: a raw-packet TCP port scanner.
//!
//! Each folder is one part of the design (see docs/architecture.md); data
//! flows one way: [`cli`] -> [`engine`] -> [`io`], and [`output`] and
//! [`teach`] read finished results.

pub mod cli;
pub mod engine;
pub mod error;
pub(crate) mod io;
pub(crate) mod lab;
pub mod model;
pub(crate) mod output;
pub(crate) mod route;
pub mod sys;
pub(crate) mod teach;
pub mod wire;
