//! Port lists: `-p` parsing, the default list, and the IANA port classes.

use crate::error::usage;
use crate::model::technique::Protocol;

/// Registered ports above 1024 that the teaching notes (../shared/ports.md)
/// list as common services, so the default scan finds the databases, RDP
/// and proxies that students are told to look for.
const COMMON_REGISTERED: [u16; 10] = [1080, 1521, 1723, 1863, 3306, 3389, 3724, 5432, 6881, 8080];

/// Describes [`default_ports`] for `--help` and the README.
pub const DEFAULT_PORTS_HELP: &str = "Without -p, flagscan scans ports 1-1024 plus ten common \
     registered ports (1080, 1521, 1723, 1863, 3306, 3389, 3724, 5432, 6881, 8080), 1034 ports in all.";

/// Parses `-p` the way nmap does: "22,80,8000-8100", "-" for 1-65535,
/// "-100" for 1-100, "60000-" for 60000-65535, an optional `T:` prefix.
/// Returns the ports sorted and without duplicates.
pub fn parse_ports(spec: &str) -> anyhow::Result<Vec<u16>> {
    parse_items(spec, Protocol::Tcp, None)
}

/// As [`parse_ports`], and an item that is a name (`ssh`, `http`) stands for
/// the ports `named` gives it, as nmap's `-p ssh,http` does.
pub fn parse_ports_named(spec: &str, named: &dyn Fn(&str) -> Vec<u16>) -> anyhow::Result<Vec<u16>> {
    parse_items(spec, Protocol::Tcp, Some(named))
}

/// The ports of `proto` in a `-p` list, as nmap reads `U:53,111,T:21-25,80`:
/// items before any prefix are every protocol's, `T:` and `U:` make the
/// items from there on TCP's or UDP's. `named` (if given) turns a service
/// name into its ports.
pub fn parse_ports_in(spec: &str, proto: Protocol, named: Named) -> anyhow::Result<Vec<u16>> {
    parse_items(spec, proto, named)
}

/// Service name -> its ports, for `-p ssh,http`.
pub type Named<'a> = Option<&'a dyn Fn(&str) -> Vec<u16>>;

fn parse_items(spec: &str, proto: Protocol, named: Named) -> anyhow::Result<Vec<u16>> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(usage(
            "empty port list in -p: give ports like 22,80,8000-8100, or - for all",
        ));
    }
    let mut wanted = vec![false; 1 << 16];
    let mut section: Option<Protocol> = None;
    let mut any = false;
    for item in spec.split(',').map(str::trim) {
        let (item, switch) = split_protocol(item)?;
        if switch.is_some() {
            section = switch;
        }
        if section.is_some_and(|s| s != proto) {
            // Parsed all the same: a typo is an error whichever scan runs.
            if !item.starts_with(|c: char| c.is_ascii_alphabetic()) {
                parse_item(item, spec)?;
            }
            continue;
        }
        any = true;
        // A name starts with a letter (`ssh`, `ms-wbt-server`).
        if let Some(named) = named.filter(|_| item.starts_with(|c: char| c.is_ascii_alphabetic())) {
            let ports = named(item);
            if ports.is_empty() {
                return Err(usage(format!(
                    "unknown service name '{item}' in -p: names are those of /etc/services \
                     (or flagscan's own list); give a port number"
                )));
            }
            for p in ports {
                wanted[usize::from(p)] = true;
            }
            continue;
        }
        let (lo, hi) = parse_item(item, spec)?;
        wanted[usize::from(lo)..=usize::from(hi)].fill(true);
    }
    if !any {
        let (name, prefix) = match proto {
            Protocol::Tcp => ("TCP", "T:"),
            Protocol::Udp => ("UDP", "U:"),
        };
        return Err(usage(format!(
            "-p {spec} names no {name} port for this scan: give some after {prefix}, or \
             before any prefix"
        )));
    }
    Ok((0..=u16::MAX).filter(|&p| wanted[usize::from(p)]).collect())
}

