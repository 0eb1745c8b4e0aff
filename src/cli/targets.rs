//! Target parsing: IPv4 and IPv6 addresses, CIDR blocks, ranges,
//! nmap-style octet ranges and host names, from the command line, `-iL`,
//! `--exclude` and `--exclude-file`.

use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::Path;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::error::usage;
use crate::model::hosts::{from_key, Hosts};
use crate::model::probe::addr_key;

/// A /8. Anything larger is almost always a typo (`/4` for `/24`), so it
/// must be confirmed with `--yes`.
pub const MAX_TARGETS: u64 = 1 << 24;

/// A /6, even with `--yes`: beyond it the per-probe state alone would not
/// fit in memory.
pub const HARD_MAX_TARGETS: u64 = 1 << 26;

/// Exclude specs up to this size go into a hash set, so a long
/// `--exclude-file` costs one lookup per address instead of one per line.
const EXCLUDE_SET_MAX: u64 = 256;

/// Expands target tokens into addresses in input order, without duplicates
/// (the first occurrence stays) and without the excluded addresses.
///
/// Each exclude element may be a comma-separated list, as nmap's `--exclude`
/// takes it; that is why octet lists (`10.0.0,2.1`) work only in targets.
pub fn expand_targets(tokens: &[String], excludes: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    expand_targets_confirmed(tokens, excludes, false)
}

/// As [`expand_targets`]; `confirmed` (`--yes`) lifts the limit from
/// [`MAX_TARGETS`] to [`HARD_MAX_TARGETS`].
pub fn expand_targets_confirmed(
    tokens: &[String],
    excludes: &[String],
    confirmed: bool,
) -> anyhow::Result<Vec<IpAddr>> {
    expand_targets_named(tokens, excludes, confirmed, Names::default())
        .map(|(addrs, _)| addrs.iter().collect())
}

/// Targets given by host name: (address, the name as given).
pub type HostNames = Vec<(IpAddr, String)>;

/// Which of a host name's addresses are scanned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Names {
    /// `-6`: its IPv6 addresses, not its IPv4 ones (nmap's flag).
    pub ipv6: bool,
    /// `--resolve-all`: every address of the family, not the first; with
    /// neither family chosen, both families (nmap picks the first IPv4
    /// address and scans IPv6 only with `-6`).
    pub all: bool,
}

/// As [`expand_targets_confirmed`], with the host name each target given
/// as a name was given by (`localhost` -> 127.0.0.1), for the outputs to
/// show as nmap's do; the first name of an address wins. A name with a
/// `/prefix` names its block, not one host, and is not kept.
pub fn expand_targets_named(
    tokens: &[String],
    excludes: &[String],
    confirmed: bool,
    names_mode: Names,
) -> anyhow::Result<(Hosts, HostNames)> {
    let mut names: HostNames = Vec::new();
    let mut specs = Vec::new();
    let mut total = 0u64;
    let tokens = tokens.iter().flat_map(|t| split_list(t.trim()));
    for token in tokens.filter(|t| !t.is_empty()) {
        let spec = parse_spec(token, "target", names_mode)?;
        for any in [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()] {
            if spec.count() == 1 && spec.contains(any) {
                return Err(usage(format!(
                    "invalid target '{token}': {any} names no host (it means any address of this one)"
                )));
            }
        }
        // An IPv6 block's count saturates; so does the sum.
        total = total.saturating_add(spec.count());
        // An IPv6 subnet (a /64 has 2^64 addresses) cannot be swept at all:
        // say what it would take, and what to give instead.
        if let Spec::Block6(net) = &spec {
            if spec.count() > HARD_MAX_TARGETS {
                let bits = 128 - u32::from(net.prefix_len());
                let years = 2f64.powi(bits as i32) / 1e6 / 3.156e7;
                return Err(usage(format!(
                    "'{token}' is 2^{bits} addresses: at a million probes a second, one port \
                     of each would take {years:.1e} years. flagscan takes at most \
                     {HARD_MAX_TARGETS} addresses (an IPv6 /102): give the hosts' addresses \
                     (-iL FILE, e.g. from the neighbour table or DNS) or a longer prefix"
                )));
            }
        }
        // Checked before expanding so that a 0.0.0.0/0 never allocates.
        if total > HARD_MAX_TARGETS {
            return Err(usage(format!(
                "too many targets: '{token}' brings the total to {total} addresses, \
                 above flagscan's limit of {HARD_MAX_TARGETS} (a /6)"
            )));
        }
        if total > MAX_TARGETS && !confirmed {
            return Err(usage(format!(
                "'{token}' brings the total to {total} addresses, more than {MAX_TARGETS} (a /8): \
                 check the prefix length, and add --yes if you mean it"
            )));
        }
        if let Spec::Named(addrs) = &spec {
            for &a in addrs {
                if !names.iter().any(|(n, _)| *n == a) {
                    names.push((a, token.to_string()));
                }
            }
        }
        specs.push(spec);
    }
    let excluded = Excluded::parse(excludes, names_mode)?;

    // One spec never repeats an address, so the set is only needed where
    // two specs overlap; that spares a /8 scan well over 100 MB.
    let dedup = overlap(&specs);
    let mut seen = HashSet::new();
    let mut out = Hosts::new();
    let mut dropped = 0u64;
    // Blocks and ranges that overlap: what the earlier ones left uncovered,
    // as runs (`10.0.0.0/8 10.1.2.3` would otherwise hash 16 million).
    let runs: Option<Vec<(IpAddr, u64)>> = specs.iter().map(Spec::as_run).collect();
    let by_runs = dedup && excluded.is_empty() && runs.is_some();
    if let (true, Some(runs)) = (by_runs, runs) {
        let mut covered = Covered::default();
        for (first, count) in runs {
            let lo = addr_key(first);
            for (a, b) in covered.take(lo, lo + u128::from(count - 1)) {
                out.push_run(from_key(a), (b - a + 1) as u64);
            }
        }
    }
    let rest: &[Spec] = if by_runs { &[] } else { &specs };
    for spec in rest {
        // A block or a range is one run, taken whole.
        if let (false, true, Some((first, count))) = (dedup, excluded.is_empty(), spec.as_run()) {
            out.push_run(first, count);
            continue;
        }
        spec.for_each(|addr| {
            if dedup && !seen.insert(addr) {
                return;
            }
            if excluded.contains(addr) {
                dropped += 1;
            } else {
                out.push(addr);
            }
        });
    }
    if out.is_empty() {
        return Err(usage(if dropped > 0 {
            format!("no targets left to scan: the excludes remove all {dropped} target addresses")
        } else {
            "no targets left to scan: no target was given".to_string()
        }));
    }
    names.retain(|(addr, _)| !excluded.contains(*addr));
    Ok((out, names))
}

