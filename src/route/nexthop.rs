//! Next hops for layer-2 sending (`--io fast`): for each target, the
//! interface, our MAC and the next hop's MAC, so that a probe can leave as a
//! complete Ethernet frame through an `AF_PACKET` socket
//! (`io::rawsock::LinkSender`) instead of through the kernel's IP
//! layer, which routes and resolves the neighbour again for every packet.
//!
//! The kernel decides everything, as it would for the layer-3 path:
//!
//! - the route: one `RTM_GETROUTE` per target, as `ip route get` asks, so
//!   policy routing and `-e IFACE` (the route's output interface) count.
//!   The requests go in batches, many per system call, because a /16 sweep
//!   asks 65,536 times before the first probe.
//! - the next hop: the route's gateway, or the target itself when it is on
//!   the link; one [`Hop`] per (interface, next hop), so every target routed
//!   through one gateway shares one entry, and each on-link target needs its
//!   own.
//! - MACs: one dump of the link table (our MAC, and whether the interface is
//!   Ethernet at all) and one of the neighbour table (`RTM_GETNEIGH`).
//!
//! A target stays on the layer-3 path when its route is not plain unicast
//! (a local address, broadcast, blackhole), its interface is not Ethernet
//! (`lo`, tun, WireGuard), or its next hop's MAC is not known (no neighbour
//! entry yet, or one that is INCOMPLETE or FAILED): there the kernel ARPs.
//! Once probes went out that way, the neighbour table is read again a few
//! times ([`NextHops::maybe_recheck`]), so a next hop that has answered ARP
//! moves to layer 2 for the rest of the scan. Nothing here can fail a scan:
//! whatever cannot be resolved is sent at layer 3.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rustc_hash::FxHashMap;

use crate::model::hosts::{from_key, Hosts, PerHost};
use crate::model::probe::addr_key;
use crate::wire::frame::{ethernet_header, Mac, ETH_HLEN};

/// The kind of route the kernel chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// To another host, directly or through a gateway.
    Unicast,
    /// To one of our own addresses (through `lo`).
    Local,
    /// Broadcast, multicast, or a gateway of another family.
    Other,
}

/// What the kernel's routing decided for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    pub kind: RouteKind,
    /// The output interface's index.
    pub oif: u32,
    /// The gateway, for a routed target; `None` on the link.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would use.
    pub source: Option<IpAddr>,
}

impl KernelRoute {
    fn from_message(m: &RouteMessage) -> KernelRoute {
        let mut r = KernelRoute {
            kind: match m.header.kind {
                RouteType::Unicast => RouteKind::Unicast,
                RouteType::Local => RouteKind::Local,
                _ => RouteKind::Other,
            },
            oif: 0,
            gateway: None,
            source: None,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Oif(i) => r.oif = *i,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => r.gateway = Some((*g).into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => r.gateway = Some((*g).into()),
                RouteAttribute::PrefSource(RouteAddress::Inet(s)) => r.source = Some((*s).into()),
                RouteAttribute::PrefSource(RouteAddress::Inet6(s)) => r.source = Some((*s).into()),
                // A gateway of another family (RFC 5549, `via inet6`):
                // not one we can name with a neighbour entry of ours.
                RouteAttribute::Via(_) => r.kind = RouteKind::Other,
                _ => {}
            }
        }
        r
    }

    /// The neighbour whose MAC a frame to `target` carries.
    fn next_hop(&self, target: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(target)
    }
}

/// A neighbour entry the kernel itself would send to: it has a MAC, and
/// the state says the MAC is there (STALE, DELAY and PROBE too: the kernel
/// sends to them while it re-confirms them).
fn usable_neighbour(m: &NeighbourMessage) -> Option<(u32, IpAddr, Mac)> {
    const USABLE: u16 = libc::NUD_REACHABLE
        | libc::NUD_STALE
        | libc::NUD_DELAY
        | libc::NUD_PROBE
        | libc::NUD_PERMANENT;
    let family = m.header.family;
    if (family != AddressFamily::Inet && family != AddressFamily::Inet6)
        || u16::from(m.header.state) & USABLE == 0
    {
        return None;
    }
    let mut addr = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                addr = Some(IpAddr::V4(*ip))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                addr = Some(IpAddr::V6(*ip))
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = unicast_mac(l),
            _ => {}
        }
    }
    Some((m.header.ifindex, addr?, mac?))
}

/// Six bytes that address one station: not zero, not group (multicast or
/// broadcast).
fn unicast_mac(bytes: &[u8]) -> Option<Mac> {
    let mac: Mac = bytes.try_into().ok()?;
    (mac != [0; 6] && mac[0] & 1 == 0).then_some(mac)
}

/// Our MAC on an Ethernet interface; `None` for loopback, tun, WireGuard
/// and the like, which take no Ethernet header.
fn ethernet_link(m: &LinkMessage) -> Option<(u32, Mac)> {
    if m.header.link_layer_type != LinkLayerType::Ether {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(l) => unicast_mac(l).map(|mac| (m.header.index, mac)),
        _ => None,
    })
}

/// Routes asked per `send`: the replies (a few hundred bytes of socket
/// buffer each) must fit the receive buffer, or the kernel drops some.
const ROUTE_BATCH: usize = 128;
/// Receive buffer for one recv: a dump part is at most 32 KiB.
const RECV_BUF: usize = 64 << 10;

