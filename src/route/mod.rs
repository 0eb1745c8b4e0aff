//! Which source address and interface reach each target.
//!
//! The kernel's routing table decides: one `RTM_GETROUTE` per target, asked
//! in batches ([`crate::route::nexthop::kernel_routes`]), gives the route and the
//! source address the kernel will use for the raw probes, and the output
//! interface and gateway that layer-2 sending needs. Where that answer is
//! missing or unusual (no route, broadcast, multicast), connecting a UDP
//! socket (which sends nothing) asks the kernel the old way, and its error
//! is the one reported. The interface is the one holding the source
//! address. `-e` and `-S` override.
//! IPv6 targets are asked one by one, IPv4 ones once per block the routing
//! tables cannot tell apart.

pub(crate) mod nexthop;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use pnet::datalink::{self, NetworkInterface};

use crate::error::usage;
use crate::model::hosts::{Hosts, PerHost};
use crate::model::probe::addr_key;
use crate::route::nexthop::{KernelRoute, RouteKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// Source address per target, in target order.
    pub sources: PerHost<IpAddr>,
    /// Interfaces the probes leave through (names), deduplicated.
    pub interfaces: Vec<String>,
    /// Where to capture: one interface's index, or 0 for all of them.
    pub capture_ifindex: u32,
    /// The kernel's route per target, in target order (`None` where it
    /// gave none), with `-e`'s interface as the output interface.
    pub kernel: PerHost<Option<KernelRoute>>,
}

/// `sources` (`-S`): the probes' source addresses, empty for the kernel's
/// choice; every one must be an address of this host (on one interface,
/// `-e`'s if given), or the replies would never come back to it.
pub fn plan(
    targets: &Hosts,
    device: Option<&str>,
    sources: &[IpAddr],
) -> anyhow::Result<RoutePlan> {
    let all = datalink::interfaces();
    let forced = match device {
        Some(name) => Some(all.iter().find(|i| i.name == name).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
            usage(format!(
                "unknown interface '{name}' (-e); this host has: {}",
                names.join(", ")
            ))
        })?),
        None => None,
    };
    let sources_on = check_sources(&all, sources, device)?;
    let link_local = |t: &&IpAddr| matches!(t, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
    // Each run of targets is within one family, and a link-local one
    // starts inside fe80::/10: the runs' first addresses stand for them.
    let firsts = || targets.runs().map(|(a, _, _)| a);
    if let (Some(t), None) = (firsts().find(|t| link_local(&t)), forced) {
        return Err(usage(format!(
            "{t} is a link-local address: give the interface it is on ({t}%eth0, or -e eth0)"
        )));
    }
    let other_family = |s: &IpAddr| firsts().find(|t| t.is_ipv6() != s.is_ipv6());
    if let Some((s, t)) = sources.first().and_then(|s| Some((s, other_family(s)?))) {
        return Err(usage(format!(
            "source address {s} (-S) cannot reach target {t}, which is of the other IP \
             version: scan each version apart, with a source address of its own"
        )));
    }
    // Per family: -S's address, or -e's interface's first one.
    let mut forced_source = [None, None];
    for (slot, v6) in [(0, false), (1, true)] {
        // Link-local targets answer our link-local address (below).
        if !firsts().any(|t| t.is_ipv6() == v6 && !link_local(&&t)) {
            continue;
        }
        forced_source[slot] = match (sources.first().copied(), forced) {
            (Some(s), _) => Some(s),
            (None, Some(iface)) => Some(first_address(iface, v6).ok_or_else(|| {
                usage(format!(
                    "interface '{}' has no {} address; give one with -S ADDR",
                    iface.name,
                    if v6 { "global IPv6" } else { "IPv4" }
                ))
            })?),
            (None, None) => None,
        };
    }
    // One batch of questions instead of a UDP socket per target: a /16
    // sweep starts in a quarter of the time (0.2 s instead of 0.65 s).
    let kernel = nexthop::kernel_routes(targets, forced.map(|i| i.index))
        .unwrap_or_else(|_| PerHost::filled(None, targets.len()));
    let given = !sources.is_empty();
    // Where the kernel's answer is missing or unusual: one UDP socket.
    let mut lookup: Option<SourceLookup> = None;
    let mut out_sources = PerHost::new();
    let mut interfaces: Vec<String> = Vec::new();
    // A run of targets under one route has one source, but where the
    // kernel's answer is missing or unusual, which is asked per target.
    for (positions, route) in kernel.runs() {
        for (target, count, _) in targets.slice(positions).runs() {
            let known = match (forced_source[usize::from(target.is_ipv6())], route) {
                // A link-local target answers our link-local address.
                (
                    _,
                    Some(KernelRoute {
                        source: Some(s), ..
                    }),
                ) if link_local(&&target) && !given => Some(*s),
                (Some(s), _) => Some(s),
                (
                    None,
                    Some(KernelRoute {
                        kind: RouteKind::Unicast | RouteKind::Local,
                        source: Some(s),
                        ..
                    }),
                ) => Some(*s),
                (None, _) => None,
            };
            let srcs: Vec<(IpAddr, u64)> = match known {
                Some(src) => vec![(src, count)],
                None => {
                    let key = crate::model::probe::addr_key(target);
                    let l = match &mut lookup {
                        Some(l) => l,
                        None => lookup.insert(SourceLookup::new()?),
                    };
                    (0..count)
                        .map(|k| {
                            let t = crate::model::hosts::from_key(key + u128::from(k));
                            Ok((l.source(t)?, 1))
                        })
                        .collect::<anyhow::Result<_>>()?
                }
            };
            for (src, n) in srcs {
                // The interface the kernel routes through, which for one of
                // our own addresses is lo, not the interface that holds the
                // address (the replies would never be seen there); else the
                // one that holds the source address.
                let by_route = route
                    .as_ref()
                    .filter(|r| r.oif != 0)
                    .and_then(|r| all.iter().find(|i| i.index == r.oif));
                let iface = match (forced, by_route) {
                    (Some(i), _) | (None, Some(i)) => i.name.clone(),
                    (None, None) => all
                        .iter()
                        .find(|i| i.ips.iter().any(|ip| ip.ip() == src))
                        .map(|i| i.name.clone())
                        .unwrap_or_else(|| "?".to_string()),
                };
                if !interfaces.contains(&iface) {
                    interfaces.push(iface);
                }
                out_sources.push_n(src, n);
            }
        }
    }
    let sources = out_sources;
    // The replies to a source come back where it lives.
    if let Some(on) = &sources_on {
        if let Some(other) = interfaces.iter().find(|i| *i != on) {
            return Err(usage(format!(
                "the -S addresses are on interface '{on}', but the targets are reached \
                 through '{other}': give source addresses of '{other}' (or scan those \
                 targets apart)"
            )));
        }
    }
    let capture_ifindex = match interfaces.as_slice() {
        [one] => all.iter().find(|i| &i.name == one).map_or(0, |i| i.index),
        _ => 0,
    };
    Ok(RoutePlan {
        sources,
        interfaces,
        capture_ifindex,
        kernel,
    })
}

