pub(crate) mod bpf;
pub(crate) mod connect;
pub(crate) mod handover;
pub(crate) mod ping;
pub(crate) mod portable;
pub(crate) mod rawsock;
pub(crate) mod ring;
pub(crate) mod socket;