/// A synchronous rtnetlink socket.
struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let size: libc::c_int = 4 << 20;
        // Root may go past rmem_max; otherwise the normal limit applies.
        if crate::sys::sockopt::set(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            let _ = crate::sys::sockopt::set(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
        }
        // A dump that never ends (it cannot, but) must not hang a scan.
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: tv is a live timeval and we pass its size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Appends one request to `out`; returns its sequence number.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let at = out.len();
        out.resize(at + packet.buffer_len(), 0);
        packet.serialize(&mut out[at..]);
        // Every message starts 4-byte aligned.
        out.resize(out.len().next_multiple_of(4), 0);
        self.seq
    }

    /// Receives one datagram; `each` gets every message in it.
    fn recv<F: FnMut(u32, NetlinkPayload<RouteNetlinkMessage>)>(
        &mut self,
        flags: libc::c_int,
        mut each: F,
    ) -> io::Result<()> {
        let n = self.sock.recv(&mut &mut self.buf[..], flags)?;
        for (seq, payload) in messages(&self.buf[..n.min(self.buf.len())]) {
            each(seq, payload);
        }
        Ok(())
    }

    /// Sends a dump request and returns every message of the answer.
    fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut req = Vec::new();
        let seq = self.request(msg, NLM_F_REQUEST | NLM_F_DUMP, &mut req);
        self.sock.send(&req, 0)?;
        let mut out = Vec::new();
        let mut done: Option<io::Result<()>> = None;
        while done.is_none() {
            self.recv(0, |s, payload| {
                if s != seq {
                    return;
                }
                match payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => done = Some(Ok(())),
                    NetlinkPayload::Error(e) if e.code.is_some() => done = Some(Err(e.to_io())),
                    _ => {}
                }
            })?;
        }
        done.unwrap_or(Ok(())).map(|()| out)
    }
}

/// The netlink messages of one datagram, with their sequence numbers.
/// Lengths are checked against the datagram: a bad one ends the walk, and
/// a message the crate cannot parse is skipped.
fn messages(buf: &[u8]) -> Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)> {
    const HEADER: usize = 16;
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(head) = buf.get(at..at + HEADER) {
        let len = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(bytes) = buf
            .get(at..at.saturating_add(len))
            .filter(|_| len >= HEADER)
        else {
            break;
        };
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
            out.push((m.header.sequence_number, m.payload));
        }
        at = at.saturating_add(len.next_multiple_of(4));
    }
    out
}

fn route_query(dst: IpAddr, oif: Option<u32>) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    match dst {
        IpAddr::V4(d) => {
            m.header.address_family = AddressFamily::Inet;
            m.header.destination_prefix_length = 32;
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(d)));
        }
        IpAddr::V6(d) => {
            m.header.address_family = AddressFamily::Inet6;
            m.header.destination_prefix_length = 128;
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet6(d)));
        }
    }
    if let Some(oif) = oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    RouteNetlinkMessage::GetRoute(m)
}

/// Where the routing could change: every route's destination prefix in
/// every table (the local table's /32s included), every rule's `to`
/// prefix, and the prefixes of multipath routes (whose next hop the kernel
/// picks per destination). Two addresses that no prefix tells apart get
/// the same answer to a lookup by destination.
#[derive(Debug, Default)]
struct Boundaries {
    /// (network, prefix length).
    prefixes: Vec<(u32, u8)>,
    multipath: Vec<(u32, u8)>,
}

/// Beyond this many prefixes (a router's full table) each target is
/// looked up on its own, as before: the cell search is per prefix.
const MAX_BOUNDARIES: usize = 4096;

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

impl Boundaries {
    fn read(nl: &mut Rtnl) -> io::Result<Boundaries> {
        let mut b = Boundaries::default();
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        for m in nl.dump(RouteNetlinkMessage::GetRoute(q))? {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let len = r.header.destination_prefix_length.min(32);
            let mut net = 0u32;
            let mut multipath = false;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => net = u32::from(*d),
                    RouteAttribute::MultiPath(_) => multipath = true,
                    _ => {}
                }
            }
            b.prefixes.push((net & mask(len), len));
            if multipath {
                b.multipath.push((net & mask(len), len));
            }
        }
        let mut q = netlink_packet_route::rule::RuleMessage::default();
        q.header.family = AddressFamily::Inet;
        for m in nl.dump(RouteNetlinkMessage::GetRule(q))? {
            let RouteNetlinkMessage::NewRule(r) = m else {
                continue;
            };
            let len = r.header.dst_len.min(32);
            for a in &r.attributes {
                if let netlink_packet_route::rule::RuleAttribute::Destination(
                    std::net::IpAddr::V4(d),
                ) = a
                {
                    b.prefixes.push((u32::from(*d) & mask(len), len));
                }
            }
        }
        b.prefixes.sort_unstable();
        b.prefixes.dedup();
        Ok(b)
    }

    /// The prefix length of the largest aligned block around `t` that no
    /// boundary divides: every boundary either holds the whole block or
    /// none of it, so one lookup answers for all of it. 32 inside a
    /// multipath route.
    fn cell_len(&self, t: u32) -> u8 {
        if self
            .multipath
            .iter()
            .any(|&(net, len)| t & mask(len) == net)
        {
            return 32;
        }
        // A block of length L is divided by a prefix longer than L whose
        // network agrees with t on L bits; so L must reach, for each
        // prefix, its own length or one past their common bits.
        self.prefixes
            .iter()
            .map(|&(net, len)| {
                let common = (t ^ net).leading_zeros().min(32) as u8;
                len.min(common.saturating_add(1))
            })
            .max()
            .unwrap_or(0)
    }
}

/// Groups runs of consecutive IPv4 targets (first, how many) into cells
/// ([`Boundaries::cell_len`]): pieces of a run, each (how many targets,
/// its cell), and one target per cell to ask the kernel about. A run is
/// cut where a cell ends, so a /8 in one cell is one piece.
fn cells(
    runs: impl Iterator<Item = (Ipv4Addr, u64)>,
    b: &Boundaries,
) -> (Vec<(u64, u32)>, Vec<Ipv4Addr>) {
    let mut index: FxHashMap<(u32, u8), u32> = FxHashMap::default();
    let mut asked: Vec<Ipv4Addr> = Vec::new();
    let mut pieces: Vec<(u64, u32)> = Vec::new();
    for (first, count) in runs {
        let (mut a, mut left) = (u64::from(u32::from(first)), count);
        while left > 0 {
            let t = a as u32;
            let len = b.cell_len(t);
            let net = t & mask(len);
            let end = u64::from(net) + (1u64 << (32 - u32::from(len)));
            let n = (end - a).min(left);
            let i = *index.entry((net, len)).or_insert_with(|| {
                asked.push(Ipv4Addr::from(t));
                (asked.len() - 1) as u32
            });
            match pieces.last_mut() {
                Some((m, cell)) if *cell == i => *m += n,
                _ => pieces.push((n, i)),
            }
            a += n;
            left -= n;
        }
    }
    (pieces, asked)
}

