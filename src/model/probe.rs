//! The probe space (hosts x ports x techniques) and the orders the tracker
//! hands out to be sent.

use std::net::IpAddr;
use std::time::Duration;

use crate::model::hosts::{HostIndex, Hosts};

/// Time since the scan started.
pub type Time = Duration;

/// Hosts x ports x techniques, indexed without materialising the product.
#[derive(Debug, Clone)]
pub struct ProbeSpace {
    pub hosts: Hosts,
    /// Sorted ascending.
    pub ports: Vec<u16>,
    pub techniques: usize,
    /// Every reply is looked up here, on the scan loop's thread: runs of
    /// consecutive addresses or a fast hash for hosts ([`HostIndex`]) and a
    /// table for ports (256 KiB), rather than SipHash and a binary search
    /// over every host, which were 2.6% of a scan's CPU time.
    host_index: HostIndex,
    /// Port -> its position in `ports`, or `NO_PORT`.
    port_index: Vec<u32>,
    /// A scan of TCP and UDP in one pass asks each protocol's techniques
    /// about its own ports (`-p U:53,T:22`): per port position, a bit per
    /// protocol that asks it; per technique, its protocol's bit. Empty:
    /// every technique asks every port.
    port_protocols: Vec<u8>,
    technique_bits: Vec<u8>,
    /// `--shard`: this scan asks only the (address, port) pairs whose
    /// hash is `.0` modulo `.1` ([`shard_of`]); the shards' union is the
    /// whole scan, no pair is in two, and machines whose target lists
    /// differ in order (or by an address one of them skips) agree.
    shard: Option<(u64, u64)>,
}

const NO_PORT: u32 = u32::MAX;

impl ProbeSpace {
    pub fn new(hosts: impl Into<Hosts>, mut ports: Vec<u16>, techniques: usize) -> ProbeSpace {
        let hosts: Hosts = hosts.into();
        ports.sort_unstable();
        ports.dedup();
        let host_index = HostIndex::new(&hosts);
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
            port_protocols: Vec::new(),
            technique_bits: Vec::new(),
            shard: None,
        }
    }

    /// The address of host `h` (a position in `hosts`).
    pub fn host_addr(&self, h: usize) -> IpAddr {
        self.host_index.addr(&self.hosts, h)
    }

    /// Whether this is one shard of a scan (`--shard`).
    pub fn is_sharded(&self) -> bool {
        self.shard.is_some()
    }

    /// Which shard (from 0) of how many, if one.
    pub fn shard(&self) -> Option<(u64, u64)> {
        self.shard
    }

    /// Shard `i` of `n` (0-based) of this space: see [`ProbeSpace::asks`].
    pub fn sharded(mut self, i: u64, n: u64) -> ProbeSpace {
        self.shard = (n > 1).then_some((i % n, n));
        self
    }

    /// Several protocols in one pass: `ports_of[k]` are the ports protocol
    /// `k`'s techniques ask about, `technique_protocols` each technique's
    /// `k` (at most 8 protocols). The space's ports are their union.
    pub fn with_protocols(
        hosts: impl Into<Hosts>,
        ports_of: &[Vec<u16>],
        technique_protocols: &[usize],
    ) -> ProbeSpace {
        let union: Vec<u16> = ports_of.iter().flatten().copied().collect();
        let mut space = ProbeSpace::new(hosts, union, technique_protocols.len());
        let mut bits = vec![0u8; space.ports.len()];
        for (k, ports) in ports_of.iter().enumerate() {
            for &p in ports {
                if let Some(at) = space.port_position(p) {
                    bits[at] |= 1 << k;
                }
            }
        }
        space.port_protocols = bits;
        space.technique_bits = technique_protocols.iter().map(|&k| 1 << k).collect();
        space
    }

    /// Whether probe `index` is asked at all: in a pass of several
    /// protocols, a technique asks only its protocol's ports.
    pub fn asks(&self, index: u64) -> bool {
        let pair = index / self.techniques as u64;
        if let Some((i, n)) = self.shard {
            let ports = self.ports.len() as u64;
            let (h, p) = ((pair / ports) as usize, (pair % ports) as usize);
            if shard_of(self.host_addr(h), self.ports[p], n) != i {
                return false;
            }
        }
        if self.port_protocols.is_empty() {
            return true;
        }
        let t = (index % self.techniques as u64) as usize;
        let p = (pair % self.ports.len() as u64) as usize;
        self.port_protocols[p] & self.technique_bits[t] != 0
    }

    /// How many probes are asked: [`ProbeSpace::len`] less the pairs of a
    /// port and a technique of another protocol.
    pub fn asked(&self) -> u64 {
        if self.shard.is_some() {
            // As many as the scan's slots: counted once per call.
            return (0..self.len()).filter(|&i| self.asks(i)).count() as u64;
        }
        if self.port_protocols.is_empty() {
            return self.len();
        }
        let per_host: u64 = self
            .port_protocols
            .iter()
            .map(|bits| {
                self.technique_bits
                    .iter()
                    .filter(|t| *t & bits != 0)
                    .count() as u64
            })
            .sum();
        per_host * self.hosts.len() as u64
    }

    /// Whether techniques `a` and `b` share a protocol (always, but in a
    /// pass of several).
    pub fn same_protocol(&self, a: usize, b: usize) -> bool {
        self.technique_bits.is_empty() || self.technique_bits[a] == self.technique_bits[b]
    }

    fn port_position(&self, port: u16) -> Option<usize> {
        match self.port_index[usize::from(port)] {
            NO_PORT => None,
            p => Some(p as usize),
        }
    }

    pub fn len(&self) -> u64 {
        self.hosts.len() as u64 * self.ports.len() as u64 * self.techniques as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Techniques vary fastest, so one port's techniques sit side by side.
    pub fn index(&self, host: IpAddr, port: u16, technique: usize) -> Option<u64> {
        let h = u64::from(self.host_index.get(host)?);
        let p = match self.port_index[usize::from(port)] {
            NO_PORT => return None,
            p => u64::from(p),
        };
        (technique < self.techniques)
            .then(|| (h * self.ports.len() as u64 + p) * self.techniques as u64 + technique as u64)
    }

    /// The host's position in `hosts`.
    pub fn host_position(&self, host: IpAddr) -> Option<usize> {
        self.host_index.get(host).map(|h| h as usize)
    }

    pub(crate) fn prefetch_port(&self, port: u16) {
        prefetch(&self.port_index[usize::from(port)]);
    }

    /// The host's position in `hosts`.
    pub fn host_of(&self, index: u64) -> usize {
        (index / self.techniques as u64 / self.ports.len() as u64) as usize
    }

    pub fn probe(&self, index: u64) -> (IpAddr, u16, usize) {
        let t = (index % self.techniques as u64) as usize;
        let rest = index / self.techniques as u64;
        let p = (rest % self.ports.len() as u64) as usize;
        let h = (rest / self.ports.len() as u64) as usize;
        (self.host_addr(h), self.ports[p], t)
    }
}

