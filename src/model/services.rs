//! Port number to TCP service name.
//!
//! /etc/services (netbase) is the authority where it exists, so names match
//! what `ss`, `netstat` and nmap show on the same machine; an embedded table
//! fills the gaps so the services the teaching notes mention always have a
//! name, even in minimal containers without netbase.

use rustc_hash::FxHashMap;

use crate::model::technique::Protocol;
use std::path::Path;

const SYSTEM_SERVICES: &str = "/etc/services";
/// nmap's own table (Debian's nmap-common): the names nmap's outputs use.
const NMAP_SERVICES: &str = "/usr/share/nmap/nmap-services";

/// The TCP services of ../shared/ports.md, in netbase's spelling where
/// netbase has them.
const EMBEDDED: &[(u16, &str)] = &[
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (53, "domain"),
    (80, "http"),
    (110, "pop3"),
    (111, "rpcbind"),
    (119, "nntp"),
    (137, "netbios-ns"),
    (138, "netbios-dgm"),
    (139, "netbios-ssn"),
    (143, "imap"),
    (179, "bgp"),
    (194, "irc"),
    (443, "https"),
    (445, "microsoft-ds"),
    (465, "submissions"),
    (587, "submission"),
    (993, "imaps"),
    (995, "pop3s"),
    (1080, "socks"),
    (1521, "oracle"),
    (1723, "pptp"),
    (1863, "msnp"),
    (3306, "mysql"),
    (3389, "ms-wbt-server"),
    (3724, "wow"),
    (5432, "postgresql"),
    (6881, "bittorrent"),
    (8080, "http-proxy"),
];

#[derive(Debug, Clone, Default)]
pub struct Services {
    names: FxHashMap<u16, Box<str>>,
    udp: FxHashMap<u16, Box<str>>,
}

impl Services {
    /// Names from /etc/services, completed by the embedded table. A missing
    /// or unreadable /etc/services is not an error: names are a courtesy.
    pub fn load() -> Services {
        let text = std::fs::read_to_string(Path::new(SYSTEM_SERVICES)).unwrap_or_default();
        let mut services = Services::from_services_text(&text);
        services.fill_gaps_from_embedded();
        services
    }

    /// The names nmap itself would print, for nmap's formats (-oX, -oG):
    /// nmap's table alone where it is installed (a port it does not name
    /// is "unknown" to nmap, whatever /etc/services says), else [`Services::load`].
    /// nmap's services table (with how often each port is found open),
    /// if nmap is installed.
    pub fn nmap_table() -> Option<String> {
        std::fs::read_to_string(Path::new(NMAP_SERVICES)).ok()
    }

    pub fn load_nmap() -> Services {
        match std::fs::read_to_string(Path::new(NMAP_SERVICES)) {
            Ok(text) => Services::from_services_text(&text),
            Err(_) => Services::load(),
        }
    }

    /// Parses services(5) text: `name port/proto [aliases...] [# comment]`.
    /// Keeps TCP entries only; the first name given for a port wins, as in
    /// getservbyport(3). Lines that do not parse are skipped.
    pub fn from_services_text(text: &str) -> Services {
        let mut names = FxHashMap::default();
        let mut udp = FxHashMap::default();
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let table = if proto.eq_ignore_ascii_case("tcp") {
                &mut names
            } else if proto.eq_ignore_ascii_case("udp") {
                &mut udp
            } else {
                continue;
            };
            if let Ok(port) = port.parse::<u16>() {
                table.entry(port).or_insert_with(|| name.into());
            }
        }
        Services { names, udp }
    }

    /// The TCP service on `port`.
    pub fn name(&self, port: u16) -> Option<&str> {
        self.names.get(&port).map(|name| &**name)
    }

    /// The service on `port` of `proto`.
    pub fn name_in(&self, proto: Protocol, port: u16) -> Option<&str> {
        match proto {
            Protocol::Tcp => self.name(port),
            Protocol::Udp => self.udp.get(&port).map(|name| &**name),
        }
    }

    /// The ports of `proto` this name is given to (any case), ascending.
    pub fn ports_named_in(&self, proto: Protocol, name: &str) -> Vec<u16> {
        let table = match proto {
            Protocol::Tcp => &self.names,
            Protocol::Udp => &self.udp,
        };
        let mut ports: Vec<u16> = table
            .iter()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
            .collect();
        ports.sort_unstable();
        ports
    }

    fn fill_gaps_from_embedded(&mut self) {
        for &(port, name) in EMBEDDED {
            self.names.entry(port).or_insert_with(|| name.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer

ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
www-alt\t\t80/tcp
sunrpc\t\t111/tcp\t\tportmapper\t# RPC 4.0 portmapper
sunrpc\t\t111/udp\t\tportmapper
ntp\t\t123/udp
submissions\t465/TCP\t\tssmtp smtps
  indented 7/tcp
#commented 9/tcp
noport
badport\t99999/tcp
notnum\tabc/tcp
noproto\t70
";

    #[test]
    fn parses_tcp_lines_first_name_wins() {
        let s = Services::from_services_text(FIXTURE);
        assert_eq!(s.name(1), Some("tcpmux"));
        assert_eq!(s.name(22), Some("ssh"));
        assert_eq!(s.name(80), Some("http"));
        assert_eq!(s.name(111), Some("sunrpc"));
        assert_eq!(s.name(465), Some("submissions"));
        assert_eq!(s.name(7), Some("indented"));
    }

    #[test]
    fn skips_udp_comments_and_malformed_lines() {
        let s = Services::from_services_text(FIXTURE);
        for port in [9, 70, 123, 0, 65535] {
            assert_eq!(s.name(port), None, "{port}");
        }
        assert_eq!(s.names.len(), 6);
        assert!(Services::from_services_text("").names.is_empty());
    }

    #[test]
    fn embedded_table_fills_gaps_only() {
        let mut s = Services::from_services_text(FIXTURE);
        s.fill_gaps_from_embedded();
        assert_eq!(s.name(111), Some("sunrpc"));
        assert_eq!(s.name(3724), Some("wow"));
        assert_eq!(s.name(8080), Some("http-proxy"));
        assert_eq!(s.name(139), Some("netbios-ssn"));
        assert_eq!(s.name(1), Some("tcpmux"));
    }

    #[test]
    fn embedded_table_is_sorted_and_unique() {
        assert!(EMBEDDED.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn load_names_the_noted_services() {
        let s = Services::load();
        for &(port, _) in EMBEDDED {
            assert!(s.name(port).is_some(), "{port}");
        }
        assert_eq!(s.name(22), Some("ssh"));
    }
}
