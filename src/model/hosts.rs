//! The target addresses in scan order, held as runs of consecutive
//! addresses: a /8 is one run of 32 bytes, not 16 million addresses of 17
//! (before any table is built from it, and for every copy of it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::probe::addr_key;

/// `count` consecutive addresses from `first` (an [`addr_key`]), at
/// positions `start..start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u128,
    count: u64,
    start: u64,
}

impl Run {
    fn is_v6(&self) -> bool {
        !is_v4_key(self.first)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    /// Shared: the probe space, the route plan and discovery each hold the
    /// targets, and a list of a million single addresses is 32 MB of runs.
    runs: Arc<Vec<Run>>,
    len: u64,
}

/// Where a kind of address begins, as [`addr_key`]s: IPv4 (as IPv4-mapped
/// IPv6) and the IPv6 after it, IPv6 link-local (fe80::/10) and what
/// follows it. No run crosses one, so a run's first address tells its
/// family and whether it is link-local.
const KINDS: [u128; 4] = [
    0xffff_0000_0000,
    0x1_0000_0000_0000,
    0xfe80 << 112,
    0xfec0 << 112,
];

/// Whether an [`addr_key`] is an IPv4 address's.
fn is_v4_key(key: u128) -> bool {
    key >> 32 == 0xffff
}

/// The address an [`addr_key`] stands for.
pub fn from_key(key: u128) -> IpAddr {
    match is_v4_key(key) {
        true => IpAddr::V4(Ipv4Addr::from(key as u32)),
        false => IpAddr::V6(Ipv6Addr::from(key)),
    }
}

impl Hosts {
    pub fn new() -> Hosts {
        Hosts::default()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one address.
    pub fn push(&mut self, addr: IpAddr) {
        self.push_run(addr, 1);
    }

    /// Appends `count` consecutive addresses from `first` (within its
    /// family: a run never crosses from IPv4 into IPv6).
    pub fn push_run(&mut self, first: IpAddr, count: u64) {
        if count == 0 {
            return;
        }
        let key = addr_key(first);
        // A run holds addresses of one kind: cut where one begins.
        if let Some(&b) = KINDS
            .iter()
            .find(|&&b| key < b && b - key < u128::from(count))
        {
            let head = (b - key) as u64;
            self.push_run(first, head);
            self.push_run(from_key(b), count - head);
            return;
        }
        let start = self.len;
        self.len += count;
        let runs = Arc::make_mut(&mut self.runs);
        if let Some(last) = runs.last_mut() {
            let next = last.first.checked_add(u128::from(last.count));
            if next == Some(key) && !KINDS.contains(&key) {
                last.count += count;
                return;
            }
        }
        runs.push(Run {
            first: key,
            count,
            start,
        });
    }

    /// The address at position `i` (`i < len()`).
    pub fn at(&self, i: usize) -> IpAddr {
        let i = i as u64;
        let r = match self.runs.as_slice() {
            [only] => only,
            runs => &runs[runs.partition_point(|r| r.start <= i) - 1],
        };
        from_key(r.first + u128::from(i - r.start))
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + Clone + '_ {
        self.runs
            .iter()
            .flat_map(|r| (0..r.count).map(move |k| from_key(r.first + u128::from(k))))
    }

    /// The runs of consecutive addresses, in order: (first address, how
    /// many, position of the first).
    pub fn runs(&self) -> impl Iterator<Item = (IpAddr, u64, usize)> + '_ {
        self.runs
            .iter()
            .map(|r| (from_key(r.first), r.count, r.start as usize))
    }

    /// How many runs: what a table per run of targets costs.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    pub fn any_ipv6(&self) -> bool {
        self.runs.iter().any(Run::is_v6)
    }

    pub fn any_ipv4(&self) -> bool {
        self.runs.iter().any(|r| !r.is_v6())
    }

