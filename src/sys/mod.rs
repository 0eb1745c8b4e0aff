//! The process and the system around it: privileges, signals, network
//! namespaces, socket options, and the exit that does not wait for the
//! kernel.

pub(crate) mod clock;
pub(crate) mod files;
pub(crate) mod interrupt;
pub mod netns;
pub(crate) mod privilege;
pub mod sockopt;
pub mod teardown;