/// An address as one number that orders and counts both families: an
/// IPv4 address as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), which is
/// why such IPv6 addresses are refused as targets.
pub fn addr_key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The shard (of `n`) an (address, port) pair belongs to: a mixing hash
/// (splitmix64's finaliser), so that the pairs of one host, or of one
/// port, spread over all shards.
pub fn shard_of(addr: IpAddr, port: u16, n: u64) -> u64 {
    // An IPv4 address keeps the value it had before IPv6 (shards of one
    // scan agree across versions); an IPv6 one folds its halves.
    let a = match addr {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            (x >> 64) as u64 ^ x as u64
        }
    };
    let mut x = (a << 16) | u64::from(port);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) % n
}

/// A probe the sender should put on the wire now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOrder {
    pub index: u64,
    pub host: IpAddr,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Every host is found at its own position, whether the index keeps
    /// runs (blocks, out of order) or the hash (scattered addresses), and
    /// an address that is no target is not found.
    #[test]
    fn hosts_are_indexed_by_runs_or_by_hash() {
        let blocks: Vec<IpAddr> = (100u32..200)
            .chain(0..50)
            .chain(300..301)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let scattered: Vec<IpAddr> = (0u32..500)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7)))
            .collect();
        // Both families, scattered: positions are kept as 16-byte keys.
        let mixed: Vec<IpAddr> = scattered
            .iter()
            .copied()
            .chain((0u128..100).map(|i| IpAddr::V6(((0xfd00u128 << 112) | (i * 3)).into())))
            .collect();
        for (hosts, runs) in [(blocks, true), (scattered, false), (mixed, false)] {
            let list = Hosts::from(hosts.clone());
            let index = HostIndex::new(&list);
            assert_eq!(matches!(index, HostIndex::Runs(_)), runs);
            for (i, h) in hosts.iter().enumerate() {
                assert_eq!(index.get(*h), Some(i as u32), "{h}");
                assert_eq!(index.addr(&list, i), *h, "position {i}");
            }
            for absent in [
                0x0a00_0000 + 60,
                0x0a00_0000 + 299,
                0x0a00_0000 + 302,
                0,
                u32::MAX,
            ] {
                let a = IpAddr::V4(Ipv4Addr::from(absent));
                assert!(index.get(a).is_none() || hosts.contains(&a), "{a}");
            }
        }
    }

    /// Four shards of a space: every probe in exactly one, each shard a
    /// quarter or so, whatever the protocols.
    #[test]
    fn shards_cover_the_space_once() {
        let hosts: Vec<IpAddr> = (1..=3)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let whole =
            ProbeSpace::with_protocols(hosts, &[(1..=50).collect(), vec![53, 123]], &[0, 0, 1]);
        let mut seen = vec![0u8; whole.len() as usize];
        for i in 0..4 {
            let shard = whole.clone().sharded(i, 4);
            let mine: Vec<u64> = (0..shard.len()).filter(|&x| shard.asks(x)).collect();
            assert_eq!(mine.len() as u64, shard.asked());
            assert!(mine.len() > 60, "shard {i}: {}", mine.len());
            for x in mine {
                // A technique of a port in the shard: all its techniques are.
                assert!(whole.asks(x));
                seen[x as usize] += 1;
            }
        }
        let asked: Vec<u8> = (0..whole.len()).map(|x| u8::from(whole.asks(x))).collect();
        assert_eq!(seen, asked, "each probe asked in exactly one shard");
        assert_eq!(whole.clone().sharded(0, 1).asked(), whole.asked());
    }
}