/// The longest list file read (`-iL`, `--exclude-file`): four million
/// addresses one a line; larger sets are written as ranges or blocks (a /8
/// is one line).
pub const MAX_LIST_BYTES: u64 = 64 << 20;
/// The longest line of a list file: a target is at most a host name (253
/// characters); a line this long is not a target list (`/dev/zero`).
pub const MAX_LINE_BYTES: usize = 4096;

/// Reads a list file for `-iL` or `--exclude-file` (`-` is stdin): tokens
/// separated by whitespace or newlines, `#` comments to the end of the line.
/// A line longer than [`MAX_LINE_BYTES`] or a file larger than
/// [`MAX_LIST_BYTES`] is a usage error, found as soon as it is read.
pub fn read_list_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let name = path.display();
    let fail = |e: std::io::Error| usage(format!("cannot read list file '{name}': {e}"));
    if path == Path::new("-") {
        read_list(std::io::stdin().lock(), &name.to_string())
    } else {
        let file = std::fs::File::open(path).map_err(fail)?;
        read_list(std::io::BufReader::new(file), &name.to_string())
    }
}

fn read_list(mut reader: impl BufRead, name: &str) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    let mut line = Vec::new();
    let (mut total, mut number) = (0u64, 0u64);
    loop {
        line.clear();
        let got = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| usage(format!("cannot read list file '{name}': {e}")))?;
        if got == 0 {
            break;
        }
        number += 1;
        total += got as u64;
        if line.len() > MAX_LINE_BYTES {
            return Err(usage(format!(
                "list file '{name}': line {number} is longer than {MAX_LINE_BYTES} bytes; \
                 a target list has one address, range or host name per line"
            )));
        }
        if total > MAX_LIST_BYTES {
            return Err(usage(format!(
                "list file '{name}' is larger than {} MiB; give ranges or CIDR blocks rather \
                 than one address a line, or split the scan",
                MAX_LIST_BYTES >> 20
            )));
        }
        let text = std::str::from_utf8(&line)
            .ok()
            .filter(|t| !t.contains(|c: char| c.is_control() && !c.is_whitespace()))
            .ok_or_else(|| {
                usage(format!(
                    "list file '{name}': line {number} is not text; a target list has one \
                     address, range or host name per line"
                ))
            })?;
        let text = text.split_once('#').map_or(text, |(before, _)| before);
        tokens.extend(text.split_whitespace().map(str::to_owned));
    }
    Ok(tokens)
}

/// The addresses one token stands for.
enum Spec {
    Block(Ipv4Net),
    /// First and last address, inclusive.
    Range(u32, u32),
    Octets(Box<[OctetSet; 4]>),
    Block6(Ipv6Net),
    Range6(u128, u128),
    /// A host name's addresses (one, or several with `--resolve-all`).
    Named(Vec<IpAddr>),
}

impl Spec {
    /// How many addresses; an IPv6 block too large to count saturates,
    /// which every limit refuses.
    fn count(&self) -> u64 {
        match self {
            Spec::Block(net) => 1 << (32 - net.prefix_len()),
            Spec::Range(lo, hi) => u64::from(hi - lo) + 1,
            Spec::Octets(sets) => sets.iter().map(|s| s.order.len() as u64).product(),
            Spec::Block6(net) => 1u64
                .checked_shl(128 - u32::from(net.prefix_len()))
                .unwrap_or(u64::MAX),
            Spec::Range6(lo, hi) => {
                u64::try_from(hi - lo).map_or(u64::MAX, |n| n.saturating_add(1))
            }
            Spec::Named(addrs) => addrs.len() as u64,
        }
    }

    /// A block or a range as (first address, how many).
    fn as_run(&self) -> Option<(IpAddr, u64)> {
        match self {
            Spec::Block(net) => Some((net.network().into(), self.count())),
            Spec::Range(lo, _) => Some((Ipv4Addr::from(*lo).into(), self.count())),
            Spec::Block6(net) => Some((net.network().into(), self.count())),
            Spec::Range6(lo, _) => Some((Ipv6Addr::from(*lo).into(), self.count())),
            Spec::Octets(_) | Spec::Named(_) => None,
        }
    }

    /// The lowest and highest address it may hold, as [`addr_key`]s.
    fn bounds(&self) -> (u128, u128) {
        let v4 = |a: u32| addr_key(Ipv4Addr::from(a).into());
        match self {
            Spec::Block(net) => (v4(u32::from(net.network())), v4(u32::from(net.broadcast()))),
            Spec::Range(lo, hi) => (v4(*lo), v4(*hi)),
            Spec::Octets(sets) => {
                let ends = |pick: fn(&OctetSet) -> u8| {
                    v4(u32::from_be_bytes(std::array::from_fn(|i| pick(&sets[i]))))
                };
                (
                    ends(|s| s.order.iter().copied().min().unwrap_or(0)),
                    ends(|s| s.order.iter().copied().max().unwrap_or(255)),
                )
            }
            Spec::Block6(net) => (u128::from(net.network()), u128::from(net.broadcast())),
            Spec::Range6(lo, hi) => (*lo, *hi),
            Spec::Named(addrs) => {
                let keys = addrs.iter().map(|&a| addr_key(a));
                (keys.clone().min().unwrap_or(0), keys.max().unwrap_or(0))
            }
        }
    }

    fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (Spec::Block(net), IpAddr::V4(a)) => net.contains(&a),
            (Spec::Range(lo, hi), IpAddr::V4(a)) => (*lo..=*hi).contains(&u32::from(a)),
            (Spec::Octets(sets), IpAddr::V4(a)) => {
                sets.iter().zip(a.octets()).all(|(s, o)| s.contains(o))
            }
            (Spec::Block6(net), IpAddr::V6(a)) => net.contains(&a),
            (Spec::Range6(lo, hi), IpAddr::V6(a)) => (*lo..=*hi).contains(&u128::from(a)),
            (Spec::Named(addrs), a) => addrs.contains(&a),
            _ => false,
        }
    }

    /// Visits the addresses in nmap's order: CIDR blocks upward, octet
    /// lists in the order written with the last octet varying fastest.
    fn for_each(&self, mut f: impl FnMut(IpAddr)) {
        match self {
            Spec::Block(net) => {
                for n in u32::from(net.network())..=u32::from(net.broadcast()) {
                    f(Ipv4Addr::from(n).into());
                }
            }
            Spec::Range(lo, hi) => {
                for n in *lo..=*hi {
                    f(Ipv4Addr::from(n).into());
                }
            }
            Spec::Octets(sets) => {
                let [a, b, c, d] = &**sets;
                for &a in &a.order {
                    for &b in &b.order {
                        for &c in &c.order {
                            for &d in &d.order {
                                f(Ipv4Addr::new(a, b, c, d).into());
                            }
                        }
                    }
                }
            }
            Spec::Block6(net) => {
                for n in u128::from(net.network())..=u128::from(net.broadcast()) {
                    f(Ipv6Addr::from(n).into());
                }
            }
            Spec::Range6(lo, hi) => {
                for n in *lo..=*hi {
                    f(Ipv6Addr::from(n).into());
                }
            }
            Spec::Named(addrs) => addrs.iter().copied().for_each(f),
        }
    }
}