    /// The addresses at `range` of positions.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Hosts {
        let mut out = Hosts::new();
        let (lo, hi) = (range.start as u64, range.end as u64);
        let from = self.runs.partition_point(|r| r.start + r.count <= lo);
        for r in &self.runs[from..] {
            if r.start >= hi {
                break;
            }
            let a = lo.max(r.start);
            let b = hi.min(r.start + r.count);
            out.push_run(from_key(r.first + u128::from(a - r.start)), b - a);
        }
        out
    }

    /// Leaves out the addresses that `inside(first, last)` lists (sorted
    /// [`addr_key`]s between a run's first and last, inclusive), run by
    /// run, without visiting the addresses kept; returns those left out.
    pub fn remove(&mut self, mut inside: impl FnMut(u128, u128) -> Vec<u128>) -> Vec<IpAddr> {
        let last_of = |r: &Run| r.first + u128::from(r.count - 1);
        // Nothing to remove (the usual case): the runs stay as they are.
        if self
            .runs
            .iter()
            .all(|r| inside(r.first, last_of(r)).is_empty())
        {
            return Vec::new();
        }
        let mut out = Hosts::new();
        let mut removed = Vec::new();
        for r in self.runs.iter() {
            let last = last_of(r);
            // The first address not yet kept or removed; `None` past the
            // end of the address space.
            let mut from = Some(r.first);
            for k in inside(r.first, last) {
                let Some(f) = from.filter(|&f| f <= k && k <= last) else {
                    continue;
                };
                out.push_run(from_key(f), (k - f) as u64);
                removed.push(from_key(k));
                from = k.checked_add(1);
            }
            if let Some(f) = from.filter(|&f| f <= last) {
                out.push_run(from_key(f), (last - f + 1) as u64);
            }
        }
        *self = out;
        removed
    }
}

impl FromIterator<IpAddr> for Hosts {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Hosts {
        let mut h = Hosts::new();
        for a in iter {
            h.push(a);
        }
        h
    }
}

impl From<Vec<IpAddr>> for Hosts {
    fn from(v: Vec<IpAddr>) -> Hosts {
        v.into_iter().collect()
    }
}

impl From<&[IpAddr]> for Hosts {
    fn from(v: &[IpAddr]) -> Hosts {
        v.iter().copied().collect()
    }
}

impl<const N: usize> From<[IpAddr; N]> for Hosts {
    fn from(v: [IpAddr; N]) -> Hosts {
        v.into_iter().collect()
    }
}

/// Address -> position among the hosts. Targets mostly come as blocks and
/// ranges: their runs of consecutive addresses, searched by bisection,
/// index a /8 in 12 bytes instead of a 16-million-entry map (seconds
/// and hundreds of MB before the first probe). Scattered addresses (a list
/// of single hosts) keep the hash, one probe per lookup.
#[derive(Debug, Clone)]
pub enum HostIndex {
    /// (first address, last address, position of the first), sorted, as
    /// [`addr_key`]s.
    Runs(Arc<Vec<(u128, u128, u32)>>),
    Hash(Arc<Scattered>),
}

/// A list of mostly single addresses, indexed both ways: a run each would
/// take a bisection over a million runs per probe sent (about 250 ns).
#[derive(Debug)]
pub struct Scattered {
    /// IPv4 addresses by their 4 bytes (a million-address list: 18 MB,
    /// not the 52 MB of `IpAddr` keys), IPv6 ones by their 16.
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    /// Position -> address: 4 bytes each where every one is IPv4.
    at: Dense,
}

#[derive(Debug)]
enum Dense {
    V4(Vec<u32>),
    Any(Vec<u128>),
}

impl HostIndex {
    pub fn new(hosts: &Hosts) -> HostIndex {
        // Mostly single addresses: the hash is faster and no larger.
        let runs = hosts.run_count();
        if runs > 64 && runs > hosts.len() / 4 {
            let at = match hosts.any_ipv6() {
                false => Dense::V4(
                    hosts
                        .iter()
                        .map(|h| match h {
                            IpAddr::V4(a) => u32::from(a),
                            IpAddr::V6(_) => unreachable!("an IPv4-only list"),
                        })
                        .collect(),
                ),
                true => Dense::Any(hosts.iter().map(addr_key).collect()),
            };
            let mut index = Scattered {
                v4: FxHashMap::default(),
                v6: FxHashMap::default(),
                at,
            };
            for (i, h) in hosts.iter().enumerate() {
                match h {
                    IpAddr::V4(a) => index.v4.insert(u32::from(a), i as u32),
                    IpAddr::V6(a) => index.v6.insert(u128::from(a), i as u32),
                };
            }
            return HostIndex::Hash(Arc::new(index));
        }
        let mut runs: Vec<(u128, u128, u32)> = hosts
            .runs()
            .map(|(first, n, at)| {
                let a = addr_key(first);
                (a, a + u128::from(n - 1), at as u32)
            })
            .collect();
        runs.sort_unstable();
        HostIndex::Runs(Arc::new(runs))
    }