/// nmap's protocol prefix of an item, `T:` or `U:`.
fn split_protocol(item: &str) -> anyhow::Result<(&str, Option<Protocol>)> {
    match item.get(..2) {
        Some("T:" | "t:") => Ok((&item[2..], Some(Protocol::Tcp))),
        Some("U:" | "u:") => Ok((&item[2..], Some(Protocol::Udp))),
        Some("S:" | "s:" | "P:" | "p:") => Err(usage(format!(
            "invalid port item '{item}' in -p: flagscan scans TCP (T:) and UDP (U:) ports"
        ))),
        _ => Ok((item, None)),
    }
}

fn parse_item(item: &str, spec: &str) -> anyhow::Result<(u16, u16)> {
    if item.is_empty() {
        return Err(usage(format!(
            "invalid port list '{spec}' in -p: empty item between commas"
        )));
    }
    let Some((start, end)) = item.split_once('-') else {
        let port = parse_port(item)?;
        return Ok((port, port));
    };
    if end.contains('-') {
        return Err(usage(format!(
            "invalid port range '{item}' in -p: a range has one '-'"
        )));
    }
    // Port 0 is only scanned when written out: open ranges start at 1 as in nmap.
    let lo = if start.is_empty() {
        1
    } else {
        parse_port(start)?
    };
    let hi = if end.is_empty() {
        u16::MAX
    } else {
        parse_port(end)?
    };
    if lo > hi {
        return Err(usage(format!(
            "invalid port range '{item}' in -p: start is above end"
        )));
    }
    Ok((lo, hi))
}

fn parse_port(text: &str) -> anyhow::Result<u16> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(usage(format!("invalid port '{text}' in -p: not a number")));
    }
    text.parse()
        .map_err(|_| usage(format!("invalid port '{text}' in -p: ports are 0-65535")))
}

/// The ports scanned when `-p` is not given; see [`DEFAULT_PORTS_HELP`].
pub fn default_ports() -> Vec<u16> {
    let mut ports: Vec<u16> = (1..=1024).chain(COMMON_REGISTERED).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The services of the project's own port list (../shared/ports.md), in
/// its order: what `--top-ports` takes, then the default ports, when nmap's
/// frequency table is not installed. This project's data (its licence),
/// not a measurement of how often ports are open.
const OWN_TOP_TCP: [u16; 31] = [
    80, 443, 22, 21, 23, 25, 53, 110, 143, 445, 139, 135, 3389, 3306, 8080, 587, 993, 995, 465,
    111, 20, 119, 179, 194, 1080, 1521, 1723, 1863, 3724, 5432, 6881,
];
const OWN_TOP_UDP: [u16; 11] = [53, 123, 161, 137, 138, 67, 68, 500, 514, 111, 139];

/// Where `--top-ports` took its order from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopSource {
    /// nmap's table of how often each port was found open.
    Nmap,
    /// flagscan's own list ([`OWN_TOP_TCP`], [`OWN_TOP_UDP`]).
    Own,
}

/// nmap's `--top-ports N`: the `n` ports of `proto` most often found open,
/// from nmap's frequency table (`nmap_services`, the text of
/// nmap-services) when there is one; sorted.
pub fn top_ports(proto: Protocol, n: usize, nmap_services: Option<&str>) -> (Vec<u16>, TopSource) {
    let want = match proto {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let mut ranked: Vec<(f64, u16)> = nmap_services
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, port_proto, freq) = (f.next()?, f.next()?, f.next()?);
            let (port, p) = port_proto.split_once('/')?;
            (p == want).then_some(())?;
            Some((freq.parse::<f64>().ok()?, port.parse::<u16>().ok()?))
        })
        .filter(|(freq, _)| freq.is_finite())
        .collect();
    let source = if ranked.is_empty() {
        let own: &[u16] = match proto {
            Protocol::Tcp => &OWN_TOP_TCP,
            Protocol::Udp => &OWN_TOP_UDP,
        };
        let mut order: Vec<u16> = own.to_vec();
        order.extend(default_ports().into_iter().filter(|p| !own.contains(p)));
        ranked = order
            .into_iter()
            .enumerate()
            .map(|(i, p)| (-(i as f64), p))
            .collect();
        TopSource::Own
    } else {
        TopSource::Nmap
    };
    // Most frequent first; equal ones by port, as nmap breaks ties.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut ports: Vec<u16> = Vec::with_capacity(n.min(ranked.len()));
    let mut seen = vec![false; 1 << 16];
    for (_, p) in ranked {
        if ports.len() == n {
            break;
        }
        if !std::mem::replace(&mut seen[usize::from(p)], true) {
            ports.push(p);
        }
    }
    ports.sort_unstable();
    (ports, source)
}