/// The values one octet may take: written order for expansion, a bitmap
/// for membership and for dropping repeats like `1-5,3`.
#[derive(Default)]
struct OctetSet {
    order: Vec<u8>,
    bits: [u64; 4],
}

impl OctetSet {
    fn contains(&self, v: u8) -> bool {
        self.bits[usize::from(v >> 6)] & (1 << (v & 63)) != 0
    }

    fn insert(&mut self, v: u8) {
        if !self.contains(v) {
            self.bits[usize::from(v >> 6)] |= 1 << (v & 63);
            self.order.push(v);
        }
    }
}

/// Disjoint intervals of [`addr_key`]s already taken, by first key.
#[derive(Default)]
struct Covered(std::collections::BTreeMap<u128, u128>);

impl Covered {
    /// The parts of `lo..=hi` not taken yet, in order; then takes it all.
    fn take(&mut self, lo: u128, hi: u128) -> Vec<(u128, u128)> {
        let from = match self.0.range(..lo).next_back() {
            Some((&s, &e)) if e >= lo.saturating_sub(1) => s,
            _ => lo,
        };
        let touching: Vec<(u128, u128)> = self
            .0
            .range(from..=hi.saturating_add(1))
            .map(|(&s, &e)| (s, e))
            .collect();
        let mut free = Vec::new();
        // The first key not yet looked at (`None`: past the end of all).
        let mut at = Some(lo);
        for &(s, e) in &touching {
            if let Some(a) = at.filter(|&a| a < s && a <= hi) {
                free.push((a, (s - 1).min(hi)));
            }
            at = at.max(e.checked_add(1)).filter(|_| e < u128::MAX);
        }
        if let Some(a) = at.filter(|&a| a <= hi) {
            free.push((a, hi));
        }
        let (mut s, mut e) = (lo, hi);
        for (ts, te) in touching {
            self.0.remove(&ts);
            s = s.min(ts);
            e = e.max(te);
        }
        self.0.insert(s, e);
        free
    }
}

/// Whether any two specs may share an address (by their bounds).
fn overlap(specs: &[Spec]) -> bool {
    let mut bounds: Vec<(u128, u128)> = specs.iter().map(Spec::bounds).collect();
    bounds.sort_unstable();
    bounds.windows(2).any(|w| w[1].0 <= w[0].1)
}

struct Excluded {
    addrs: HashSet<IpAddr>,
    big: Vec<Spec>,
}

impl Excluded {
    fn parse(excludes: &[String], names: Names) -> anyhow::Result<Excluded> {
        let mut excluded = Excluded {
            addrs: HashSet::new(),
            big: Vec::new(),
        };
        let tokens = excludes.iter().flat_map(|e| e.split(',')).map(str::trim);
        for token in tokens.filter(|t| !t.is_empty()) {
            let spec = parse_spec(token, "exclude", names)?;
            if spec.count() <= EXCLUDE_SET_MAX {
                spec.for_each(|addr| {
                    excluded.addrs.insert(addr);
                });
            } else {
                excluded.big.push(spec);
            }
        }
        Ok(excluded)
    }

    fn contains(&self, addr: IpAddr) -> bool {
        self.addrs.contains(&addr) || self.big.iter().any(|s| s.contains(addr))
    }

    fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.big.is_empty()
    }
}

/// The most source addresses `-S` takes: more than the per-destination
/// ICMP limiters of any target need, few enough to check one by one.
pub const MAX_SOURCES: u64 = 256;

/// `-S`'s addresses: one, a range (`10.0.0.100-115`,
/// `10.0.0.100-10.0.0.115`), a block or a comma-separated list of those,
/// in the order given, without duplicates.
pub fn parse_sources(text: &str) -> anyhow::Result<Vec<IpAddr>> {
    let bad = |why: String| usage(format!("invalid source address '{text}' (-S): {why}"));
    let mut out: Vec<IpAddr> = Vec::new();
    for token in split_list(text.trim()).into_iter().map(str::trim) {
        if token.is_empty() {
            return Err(bad("an empty item".to_string()));
        }
        if !looks_numeric(token) && !token.contains('/') && !token.contains(':') {
            return Err(bad("give addresses, not host names".to_string()));
        }
        let spec = parse_spec_inner(token, Names::default()).map_err(bad)?;
        if spec.count() > MAX_SOURCES {
            return Err(bad(format!("more than {MAX_SOURCES} addresses")));
        }
        spec.for_each(|a| {
            if !out.contains(&a) {
                out.push(a);
            }
        });
        if out.len() as u64 > MAX_SOURCES {
            return Err(bad(format!("more than {MAX_SOURCES} addresses")));
        }
    }
    let broadcast = |a: &IpAddr| matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
    if let Some(a) = out
        .iter()
        .find(|a| a.is_unspecified() || broadcast(a) || a.is_multicast())
    {
        return Err(bad(format!("{a} cannot be a probe's source")));
    }
    if out.iter().any(IpAddr::is_ipv4) && out.iter().any(IpAddr::is_ipv6) {
        return Err(bad(
            "IPv4 and IPv6 addresses together; give one family".to_string()
        ));
    }
    Ok(out)
}

/// A comma-separated list of targets (`10.0.0.1,10.0.0.9`, as masscan
/// takes them) becomes its items; an nmap octet list (`10.0.0.1,2`,
/// `10.0.0,2.1`) stays one token: only pieces that are each a whole
/// address, block, range or host name split.
fn split_list(token: &str) -> Vec<&str> {
    let whole = |piece: &str| {
        !piece.is_empty()
            && (piece.matches('.').count() == 3
                || piece.contains(':')
                || piece.contains('/')
                || piece.bytes().any(|b| b.is_ascii_alphabetic()))
    };
    if token.contains(',') && token.split(',').all(whole) {
        token.split(',').collect()
    } else {
        vec![token]
    }
}