    pub fn get(&self, host: IpAddr) -> Option<u32> {
        match self {
            HostIndex::Hash(s) => match host {
                IpAddr::V4(a) => s.v4.get(&u32::from(a)).copied(),
                IpAddr::V6(a) => s.v6.get(&u128::from(a)).copied(),
            },
            HostIndex::Runs(runs) => {
                let a = addr_key(host);
                let at = runs.partition_point(|&(first, _, _)| first <= a);
                let &(first, last, pos) = runs.get(at.checked_sub(1)?)?;
                (a <= last).then(|| pos + (a - first) as u32)
            }
        }
    }

    /// The address at position `i` of `hosts` (which this indexes).
    pub fn addr(&self, hosts: &Hosts, i: usize) -> IpAddr {
        match self {
            HostIndex::Hash(s) => match &s.at {
                Dense::V4(v) => IpAddr::V4(Ipv4Addr::from(v[i])),
                Dense::Any(v) => from_key(v[i]),
            },
            HostIndex::Runs(_) => hosts.at(i),
        }
    }
}

/// A value per target position, held as runs of equal values: the route
/// and the source address of a /8 behind one gateway are one entry each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerHost<T> {
    /// Position of each run's first target, ascending.
    starts: Vec<u64>,
    values: Vec<T>,
    len: u64,
}

impl<T> Default for PerHost<T> {
    fn default() -> Self {
        PerHost {
            starts: Vec::new(),
            values: Vec::new(),
            len: 0,
        }
    }
}

impl<T: PartialEq> PerHost<T> {
    pub fn new() -> PerHost<T> {
        PerHost::default()
    }

    /// `n` copies of `value`.
    pub fn filled(value: T, n: usize) -> PerHost<T> {
        let mut p = PerHost::new();
        p.push_n(value, n as u64);
        p
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, value: T) {
        self.push_n(value, 1);
    }

    /// Appends `n` positions holding `value`.
    pub fn push_n(&mut self, value: T, n: u64) {
        if n == 0 {
            return;
        }
        if self.values.last() != Some(&value) {
            self.starts.push(self.len);
            self.values.push(value);
        }
        self.len += n;
    }

    /// The value at position `i` (`i < len()`).
    pub fn get(&self, i: usize) -> &T {
        let at = match self.values.len() {
            1 => 0,
            _ => self.starts.partition_point(|&s| s <= i as u64) - 1,
        };
        &self.values[at]
    }

    /// Every position's value, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.runs()
            .flat_map(|(range, v)| std::iter::repeat_n(v, range.len()))
    }

    /// The runs: positions and their one value.
    pub fn runs(&self) -> impl Iterator<Item = (std::ops::Range<usize>, &T)> + '_ {
        self.values.iter().enumerate().map(|(k, v)| {
            let end = self.starts.get(k + 1).copied().unwrap_or(self.len);
            (self.starts[k] as usize..end as usize, v)
        })
    }
}

impl<T: PartialEq> FromIterator<T> for PerHost<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> PerHost<T> {
        let mut p = PerHost::new();
        for v in iter {
            p.push(v);
        }
        p
    }
}

