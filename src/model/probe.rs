//! The probe space (hosts x ports x techniques) and the orders the tracker
//! hands out to be sent.

use std::net::Ipv4Addr;
use std::time::Duration;

use rustc_hash::FxHashMap;

/// Time since the scan started.
pub type Time = Duration;

/// Hosts x ports x techniques, indexed without materialising the product.
#[derive(Debug, Clone)]
pub struct ProbeSpace {
    pub hosts: Vec<Ipv4Addr>,
    /// Sorted ascending.
    pub ports: Vec<u16>,
    pub techniques: usize,
    /// Every reply is looked up here, on the scan loop's thread: a fast
    /// hash for hosts and a table for ports (256 KiB), rather than SipHash
    /// and a binary search, which were 2.6% of a scan's CPU time.
    host_index: FxHashMap<Ipv4Addr, u32>,
    /// Port -> its position in `ports`, or `NO_PORT`.
    port_index: Vec<u32>,
}

const NO_PORT: u32 = u32::MAX;

impl ProbeSpace {
    pub fn new(hosts: Vec<Ipv4Addr>, mut ports: Vec<u16>, techniques: usize) -> ProbeSpace {
        ports.sort_unstable();
        ports.dedup();
        let host_index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (*h, i as u32))
            .collect();
        let mut port_index = vec![NO_PORT; 1 << 16];
        for (i, p) in ports.iter().enumerate() {
            port_index[usize::from(*p)] = i as u32;
        }
        ProbeSpace {
            hosts,
            ports,
            techniques,
            host_index,
            port_index,
        }
    }

    pub fn len(&self) -> u64 {
        self.hosts.len() as u64 * self.ports.len() as u64 * self.techniques as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Techniques vary fastest, so one port's techniques sit side by side.
    pub fn index(&self, host: Ipv4Addr, port: u16, technique: usize) -> Option<u64> {
        let h = *self.host_index.get(&host)? as u64;
        let p = match self.port_index[usize::from(port)] {
            NO_PORT => return None,
            p => u64::from(p),
        };
        (technique < self.techniques)
            .then(|| (h * self.ports.len() as u64 + p) * self.techniques as u64 + technique as u64)
    }

    pub(crate) fn prefetch_port(&self, port: u16) {
        prefetch(&self.port_index[usize::from(port)]);
    }

    /// The host's position in `hosts`.
    pub fn host_of(&self, index: u64) -> usize {
        (index / self.techniques as u64 / self.ports.len() as u64) as usize
    }

    pub fn probe(&self, index: u64) -> (Ipv4Addr, u16, usize) {
        let t = (index % self.techniques as u64) as usize;
        let rest = index / self.techniques as u64;
        let p = (rest % self.ports.len() as u64) as usize;
        let h = (rest / self.ports.len() as u64) as usize;
        (self.hosts[h], self.ports[p], t)
    }
}

/// A probe the sender should put on the wire now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOrder {
    pub index: u64,
    pub host: Ipv4Addr,
    /// The host's position in [`ProbeSpace::hosts`] (and so in the route
    /// plan's per-target lists).
    pub host_pos: usize,
    pub port: u16,
    pub technique: usize,
    /// 0 for the first try.
    pub attempt: u8,
}

/// Hints the CPU to bring `value` into its cache.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