/// `what` is "target" or "exclude", for the error message.
fn parse_spec(token: &str, what: &str, names: Names) -> anyhow::Result<Spec> {
    parse_spec_inner(token, names).map_err(|why| usage(format!("invalid {what} '{token}': {why}")))
}

fn parse_spec_inner(token: &str, names: Names) -> Result<Spec, String> {
    // The common case, one plain address, without the octet sets (a list
    // of a million addresses stays a few tens of megabytes).
    if let Ok(addr) = token.parse::<Ipv4Addr>() {
        return Ok(Spec::Block(Ipv4Net::from(addr)));
    }
    // masscan's and zmap's range of whole addresses: 10.0.0.1-10.0.1.255.
    if let Some((lo, hi)) = token.split_once('-') {
        if let (Ok(lo), Ok(hi)) = (lo.parse::<Ipv4Addr>(), hi.parse::<Ipv4Addr>()) {
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            if lo > hi {
                return Err("the range's first address is above its last".to_string());
            }
            return Ok(Spec::Range(lo, hi));
        }
    }
    if token.contains(':') {
        return parse_spec6(token);
    }
    if token.contains('*') {
        return Err("'*' is not supported; write the octet as 0-255".to_string());
    }
    if let Some((host, prefix)) = token.split_once('/') {
        let addr = parse_host(host, names)?;
        let len = parse_prefix(prefix)?;
        // nmap scans the whole block even when host bits are set (10.0.0.5/24).
        let net = Ipv4Net::new(addr, len).map_err(|e| e.to_string())?.trunc();
        return Ok(Spec::Block(net));
    }
    if looks_numeric(token) {
        parse_octets(token)
    } else {
        resolve(token, names).map(Spec::Named)
    }
}

/// Takes the scope off link-local targets (`fe80::1%eth0`, `[fe80::1%eth0]`):
/// the tokens without it, and the one interface they name. A scope on an
/// address that needs none, or two different scopes, is a usage error.
pub fn strip_scopes(tokens: &[String]) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let mut scope: Option<String> = None;
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        let bare = token.trim_start_matches('[').trim_end_matches(']');
        let Some((addr, iface)) = bare.split_once('%') else {
            out.push(token.clone());
            continue;
        };
        let bad = |why: String| usage(format!("invalid target '{token}': {why}"));
        let a: Ipv6Addr = addr
            .parse()
            .map_err(|_| bad(format!("'{addr}' is not an IPv6 address")))?;
        if a.segments()[0] & 0xffc0 != 0xfe80 {
            return Err(bad(
                "only a link-local address (fe80::/10) takes a scope".to_string()
            ));
        }
        if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ']) {
            return Err(bad(format!("'{iface}' is not an interface name")));
        }
        match &scope {
            Some(s) if s != iface => {
                return Err(bad(format!(
                    "another target's scope is '{s}': a scan goes out of one interface"
                )))
            }
            _ => scope = Some(iface.to_string()),
        }
        out.push(addr.to_string());
    }
    Ok((out, scope))
}

/// An IPv6 address, `[address]`, block (`fd00::/120`) or range of whole
/// addresses (`fd00::1-fd00::ff`). An IPv4-mapped address (`::ffff:a.b.c.d`)
/// is refused: it would be the IPv4 host under another name.
fn parse_spec6(token: &str) -> Result<Spec, String> {
    let bare = |t: &str| -> Result<Ipv6Addr, String> {
        let t = t
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(t);
        if t.contains('%') {
            return Err("a scope (%interface) goes on a link-local target only".to_string());
        }
        let a: Ipv6Addr = t.parse().map_err(|_| {
            format!("'{t}' is not an IPv6 address (ports go in -p, not after the address)")
        })?;
        if a.to_ipv4_mapped().is_some() {
            return Err(format!(
                "{a} is an IPv4-mapped address; give the IPv4 address {} instead",
                a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)
            ));
        }
        Ok(a)
    };
    if let Some((addr, prefix)) = token.split_once('/') {
        let addr = bare(addr)?;
        let len =
            decimal(prefix).ok_or_else(|| format!("prefix length '{prefix}' is not a number"))?;
        let len = u8::try_from(len)
            .ok()
            .filter(|&l| l <= 128)
            .ok_or_else(|| format!("prefix length {prefix} is above 128"))?;
        let net = Ipv6Net::new(addr, len).map_err(|e| e.to_string())?.trunc();
        return Ok(Spec::Block6(net));
    }
    if let Some((lo, hi)) = token.split_once('-') {
        let (lo, hi) = (u128::from(bare(lo)?), u128::from(bare(hi)?));
        if lo > hi {
            return Err("the range's first address is above its last".to_string());
        }
        return Ok(Spec::Range6(lo, hi));
    }
    Ok(Spec::Block6(Ipv6Net::from(bare(token)?)))
}

/// Keeps typos such as "10.0.0.1;" or two targets in one argument from
/// turning into DNS queries with a vague "not known" answer.
fn check_host_name(name: &str) -> Result<(), String> {
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._".contains(c)))
    {
        Some(c) if c.is_whitespace() => {
            Err("whitespace in a target; give one target per argument".to_string())
        }
        Some(c) => Err(format!("{c:?} cannot appear in a host name")),
        None => Ok(()),
    }
}

/// Host names always contain a letter, so anything made of digits, dots,
/// dashes and commas is meant as an address and gets precise errors
/// instead of a confusing failed DNS lookup.
fn looks_numeric(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_digit() || b".-,".contains(&b))
}

/// The part before `/`: one address or a host name, not an octet range.
fn parse_host(host: &str, names: Names) -> Result<Ipv4Addr, String> {
    if host.is_empty() {
        return Err("no address before '/'".to_string());
    }
    if !looks_numeric(host) {
        let v4 = Names {
            ipv6: false,
            ..names
        };
        return match resolve(host, v4)?.first() {
            Some(IpAddr::V4(a)) => Ok(*a),
            _ => Err("the host name has no IPv4 address for a /prefix".to_string()),
        };
    }
    let spec = parse_octets(host)?;
    match spec {
        Spec::Octets(sets) if spec_is_single(&sets) => Ok(Ipv4Addr::new(
            sets[0].order[0],
            sets[1].order[0],
            sets[2].order[0],
            sets[3].order[0],
        )),
        _ => Err("octet ranges cannot be combined with a /prefix".to_string()),
    }
}

fn spec_is_single(sets: &[OctetSet; 4]) -> bool {
    sets.iter().all(|s| s.order.len() == 1)
}