impl<T: PartialEq> From<Vec<T>> for PerHost<T> {
    fn from(v: Vec<T>) -> PerHost<T> {
        v.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_block_is_one_run_and_reads_back_in_order() {
        let mut h = Hosts::new();
        h.push_run(v4("10.0.0.0"), 1 << 24);
        assert_eq!(h.len(), 1 << 24);
        assert_eq!(h.run_count(), 1);
        assert_eq!(h.at(0), v4("10.0.0.0"));
        assert_eq!(h.at((1 << 24) - 1), v4("10.255.255.255"));
        assert_eq!(h.at(258), v4("10.0.1.2"));
    }

    #[test]
    fn runs_merge_only_consecutive_addresses_of_one_family() {
        let list: Vec<IpAddr> = [
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.9",
            "255.255.255.255",
            "::1:0:0:0",
            "fd00::1",
            "fd00::2",
            "10.0.0.4",
        ]
        .iter()
        .map(|s| v4(s))
        .collect();
        let h = Hosts::from(list.clone());
        assert_eq!(h.run_count(), 6);
        assert_eq!(h.iter().collect::<Vec<_>>(), list);
        for (i, a) in list.iter().enumerate() {
            assert_eq!(h.at(i), *a, "position {i}");
        }
        assert!(h.any_ipv4() && h.any_ipv6());
        let runs: Vec<_> = h.runs().map(|(a, n, s)| (a.to_string(), n, s)).collect();
        assert_eq!(runs[0], ("10.0.0.1".to_string(), 3, 0));
        assert_eq!(runs[4], ("fd00::1".to_string(), 2, 6));
    }

    #[test]
    fn slices_and_removals_keep_order_and_positions() {
        let mut h = Hosts::new();
        h.push_run(v4("10.0.0.0"), 10);
        h.push_run(v4("10.0.1.0"), 10);
        let s = h.slice(5..15);
        let want: Vec<IpAddr> = h.iter().skip(5).take(10).collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), want);
        assert_eq!(s.run_count(), 2);
        let gone = h.remove(|lo, hi| {
            let k = addr_key(v4("10.0.0.3"));
            (lo..=hi).contains(&k).then_some(k).into_iter().collect()
        });
        assert_eq!(gone, vec![v4("10.0.0.3")]);
        assert_eq!(h.len(), 19);
        assert_eq!(h.at(3), v4("10.0.0.4"));
        let gone = h.remove(|lo, hi| {
            [addr_key(v4("10.0.0.0")), addr_key(v4("10.0.1.9"))]
                .into_iter()
                .filter(|k| (lo..=hi).contains(k))
                .collect()
        });
        assert_eq!(gone, vec![v4("10.0.0.0"), v4("10.0.1.9")]);
        assert_eq!(h.len(), 17);
        assert_eq!(h.at(0), v4("10.0.0.1"));
        assert_eq!(h.at(16), v4("10.0.1.8"));
    }

    #[test]
    fn no_run_crosses_a_kind_of_address_nor_the_end_of_the_space() {
        // Into link-local from below, and out of it.
        let mut h = Hosts::new();
        h.push_run(v4("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 4);
        let firsts: Vec<String> = h.runs().map(|(a, _, _)| a.to_string()).collect();
        assert_eq!(
            firsts,
            ["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "fe80::"]
        );
        let h: Hosts = ["febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::"]
            .iter()
            .map(|a| v4(a))
            .collect();
        assert_eq!(h.run_count(), 2);
        // The last address of all, removed and kept.
        let top = v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        let mut h = Hosts::new();
        h.push_run(v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 2);
        assert_eq!(h.at(1), top);
        let index = HostIndex::new(&h);
        assert_eq!(index.get(top), Some(1));
        let mut kept = h.clone();
        assert!(kept.remove(|_, _| Vec::new()).is_empty());
        assert_eq!(kept, h);
        let gone = h.remove(|_, hi| vec![hi]);
        assert_eq!(gone, vec![top]);
        assert_eq!((h.len(), h.run_count()), (1, 1));
    }

    #[test]
    fn per_host_values_are_runs_of_equal_values() {
        let mut p: PerHost<Option<u8>> = PerHost::new();
        p.push_n(Some(1), 1 << 24);
        p.push(None);
        p.push(None);
        p.push(Some(1));
        assert_eq!(p.len(), (1 << 24) + 3);
        assert_eq!(p.runs().count(), 3);
        assert_eq!(*p.get(0), Some(1));
        assert_eq!(*p.get((1 << 24) - 1), Some(1));
        assert_eq!(*p.get(1 << 24), None);
        assert_eq!(*p.get((1 << 24) + 2), Some(1));
        let back: Vec<Option<u8>> = p.iter().skip((1 << 24) - 1).copied().collect();
        assert_eq!(back, vec![Some(1), None, None, Some(1)]);
        let ranges: Vec<_> = p.runs().map(|(r, _)| r).collect();
        assert_eq!(ranges[1], (1 << 24)..(1 << 24) + 2);
    }
}