/// The network and broadcast addresses of the subnets on this host's
/// interfaces (prefixes up to /30; /31 and /32 have neither), and the
/// limited broadcast: a probe to one is a broadcast, not a host's, and
/// the kernel refuses it (EACCES) without SO_BROADCAST. With the subnet
/// and interface that make each one an edge, for the notice.
pub fn subnet_edges() -> Vec<(Ipv4Addr, String)> {
    // IPv6 has no broadcast address (RFC 4291 2.7): its multicast
    // addresses are refused by skip_subnet_edges.
    let mut out = vec![(
        Ipv4Addr::BROADCAST,
        "the limited broadcast address".to_string(),
    )];
    for iface in datalink::interfaces() {
        for ip in &iface.ips {
            let pnet::ipnetwork::IpNetwork::V4(net) = ip else {
                continue;
            };
            if net.prefix() > 30 {
                continue;
            }
            let subnet = format!("{}/{}", net.network(), net.prefix());
            out.push((
                net.network(),
                format!("the network address of {subnet} on {}", iface.name),
            ));
            out.push((
                net.broadcast(),
                format!("the broadcast address of {subnet} on {}", iface.name),
            ));
        }
    }
    out
}

/// Leaves the subnet edges ([`subnet_edges`]) out of a range of targets
/// with one notice; a single target that is one is refused.
pub fn skip_subnet_edges(
    targets: &mut Hosts,
    notify: Option<&crate::error::Notify>,
) -> anyhow::Result<()> {
    let edges = subnet_edges();
    let multicast = "an IPv6 multicast address".to_string();
    let edge = |t: &IpAddr| match t {
        IpAddr::V4(t) => edges.iter().find(|(a, _)| a == t).map(|(_, why)| why),
        IpAddr::V6(t) => t.is_multicast().then_some(&multicast),
    };
    if targets.len() == 1 {
        let one = targets.at(0);
        if let Some(why) = edge(&one) {
            return Err(usage(format!(
                "{one} is {why}: it names no single host to scan"
            )));
        }
        return Ok(());
    }
    // Looked for run by run: a /8 is not walked address by address.
    let mut keys: Vec<u128> = edges
        .iter()
        .map(|(a, _)| addr_key(IpAddr::V4(*a)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let multicast_from = addr_key("ff00::".parse().expect("an IPv6 address"));
    let removed = targets.remove(|lo, hi| {
        let mut inside: Vec<u128> = keys
            .iter()
            .copied()
            .filter(|k| (lo..=hi).contains(k))
            .collect();
        if hi >= multicast_from {
            inside.extend(lo.max(multicast_from)..=hi);
        }
        inside
    });
    if removed.is_empty() {
        return Ok(());
    }
    let skipped: Vec<String> = removed
        .iter()
        .filter_map(|t| edge(t).map(|why| format!("{t} ({why})")))
        .collect();
    if let Some(notify) = notify {
        notify(&format!(
            "skipping {}: a probe to it would be a broadcast",
            skipped.join(", ")
        ));
    }
    if targets.is_empty() {
        return Err(usage(
            "no targets left to scan once broadcast addresses are left out",
        ));
    }
    Ok(())
}

/// The interface holding each source address (`device`'s where it holds
/// it), all the same one. A loopback interface holds its whole block
/// (Linux answers for every 127.x address).
fn check_sources(
    all: &[NetworkInterface],
    sources: &[IpAddr],
    device: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let holds = |i: &NetworkInterface, src: IpAddr| {
        i.ips.iter().any(|net| match (net, src) {
            (pnet::ipnetwork::IpNetwork::V4(n), IpAddr::V4(src)) => {
                n.ip() == src || (i.is_loopback() && n.contains(src))
            }
            (pnet::ipnetwork::IpNetwork::V6(n), IpAddr::V6(src)) => n.ip() == src,
            _ => false,
        })
    };
    let mut first: Option<&str> = None;
    for &src in sources {
        let holder = all
            .iter()
            .filter(|i| holds(i, src))
            .min_by_key(|i| Some(i.name.as_str()) != device);
        let Some(iface) = holder else {
            return Err(usage(format!(
                "source address {src} (-S) is not an address of this host: add it to the \
                 interface that reaches the targets first (ip addr add {src}/24 dev IFACE), \
                 or leave -S out"
            )));
        };
        match first.or(device) {
            Some(name) if name != iface.name => {
                return Err(usage(format!(
                    "source address {src} (-S) is on interface '{}', not '{name}': every \
                     source address must be on the interface the probes leave through",
                    iface.name
                )))
            }
            _ => first = Some(&iface.name),
        }
    }
    Ok(first.map(str::to_string))
}

/// An interface's first address of a family; for IPv6 a global or
/// unique local one (a link-local source reaches only the link, and needs
/// a scope flagscan does not take).
fn first_address(iface: &NetworkInterface, v6: bool) -> Option<IpAddr> {
    iface.ips.iter().map(|ip| ip.ip()).find(|ip| match ip {
        IpAddr::V4(_) => !v6,
        IpAddr::V6(a) => v6 && (a.segments()[0] & 0xffc0) != 0xfe80,
    })
}

/// Asks the kernel which source address reaches a target: connecting a UDP
/// socket consults the routing table and sends nothing. One socket serves
/// every target (a /16 sweep has 65,536): creating one per target cost a
/// fifth of the sweep's CPU time.
struct SourceLookup {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl SourceLookup {
    fn new() -> anyhow::Result<SourceLookup> {
        Ok(SourceLookup { v4: None, v6: None })
    }

    /// The source address the kernel would use to reach `target`.
    fn source(&mut self, target: IpAddr) -> anyhow::Result<IpAddr> {
        let no_route = |e: std::io::Error| usage(format!("no route to {target}: {e}"));
        let (slot, any) = match target {
            IpAddr::V4(_) => (&mut self.v4, "0.0.0.0:0"),
            IpAddr::V6(_) => (&mut self.v6, "[::]:0"),
        };
        let sock = match slot {
            Some(sock) => sock,
            None => slot.insert(UdpSocket::bind(any).map_err(|e| {
                anyhow::anyhow!("cannot open a UDP socket for route lookup ({any}): {e}")
            })?),
        };
        // Port 9 (discard); connect() only consults the routing table.
        sock.connect(SocketAddr::new(target, 9)).map_err(no_route)?;
        let local = sock.local_addr().map_err(no_route);
        // Dissolve the association (AF_UNSPEC): the kernel keeps a
        // connected socket's source address, and the next target may
        // need another one.
        let unspec = libc::sockaddr {
            sa_family: libc::AF_UNSPEC as libc::sa_family_t,
            sa_data: [0; 14],
        };
        // SAFETY: a valid sockaddr of the size given, on a socket we own.
        let rc = unsafe {
            libc::connect(
                sock.as_raw_fd(),
                &unspec,
                std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            anyhow::bail!(
                "cannot reset the route lookup socket: {}",
                std::io::Error::last_os_error()
            );
        }
        match local?.ip() {
            ip if !ip.is_unspecified() => Ok(ip),
            other => Err(usage(format!(
                "no source address to reach {target} (got {other})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_reached_from_loopback() {
        let p = plan(&Hosts::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]), None, &[]).unwrap();
        assert_eq!(
            p.sources,
            PerHost::from(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
        );
        assert_eq!(p.interfaces, vec!["lo".to_string()]);
        assert_ne!(p.capture_ifindex, 0);
    }

    #[test]
    fn netlink_and_udp_connect_agree_on_the_source() {
        let targets: Vec<IpAddr> = ["127.0.0.1", "127.0.0.5", "127.255.255.254", "::1"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let routes = nexthop::kernel_routes(&Hosts::from(targets.clone()), None).unwrap();
        let mut udp = SourceLookup::new().unwrap();
        for (t, r) in targets.iter().zip(routes.iter().copied()) {
            let r = r.unwrap_or_else(|| panic!("no route to {t}"));
            assert_eq!(r.kind, RouteKind::Local, "{t}");
            assert_eq!(r.source, Some(udp.source(*t).unwrap()), "{t}");
        }
    }

    #[test]
    fn loopbacks_edges_are_skipped_in_a_range_and_refused_alone() {
        let mut targets: Hosts = ["127.0.0.0", "127.0.0.1", "127.255.255.255"]
            .iter()
            .map(|t| t.parse::<IpAddr>().unwrap())
            .collect();
        let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let s = said.clone();
        let notify: crate::error::Notify =
            std::sync::Arc::new(move |m: &str| s.lock().unwrap().push(m.to_string()));
        skip_subnet_edges(&mut targets, Some(&notify)).unwrap();
        assert_eq!(targets, Hosts::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]));
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "one notice: {said:?}");
        assert!(
            said[0].contains("127.255.255.255 (the broadcast address of 127.0.0.0/8 on lo)"),
            "{said:?}"
        );
        let err = skip_subnet_edges(
            &mut Hosts::from([Ipv4Addr::new(127, 255, 255, 255).into()]),
            None,
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
    }

    #[test]
    fn overrides_and_unknown_interfaces() {
        let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
        let p = plan(
            &Hosts::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            Some("lo"),
            &[src],
        )
        .unwrap();
        assert_eq!(p.sources, PerHost::from(vec![src]));
        // Not this host's: the replies would go elsewhere.
        let err = plan(
            &Hosts::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            None,
            &[src, Ipv4Addr::new(192, 0, 2, 1).into()],
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(
            err.to_string().contains("192.0.2.1 (-S) is not an address"),
            "{err}"
        );
        let err = plan(
            &Hosts::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            Some("nosuch0"),
            &[],
        )
        .unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("nosuch0"), "{err}");
    }

    #[test]
    fn a_link_local_target_needs_its_interface() {
        let t: IpAddr = "fe80::1".parse().unwrap();
        let err = plan(&Hosts::from([t]), None, &[]).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("fe80::1%eth0"), "{err}");
        // Also where it follows the address before it (one range).
        let next: Hosts = ["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::"]
            .iter()
            .map(|a| a.parse::<IpAddr>().unwrap())
            .collect();
        let err = plan(&next, None, &[]).unwrap_err();
        assert!(err.to_string().contains("fe80::%eth0"), "{err}");
    }
}