fn parse_prefix(prefix: &str) -> Result<u8, String> {
    let len = decimal(prefix).ok_or_else(|| format!("prefix length '{prefix}' is not a number"))?;
    u8::try_from(len)
        .ok()
        .filter(|&len| len <= 32)
        .ok_or_else(|| format!("prefix length {prefix} is above 32"))
}

/// nmap octet syntax: four dot-separated octets, each a comma list of
/// values and `a-b` ranges (`10.0.0.1-20`, `10.0.1-3.7`, `10.0.0,2.1`).
fn parse_octets(token: &str) -> Result<Spec, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 4 {
        return Err(format!(
            "an IPv4 address has 4 octets, this has {}",
            parts.len()
        ));
    }
    let mut sets: [OctetSet; 4] = Default::default();
    for (i, (set, part)) in sets.iter_mut().zip(parts).enumerate() {
        if part.is_empty() {
            return Err(format!("octet {} is empty", i + 1));
        }
        for item in part.split(',') {
            let (lo, hi) = match item.split_once('-') {
                None if item.is_empty() => {
                    return Err(format!("empty item in octet list '{part}'"));
                }
                None => {
                    let v = octet(item)?;
                    (v, v)
                }
                Some(("", _)) => return Err(format!("octet range '{item}' has no start")),
                Some((_, "")) => return Err(format!("octet range '{item}' has no end")),
                Some((lo, hi)) => {
                    let (lo, hi) = (octet(lo)?, octet(hi)?);
                    if lo > hi {
                        return Err(format!("octet range '{item}' has start above end"));
                    }
                    (lo, hi)
                }
            };
            (lo..=hi).for_each(|v| set.insert(v));
        }
    }
    Ok(Spec::Octets(Box::new(sets)))
}

fn octet(text: &str) -> Result<u8, String> {
    // inet_aton reads 017 as octal (15) where others read 17: refused
    // rather than guessed, since either guess may be another host.
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!(
            "octet '{text}' has a leading zero, which some tools read as octal: write it without"
        ));
    }
    let value = decimal(text).ok_or_else(|| format!("octet '{text}' is not a number"))?;
    u8::try_from(value).map_err(|_| format!("octet {text} is above 255"))
}

/// Plain decimal digits only (no sign); numbers too long for u32 saturate,
/// which still reads as "too big" to the callers.
fn decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u32::MAX))
}

