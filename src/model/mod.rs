//! The shared vocabulary: techniques (from `scanners/`), the probe space,
//! replies and results. Every other folder speaks it; it imports only
//! [`crate::wire`] (flag bits, parsed packets) and [`crate::error`].

pub mod host;
pub mod hosts;
pub mod payloads;
pub mod ports;
pub mod probe;
pub mod reply;
pub mod result;
pub mod scanflags;
pub(crate) mod services;
pub(crate) mod tap;
pub mod technique;
