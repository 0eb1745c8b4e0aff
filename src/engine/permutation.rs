//! A seeded pseudo-random order over `0..n` that is never materialised.
//!
//! A balanced Feistel network permutes the smallest even power of two that
//! holds `n`; indices that land outside `0..n` are walked again (cycle
//! walking), which keeps the map a bijection on `0..n`. Consecutive probes
//! therefore go to scattered hosts and ports, spreading load the way zmap's
//! cyclic group and masscan's blackrock do.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

const ROUNDS: u64 = 4;

#[derive(Debug, Clone)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    seed: u64,
    /// `-r`: position `i` visits index `i`.
    identity: bool,
}

impl Permutation {
    pub fn new(n: u64, seed: u64) -> Permutation {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        Permutation {
            n,
            half_bits,
            seed,
            identity: false,
        }
    }

    /// The order `0..n` itself (nmap's `-r`: no randomising).
    pub fn identity(n: u64) -> Permutation {
        Permutation {
            identity: true,
            ..Permutation::new(n, 0)
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The index visited at position `i` (`i < n`).
    pub fn at(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        if self.identity {
            return i;
        }
        let mut x = self.feistel(i);
        // Each step is a bijection on the 2^(2*half) domain, so walking from
        // an in-range value returns to the range within the cycle.
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for round in 0..ROUNDS {
            let mut h = SipHasher13::new_with_keys(self.seed, round);
            h.write_u64(r);
            let f = h.finish() & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.n).map(|i| self.at(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_bijection_for_awkward_sizes() {
        for n in [1u64, 2, 3, 5, 17, 255, 256, 257, 1000, 65_535 * 4] {
            let p = Permutation::new(n, 99);
            let mut seen = vec![false; n as usize];
            for i in p.iter() {
                assert!(i < n);
                assert!(!seen[i as usize], "n={n}: {i} twice");
                seen[i as usize] = true;
            }
            assert!(seen.iter().all(|s| *s));
        }
        assert!(Permutation::new(0, 1).is_empty());
    }

    #[test]
    fn the_seed_decides_the_order() {
        let a: Vec<u64> = Permutation::new(1000, 1).iter().collect();
        let b: Vec<u64> = Permutation::new(1000, 1).iter().collect();
        let c: Vec<u64> = Permutation::new(1000, 2).iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Not the identity, nor close to it.
        let fixed = a
            .iter()
            .enumerate()
            .filter(|(i, v)| *i as u64 == **v)
            .count();
        assert!(fixed < 20, "{fixed} fixed points");
    }
}