/// Resolves a host name as nmap does: its first IPv4 address, or with
/// `-6` its first IPv6 one; with `--resolve-all` every address of the
/// family, or of both when none was chosen.
fn resolve(name: &str, names: Names) -> Result<Vec<IpAddr>, String> {
    check_host_name(name)?;
    let addrs: Vec<IpAddr> = (name, 0u16)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host name: {e}"))?
        .map(|a| a.ip())
        .collect();
    let mut picked: Vec<IpAddr> = Vec::new();
    for a in &addrs {
        let wanted = match (names.ipv6, names.all) {
            (true, _) => a.is_ipv6(),
            (false, false) => a.is_ipv4(),
            (false, true) => true,
        };
        if wanted && !picked.contains(a) {
            picked.push(*a);
        }
    }
    if !names.all {
        picked.truncate(1);
    }
    if picked.is_empty() {
        return Err(match (names.ipv6, addrs.is_empty()) {
            (_, true) => "the host name has no addresses".to_string(),
            (false, false) => {
                "the host name has only IPv6 addresses: add -6 to scan them".to_string()
            }
            (true, false) => {
                "the host name has no IPv6 address (drop -6 to scan its IPv4 one)".to_string()
            }
        });
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, EXIT_USAGE};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn expand(targets: &[&str], excludes: &[&str]) -> Vec<IpAddr> {
        expand_targets(&strings(targets), &strings(excludes)).unwrap()
    }

    fn err(targets: &[&str], excludes: &[&str]) -> String {
        let e = expand_targets(&strings(targets), &strings(excludes)).unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE, "{e}");
        e.to_string()
    }

    fn ips(items: &[&str]) -> Vec<IpAddr> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn hosts(targets: &[&str], excludes: &[&str]) -> Hosts {
        expand_targets_named(
            &strings(targets),
            &strings(excludes),
            true,
            Names::default(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn blocks_are_held_as_runs_and_repeats_are_dropped_only_where_specs_overlap() {
        // A /8 is one run, taken whole, not 16 million addresses.
        let h = hosts(&["10.0.0.0/8"], &[]);
        assert_eq!((h.len(), h.run_count()), (1 << 24, 1));
        // Two adjacent blocks make one run; a repeat inside the /8 is
        // dropped (the specs overlap), the first occurrence staying.
        let h = hosts(&["10.0.0.0/9", "10.128.0.0/9"], &[]);
        assert_eq!((h.len(), h.run_count()), (1 << 24, 1));
        let h = hosts(&["10.0.0.0/8", "10.1.2.3"], &[]);
        assert_eq!((h.len(), h.run_count()), (1 << 24, 1));
        // Later blocks keep what earlier ones left, in their own order.
        let h = hosts(&["10.0.0.4/30", "10.0.0.0/28", "10.0.0.6-10.0.0.20"], &[]);
        let want: Vec<IpAddr> = [
            4, 5, 6, 7, 0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]
        .iter()
        .map(|d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, *d)))
        .collect();
        assert_eq!(h.iter().collect::<Vec<_>>(), want);
        let h = hosts(&["10.0.0.0/30", "10.0.0.2", "10.0.0.9"], &[]);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            ips(&["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"])
        );
        // An octet list's bounds overlap a block: repeats dropped.
        let h = hosts(&["10.0.0.1-3", "10.0.0.2/31"], &[]);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        );
        // Excluding splits the run.
        let h = hosts(&["10.0.0.0/24"], &["10.0.0.5"]);
        assert_eq!((h.len(), h.run_count()), (255, 2));
        assert_eq!(h.at(5), ips(&["10.0.0.6"])[0]);
    }

    #[test]
    fn source_ranges_lists_and_their_errors() {
        let a = |s: &str| parse_sources(s).unwrap();
        assert_eq!(a("10.0.0.100"), ips(&["10.0.0.100"]));
        assert_eq!(
            a("10.0.0.100-102"),
            ips(&["10.0.0.100", "10.0.0.101", "10.0.0.102"])
        );
        assert_eq!(a("10.0.0.254-10.0.1.1").len(), 4);
        assert_eq!(
            a("10.0.0.1,10.0.0.3,10.0.0.1"),
            ips(&["10.0.0.1", "10.0.0.3"])
        );
        assert_eq!(a("10.0.0.0/24").len(), 256);
        assert_eq!(a("10.0.0.0/24,10.0.0.1").len(), 256);
        for (bad, why) in [
            ("10.0.0.0/23", "more than 256"),
            ("::1,10.0.0.1", "one family"),
            ("ff02::1", "cannot be a probe's source"),
            ("gateway.example", "not host names"),
            ("0.0.0.0", "cannot be a probe's source"),
            ("224.0.0.1", "cannot be a probe's source"),
            ("10.0.0.9-3", "invalid source address"),
            ("10.0.0.1,", "empty item"),
            ("", "empty item"),
        ] {
            let e = parse_sources(bad).unwrap_err();
            assert_eq!(exit_code(&e), EXIT_USAGE, "{bad}: {e}");
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn single_addresses() {
        assert_eq!(expand(&["10.0.0.1"], &[]), ips(&["10.0.0.1"]));
        assert_eq!(
            expand(&["0.0.0.1", "255.255.255.255"], &[]),
            ips(&["0.0.0.1", "255.255.255.255"])
        );
        assert_eq!(expand(&[" 10.0.0.1 "], &[]), ips(&["10.0.0.1"]));
    }

    #[test]
    fn cidr_blocks_include_network_and_broadcast() {
        assert_eq!(
            expand(&["192.168.1.0/30"], &[]),
            ips(&["192.168.1.0", "192.168.1.1", "192.168.1.2", "192.168.1.3"])
        );
        assert_eq!(
            expand(&["10.0.0.5/31"], &[]),
            ips(&["10.0.0.4", "10.0.0.5"])
        );
        assert_eq!(expand(&["10.0.0.5/32"], &[]), ips(&["10.0.0.5"]));
        let block = expand(&["10.1.2.77/24"], &[]);
        assert_eq!(block.len(), 256);
        assert_eq!(
            (block[0], block[255]),
            (
                IpAddr::V4(Ipv4Addr::new(10, 1, 2, 0)),
                IpAddr::V4(Ipv4Addr::new(10, 1, 2, 255))
            )
        );
    }

    #[test]
    fn octet_ranges_and_lists() {
        assert_eq!(
            expand(&["10.0.0.1-3"], &[]),
            ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        );
        assert_eq!(
            expand(&["10.0.1-3.7"], &[]),
            ips(&["10.0.1.7", "10.0.2.7", "10.0.3.7"])
        );
        assert_eq!(expand(&["10.0.0,2.1"], &[]), ips(&["10.0.0.1", "10.0.2.1"]));
        assert_eq!(
            expand(&["10.0.0.9,1-2,2"], &[]),
            ips(&["10.0.0.9", "10.0.0.1", "10.0.0.2"])
        );
        assert_eq!(
            expand(&["10.0-1.0.1-2"], &[]),
            ips(&["10.0.0.1", "10.0.0.2", "10.1.0.1", "10.1.0.2"])
        );
        assert_eq!(expand(&["1.2.3.0-255"], &[]).len(), 256);
    }

    #[test]
    fn whole_address_ranges_and_comma_lists_as_masscan_writes_them() {
        let r = expand(&["10.0.0.254-10.0.1.1"], &[]);
        assert_eq!(
            r,
            ips(&["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1"])
        );
        assert_eq!(expand(&["10.0.0.5-10.0.0.5"], &[]), ips(&["10.0.0.5"]));
        let msg = err(&["10.0.0.9-10.0.0.1"], &[]);
        assert!(msg.contains("above its last"), "{msg}");
        // A range excludes as it includes.
        assert_eq!(
            expand(&["10.0.0.1-10.0.0.4"], &["10.0.0.2-10.0.0.3"]),
            ips(&["10.0.0.1", "10.0.0.4"])
        );
        assert_eq!(
            expand(&["10.0.0.1,10.0.0.9,10.0.1.0/31"], &[]),
            ips(&["10.0.0.1", "10.0.0.9", "10.0.1.0", "10.0.1.1"])
        );
        // nmap's octet lists keep their meaning.
        assert_eq!(expand(&["10.0.0.1,2"], &[]), ips(&["10.0.0.1", "10.0.0.2"]));
        assert_eq!(expand(&["10.0.0,2.1"], &[]), ips(&["10.0.0.1", "10.0.2.1"]));
        // The size guard counts a range before expanding it.
        let msg = err(&["1.0.0.0-3.0.0.0"], &[]);
        assert!(msg.contains("--yes"), "{msg}");
    }

    #[test]
    fn targets_given_by_name_keep_it() {
        let (addrs, names) = expand_targets_named(
            &strings(&["localhost", "127.0.0.1", "10.0.0.1"]),
            &[],
            false,
            Names::default(),
        )
        .unwrap();
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            addrs.iter().collect::<Vec<_>>(),
            [lo, Ipv4Addr::new(10, 0, 0, 1).into()]
        );
        assert_eq!(names, [(lo, "localhost".to_string())]);
        // A block by name is no one host's name; an excluded host has none.
        let (_, names) =
            expand_targets_named(&strings(&["localhost/31"]), &[], false, Names::default())
                .unwrap();
        assert!(names.is_empty());
        let (_, names) = expand_targets_named(
            &strings(&["localhost", "10.0.0.1"]),
            &strings(&["127.0.0.1"]),
            false,
            Names::default(),
        )
        .unwrap();
        assert!(names.is_empty());
    }

    #[test]
    fn host_names_resolve_to_ipv4() {
        assert_eq!(expand(&["localhost"], &[]), ips(&["127.0.0.1"]));
        assert_eq!(
            expand(&["localhost/31"], &[]),
            ips(&["127.0.0.0", "127.0.0.1"])
        );
        // A label over 63 bytes cannot be encoded in a DNS query, so the
        // resolver fails without sending anything.
        let name = format!("{}.invalid", "a".repeat(64));
        let msg = err(&[&name], &[]);
        assert!(
            msg.starts_with(&format!(
                "invalid target '{name}': cannot resolve host name"
            )),
            "{msg}"
        );
        assert_eq!(
            err(&["bad\0host"], &[]),
            "invalid target 'bad\0host': '\\0' cannot appear in a host name"
        );
        assert_eq!(
            err(&["10.0.0.1;"], &[]),
            "invalid target '10.0.0.1;': ';' cannot appear in a host name"
        );
        assert!(err(&["10.0.0.1 10.0.0.2"], &[]).contains("one target per argument"));
        assert!(err(&["10.0.0.*"], &[]).contains("write the octet as 0-255"));
    }

    #[test]
    fn bad_tokens_are_usage_errors_naming_them() {
        let cases = [
            (
                "10.0.0.300",
                "invalid target '10.0.0.300': octet 300 is above 255",
            ),
            (
                "10.0.0",
                "invalid target '10.0.0': an IPv4 address has 4 octets, this has 3",
            ),
            (
                "1.2.3.4.5",
                "invalid target '1.2.3.4.5': an IPv4 address has 4 octets, this has 5",
            ),
            (
                "10.0.0.1-",
                "invalid target '10.0.0.1-': octet range '1-' has no end",
            ),
            (
                "10.0.0.-1",
                "invalid target '10.0.0.-1': octet range '-1' has no start",
            ),
            (
                "10.0.0.5-1",
                "invalid target '10.0.0.5-1': octet range '5-1' has start above end",
            ),
            ("10..0.1", "invalid target '10..0.1': octet 2 is empty"),
            (
                "10.0.0.1,,2",
                "invalid target '10.0.0.1,,2': empty item in octet list '1,,2'",
            ),
            (
                "10.0.0.1-2-3",
                "invalid target '10.0.0.1-2-3': octet '2-3' is not a number",
            ),
            (
                "10.0.0.99999999999",
                "invalid target '10.0.0.99999999999': octet 99999999999 is above 255",
            ),
            (
                "1.2.3.4/33",
                "invalid target '1.2.3.4/33': prefix length 33 is above 32",
            ),
            (
                "1.2.3.4/999",
                "invalid target '1.2.3.4/999': prefix length 999 is above 32",
            ),
            (
                "1.2.3.4/x",
                "invalid target '1.2.3.4/x': prefix length 'x' is not a number",
            ),
            (
                "1.2.3.4/",
                "invalid target '1.2.3.4/': prefix length '' is not a number",
            ),
            ("/24", "invalid target '/24': no address before '/'"),
            (
                "1.2.3.1-2/24",
                "invalid target '1.2.3.1-2/24': octet ranges cannot be combined with a /prefix",
            ),
            (
                "1.2.3.300/24",
                "invalid target '1.2.3.300/24': octet 300 is above 255",
            ),
            (
                "2001:db8::/32",
                "'2001:db8::/32' is 2^96 addresses: at a million probes a second, one port of \
                 each would take 2.5e15 years. flagscan takes at most 67108864 addresses (an \
                 IPv6 /102): give the hosts' addresses (-iL FILE, e.g. from the neighbour table \
                 or DNS) or a longer prefix",
            ),
            (
                "::ffff:10.0.0.1",
                "invalid target '::ffff:10.0.0.1': ::ffff:10.0.0.1 is an IPv4-mapped address; \
                 give the IPv4 address 10.0.0.1 instead",
            ),
            (
                "fe80::1%eth0",
                "invalid target 'fe80::1%eth0': a scope (%interface) goes on a link-local target \
                 only",
            ),
            (
                "fd00::9-fd00::1",
                "invalid target 'fd00::9-fd00::1': the range's first address is above its last",
            ),
            (
                "fd00::/129",
                "invalid target 'fd00::/129': prefix length 129 is above 128",
            ),
            (
                "[fd00::1]:80",
                "invalid target '[fd00::1]:80': '[fd00::1]:80' is not an IPv6 address (ports go \
                 in -p, not after the address)",
            ),
            (
                "::",
                "invalid target '::': :: names no host (it means any address of this one)",
            ),
        ];
        for (token, want) in cases {
            assert_eq!(err(&[token], &[]), want);
        }
        assert!(err(&["10.0.0.1:80"], &[]).contains("ports go in -p"));
        assert_eq!(
            err(&["10.0.0.1"], &["10.0.0.300"]),
            "invalid exclude '10.0.0.300': octet 300 is above 255"
        );
    }

    #[test]
    fn duplicates_keep_the_first_occurrence() {
        assert_eq!(
            expand(&["10.0.0.3", "10.0.0.1-4", "10.0.0.1", "10.0.0.0/30"], &[]),
            ips(&["10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.0"])
        );
    }

    #[test]
    fn excludes_use_the_same_syntax_split_on_commas() {
        assert_eq!(
            expand(&["10.0.0.0/28"], &["10.0.0.0,10.0.0.2-13", "10.0.0.15/32"]),
            ips(&["10.0.0.1", "10.0.0.14"])
        );
        // Larger than the exclude set size, so matched as a block.
        assert_eq!(
            expand(&["10.0.0.0/23", "10.0.2.1"], &["10.0.0.0/23"]),
            ips(&["10.0.2.1"])
        );
        assert_eq!(
            expand(&["127.0.0.1", "10.0.0.1"], &["localhost"]),
            ips(&["10.0.0.1"])
        );
        assert_eq!(expand(&["10.0.0.1"], &["", " , "]), ips(&["10.0.0.1"]));
    }

    #[test]
    fn nothing_left_is_a_usage_error() {
        assert_eq!(
            err(&["10.0.0.0/30"], &["10.0.0.0/8"]),
            "no targets left to scan: the excludes remove all 4 target addresses"
        );
        assert_eq!(
            err(&[], &[]),
            "no targets left to scan: no target was given"
        );
        assert_eq!(
            err(&["", "  "], &["10.0.0.1"]),
            "no targets left to scan: no target was given"
        );
    }

    #[test]
    fn expansion_limit_is_checked_before_allocating() {
        assert_eq!(
            err(&["0.0.0.0/0"], &[]),
            "too many targets: '0.0.0.0/0' brings the total to 4294967296 addresses, \
             above flagscan's limit of 67108864 (a /6)"
        );
        let over = err(&["10.0.0.0/8", "11.0.0.1"], &[]);
        assert!(
            over.contains("'11.0.0.1' brings the total to 16777217") && over.contains("--yes"),
            "{over}"
        );
        assert!(err(&["0-255.0-255.0-255.0-1"], &[]).contains("33554432"));
        // --yes lifts the /8 limit, not the hard one.
        let tokens = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let two =
            expand_targets_confirmed(&tokens(&["10.0.0.0/8", "11.0.0.1"]), &[], true).unwrap();
        assert_eq!(two.len(), (1 << 24) + 1);
        let e = expand_targets_confirmed(&tokens(&["0.0.0.0/5"]), &[], true).unwrap_err();
        assert!(e.to_string().contains("limit of 67108864"), "{e}");
    }

    #[test]
    fn a_slash_8_is_within_the_limit() {
        let all = expand(&["10.0.0.0/8"], &["10.0.0.0/9"]);
        assert_eq!(all.len(), 1 << 23);
        assert_eq!(all[0], Ipv4Addr::new(10, 128, 0, 0));
    }

    #[test]
    fn list_files_split_on_whitespace_and_drop_comments() {
        let path =
            std::env::temp_dir().join(format!("flagscan-targets-{}.txt", std::process::id()));
        let text = "# lab hosts\n10.0.0.1 10.0.0.2\t10.0.1.0/30\n\n  scanme # the lab box\n#10.9.9.9\n10.0.0.5-7#tail\n";
        std::fs::write(&path, text).unwrap();
        let tokens = read_list_file(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            tokens.unwrap(),
            strings(&[
                "10.0.0.1",
                "10.0.0.2",
                "10.0.1.0/30",
                "scanme",
                "10.0.0.5-7"
            ])
        );
    }

    #[test]
    fn list_files_that_are_not_target_lists_stop_early() {
        // Read from memory: an endless or binary input is refused as soon
        // as it shows it is not a target list.
        let long = vec![b'1'; MAX_LINE_BYTES + 1];
        let e = read_list(&long[..], "long").unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE);
        assert!(e.to_string().contains("line 1 is longer"), "{e}");
        let e = read_list(&b"10.0.0.1\n\x00\xff\xfe\n"[..], "bin").unwrap_err();
        assert!(e.to_string().contains("line 2 is not text"), "{e}");
        let endless = std::io::repeat(b'\n').take(MAX_LIST_BYTES + 10);
        let e = read_list(std::io::BufReader::new(endless), "endless").unwrap_err();
        assert!(e.to_string().contains("larger than 64 MiB"), "{e}");
        assert_eq!(
            read_list(&b"10.0.0.1\r\n10.0.0.2\n"[..], "crlf").unwrap(),
            strings(&["10.0.0.1", "10.0.0.2"])
        );
    }

    #[test]
    fn ambiguous_and_empty_addresses_are_refused_and_inet_aton_forms_read_as_it_does() {
        for (token, why) in [
            ("017.0.0.1", "leading zero"),
            ("10.0.0.01-05", "leading zero"),
            ("0.0.0.0", "names no host"),
        ] {
            let e = expand_targets(&strings(&[token]), &[]).unwrap_err();
            assert_eq!(exit_code(&e), EXIT_USAGE);
            assert!(e.to_string().contains(why), "{token}: {e}");
        }
        // Forms only inet_aton knows go through the resolver, which reads
        // them as inet_aton does (no DNS query: they are numeric).
        assert_eq!(
            expand_targets(&strings(&["0x7f.0.0.1"]), &[]).unwrap(),
            [Ipv4Addr::new(127, 0, 0, 1)]
        );
        // A block holding 0.0.0.0 is a range, not the unspecified address.
        assert_eq!(
            expand_targets(&strings(&["0.0.0.0/31"]), &[])
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn missing_list_file_names_the_path() {
        let path = Path::new("/nonexistent/flagscan/targets.txt");
        let e = read_list_file(path).unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE);
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot read list file '/nonexistent/flagscan/targets.txt': "),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
    }

    #[test]
    fn ipv6_addresses_blocks_and_ranges() {
        assert_eq!(expand(&["::1"], &[]), ips(&["::1"]));
        assert_eq!(expand(&["[fd00::1]"], &[]), ips(&["fd00::1"]));
        assert_eq!(
            expand(&["fd00::5/126"], &[]),
            ips(&["fd00::4", "fd00::5", "fd00::6", "fd00::7"])
        );
        assert_eq!(
            expand(&["fd00::fe-fd00::101"], &["fd00::100"]),
            ips(&["fd00::fe", "fd00::ff", "fd00::101"])
        );
        // Both families in one scan, each once; a comma list splits.
        assert_eq!(
            expand(&["10.0.0.1,fd00::1", "fd00::1", "10.0.0.1"], &[]),
            ips(&["10.0.0.1", "fd00::1"])
        );
        assert_eq!(expand(&["fd00::/120"], &["fd00::/121"]).len(), 128);
        // A sum past u64 is refused, not wrapped to a small total.
        assert!(err(&["10.0.0.1", "fd00::/64"], &[]).contains("2^64 addresses"));
        assert!(err(&["fd00::/65", "fd01::/65"], &[]).contains("2^63 addresses"));
        // Ranges too large to count saturate, and so does their sum.
        assert!(err(&["10.0.0.1", "fd00::-fe00::"], &[]).contains("above flagscan's limit"));
        // Past a /104 (as many addresses as a /8): the same question.
        assert!(err(&["fd00::/103"], &[]).contains("--yes"));
        assert!(err(&["fd00::/64"], &[]).contains("5.8e5 years"));
    }

    #[test]
    fn host_names_follow_minus_6_and_resolve_all() {
        let names = |ipv6, all| {
            expand_targets_named(&strings(&["localhost"]), &[], false, Names { ipv6, all })
        };
        let list = |(h, n): (Hosts, HostNames)| (h.iter().collect::<Vec<_>>(), n);
        let (v4, _) = list(names(false, false).unwrap());
        assert_eq!(v4, ips(&["127.0.0.1"]));
        // /etc/hosts names ::1 localhost only on some systems: where it
        // does, -6 finds it and --resolve-all adds it.
        match names(true, false).map(list) {
            Ok((v6, named)) => {
                assert_eq!(v6, ips(&["::1"]));
                assert_eq!(named, [(v6[0], "localhost".to_string())]);
                let (both, _) = list(names(false, true).unwrap());
                assert!(both.contains(&v4[0]) && both.contains(&v6[0]), "{both:?}");
            }
            Err(e) => assert!(e.to_string().contains("no IPv6 address"), "{e}"),
        }
    }

    #[test]
    fn link_local_scopes_name_one_interface() {
        let (tokens, scope) =
            strip_scopes(&strings(&["fe80::1%eth0", "[fe80::2%eth0]", "10.0.0.1"])).unwrap();
        assert_eq!(tokens, ["fe80::1", "fe80::2", "10.0.0.1"]);
        assert_eq!(scope.as_deref(), Some("eth0"));
        assert_eq!(strip_scopes(&strings(&["fd00::1"])).unwrap().1, None);
        for (bad, why) in [
            ("fd00::1%eth0", "only a link-local address"),
            ("fe80::1%", "not an interface name"),
            ("fe80::zz%eth0", "not an IPv6 address"),
        ] {
            let e = strip_scopes(&strings(&[bad])).unwrap_err();
            assert_eq!(exit_code(&e), EXIT_USAGE);
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let e = strip_scopes(&strings(&["fe80::1%eth0", "fe80::2%eth1"])).unwrap_err();
        assert!(e.to_string().contains("one interface"), "{e}");
    }
}