/// The kernel's route to each target (`None` where it has none, or the
/// answer was lost), `oif` as `-e` gives it. Asked once per cell of
/// addresses the routing tables cannot tell apart ([`Boundaries`]): a /8
/// behind one gateway is one question, and one entry, not 16 million.
///
/// IPv6 targets are asked one by one (their sets are lists, not blocks).
pub fn kernel_routes(
    targets: &Hosts,
    oif: Option<u32>,
) -> io::Result<PerHost<Option<KernelRoute>>> {
    let bounds = match targets.any_ipv4() {
        true => Rtnl::open()
            .and_then(|mut nl| Boundaries::read(&mut nl))
            .ok()
            .filter(|b| b.prefixes.len() <= MAX_BOUNDARIES),
        false => None,
    };
    // Every IPv4 run's cells at once, so that runs in one cell (a list of
    // scattered addresses behind one gateway) share its question.
    let v4_runs = targets.runs().filter_map(|(first, count, _)| match first {
        IpAddr::V4(a) => Some((a, count)),
        IpAddr::V6(_) => None,
    });
    let (v4_pieces, mut asked): (Vec<(u64, u32)>, Vec<IpAddr>) = match &bounds {
        Some(b) => {
            let (pieces, asked) = cells(v4_runs, b);
            (pieces, asked.into_iter().map(IpAddr::V4).collect())
        }
        None => (Vec::new(), Vec::new()),
    };
    let mut v4_pieces = v4_pieces.into_iter().peekable();
    // Per run of targets: (how many, which question), in target order.
    let mut pieces: Vec<(u64, u32)> = Vec::new();
    for (first, count, start) in targets.runs() {
        match (first, &bounds) {
            (IpAddr::V4(_), Some(_)) => {
                // The cells' pieces cover the IPv4 runs in order (a piece
                // may span two runs: it is split between them).
                let mut left = count;
                while left > 0 {
                    let Some((n, cell)) = v4_pieces.peek_mut() else {
                        break;
                    };
                    let take = (*n).min(left);
                    pieces.push((take, *cell));
                    *n -= take;
                    left -= take;
                    if *n == 0 {
                        v4_pieces.next();
                    }
                }
            }
            _ => {
                for k in 0..count as usize {
                    asked.push(targets.at(start + k));
                    pieces.push((1, (asked.len() - 1) as u32));
                }
            }
        }
    }
    let answers = routes_of_each(&asked, oif)?;
    let mut out = PerHost::new();
    let mut at = 0usize;
    for (n, i) in pieces {
        let r = answers[i as usize];
        // A local route without a preferred source answers from the
        // destination itself: each target's own.
        match r.filter(|r| r.kind == RouteKind::Local && r.source == Some(asked[i as usize])) {
            Some(r) => {
                for k in 0..n as usize {
                    out.push(Some(KernelRoute {
                        source: Some(targets.at(at + k)),
                        ..r
                    }));
                }
            }
            None => out.push_n(r, n),
        }
        at += n as usize;
    }
    Ok(out)
}

/// The kernel's route to each target (`None` where it has none, or the
/// answer was lost), `oif` as `-e` gives it. Asks [`ROUTE_BATCH`] at a time:
/// the kernel answers a request while it is being sent, so after `send`
/// every answer is queued, or was dropped for want of buffer.
fn routes_of_each(targets: &[IpAddr], oif: Option<u32>) -> io::Result<Vec<Option<KernelRoute>>> {
    let mut nl = Rtnl::open()?;
    let mut routes = vec![None; targets.len()];
    let mut req = Vec::new();
    for (chunk_no, chunk) in targets.chunks(ROUTE_BATCH).enumerate() {
        req.clear();
        let first_seq = nl.seq.wrapping_add(1);
        for &t in chunk {
            nl.request(route_query(t, oif), NLM_F_REQUEST, &mut req);
        }
        nl.sock.send(&req, 0)?;
        let base = chunk_no * ROUTE_BATCH;
        let mut answered = 0;
        while answered < chunk.len() {
            let got = nl.recv(libc::MSG_DONTWAIT, |seq, payload| {
                let i = seq.wrapping_sub(first_seq) as usize;
                if i >= chunk.len() {
                    return;
                }
                answered += 1;
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) = payload {
                    routes[base + i] = Some(KernelRoute::from_message(&m));
                }
            });
            match got {
                Ok(()) => {}
                // Nothing more queued: the rest were dropped (ENOBUFS is
                // reported once, then the queue reads on).
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(_) => break,
            }
        }
    }
    Ok(routes)
}

/// Usable neighbour entries of both families: (interface, address) -> MAC.
fn neighbours(nl: &mut Rtnl) -> io::Result<HashMap<(u32, IpAddr), Mac>> {
    let mut q = NeighbourMessage::default();
    q.header.family = AddressFamily::Unspec;
    Ok(nl
        .dump(RouteNetlinkMessage::GetNeighbour(q))?
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewNeighbour(n) => usable_neighbour(n),
            _ => None,
        })
        .map(|(i, a, mac)| ((i, a), mac))
        .collect())
}

/// Ethernet interfaces and our MAC on each.
fn ethernet_links(nl: &mut Rtnl) -> io::Result<HashMap<u32, Mac>> {
    Ok(nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => ethernet_link(l),
            _ => None,
        })
        .collect())
}

/// A MAC with the "known" bit: 0 while the next hop is unresolved.
const KNOWN: u64 = 1 << 63;

fn pack(mac: Mac) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b) | KNOWN
}