/// The IANA port ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortClass {
    /// 0-1023: system services; only root may bind them on Linux.
    WellKnown,
    /// 1024-49151: registered by IANA for specific applications.
    Registered,
    /// 49152-65535: free for any program; clients' source ports.
    Dynamic,
}

impl PortClass {
    pub fn name(&self) -> &'static str {
        match self {
            PortClass::WellKnown => "well-known",
            PortClass::Registered => "registered",
            PortClass::Dynamic => "dynamic",
        }
    }
}

pub fn port_class(port: u16) -> PortClass {
    match port {
        0..=1023 => PortClass::WellKnown,
        1024..=49151 => PortClass::Registered,
        _ => PortClass::Dynamic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_ports_by_nmaps_frequencies_and_without_them() {
        let table = "# nmap-services\n\
            http\t80/tcp\t0.484143\t# World Wide Web HTTP\n\
            ssh\t22/tcp\t0.182286\n\
            telnet\t23/tcp\t0.221265\n\
            domain\t53/udp\t0.213496\n\
            zero\t7/tcp\t0.000000\n\
            tie\t9/tcp\t0.182286\n\
            broken line\n";
        let top = |p, n| top_ports(p, n, Some(table));
        assert_eq!(top(Protocol::Tcp, 2), (vec![23, 80], TopSource::Nmap));
        // A tie goes to the lower port.
        assert_eq!(top(Protocol::Tcp, 4).0, vec![9, 22, 23, 80]);
        assert_eq!(top(Protocol::Tcp, 100).0, vec![7, 9, 22, 23, 80]);
        assert_eq!(top(Protocol::Udp, 10).0, vec![53]);
        let (own, source) = top_ports(Protocol::Tcp, 3, None);
        assert_eq!((own, source), (vec![22, 80, 443], TopSource::Own));
        assert_eq!(top_ports(Protocol::Udp, 2, None).0, vec![53, 123]);
        // Past the own list, the default ports follow.
        assert_eq!(top_ports(Protocol::Tcp, 1034, None).0, default_ports());
    }

    #[test]
    fn service_names_stand_for_their_ports() {
        let named = |name: &str| match name {
            "ssh" => vec![22],
            "http" => vec![80],
            _ => Vec::new(),
        };
        assert_eq!(
            parse_ports_named("ssh,http,443", &named).unwrap(),
            [22, 80, 443]
        );
        assert_eq!(parse_ports_named("T:ssh", &named).unwrap(), [22]);
        let e = parse_ports_named("ssh,nosuch", &named).unwrap_err();
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_USAGE);
        assert!(e.to_string().contains("'nosuch'"), "{e}");
        // Without names, a name is refused as before.
        assert!(parse_ports("ssh").is_err());
    }
    use crate::error::{exit_code, EXIT_USAGE};

    fn err(spec: &str) -> String {
        let e = parse_ports(spec).unwrap_err();
        assert_eq!(exit_code(&e), EXIT_USAGE, "{spec}: {e}");
        e.to_string()
    }

    #[test]
    fn single_ports_and_lists_are_sorted_and_deduplicated() {
        assert_eq!(parse_ports("22").unwrap(), [22]);
        assert_eq!(parse_ports("443,22,80,22").unwrap(), [22, 80, 443]);
        assert_eq!(parse_ports(" 22 , 80 ").unwrap(), [22, 80]);
        assert_eq!(parse_ports("65535").unwrap(), [65535]);
    }

    #[test]
    fn ranges_including_open_ones() {
        assert_eq!(parse_ports("8000-8003").unwrap(), [8000, 8001, 8002, 8003]);
        assert_eq!(parse_ports("5-5").unwrap(), [5]);
        assert_eq!(parse_ports("10-12,11-13").unwrap(), [10, 11, 12, 13]);
        assert_eq!(parse_ports("-100").unwrap(), (1..=100).collect::<Vec<_>>());
        assert_eq!(
            parse_ports("60000-").unwrap(),
            (60000..=65535).collect::<Vec<_>>()
        );
        assert_eq!(parse_ports("-").unwrap(), (1..=65535).collect::<Vec<_>>());
    }

    #[test]
    fn port_zero_only_when_written() {
        assert_eq!(parse_ports("0").unwrap(), [0]);
        assert_eq!(parse_ports("0-2").unwrap(), [0, 1, 2]);
        assert_eq!(parse_ports("0-").unwrap().len(), 65536);
        assert_eq!(parse_ports("-2").unwrap(), [1, 2]);
    }

    #[test]
    fn protocol_prefixes_select_each_protocols_ports_as_nmap_does() {
        let tcp = |spec| parse_ports_in(spec, Protocol::Tcp, None);
        let udp = |spec| parse_ports_in(spec, Protocol::Udp, None);
        assert_eq!(parse_ports("T:22,80").unwrap(), [22, 80]);
        assert_eq!(parse_ports("T:22,T:80-81").unwrap(), [22, 80, 81]);
        // nmap's example: U: and T: hold until the next prefix; a bare
        // list is every protocol's.
        let spec = "U:53,111,137,T:21-25,80,139,8080";
        assert_eq!(udp(spec).unwrap(), [53, 111, 137]);
        assert_eq!(tcp(spec).unwrap(), [21, 22, 23, 24, 25, 80, 139, 8080]);
        assert_eq!(udp("7,U:53").unwrap(), [7, 53]);
        assert_eq!(tcp("7,U:53").unwrap(), [7]);
        assert_eq!(udp("22,80").unwrap(), [22, 80]);
        // No port for the scan's protocol, or a typo in the other's.
        let e = format!("{:#}", tcp("U:53").unwrap_err());
        assert!(e.contains("no TCP port") && e.contains("T:"), "{e}");
        let e = format!("{:#}", udp("T:22").unwrap_err());
        assert!(e.contains("no UDP port"), "{e}");
        assert!(format!("{:#}", udp("53,T:2x").unwrap_err()).contains("'2x'"));
        assert!(format!("{:#}", tcp("S:22").unwrap_err()).contains("'S:22'"));
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(
            err("70000"),
            "invalid port '70000' in -p: ports are 0-65535"
        );
        assert_eq!(
            err("22,65536"),
            "invalid port '65536' in -p: ports are 0-65535"
        );
        assert_eq!(
            err("10-5"),
            "invalid port range '10-5' in -p: start is above end"
        );
        assert_eq!(err("abc"), "invalid port 'abc' in -p: not a number");
        assert_eq!(err("80-abc"), "invalid port 'abc' in -p: not a number");
        assert_eq!(err("+80"), "invalid port '+80' in -p: not a number");
        assert!(err("99999999999999999999").contains("'99999999999999999999'"));
        assert!(err("").contains("empty port list"));
        assert!(err("   ").contains("empty port list"));
        assert_eq!(
            err("1,,2"),
            "invalid port list '1,,2' in -p: empty item between commas"
        );
        assert!(err("22,").contains("empty item"));
        assert!(err("T:").contains("empty item"));
        assert!(err("1-2-3").contains("'1-2-3'"));
    }

    #[test]
    fn default_list_matches_its_help_text() {
        let ports = default_ports();
        assert_eq!(ports.len(), 1034);
        assert!(ports.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((ports[0], ports[1023]), (1, 1024));
        assert!(!ports.contains(&0) && !ports.contains(&1025));
        for port in COMMON_REGISTERED {
            assert!(ports.contains(&port));
            assert!(DEFAULT_PORTS_HELP.contains(&port.to_string()));
        }
        assert!(DEFAULT_PORTS_HELP.contains(&ports.len().to_string()));
    }

    #[test]
    fn classes_follow_iana_ranges() {
        let cases = [
            (0, PortClass::WellKnown, "well-known"),
            (1023, PortClass::WellKnown, "well-known"),
            (1024, PortClass::Registered, "registered"),
            (49151, PortClass::Registered, "registered"),
            (49152, PortClass::Dynamic, "dynamic"),
            (65535, PortClass::Dynamic, "dynamic"),
        ];
        for (port, class, name) in cases {
            assert_eq!(port_class(port), class, "{port}");
            assert_eq!(port_class(port).name(), name);
        }
    }
}
