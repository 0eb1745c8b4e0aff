pub mod bpf;
pub mod handover;
pub mod portable;
pub mod rawsock;
pub mod ring;
pub mod socket;