fn unpack(v: u64) -> Option<Mac> {
    if v & KNOWN == 0 {
        return None;
    }
    let b = v.to_be_bytes();
    Some([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// One next hop: a gateway, or an on-link target.
#[derive(Debug)]
pub struct Hop {
    pub ifindex: u32,
    /// The neighbour's address (the gateway's, or the target's).
    pub addr: IpAddr,
    /// Our MAC on `ifindex`.
    pub src: Mac,
    /// The neighbour's MAC (packed), filled in when it becomes known.
    dst: AtomicU64,
}

impl Hop {
    pub fn dst_mac(&self) -> Option<Mac> {
        unpack(self.dst.load(Ordering::Relaxed))
    }

    /// The Ethernet header of a frame to this hop, once its MAC is known.
    pub fn ethernet_header(&self) -> Option<[u8; ETH_HLEN]> {
        let ethertype = if self.addr.is_ipv6() { 0x86dd } else { 0x0800 };
        Some(ethernet_header(self.dst_mac()?, self.src, ethertype))
    }
}

/// When to read the neighbour table again, after the first probe went out
/// at layer 3 to a next hop whose MAC was unknown (that probe made the
/// kernel ask ARP): a LAN answers within a millisecond or two, so most of
/// a scan moves to layer 2 at the first re-check; the later ones catch
/// slow answers. Each is one dump of the neighbour table.
const RECHECKS: [Duration; 4] = [
    Duration::from_millis(2),
    Duration::from_millis(20),
    Duration::from_millis(200),
    Duration::from_secs(2),
];

#[derive(Debug, Default)]
struct Recheck {
    /// When the first probe went to an unresolved next hop at layer 3.
    first_fallback: Option<Instant>,
    done: usize,
}

/// The next hop of every target that can be sent to at layer 2.
#[derive(Debug, Default)]
pub struct NextHops {
    hops: Vec<Hop>,
    /// Target (as u32) -> index in `hops`. Targets that are not here go
    /// through the kernel's IP layer.
    /// FxHash: the lookup is per probe, on the send path. On-link targets
    /// only: those behind a gateway are in `routed`.
    by_target: FxHashMap<u32, u32>,
    /// IPv6 target -> index in `hops`, on the link or not.
    by_target6: FxHashMap<u128, u32>,
    /// Ranges of targets behind a gateway, (first, last, index in `hops`),
    /// sorted and disjoint (targets are deduplicated).
    routed: Vec<(u32, u32, u32)>,
    /// Targets with a hop, for the summary.
    targets: usize,
    /// Hops whose MAC is still unknown.
    unresolved: AtomicUsize,
    recheck: Mutex<Recheck>,
    /// `recheck.first_fallback` is set.
    fallback_noted: AtomicBool,
}

/// What [`NextHops::resolve`] found, for a one-line summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopCounts {
    pub targets: usize,
    pub hops: usize,
    pub unresolved: usize,
}

impl NextHops {
    /// The next hops of `targets`, whose routes [`kernel_routes`] gave.
    /// Never fails: what cannot be resolved stays at layer 3.
    pub fn resolve(targets: &Hosts, routes: &PerHost<Option<KernelRoute>>) -> NextHops {
        if !routes
            .runs()
            .any(|(_, r)| r.is_some_and(|r| r.kind == RouteKind::Unicast))
        {
            return NextHops::default();
        }
        let Ok(mut nl) = Rtnl::open() else {
            return NextHops::default();
        };
        let (Ok(links), Ok(neigh)) = (ethernet_links(&mut nl), neighbours(&mut nl)) else {
            return NextHops::default();
        };
        NextHops::build(targets, routes, &links, &neigh)
    }

    /// The pure part of [`NextHops::resolve`].
    fn build(
        targets: &Hosts,
        routes: &PerHost<Option<KernelRoute>>,
        links: &HashMap<u32, Mac>,
        neigh: &HashMap<(u32, IpAddr), Mac>,
    ) -> NextHops {
        let mut hops: Vec<Hop> = Vec::new();
        let mut index: HashMap<(u32, IpAddr), u32> = HashMap::new();
        let mut by_target = FxHashMap::default();
        let mut routed: Vec<(u32, u32, u32)> = Vec::new();
        let mut targets_with_hop = 0;
        let mut by_target6 = FxHashMap::default();
        let mut hop_of = |key: (u32, IpAddr), src: Mac| {
            *index.entry(key).or_insert_with(|| {
                hops.push(Hop {
                    ifindex: key.0,
                    addr: key.1,
                    src,
                    dst: AtomicU64::new(neigh.get(&key).map_or(0, |&m| pack(m))),
                });
                (hops.len() - 1) as u32
            })
        };
        for (positions, r) in routes.runs() {
            let Some(r) = r.filter(|r| r.kind == RouteKind::Unicast) else {
                continue;
            };
            let Some(&src) = links.get(&r.oif) else {
                continue;
            };
            targets_with_hop += positions.len();
            for (first, count, _) in targets.slice(positions).runs() {
                match (first, r.gateway) {
                    // Behind a gateway, runs of addresses share it: a /8
                    // is one range, not 16 million map entries.
                    (IpAddr::V4(a), Some(gw)) => {
                        let i = hop_of((r.oif, gw), src);
                        let a = u32::from(a);
                        let last = a + (count - 1) as u32;
                        match routed.last_mut() {
                            Some((_, end, hop)) if *hop == i && end.checked_add(1) == Some(a) => {
                                *end = last
                            }
                            _ => routed.push((a, last, i)),
                        }
                    }
                    // On the link every target is its own next hop; IPv6
                    // targets are lists, each its own entry.
                    _ => {
                        let key = addr_key(first);
                        for k in 0..count {
                            let t = from_key(key + u128::from(k));
                            let i = hop_of((r.oif, r.next_hop(t)), src);
                            match t {
                                IpAddr::V4(a) => by_target.insert(u32::from(a), i),
                                IpAddr::V6(a) => by_target6.insert(u128::from(a), i),
                            };
                        }
                    }
                }
            }
        }
        routed.sort_unstable();
        let unresolved = hops.iter().filter(|h| h.dst_mac().is_none()).count();
        NextHops {
            hops,
            by_target,
            by_target6,
            routed,
            targets: targets_with_hop,
            unresolved: AtomicUsize::new(unresolved),
            recheck: Mutex::new(Recheck::default()),
            fallback_noted: AtomicBool::new(false),
        }
    }

    pub fn counts(&self) -> HopCounts {
        HopCounts {
            targets: self.targets,
            hops: self.hops.len(),
            unresolved: self.unresolved.load(Ordering::Relaxed),
        }
    }

    /// The hop a probe to `dst` goes through at layer 2, if it has one
    /// (its MAC may still be unknown).
    pub fn hop(&self, dst: IpAddr) -> Option<&Hop> {
        if self.hops.is_empty() {
            return None;
        }
        let dst = match dst {
            IpAddr::V4(dst) => dst,
            IpAddr::V6(dst) => {
                let i = self.by_target6.get(&u128::from(dst))?;
                return self.hops.get(*i as usize);
            }
        };
        let a = u32::from(dst);
        let i = match self.by_target.get(&a) {
            Some(&i) => i,
            None => {
                let at = self.routed.partition_point(|&(first, _, _)| first <= a);
                let &(_, last, i) = self.routed.get(at.checked_sub(1)?)?;
                if a > last {
                    return None;
                }
                i
            }
        };
        self.hops.get(i as usize)
    }

    /// Notes that a probe went out at layer 3 for want of a MAC. Once
    /// noted, one atomic load: a sweep of absent on-link hosts comes here
    /// for every probe.
    pub fn note_fallback(&self) {
        if self.fallback_noted.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut r) = self.recheck.try_lock() {
            r.first_fallback.get_or_insert_with(Instant::now);
            self.fallback_noted.store(true, Ordering::Relaxed);
        }
    }

    /// Reads the neighbour table again when a re-check is due
    /// ([`RECHECKS`]). Cheap when nothing is unresolved or due; one thread
    /// does it while the others send on.
    pub fn maybe_recheck(&self) {
        if self.unresolved.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Ok(mut r) = self.recheck.try_lock() else {
            return;
        };
        let (Some(first), Some(&after)) = (r.first_fallback, RECHECKS.get(r.done)) else {
            return;
        };
        if first.elapsed() < after {
            return;
        }
        r.done += 1;
        // Skip the checks whose time is past too: one dump is enough.
        while RECHECKS.get(r.done).is_some_and(|&d| first.elapsed() >= d) {
            r.done += 1;
        }
        drop(r);
        if let Ok(neigh) = Rtnl::open().and_then(|mut nl| neighbours(&mut nl)) {
            self.learn(&neigh);
        }
    }

    /// Fills in the MACs host discovery's ARP learned (interface, address, MAC).
    pub fn learn_macs(&self, macs: &[(u32, IpAddr, Mac)]) {
        let neigh: HashMap<(u32, IpAddr), Mac> =
            macs.iter().map(|&(i, a, m)| ((i, a), m)).collect();
        if !neigh.is_empty() {
            self.learn(&neigh);
        }
    }

    /// Fills in the MACs `neigh` knows.
    fn learn(&self, neigh: &HashMap<(u32, IpAddr), Mac>) {
        for h in &self.hops {
            if h.dst_mac().is_some() {
                continue;
            }
            if let Some(&mac) = neigh.get(&(h.ifindex, h.addr)) {
                h.dst.store(pack(mac), Ordering::Relaxed);
                self.unresolved.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cells, Boundaries};
    use crate::model::hosts::Hosts;

    /// Each target's cell, and the targets asked.
    fn cells_of(
        targets: &[std::net::Ipv4Addr],
        b: &Boundaries,
    ) -> (Vec<u32>, Vec<std::net::Ipv4Addr>) {
        let hosts: Hosts = targets.iter().map(|&t| t.into()).collect();
        let runs = hosts.runs().map(|(a, n, _)| match a {
            std::net::IpAddr::V4(a) => (a, n),
            std::net::IpAddr::V6(_) => unreachable!("IPv4 targets"),
        });
        let (pieces, asked) = cells(runs, b);
        let of = pieces
            .into_iter()
            .flat_map(|(n, c)| std::iter::repeat_n(c, n as usize))
            .collect();
        (of, asked)
    }

    fn net(a: &str, len: u8) -> (u32, u8) {
        (u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()), len)
    }

    /// The lab of the /8 measurement: 10/8 behind a gateway, a /30 link,
    /// our own address and the local table's entries.
    fn lab_bounds() -> Boundaries {
        let mut prefixes = vec![
            net("10.0.0.0", 8),
            net("192.168.77.0", 30),
            net("192.168.77.1", 32),
            net("192.168.77.3", 32),
            net("127.0.0.0", 8),
            net("127.0.0.1", 32),
            net("127.255.255.255", 32),
        ];
        prefixes.sort_unstable();
        Boundaries {
            prefixes,
            multipath: Vec::new(),
        }
    }

    #[test]
    fn a_slash_8_behind_one_gateway_is_one_question() {
        let b = lab_bounds();
        let targets: Vec<std::net::Ipv4Addr> = (0u32..1 << 16)
            .map(|i| (0x0a00_0000 + i * 256 + 7).into())
            .collect();
        let (of, asked) = cells_of(&targets, &b);
        assert_eq!(asked.len(), 1);
        assert!(of.iter().all(|&c| c == 0));
        assert_eq!(b.cell_len(0x0a01_0203), 8);
    }

    #[test]
    fn every_boundary_splits_its_cells() {
        let mut b = lab_bounds();
        // A more specific route inside the /8, and a rule's `to` prefix.
        b.prefixes.push(net("10.1.0.0", 16));
        b.prefixes.push(net("10.200.5.0", 24));
        b.prefixes.sort_unstable();
        let t = |a: &str| u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!(b.cell_len(t("10.1.2.3")), 16);
        assert_eq!(b.cell_len(t("10.200.5.9")), 24);
        // Beside a /16 the cell shrinks until the /16 is outside it.
        assert_eq!(b.cell_len(t("10.0.0.1")), 16);
        // (10.128.0.0/9 would hold 10.200.5.0/24.)
        assert_eq!(b.cell_len(t("10.128.0.1")), 10);
        // The link's own addresses are cells of one.
        assert_eq!(b.cell_len(t("192.168.77.1")), 32);
        assert_eq!(b.cell_len(t("192.168.77.2")), 32);
        assert_eq!(b.cell_len(t("192.168.77.0")), 32);
        // A multipath route's next hop is per destination.
        b.multipath.push(net("10.200.5.0", 24));
        assert_eq!(b.cell_len(t("10.200.5.9")), 32);
        // No two targets in one cell are told apart by any boundary.
        let targets: Vec<std::net::Ipv4Addr> = (0u32..1 << 12)
            .map(|i| (0x0a00_0000u32.wrapping_add(i.wrapping_mul(0x000f_3a11))).into())
            .collect();
        let (of, asked) = cells_of(&targets, &b);
        for (i, &x) in targets.iter().enumerate() {
            let rep = u32::from(asked[of[i] as usize]);
            for &(n, l) in &b.prefixes {
                let inside =
                    |a: u32| l == 0 || a >> (32 - u32::from(l)) == n >> (32 - u32::from(l));
                assert_eq!(
                    inside(u32::from(x)),
                    inside(rep),
                    "{x} and its cell's {rep:?} differ on {n:x}/{l}"
                );
            }
        }
    }

    use super::*;

    // Real bytes, as the kernel (6.18) sent them to this module's requests
    // in the lab's scanner namespace (10.213.1.1/24 on eth0, 10.213.2.0/24
    // via 10.213.1.254): one datagram each.

    const ROUTE_VIA_GATEWAY: &str = concat!(
        "700000001800000001000000b913000002200000fe0000010002000008000f00fe000000080001000ad50202",
        "0800040002000000080007000ad50101080005000ad501fe080019000000000024000c0002000000ca000000",
        "000000000000000000000000000000000000000000000000",
    );

    const ROUTE_ON_LINK: &str = concat!(
        "680000001800000002000000b913000002200000fe0000010002000008000f00fe000000080001000ad50102",
        "0800040002000000080007000ad50101080019000000000024000c0002000000786300000000000000000000",
        "00000000000000000000000000000000",
    );

    const ROUTE_LOOPBACK: &str = concat!(
        "680000001800000003000000b913000002200000fe0000020002008008000f00fe000000080001007f000001",
        "0800040001000000080007007f000001080019000000000024000c0002000000ca0000000000000000000000",
        "00000000000000000000000000000000",
    );

    const ROUTE_OWN_ADDRESS: &str = concat!(
        "680000001800000004000000b913000002200000fe0000020002008008000f00fe000000080001000ad50101",
        "0800040001000000080007000ad50101080019000000000024000c0001000000000000000000000000000000",
        "00000000000000000000000000000000",
    );

    const ROUTE_UNREACHABLE: &str = concat!(
        "380000000200000005000000b91300009bffffff240000001a00010005000000000000000220000000000000",
        "0000000008000100c0000201",
    );

    const ROUTE_BROADCAST: &str = concat!(
        "680000001800000006000000b913000002200000fe0000030002009008000f00fe000000080001000ad501ff",
        "0800040002000000080007000ad50101080019000000000024000c0002000000fa5000000000000000000000",
        "00000000000000000000000000000000",
    );

    const NEIGHBOUR_DUMP: &str = concat!(
        "4c0000001c00020007000000b9130000020000000200000004000001080001000ad501020a000200969f8f68",
        "58ef0000080004000100000014000300a9540000a95400007648000000000000400000001c00020007000000",
        "b9130000020000000200000020000001080001000ad5010008000400060000001400030066680000e3500000",
        "c24f0000000000004c0000001c00020007000000b9130000020000000200000004000001080001000ad50103",
        "0a000200aedffb6323210000080004000400000014000300f6500000f650000043450000000000004c000000",
        "1c00020007000000b913000002000000010000004000000308000100000000000a0002000000000000000000",
        "08000400000000001400030066680000f6500000f650000000000000140000000300020007000000b9130000",
        "00000000",
    );

    const LINK_LO: &str = concat!(
        "bc0500001000000008000000b913000000000403010000004900010000000000070003006c6f000008000d00",
        "e803000005001000000000000500110000000000050043000100000008000400000001000800320000000000",
        "080033000000000008001b000000000008001e000000000008003d000000000008001f000100000008002800",
        "ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff0700",
        "08003c00ffff0000080042000000000008002000010000000500210001000000080023000000000008002f00",
        "0000000008003000000000000600440000000000060045000000000005002700000000000a00010000000000",
        "000000000a0002000000000000000000cc00170009000000000000000900000000000000bc01000000000000",
        "bc01000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "640007000900000009000000bc010000bc010000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000c002b0005000200000000000c0006006e6f71756575650030031a008c000200",
        "8800010000000000000000000000000001000000010000000100000001000000000000000100000000000000",
        "0000000000000000000000000000000001000000010000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000010270000e803000000000000000000000000000000000000",
        "01000000a0020a00080001000000008014000500ffff000074230b007c840000e8030000f400020000000000",
        "400000000000010001000000010000000100000001000000ffffffffa00f0000e8030000ffffffff803a0900",
        "805101000300000058020000100000000000000001000000010000000100000060ea00000000000000000000",
        "00000000000000000000000000000000ffffffff000000000000000010270000e80300000100000000000000",
        "00000000010000000000000000000000010000000000000000000000000000000000000080ee360000000000",
        "000000000100000000000000000000000000000000000000000000000004000000000000ffff0000ffffffff",
        "0100000000000000000000000000000034010300260000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000003c000600070000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000140007000000000000000000",
        "0000000000000000050008000000000024000e00000000000000000000000000000000000000000000000000",
        "000000000000000004003e8004004180",
    );

    const LINK_ETH0: &str = concat!(
        "e00500001000000009000000b913000000000100020000004310010000000000090003006574683000000000",
        "08000d00e803000005001000060000000500110000000000050043000000000008000400dc05000008003200",
        "4400000008003300ffff000008001b000000000008001e000000000008003d000000000008001f0002000000",
        "08002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00",
        "f8ff070008003c00ffff00000800420000000000080020000200000005002100010000000800230002000000",
        "08002f000100000008003000010000000600440000000000060045000000000005002700000000000a000100",
        "fa3065874fad00000a000200ffffffffffff0000cc001700c0ff0400000000004a01050000000000b8f80d01",
        "0000000050460e01000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000064000700c0ff04004a010500b8f80d0150460e010000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000c002b00050002000000000010001200090001007665746800000000",
        "080025000000000008000500030000000c0006006e6f71756575650030031a008c0002008800010000000000",
        "0000000000000000010000000100000001000000010000000000000001000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000010270000e80300000000000000000000000000000000000001000000a0020a00",
        "080001001000008014000500ffff000077230b0060570000e8030000f40002000000000040000000dc050000",
        "01000000010000000100000001000000ffffffffa00f0000e803000000000000803a09008051010003000000",
        "58020000100000000000000001000000010000000100000060ea000000000000000000000000000000000000",
        "000000000000000001000000000000000000000010270000e803000001000000000000000000000001000000",
        "0000000000000000010000000000000000000000000000000000000080ee3600000000000000000001000000",
        "00000000000000000000000000000000000000000004000000000000ffff0000ffffffff0100000000000000",
        "00000000000000003401030026000000000000002f00000000000000180c0000000000000000000000000000",
        "2f000000000000000000000000000000000000000000000000000000000000000c000000000000000c000000",
        "0000000000030000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000002f000000000000000c00000000000000000000000000000000000000",
        "00000000180c0000000000000003000000000000000000000000000000000000000000000000000000000000",
        "00000000000000003c0006000700000000000000000000000000000000000000000000000c00000000000000",
        "0000000000000000000000000000000000000000000000001400070000000000000000000000000000000000",
        "050008000000000024000e000000000000000000000000000000000000000000000000000000000000000000",
        "04003e8004004180",
    );

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn one_route(hex: &str) -> Option<KernelRoute> {
        let msgs = messages(&bytes(hex));
        assert_eq!(msgs.len(), 1);
        match &msgs[0].1 {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => {
                Some(KernelRoute::from_message(m))
            }
            _ => None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_the_kernels_route_answers() {
        let lan = Some(ip("10.213.1.1"));
        assert_eq!(
            one_route(ROUTE_VIA_GATEWAY),
            Some(KernelRoute {
                kind: RouteKind::Unicast,
                oif: 2,
                gateway: Some(ip("10.213.1.254")),
                source: lan,
            })
        );
        let on_link = one_route(ROUTE_ON_LINK).unwrap();
        assert_eq!(
            on_link,
            KernelRoute {
                kind: RouteKind::Unicast,
                oif: 2,
                gateway: None,
                source: lan,
            }
        );
        assert_eq!(on_link.next_hop(ip("10.213.1.2")), ip("10.213.1.2"));
        // Our own addresses route through lo as local: never layer 2.
        let lo = one_route(ROUTE_LOOPBACK).unwrap();
        assert_eq!(
            (lo.kind, lo.oif, lo.source),
            (RouteKind::Local, 1, Some(ip("127.0.0.1")))
        );
        let own = one_route(ROUTE_OWN_ADDRESS).unwrap();
        assert_eq!((own.kind, own.oif, own.source), (RouteKind::Local, 1, lan));
        assert_eq!(one_route(ROUTE_BROADCAST).unwrap().kind, RouteKind::Other);
        // No route: an error message (ENETUNREACH), not a route.
        let msgs = messages(&bytes(ROUTE_UNREACHABLE));
        assert!(
            matches!(&msgs[..], [(5, NetlinkPayload::Error(e))]
                if e.to_io().raw_os_error() == Some(libc::ENETUNREACH)),
            "{msgs:?}"
        );
    }

    #[test]
    fn reads_usable_neighbours_and_skips_failed_ones() {
        let msgs = messages(&bytes(NEIGHBOUR_DUMP));
        assert!(matches!(msgs.last(), Some((_, NetlinkPayload::Done(_)))));
        let found: Vec<_> = msgs
            .iter()
            .filter_map(|(_, p)| match p {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                    Some(usable_neighbour(n))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            found,
            vec![
                Some((2, ip("10.213.1.2"), [0x96, 0x9f, 0x8f, 0x68, 0x58, 0xef])),
                // FAILED: no MAC, the kernel keeps asking ARP.
                None,
                Some((2, ip("10.213.1.3"), [0xae, 0xdf, 0xfb, 0x63, 0x23, 0x21])),
                // 0.0.0.0 on lo, NOARP with a zero MAC.
                None,
            ]
        );
    }

    #[test]
    fn only_ethernet_links_get_a_header() {
        let link = |hex: &str| match &messages(&bytes(hex))[..] {
            [(_, NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)))] => {
                ethernet_link(l)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(link(LINK_LO), None);
        assert_eq!(
            link(LINK_ETH0),
            Some((2, [0xfa, 0x30, 0x65, 0x87, 0x4f, 0xad]))
        );
    }

    #[test]
    fn truncated_or_lying_datagrams_never_panic() {
        let mut all = Vec::new();
        for hex in [
            ROUTE_VIA_GATEWAY,
            NEIGHBOUR_DUMP,
            LINK_ETH0,
            ROUTE_UNREACHABLE,
        ] {
            all.extend(bytes(hex));
        }
        for cut in 0..all.len() {
            let _ = messages(&all[..cut]);
        }
        // Every length field set to a value that lies.
        let mut b = bytes(NEIGHBOUR_DUMP);
        for bad in [0u32, 1, 15, 17, 0xffff, u32::MAX] {
            b[..4].copy_from_slice(&bad.to_ne_bytes());
            let _ = messages(&b);
        }
        let mut b = bytes(LINK_ETH0);
        for i in 0..b.len() {
            let saved = b[i];
            b[i] = 0xff;
            let _ = messages(&b);
            b[i] = saved;
        }
    }

    #[test]
    fn packs_and_unpacks_macs() {
        let mac = [0x02, 0, 0x5e, 0x10, 0xff, 0x01];
        assert_eq!(unpack(pack(mac)), Some(mac));
        assert_eq!(unpack(0), None);
        assert_eq!(unicast_mac(&[0; 6]), None);
        assert_eq!(unicast_mac(&[0xff; 6]), None);
        assert_eq!(unicast_mac(&[1, 0, 0x5e, 0, 0, 1]), None);
        assert_eq!(unicast_mac(&[2, 0, 0]), None);
        assert_eq!(unicast_mac(&mac), Some(mac));
    }

    fn route(oif: u32, gateway: Option<&str>) -> Option<KernelRoute> {
        Some(KernelRoute {
            kind: RouteKind::Unicast,
            oif,
            gateway: gateway.map(ip),
            source: None,
        })
    }

    #[test]
    fn one_hop_per_gateway_and_per_on_link_target() {
        let ours = [2, 0, 0, 0, 0, 1];
        let gw_mac = [2, 0, 0, 0, 0, 0xfe];
        let web_mac = [2, 0, 0, 0, 0, 2];
        let links = HashMap::from([(2, ours)]);
        let neigh = HashMap::from([
            ((2, ip("10.0.1.254")), gw_mac),
            ((2, ip("10.0.1.2")), web_mac),
        ]);
        // A /16 behind the gateway, two on-link hosts (one unresolved), a
        // local address, a tun interface (no link entry), no route.
        let mut targets: Vec<IpAddr> = (0..65536u32)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + i)))
            .collect();
        let mut routes = vec![route(2, Some("10.0.1.254")); targets.len()];
        for (t, r) in [
            ("10.0.1.2", route(2, None)),
            ("10.0.1.3", route(2, None)),
            (
                "10.0.1.1",
                route(1, None).map(|r| KernelRoute {
                    kind: RouteKind::Local,
                    ..r
                }),
            ),
            ("10.9.0.1", route(7, None)),
            ("10.8.0.1", None),
        ] {
            targets.push(ip(t));
            routes.push(r);
        }
        let started = Instant::now();
        let hops = NextHops::build(&targets.into(), &routes.into(), &links, &neigh);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            hops.counts(),
            HopCounts {
                targets: 65536 + 2,
                hops: 3,
                unresolved: 1
            }
        );
        let far = hops.hop(ip("10.100.7.9")).unwrap();
        assert_eq!((far.ifindex, far.addr), (2, ip("10.0.1.254")));
        let mut header = [0u8; 14];
        header[..6].copy_from_slice(&gw_mac);
        header[6..12].copy_from_slice(&ours);
        header[12..].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(far.ethernet_header(), Some(header));
        assert!(std::ptr::eq(far, hops.hop(ip("10.100.255.255")).unwrap()));
        assert_eq!(hops.hop(ip("10.0.1.2")).unwrap().dst_mac(), Some(web_mac));
        let waiting = hops.hop(ip("10.0.1.3")).unwrap();
        assert_eq!(waiting.ethernet_header(), None);
        for t in ["10.0.1.1", "10.9.0.1", "10.8.0.1", "10.7.7.7"] {
            assert!(hops.hop(ip(t)).is_none(), "{t}");
        }
        // The neighbour answered ARP meanwhile.
        let later = HashMap::from([((2, ip("10.0.1.3")), [2, 0, 0, 0, 0, 3])]);
        hops.learn(&later);
        assert_eq!(waiting.dst_mac(), Some([2, 0, 0, 0, 0, 3]));
        assert_eq!(hops.counts().unresolved, 0);
        hops.learn(&later);
        assert_eq!(hops.counts().unresolved, 0);
    }

    #[test]
    fn rechecks_only_after_a_fallback_and_on_schedule() {
        let hops = NextHops::build(
            &Hosts::from([ip("10.0.1.3")]),
            &PerHost::from(vec![route(2, None)]),
            &HashMap::from([(2, [2, 0, 0, 0, 0, 1])]),
            &HashMap::new(),
        );
        hops.maybe_recheck();
        assert_eq!(hops.recheck.lock().unwrap().done, 0, "nothing sent yet");
        hops.note_fallback();
        // Pretend the first fallback was long ago: every check is past,
        // and they collapse into one.
        hops.recheck.lock().unwrap().first_fallback =
            Instant::now().checked_sub(Duration::from_secs(10));
        hops.maybe_recheck();
        assert_eq!(hops.recheck.lock().unwrap().done, RECHECKS.len());
    }

    #[test]
    fn ipv6_targets_get_hops_with_the_ipv6_ethertype() {
        let ours = [2, 0, 0, 0, 0, 1];
        let (web, gw) = ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 0xfe]);
        let mut gateway = route(2, None).unwrap();
        gateway.gateway = Some(ip("fd00:213:1::fe"));
        let hops = NextHops::build(
            &Hosts::from([
                ip("fd00:213:1::2"),
                ip("fd00:213:2::2"),
                ip("fd00:213:1::9"),
            ]),
            &PerHost::from(vec![route(2, None), Some(gateway), route(2, None)]),
            &HashMap::from([(2, ours)]),
            &HashMap::from([
                ((2, ip("fd00:213:1::2")), web),
                ((2, ip("fd00:213:1::fe")), gw),
            ]),
        );
        let header = |t: &str| hops.hop(ip(t)).and_then(Hop::ethernet_header);
        let mut want = [0u8; 14];
        want[..6].copy_from_slice(&web);
        want[6..12].copy_from_slice(&ours);
        want[12..].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(header("fd00:213:1::2"), Some(want));
        want[..6].copy_from_slice(&gw);
        assert_eq!(header("fd00:213:2::2"), Some(want));
        // Not in the neighbour table yet: the kernel's IP layer asks.
        assert!(hops.hop(ip("fd00:213:1::9")).is_some());
        assert_eq!(header("fd00:213:1::9"), None);
        assert_eq!(hops.counts().unresolved, 1);
        assert!(hops.hop(ip("fd00:213:1::7")).is_none());
    }
}
