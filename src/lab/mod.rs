//! A lab of real Linux hosts in network namespaces.
//!
//! The design's network rule says flagscan may only ever scan addresses that
//! exist inside namespaces we created, so the lab is the place where every
//! firewall behaviour (DROP, ICMP rejects, tcp-reset, stateful drops, a
//! routed hop) can be seen for real and compared against nmap.
//!
//! ```text
//!   {p}-scan   10.213.1.1 fd00:213:1::1 ─┐
//!   {p}-web    10.213.1.2 fd00:213:1::2 ─┤
//!   {p}-rst    10.213.1.3 fd00:213:1::3 ─┤
//!   {p}-rstlim 10.213.1.4 fd00:213:1::4 ─┼─ br0 10.213.1.254 fd00:213:1::254    ┐
//!   {p}-fwd    10.213.1.5 fd00:213:1::5 ─┤                                      ├ {p}-gw (forwards
//!   {p}-rej    10.213.1.6 fd00:213:1::6 ─┘                                      │  IPv4 and IPv6)
//!   {p}-far    10.213.2.2 fd00:213:2::2 ──── v-far 10.213.2.254 fd00:213:2::254 ┘
//!
//! The rest of both /24s (and /64s) is empty: addresses where no host
//! answers, on the link and behind the gateway. The demo scans web, rst
//! and far; rstlim, fwd and rej are the hosts that rate-limit their answers.
//! web's IPv6 firewall lacks one rule of its IPv4 one: tcp/137-139 are
//! filtered over IPv4 and closed over IPv6.
//! ```
//!
//! IPv6: 10.213.X.N is fd00:213:X::N, N written with the same digits
//! ([`mirror6`]). No namespace has an IPv6 default route (each host has
//! routes to the other two /64s through the gateway), addresses skip DAD, and
//! each host's ip6tables rules are its iptables rules translated
//! ([`ip6_args`]), after two that accept neighbour discovery (the IPv6
//! ARP, which iptables never sees). One exception on purpose, the firewall
//! written for IPv4 only: web's ip6tables lacks the DROP of tcp/137-139
//! ([`LabHost::ipv6_differs`]).
//!
//! Every command runs inside one of the lab's namespaces (`ip -n NS` or
//! `ip netns exec NS`): veth pairs are created in the gateway with their
//! peer placed straight into the host namespace, so no interface, route or
//! firewall rule of the root namespace is ever touched. A unit test checks
//! that property on the whole plan.

pub(crate) mod demo;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::error::usage;

pub const DEFAULT_PREFIX: &str = "flagscan";

/// The LAN the scanner, web and rst share through the gateway's bridge.
const LAN_PREFIX_LEN: u8 = 24;
const GW_LAN: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 254);
const SCAN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 213, 1, 1);
const FAR_NET: &str = "10.213.2.0/24";
/// Extra addresses of the scanner, for `-S` with a range: outside the
/// scanned /24s (a sweep of those finds the same hosts as before), reached
/// through the gateway.
pub const SOURCE_NET: &str = "10.213.3.0/24";
pub const SOURCE_POOL: std::ops::RangeInclusive<u8> = 1..=16;
const GW_FAR: Ipv4Addr = Ipv4Addr::new(10, 213, 2, 254);

/// IPv6 beside every IPv4 address: each /24 is a /64, see [`mirror6`].
const LAN6_PREFIX_LEN: u8 = 64;
const GW_LAN6: Ipv6Addr = mirror6(GW_LAN);
const SCAN_ADDR6: Ipv6Addr = mirror6(SCAN_ADDR);
const GW_FAR6: Ipv6Addr = mirror6(GW_FAR);
const LAN_NET6: &str = "fd00:213:1::/64";
const FAR_NET6: &str = "fd00:213:2::/64";
/// The IPv6 counterpart of [`SOURCE_NET`]: fd00:213:3::1 to ::16.
pub const SOURCE_NET6: &str = "fd00:213:3::/64";

/// The IPv6 address beside a lab IPv4 address: 10.213.X.N becomes
/// fd00:213:X::N with N's decimal digits read as hex (10.213.1.254 is
/// fd00:213:1::254), so that one can be read off the other.
pub const fn mirror6(v4: Ipv4Addr) -> Ipv6Addr {
    const fn digits(n: u8) -> u16 {
        let n = n as u16;
        (n / 100) * 0x100 + (n / 10 % 10) * 0x10 + n % 10
    }
    let [_, _, x, n] = v4.octets();
    Ipv6Addr::new(0xfd00, 0x213, digits(x), 0, 0, 0, 0, digits(n))
}

/// One scan target of the lab.
#[derive(Debug)]
pub struct LabHost {
    pub name: &'static str,
    pub netns_suffix: &'static str,
    pub addr: Ipv4Addr,
    /// Its IPv6 address, `mirror6(addr)`.
    pub addr6: Ipv6Addr,
    /// One sentence: what this host demonstrates.
    pub role: &'static str,
    pub listening: &'static [u16],
    /// UDP services: (what answers, port); see [`listen_udp_forever`].
    pub udp: &'static [(&'static str, u16)],
    /// Human-readable summaries, one per firewall rule.
    pub rules: &'static [&'static str],
    /// Whether its ICMP errors are rate-limited as Linux does by default
    /// (ICMPv6 errors too).
    pub icmp_limited: bool,
    /// How its IPv6 firewall differs from its IPv4 one; `None`: the same
    /// rules, translated.
    pub ipv6_differs: Option<&'static str>,
}

/// Which segment a host is plugged into decides its veth, gateway and routes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Segment {
    Lan,
    Far,
}

/// What the lab needs to build a host besides what is shown to users.
struct HostSpec {
    host: &'static LabHost,
    segment: Segment,
    /// iptables INPUT rules, whitespace-separated arguments after `-A INPUT`.
    iptables: &'static [Rule],
    /// iptables OUTPUT rules, likewise.
    output: &'static [Rule],
    /// ip6tables INPUT rules in place of `iptables` translated by
    /// [`ip6_args`]; `None`: the translation. Set where the IPv6 firewall
    /// differs on purpose ([`LabHost::ipv6_differs`] says how). OUTPUT
    /// rules are always translated.
    ip6tables: Option<&'static [Rule]>,
}

struct Rule {
    args: &'static str,
    /// Used when the kernel lacks the conntrack match: loses the
    /// "established connections are fine" nuance, keeps the observable
    /// behaviour for single probes.
    fallback: Option<&'static str>,
}

const fn rule(args: &'static str) -> Rule {
    Rule {
        args,
        fallback: None,
    }
}

static HOSTS: [LabHost; 6] = [
    LabHost {
        name: "web",
        netns_suffix: "web",
        addr: Ipv4Addr::new(10, 213, 1, 2),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 2),
        role: "An RFC 793 host behind a firewall: every filtered state nmap knows \
               (drop, ICMP rejects, forged reset, stateful drop) on one address.",
        listening: &[22, 80, 443, 3306, 8080],
        udp: &[("dns", 53), ("ntp", 123), ("echo", 7), ("silent", 9999)],
        rules: &[
            "udp/161 DROP",
            "udp/514 REJECT icmp-admin-prohibited",
            "tcp/135 DROP",
            "tcp/137-139 DROP",
            "tcp/111 REJECT icmp-port-unreachable",
            "tcp/445 REJECT icmp-admin-prohibited",
            "tcp/23 REJECT tcp-reset",
            "tcp/8000-8100 non-SYN DROP (SYN reaches 8080 listening, the rest closed)",
            "tcp/5430-5439 non-SYN that opens nothing (conntrack NEW/INVALID) DROP; 5432 closed",
        ],
        icmp_limited: false,
        ipv6_differs: Some(
            "ip6tables lacks the tcp/137-139 DROP (a firewall written for IPv4 only): \
             137-139 are filtered over IPv4 and closed over IPv6",
        ),
    },
    LabHost {
        name: "rst",
        netns_suffix: "rst",
        addr: Ipv4Addr::new(10, 213, 1, 3),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 3),
        role: "A host whose firewall resets every non-SYN probe, so FIN/NULL/Xmas \
               see every port closed (like Windows or Cisco).",
        listening: &[22, 80, 443],
        udp: &[],
        rules: &[
            "tcp non-SYN that opens nothing (conntrack NEW/INVALID) REJECT tcp-reset, all ports",
        ],
        icmp_limited: false,
        ipv6_differs: None,
    },
    LabHost {
        name: "far",
        netns_suffix: "far",
        addr: Ipv4Addr::new(10, 213, 2, 2),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 2, 0, 0, 0, 0, 2),
        role: "A host behind a gateway: probes are routed one hop, replies come \
               back through it.",
        listening: &[22, 443],
        udp: &[],
        rules: &["tcp/25 DROP"],
        icmp_limited: false,
        ipv6_differs: None,
    },
    LabHost {
        name: "rstlim",
        netns_suffix: "rstlim",
        addr: Ipv4Addr::new(10, 213, 1, 4),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 4),
        role: "A host that sends at most 200 RSTs a second, as FreeBSD does by default: \
               past the limit, closed ports look filtered.",
        listening: &[22, 80, 443],
        udp: &[],
        rules: &[
            "outgoing RSTs: 200/s (burst 5) ACCEPT",
            "outgoing RSTs beyond that DROP",
        ],
        icmp_limited: false,
        ipv6_differs: None,
    },
    LabHost {
        name: "fwd",
        netns_suffix: "fwd",
        addr: Ipv4Addr::new(10, 213, 1, 5),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 5),
        role: "firewalld's default: a few ports open, everything else REJECTed with \
               icmp-host-prohibited, and Linux's limit of one ICMP error a second.",
        listening: &[22, 80],
        udp: &[],
        rules: &[
            "established and related traffic ACCEPT",
            "tcp/22 ACCEPT",
            "icmp ACCEPT",
            "everything else REJECT icmp-host-prohibited (ICMP errors rate-limited)",
        ],
        icmp_limited: true,
        ipv6_differs: None,
    },
    LabHost {
        name: "rej",
        netns_suffix: "rej",
        addr: Ipv4Addr::new(10, 213, 1, 6),
        addr6: Ipv6Addr::new(0xfd00, 0x213, 1, 0, 0, 0, 0, 6),
        role: "A Linux host with two REJECTed ports and its default ICMP rate limit: \
               one pass of several techniques runs its bucket dry.",
        listening: &[22, 80],
        udp: &[("dns", 53), ("ntp", 123), ("echo", 7), ("silent", 9999)],
        rules: &[
            "tcp/111 REJECT icmp-port-unreachable",
            "tcp/445 REJECT icmp-admin-prohibited",
            "udp/161 DROP",
            "udp/514 REJECT icmp-admin-prohibited",
        ],
        icmp_limited: true,
        ipv6_differs: None,
    },
];

/// The lab's scan targets: web, rst, far, rstlim, fwd, rej.
pub fn hosts() -> &'static [LabHost] {
    &HOSTS
}

/// The hosts the demo scans: web, rst and far.
pub fn demo_hosts() -> &'static [LabHost] {
    &HOSTS[..3]
}

static SPECS: [HostSpec; 6] = [
    HostSpec {
        host: &HOSTS[0],
        segment: Segment::Lan,
        iptables: &[
            rule("-p udp --dport 161 -j DROP"),
            rule("-p udp --dport 514 -j REJECT --reject-with icmp-admin-prohibited"),
            rule("-p tcp --dport 135 -j DROP"),
            rule("-p tcp --dport 137:139 -j DROP"),
            rule("-p tcp --dport 111 -j REJECT --reject-with icmp-port-unreachable"),
            rule("-p tcp --dport 445 -j REJECT --reject-with icmp-admin-prohibited"),
            rule("-p tcp --dport 23 -j REJECT --reject-with tcp-reset"),
            rule("-p tcp --dport 8000:8100 ! --syn -j DROP"),
            Rule {
                args: "-p tcp --dport 5430:5439 -m conntrack --ctstate INVALID,NEW ! --syn -j DROP",
                fallback: Some("-p tcp --dport 5430:5439 ! --syn -j DROP"),
            },
        ],
        output: &[],
        // The rules above in ip6tables' words, less `--dport 137:139 -j
        // DROP`: the IPv4-only firewall (see `ipv6_differs`). Nothing
        // listens on 137-139, so IPv6 sees them closed (RST, exact: no
        // ICMPv6 and no rate limit involved).
        ip6tables: Some(&[
            rule("-p udp --dport 161 -j DROP"),
            rule("-p udp --dport 514 -j REJECT --reject-with icmp6-adm-prohibited"),
            rule("-p tcp --dport 135 -j DROP"),
            rule("-p tcp --dport 111 -j REJECT --reject-with icmp6-port-unreachable"),
            rule("-p tcp --dport 445 -j REJECT --reject-with icmp6-adm-prohibited"),
            rule("-p tcp --dport 23 -j REJECT --reject-with tcp-reset"),
            rule("-p tcp --dport 8000:8100 ! --syn -j DROP"),
            Rule {
                args: "-p tcp --dport 5430:5439 -m conntrack --ctstate INVALID,NEW ! --syn -j DROP",
                fallback: Some("-p tcp --dport 5430:5439 ! --syn -j DROP"),
            },
        ]),
    },
    HostSpec {
        host: &HOSTS[1],
        segment: Segment::Lan,
        // Only packets that belong to no connection: resetting every
        // non-SYN would also kill the handshake's own ACK, so connect scans
        // and real clients would see open ports reset.
        iptables: &[Rule {
            args: "-p tcp ! --syn -m conntrack --ctstate INVALID,NEW -j REJECT --reject-with tcp-reset",
            fallback: Some("-p tcp ! --syn -j REJECT --reject-with tcp-reset"),
        }],
        output: &[],
        ip6tables: None,
    },
    HostSpec {
        host: &HOSTS[2],
        segment: Segment::Far,
        iptables: &[rule("-p tcp --dport 25 -j DROP")],
        output: &[],
        ip6tables: None,
    },
    HostSpec {
        host: &HOSTS[3],
        segment: Segment::Lan,
        iptables: &[],
        output: &[
            rule("-p tcp --tcp-flags RST RST -m limit --limit 200/second --limit-burst 5 -j ACCEPT"),
            rule("-p tcp --tcp-flags RST RST -j DROP"),
        ],
        ip6tables: None,
    },
    HostSpec {
        host: &HOSTS[4],
        segment: Segment::Lan,
        iptables: &[
            Rule {
                args: "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                fallback: Some("-p tcp ! --syn -m multiport --sports 22,80 -j ACCEPT"),
            },
            rule("-p tcp --dport 22 -j ACCEPT"),
            rule("-p icmp -j ACCEPT"),
            rule("-j REJECT --reject-with icmp-host-prohibited"),
        ],
        output: &[],
        ip6tables: None,
    },
    HostSpec {
        host: &HOSTS[5],
        segment: Segment::Lan,
        iptables: &[
            rule("-p tcp --dport 111 -j REJECT --reject-with icmp-port-unreachable"),
            rule("-p tcp --dport 445 -j REJECT --reject-with icmp-admin-prohibited"),
            rule("-p udp --dport 161 -j DROP"),
            rule("-p udp --dport 514 -j REJECT --reject-with icmp-admin-prohibited"),
        ],
        output: &[],
        ip6tables: None,
    },
];

/// The ip6tables form of iptables arguments: `-p icmp` becomes `-p
/// ipv6-icmp`, `--icmp-type` `--icmpv6-type`, and each REJECT type its
/// ICMPv6 counterpart (RFC 4443 codes: port unreachable; administratively
/// prohibited for the three "prohibited" types; no route for net
/// unreachable; address unreachable for host unreachable). `tcp-reset` and
/// everything else stay as they are. `None` for an ICMP reject type with
/// no ICMPv6 counterpart (icmp-proto-unreachable): a unit test runs this on
/// every rule of the lab.
fn ip6_args(v4: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut prev = "";
    for w in v4.split_whitespace() {
        let w6 = match w {
            "icmp" if matches!(prev, "-p" | "--protocol") => "ipv6-icmp",
            "--icmp-type" => "--icmpv6-type",
            "icmp-port-unreachable" => "icmp6-port-unreachable",
            "icmp-admin-prohibited" | "icmp-host-prohibited" | "icmp-net-prohibited" => {
                "icmp6-adm-prohibited"
            }
            "icmp-net-unreachable" => "icmp6-no-route",
            "icmp-host-unreachable" => "icmp6-addr-unreachable",
            w if w.starts_with("icmp-") && prev == "--reject-with" => return None,
            w => w,
        };
        out.push(w6);
        prev = w;
    }
    Some(out.join(" "))
}

/// What every host's ip6tables chains start with: neighbour discovery
/// accepted. It is IPv6's ARP, and iptables never sees ARP, so an IPv4
/// rule that drops everything must not drop it in translation.
const NDP_ACCEPT: [&str; 2] = [
    "-p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT",
    "-p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT",
];

impl HostSpec {
    /// ip6tables (chain, arguments, fallback) in order: the NDP accepts,
    /// then INPUT (the override, else the translation), then OUTPUT.
    fn ip6_rules(&self) -> Vec<(&'static str, String, Option<String>)> {
        let translate = |r: &Rule| {
            let args = ip6_args(r.args).expect("every lab rule has an IPv6 form (unit-tested)");
            let fallback = r
                .fallback
                .map(|f| ip6_args(f).expect("every lab rule has an IPv6 form (unit-tested)"));
            (args, fallback)
        };
        let verbatim = |r: &Rule| (r.args.to_string(), r.fallback.map(String::from));
        let mut rules = Vec::new();
        for chain in ["INPUT", "OUTPUT"] {
            for ndp in NDP_ACCEPT {
                rules.push((chain, ndp.to_string(), None));
            }
        }
        let input: Vec<_> = match self.ip6tables {
            Some(own) => own.iter().map(verbatim).collect(),
            None => self.iptables.iter().map(translate).collect(),
        };
        let output: Vec<_> = self.output.iter().map(translate).collect();
        for (chain, list) in [("INPUT", input), ("OUTPUT", output)] {
            rules.extend(list.into_iter().map(|(a, f)| (chain, a, f)));
        }
        rules
    }
}

/// A lab named by its prefix; all its names derive from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    pub fn scanner_netns(&self) -> String {
        format!("{}-scan", self.prefix)
    }

    pub fn netns(&self, host: &LabHost) -> String {
        format!("{}-{}", self.prefix, host.netns_suffix)
    }

    fn gw_netns(&self) -> String {
        format!("{}-gw", self.prefix)
    }

    /// Every namespace of the lab, gateway first so that teardown and
    /// creation agree on one order.
    fn all_netns(&self) -> Vec<String> {
        let mut all = vec![self.gw_netns(), self.scanner_netns()];
        all.extend(hosts().iter().map(|h| self.netns(h)));
        all
    }
}

/// Removes the lab when dropped, ignoring errors, so `demo` and tests leave
/// nothing behind on panic or early return.
pub struct LabGuard(pub Lab);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = down(&self.0.prefix);
    }
}

/// How a listener process is started; the ports are appended as one
/// comma-separated argument. Production runs flagscan itself; tests
/// substitute their own binary because `current_exe` is the test harness.
#[derive(Debug, Clone)]
pub struct ListenerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// The arguments that start a host's UDP services instead (the
    /// services appended as one argument); `None`: none are started.
    pub udp_args: Option<Vec<OsString>>,
}

impl ListenerCommand {
    /// `<exe> lab listen --ports P,Q,...`
    pub fn flagscan(exe: &Path) -> Self {
        ListenerCommand {
            program: exe.to_path_buf(),
            args: ["lab", "listen", "--ports"].map(OsString::from).to_vec(),
            env: Vec::new(),
            udp_args: Some(
                ["lab", "listen-udp", "--services"]
                    .map(OsString::from)
                    .to_vec(),
            ),
        }
    }

    /// `<exe> lab listen-udp --services dns:53,echo:7,...`
    fn udp_command(&self, netns: &str, services: &[(&str, u16)]) -> Option<Command> {
        let args = self.udp_args.as_ref()?;
        let list: Vec<String> = services.iter().map(|(s, p)| format!("{s}:{p}")).collect();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(&self.program)
            .args(args)
            .arg(list.join(","))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        Some(cmd)
    }

    fn command(&self, netns: &str, ports: &[u16]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(&self.program)
            .args(&self.args)
            .arg(join_ports(ports))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the lab, with flagscan itself as the listener on every host.
pub fn up(prefix: &str) -> Result<Lab> {
    let exe = std::env::current_exe().context("finding the flagscan binary for lab listeners")?;
    up_with(prefix, Some(&ListenerCommand::flagscan(&exe)))
}

/// Builds the lab; `listener: None` builds the topology without listening
/// sockets (every port closed). A lab already using `prefix` is removed
/// first; a failure midway removes whatever was built.
pub fn up_with(prefix: &str, listener: Option<&ListenerCommand>) -> Result<Lab> {
    check_prefix(prefix)?;
    preflight()?;
    if exists(prefix) {
        down(prefix).with_context(|| format!("removing the previous lab '{prefix}'"))?;
    }
    let lab = Lab {
        prefix: prefix.to_string(),
    };
    if let Err(e) = build(&lab, listener) {
        // The build error is the one worth reporting; a teardown failure
        // would only hide it.
        let _ = down(prefix);
        return Err(e.context(format!("building lab '{prefix}'")));
    }
    Ok(lab)
}

fn build(lab: &Lab, listener: Option<&ListenerCommand>) -> Result<()> {
    for step in plan(lab) {
        step.run()?;
    }
    write_hosts_file(lab)?;
    if let Some(listener) = listener {
        for host in hosts() {
            let ns = lab.netns(host);
            start_listener(listener.command(&ns, host.listening))
                .with_context(|| format!("starting the listener on {}", host.name))?;
            if host.udp.is_empty() {
                continue;
            }
            if let Some(cmd) = listener.udp_command(&ns, host.udp) {
                start_listener(cmd)
                    .with_context(|| format!("starting the UDP services on {}", host.name))?;
            }
        }
    }
    Ok(())
}

/// Removes the lab: kills every process inside its namespaces (otherwise a
/// deleted namespace lives on, anonymous, as long as they do) and deletes
/// the namespaces. Succeeds when nothing exists.
pub fn down(prefix: &str) -> Result<()> {
    check_prefix(prefix)?;
    let lab = Lab {
        prefix: prefix.to_string(),
    };
    let present: Vec<String> = lab
        .all_netns()
        .into_iter()
        .filter(|ns| netns_exists(ns))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    preflight()?;
    for ns in &present {
        kill_netns_pids(ns)?;
    }
    for ns in &present {
        run(&strings(&["ip", "netns", "del", ns]))?;
    }
    let _ = std::fs::remove_dir_all(hosts_dir(&lab));
    Ok(())
}

/// Where `ip netns exec` finds the scanner namespace's own /etc files.
fn hosts_dir(lab: &Lab) -> PathBuf {
    Path::new("/etc/netns").join(lab.scanner_netns())
}

/// The lab's host names for programs run with `ip netns exec` in the
/// scanner's namespace (which mounts /etc/netns/NS/hosts over /etc/hosts):
/// each name has its IPv4 and its IPv6 address, so `--resolve-all web`
/// scans both families of one host.
fn write_hosts_file(lab: &Lab) -> Result<()> {
    let dir = hosts_dir(lab);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = hosts_file_text();
    let path = dir.join("hosts");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn hosts_file_text() -> String {
    let mut text = String::from(
        "# flagscan lab: removed by `flagscan lab down`\n127.0.0.1 localhost\n::1 localhost\n",
    );
    for h in hosts() {
        text.push_str(&format!("{} {}\n{} {}\n", h.addr, h.name, h.addr6, h.name));
    }
    text
}

/// True if any namespace of the lab exists, so a half-built lab counts too.
pub fn exists(prefix: &str) -> bool {
    let lab = Lab {
        prefix: prefix.to_string(),
    };
    lab.all_netns().iter().any(|ns| netns_exists(ns))
}

pub fn status_text(prefix: &str) -> Result<String> {
    check_prefix(prefix)?;
    let lab = Lab {
        prefix: prefix.to_string(),
    };
    let all = lab.all_netns();
    let present = all.iter().filter(|ns| netns_exists(ns)).count();
    let scan_ns = lab.scanner_netns();
    let mut out = String::new();
    match present {
        0 => writeln!(
            out,
            "lab '{prefix}' is down (create it with `sudo flagscan lab up`)"
        )?,
        n if n == all.len() => writeln!(out, "lab '{prefix}' is up")?,
        n => writeln!(
            out,
            "lab '{prefix}' is partly present ({n} of {} namespaces); \
             run `sudo flagscan lab down` then `sudo flagscan lab up`",
            all.len()
        )?,
    }
    let (first, last) = (*SOURCE_POOL.start(), *SOURCE_POOL.end());
    writeln!(
        out,
        "scanner namespace: {scan_ns} ({SCAN_ADDR}, {SCAN_ADDR6}; for -S also \
         10.213.3.{first}-{last}, {}-{last})",
        mirror6(Ipv4Addr::new(10, 213, 3, first)),
    )?;
    writeln!(out, "scan from it:")?;
    writeln!(
        out,
        "  sudo flagscan --netns {scan_ns} -sS -sF {}",
        hosts()[0].addr
    )?;
    writeln!(
        out,
        "  sudo ip netns exec {scan_ns} flagscan -sS -sF {}",
        hosts()[0].addr
    )?;
    writeln!(out, "hosts:")?;
    for host in hosts() {
        writeln!(
            out,
            "  {:<11} {:<5} netns {}",
            host.addr,
            host.name,
            lab.netns(host)
        )?;
        writeln!(out, "      ipv6: {}", host.addr6)?;
        writeln!(out, "      {}", host.role)?;
        writeln!(out, "      listening: tcp {}", join_ports(host.listening))?;
        if !host.udp.is_empty() {
            let udp: Vec<String> = host.udp.iter().map(|(s, p)| format!("{p} ({s})")).collect();
            writeln!(out, "      udp: {}", udp.join(", "))?;
        }
        for r in host.rules {
            writeln!(out, "      rule: {r}")?;
        }
        match host.ipv6_differs {
            Some(how) => writeln!(out, "      ipv6 firewall differs: {how}")?,
            None => writeln!(out, "      ipv6 firewall: the same rules")?,
        }
    }
    Ok(out)
}

/// Body of `flagscan lab listen`: the listening sockets of one lab host.
/// Prints `ready` once every port is bound, which is what `up` waits for.
pub fn listen_forever(ports: &[u16]) -> Result<()> {
    let listeners = bind_all(ports)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").context("writing the ready line")?;
    stdout.flush().context("writing the ready line")?;
    drop(stdout);
    // Accepting and dropping keeps the accept queue from filling up under
    // connect scans, which would turn open ports into filtered ones.
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    drop(conn);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    // Only reachable if every accept loop ended, which std never does.
    loop {
        std::thread::park();
    }
}

/// Body of `flagscan lab listen-udp`: one lab host's UDP services, each
/// `what:port`. `dns` answers a query with an empty answer of its own ID
/// (RFC 1035), `ntp` a client request with a server reply whose origin
/// timestamp is the request's transmit timestamp (RFC 5905), `echo`
/// sends back what came (RFC 862), `silent` is bound and answers nothing.
/// Prints `ready` once every socket is bound.
pub fn listen_udp_forever(services: &[String]) -> Result<()> {
    let mut sockets = Vec::new();
    for s in services {
        let (what, port) = s
            .split_once(':')
            .and_then(|(w, p)| Some((w.to_string(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("UDP service '{s}': write what:port"))?;
        if !["dns", "ntp", "echo", "silent"].contains(&what.as_str()) {
            bail!("UDP service '{what}': dns, ntp, echo or silent");
        }
        let sock =
            UdpSocket::bind(("0.0.0.0", port)).with_context(|| format!("binding udp/{port}"))?;
        let sock6 = bind_v6_only(libc::SOCK_DGRAM, port)
            .map(UdpSocket::from)
            .with_context(|| format!("binding udp/{port} on IPv6"))?;
        sockets.push((what.clone(), sock));
        sockets.push((what, sock6));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").context("writing the ready line")?;
    stdout.flush().context("writing the ready line")?;
    drop(stdout);
    let threads: Vec<_> = sockets
        .into_iter()
        .map(|(what, sock)| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if let Some(answer) = udp_answer(&what, &buf[..n]) {
                        let _ = sock.send_to(&answer, from);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    loop {
        std::thread::park();
    }
}

/// What a lab UDP service sends back for `request`.
fn udp_answer(what: &str, request: &[u8]) -> Option<Vec<u8>> {
    match what {
        "echo" => Some(request.to_vec()),
        "dns" if request.len() >= 12 => {
            // The query's ID and question, QR and RA set, no answer.
            let mut a = request.to_vec();
            a[2] = 0x81;
            a[3] = 0x80;
            a[6..12].fill(0);
            Some(a)
        }
        "ntp" if request.len() >= 48 => {
            let mut a = vec![0u8; 48];
            a[0] = 0x24; // LI 0, VN 4, mode 4 (server)
            a[1] = 1; // stratum 1
            a[24..32].copy_from_slice(&request[40..48]);
            Some(a)
        }
        _ => None,
    }
}

/// Two sockets a port: 0.0.0.0 as always, and [::] for IPv6 only.
fn bind_all(ports: &[u16]) -> Result<Vec<TcpListener>> {
    let mut all = Vec::new();
    for &p in ports {
        all.push(
            TcpListener::bind(("0.0.0.0", p)).with_context(|| format!("listening on tcp/{p}"))?,
        );
        let v6 = bind_v6_only(libc::SOCK_STREAM, p)
            .with_context(|| format!("listening on tcp/{p} on IPv6"))?;
        all.push(TcpListener::from(v6));
    }
    Ok(all)
}

/// A socket bound to [::]:`port` that takes IPv6 only (listening, for
/// `SOCK_STREAM`), so that the IPv4 socket beside it, and what IPv4 sees,
/// stay as they were. std cannot set IPV6_V6ONLY before binding.
fn bind_v6_only(kind: libc::c_int, port: u16) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: socket has no preconditions; a non-negative result is a new
    // descriptor that nothing else owns.
    let fd = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            libc::AF_INET6,
            kind | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    let one: libc::c_int = 1;
    let mut options = vec![(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)];
    if kind == libc::SOCK_STREAM {
        // As std's TcpListener::bind does.
        options.push((libc::SOL_SOCKET, libc::SO_REUSEADDR));
    }
    for (level, name) in options {
        // SAFETY: fd is open and the value is a c_int that outlives the call.
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
    }
    // SAFETY: sockaddr_in6 is plain data; all zeroes is [::]:0.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = port.to_be();
    // SAFETY: fd is open; sa is a sockaddr_in6 of the length given.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    })?;
    if kind == libc::SOCK_STREAM {
        // 128: the backlog std's TcpListener::bind gives the IPv4 socket.
        // SAFETY: fd is an open, bound stream socket.
        check(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    }
    Ok(fd)
}

/// Spawns the listener detached and waits for its `ready` line. Lines before
/// `ready` are skipped (a test harness prints a banner); end of output
/// without it means the child failed, and its stderr says why.
fn start_listener(mut cmd: Command) -> Result<()> {
    let shown = show(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so Ctrl-C in the terminal that ran
        // `lab up` does not reach it; `down` kills it by namespace.
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| spawn_error(e, &shown))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading the output of `{shown}`"))?;
        if n == 0 {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let status = child
                .wait()
                .with_context(|| format!("waiting for `{shown}`"))?;
            bail!(
                "`{shown}` exited ({status}) without printing `ready`: {}",
                stderr.trim()
            );
        }
        if line.trim_end() == "ready" {
            return Ok(());
        }
    }
}

/// One command of the topology plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    argv: Vec<String>,
    /// Tried when `argv` fails; see [`Rule::fallback`].
    fallback: Option<Vec<String>>,
    /// Some knobs are global on some kernels and refuse to be set per
    /// namespace; the lab still works, only with rate-limited ICMP.
    may_fail: bool,
}

impl Step {
    fn new(argv: Vec<String>) -> Self {
        Step {
            argv,
            fallback: None,
            may_fail: false,
        }
    }

    fn run(&self) -> Result<()> {
        match run(&self.argv) {
            Ok(_) => Ok(()),
            Err(_) if self.may_fail => Ok(()),
            Err(first) => match &self.fallback {
                Some(fallback) => {
                    eprintln!(
                        "flagscan lab: `{}` failed, using `{}` instead",
                        self.argv.join(" "),
                        fallback.join(" ")
                    );
                    run(fallback).map(drop).context(first)
                }
                None => Err(first),
            },
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `ip -n NS ...`
fn ip_n(ns: &str, args: &str) -> Step {
    let mut argv = strings(&["ip", "-n", ns]);
    argv.extend(args.split_whitespace().map(String::from));
    Step::new(argv)
}

/// `ip netns exec NS ...`
fn exec_in(ns: &str, args: &str) -> Step {
    let mut argv = strings(&["ip", "netns", "exec", ns]);
    argv.extend(args.split_whitespace().map(String::from));
    Step::new(argv)
}

/// The veth end that stays in the gateway for a host.
fn gw_port(suffix: &str) -> String {
    format!("v-{suffix}")
}

/// The whole topology as commands, in order. Pure, so tests can check that
/// every command stays inside the lab's namespaces.
fn plan(lab: &Lab) -> Vec<Step> {
    let gw = lab.gw_netns();
    let scan = lab.scanner_netns();
    let mut steps = Vec::new();

    for ns in lab.all_netns() {
        steps.push(Step::new(strings(&["ip", "netns", "add", &ns])));
        // Before any interface exists, so that each takes these as its
        // defaults: IPv6 on; no duplicate address detection, so addresses
        // (link-local ones too) are usable at once rather than tentative
        // for a second; no router advertisements, so no default route can
        // be learned.
        let mut v6 = String::from("sysctl -w");
        for scope in ["all", "default"] {
            for key in ["disable_ipv6=0", "accept_dad=0", "accept_ra=0"] {
                write!(v6, " net.ipv6.conf.{scope}.{key}").expect("String grows");
            }
        }
        steps.push(exec_in(&ns, &v6));
        steps.push(ip_n(&ns, "link set lo up"));
    }

    steps.push(ip_n(&gw, "link add br0 type bridge"));
    steps.push(ip_n(
        &gw,
        &format!("addr add {GW_LAN}/{LAN_PREFIX_LEN} dev br0"),
    ));
    steps.push(ip_n(
        &gw,
        &format!("-6 addr add {GW_LAN6}/{LAN6_PREFIX_LEN} dev br0 nodad"),
    ));
    // Neighbour solicitations are multicast. A snooping bridge forwards a
    // group only to the ports it saw join it (MLD reports, sent when an
    // address is added, maybe before the port was up); a plain switch
    // floods, and so does br0 with snooping off.
    steps.push(ip_n(&gw, "link set br0 type bridge mcast_snooping 0"));
    steps.push(ip_n(&gw, "link set br0 up"));
    steps.push(exec_in(&gw, "sysctl -w net.ipv4.ip_forward=1"));
    steps.push(exec_in(&gw, "sysctl -w net.ipv6.conf.all.forwarding=1"));
    // The bridge is the lab's switch. Where br_netfilter is loaded (Docker
    // loads it), bridged frames would also go through the gateway's
    // iptables and conntrack: a cost per probe no real switch has, which
    // would slow every scan of the lab. The keys exist only with the
    // module, hence may_fail.
    for key in ["iptables", "ip6tables", "arptables"] {
        let mut off = exec_in(&gw, &format!("sysctl -w net.bridge.bridge-nf-call-{key}=0"));
        off.may_fail = true;
        steps.push(off);
    }

    // (namespace, suffix, addresses, segment) of everything plugged into gw.
    let mut members = vec![(scan.clone(), "scan", SCAN_ADDR, SCAN_ADDR6, Segment::Lan)];
    members.extend(SPECS.iter().map(|s| {
        (
            lab.netns(s.host),
            s.host.netns_suffix,
            s.host.addr,
            s.host.addr6,
            s.segment,
        )
    }));
    for (ns, suffix, addr, addr6, segment) in &members {
        let port = gw_port(suffix);
        // Created inside gw with the peer placed straight into the host, so
        // the root namespace never sees either end.
        steps.push(ip_n(
            &gw,
            &format!("link add {port} type veth peer name eth0 netns {ns}"),
        ));
        match segment {
            Segment::Lan => steps.push(ip_n(&gw, &format!("link set {port} master br0"))),
            Segment::Far => {
                steps.push(ip_n(&gw, &format!("addr add {GW_FAR}/24 dev {port}")));
                steps.push(ip_n(
                    &gw,
                    &format!("-6 addr add {GW_FAR6}/{LAN6_PREFIX_LEN} dev {port} nodad"),
                ));
            }
        }
        steps.push(ip_n(&gw, &format!("link set {port} up")));
        steps.push(ip_n(
            ns,
            &format!("addr add {addr}/{LAN_PREFIX_LEN} dev eth0"),
        ));
        steps.push(ip_n(
            ns,
            &format!("-6 addr add {addr6}/{LAN6_PREFIX_LEN} dev eth0 nodad"),
        ));
        steps.push(ip_n(ns, "link set eth0 up"));
    }

    steps.push(ip_n(&scan, &format!("route add {FAR_NET} via {GW_LAN}")));
    for i in SOURCE_POOL {
        steps.push(ip_n(&scan, &format!("addr add 10.213.3.{i}/32 dev eth0")));
    }
    steps.push(ip_n(
        &gw,
        &format!("route add {SOURCE_NET} via {SCAN_ADDR}"),
    ));
    // `src`: IPv6 picks a source by the longest prefix shared with the
    // destination (RFC 6724 rule 8), and fd00:213:3:: shares more with
    // fd00:213:2:: than fd00:213:1:: does; without it every scan of the
    // far host would come from an -S address.
    steps.push(ip_n(
        &scan,
        &format!("-6 route add {FAR_NET6} via {GW_LAN6} src {SCAN_ADDR6}"),
    ));
    for i in SOURCE_POOL {
        let a = mirror6(Ipv4Addr::new(10, 213, 3, i));
        steps.push(ip_n(&scan, &format!("-6 addr add {a}/128 dev eth0 nodad")));
    }
    steps.push(ip_n(
        &gw,
        &format!("-6 route add {SOURCE_NET6} via {SCAN_ADDR6}"),
    ));

    for spec in &SPECS {
        let ns = lab.netns(spec.host);
        let via = match spec.segment {
            Segment::Lan => GW_LAN,
            Segment::Far => GW_FAR,
        };
        steps.push(ip_n(&ns, &format!("route add default via {via}")));
        // IPv6 has no default route: the other two /64s of the lab through
        // the gateway, which is all a host ever answers. (One /64 each, not
        // one wider route: kernels before 2026 gave a destination more
        // ICMPv6 errors the shorter its route's prefix.)
        let (via6, others) = match spec.segment {
            Segment::Lan => (GW_LAN6, [FAR_NET6, SOURCE_NET6]),
            Segment::Far => (GW_FAR6, [LAN_NET6, SOURCE_NET6]),
        };
        for net in others {
            steps.push(ip_n(&ns, &format!("-6 route add {net} via {via6}")));
        }
    }

    // ICMP rejects are answers under test; rate limiting would turn some of
    // them into silence and the port into "filtered" by accident.
    // The hosts that show Linux's limiter keep its defaults, for ICMPv6
    // too, which are not IPv4's: net.ipv6.icmp.ratelimit is 100 ms (ten
    // errors a second, a burst of 6) since Linux commit 0201eedb69b2
    // (2026); before it, 1000 ms divided by 4 for a destination reached by
    // a /64 route, as the scanner is.
    for spec in &SPECS {
        let ns = lab.netns(spec.host);
        if !spec.host.icmp_limited {
            steps.push(exec_in(&ns, "sysctl -w net.ipv4.icmp_ratelimit=0"));
            steps.push(exec_in(&ns, "sysctl -w net.ipv6.icmp.ratelimit=0"));
            // The namespace's own bucket too (its refill is randomised in
            // recent kernels): a burst no scan of the lab exhausts. ICMPv6
            // errors draw on the same bucket.
            for key in ["icmp_msgs_per_sec=100000", "icmp_msgs_burst=10000"] {
                let mut step = exec_in(&ns, &format!("sysctl -w net.ipv4.{key}"));
                step.may_fail = true;
                steps.push(step);
            }
        }
        for (chain, rules) in [("INPUT", spec.iptables), ("OUTPUT", spec.output)] {
            for r in rules {
                let mut step = exec_in(&ns, &format!("iptables -A {chain} {}", r.args));
                step.fallback = r
                    .fallback
                    .map(|f| exec_in(&ns, &format!("iptables -A {chain} {f}")).argv);
                steps.push(step);
            }
        }
        for (chain, args, fallback) in spec.ip6_rules() {
            let mut step = exec_in(&ns, &format!("ip6tables -A {chain} {args}"));
            step.fallback =
                fallback.map(|f| exec_in(&ns, &format!("ip6tables -A {chain} {f}")).argv);
            steps.push(step);
        }
    }
    steps
}

/// Runs a command, returning stdout; a failure names the command and
/// carries its stderr.
fn run(argv: &[String]) -> Result<String> {
    let shown = argv.join(" ");
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(e, &shown))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn spawn_error(e: std::io::Error, shown: &str) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let program = shown.split_whitespace().next().unwrap_or_default();
        // Under `ip netns exec` a missing program is reported by ip itself
        // through stderr; here it is the first word that is missing.
        if let Some(hint) = install_hint(program) {
            return usage(format!("`{program}` not found: {hint}"));
        }
    }
    anyhow!(e).context(format!("running `{shown}`"))
}

fn install_hint(program: &str) -> Option<&'static str> {
    match program {
        "ip" => Some("the lab needs iproute2 (apt-get install iproute2)"),
        "iptables" | "ip6tables" => Some("the lab needs iptables (apt-get install iptables)"),
        "sysctl" => Some("the lab needs sysctl (apt-get install procps)"),
        _ => None,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Usage errors up front beat a half-built lab torn down again.
fn preflight() -> Result<()> {
    if !is_root() {
        return Err(usage(
            "the lab needs root: it creates network namespaces and firewall rules \
             (run with sudo)",
        ));
    }
    for (program, arg) in [
        ("ip", "-V"),
        ("iptables", "--version"),
        ("ip6tables", "--version"),
        ("sysctl", "--version"),
    ] {
        let status = Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = status {
            return Err(spawn_error(e, program));
        }
    }
    Ok(())
}

/// Namespace names become file names under /run/netns and appear in shell
/// commands we print, so keep them to a safe alphabet.
fn check_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !prefix.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "bad lab prefix '{prefix}': use 1-64 letters, digits, '-' or '_', not starting with '-'"
        )))
    }
}

fn netns_exists(name: &str) -> bool {
    Path::new(crate::sys::netns::NETNS_DIR).join(name).exists()
}

fn kill_netns_pids(ns: &str) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let out = run(&strings(&["ip", "netns", "pids", ns]))?;
    // `demo` scans from inside the scanner namespace and tears the lab
    // down from there: it must not kill itself.
    let me = std::process::id() as i32;
    for pid in parse_pids(&out).into_iter().filter(|&p| p != me) {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => bail!("killing pid {pid} in namespace {ns}: {e}"),
        }
    }
    Ok(())
}

fn parse_pids(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|w| w.parse::<i32>().ok())
        .filter(|&p| p > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{IpNet, Ipv6Net};
    use std::collections::HashSet;
    use std::net::IpAddr;
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    /// All of the lab's addresses, like 10.213.0.0/16 for IPv4.
    const LAB_NET6: &str = "fd00:213::/32";

    #[test]
    fn names_derive_from_prefix() {
        let lab = Lab {
            prefix: "t1".into(),
        };
        assert_eq!(lab.scanner_netns(), "t1-scan");
        assert_eq!(lab.netns(&hosts()[0]), "t1-web");
        assert_eq!(
            lab.all_netns(),
            [
                "t1-gw",
                "t1-scan",
                "t1-web",
                "t1-rst",
                "t1-far",
                "t1-rstlim",
                "t1-fwd",
                "t1-rej"
            ]
        );
        let names: Vec<_> = hosts().iter().map(|h| h.name).collect();
        assert_eq!(names, ["web", "rst", "far", "rstlim", "fwd", "rej"]);
        let demo: Vec<_> = demo_hosts().iter().map(|h| h.name).collect();
        assert_eq!(demo, ["web", "rst", "far"]);
    }

    #[test]
    fn hosts_match_their_specs() {
        assert_eq!(hosts().len(), SPECS.len());
        for (h, s) in hosts().iter().zip(&SPECS) {
            assert!(std::ptr::eq(h, s.host), "SPECS follows HOSTS order");
            assert_eq!(
                h.rules.len(),
                s.iptables.len() + s.output.len(),
                "one summary per rule on {}",
                h.name
            );
        }
    }

    #[test]
    fn listener_command_is_flagscan_lab_listen() {
        let cmd =
            ListenerCommand::flagscan(Path::new("/usr/bin/flagscan")).command("p-web", &[22, 80]);
        assert_eq!(
            show(&cmd),
            "ip netns exec p-web /usr/bin/flagscan lab listen --ports 22,80"
        );
    }

    #[test]
    fn every_step_stays_inside_the_lab() {
        let lab = Lab {
            prefix: "t1".into(),
        };
        let own: HashSet<String> = lab.all_netns().into_iter().collect();
        let lab_v4: IpNet = "10.213.0.0/16".parse().unwrap();
        let lab_v6: IpNet = LAB_NET6.parse().unwrap();
        let mut saw_v6_route = false;
        for step in plan(&lab) {
            for argv in std::iter::once(&step.argv).chain(step.fallback.as_ref()) {
                assert_eq!(argv[0], "ip", "{argv:?}");
                let ns = match argv[1].as_str() {
                    "-n" => &argv[2],
                    "netns" => {
                        assert!(["add", "exec"].contains(&argv[2].as_str()), "{argv:?}");
                        &argv[3]
                    }
                    _ => panic!("command outside the lab's namespaces: {argv:?}"),
                };
                assert!(own.contains(ns), "{argv:?}");
                // A veth peer may only be sent into one of our namespaces.
                if let Some(i) = argv.iter().position(|a| a == "netns").filter(|&i| i > 1) {
                    assert!(own.contains(&argv[i + 1]), "{argv:?}");
                }
                // Every address and prefix named is the lab's own, in
                // either family.
                for word in argv {
                    let net: Option<IpNet> = word
                        .parse::<IpNet>()
                        .ok()
                        .or_else(|| word.parse::<IpAddr>().ok().map(IpNet::from));
                    if let Some(net) = net {
                        assert!(
                            lab_v4.contains(&net) || lab_v6.contains(&net),
                            "{word} is outside the lab: {argv:?}"
                        );
                    }
                }
                // No default route over IPv6; IPv4 keeps the hosts' routes
                // to the gateway it always had.
                if argv.iter().any(|a| a == "-6") && argv.iter().any(|a| a == "route") {
                    assert!(!argv.iter().any(|a| a == "default"), "{argv:?}");
                    saw_v6_route = true;
                }
            }
        }
        assert!(saw_v6_route);
    }

    #[test]
    fn ipv6_addresses_mirror_ipv4() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            mirror6(Ipv4Addr::new(10, 213, 1, 254)),
            v6("fd00:213:1::254")
        );
        assert_eq!(mirror6(Ipv4Addr::new(10, 213, 3, 16)), v6("fd00:213:3::16"));
        assert_eq!(mirror6(Ipv4Addr::new(10, 213, 2, 9)), v6("fd00:213:2::9"));
        assert_eq!(SCAN_ADDR6, v6("fd00:213:1::1"));
        assert_eq!(GW_LAN6, v6("fd00:213:1::254"));
        assert_eq!(GW_FAR6, v6("fd00:213:2::254"));
        let lan: Ipv6Net = LAN_NET6.parse().unwrap();
        let far: Ipv6Net = FAR_NET6.parse().unwrap();
        let sources: Ipv6Net = SOURCE_NET6.parse().unwrap();
        let lab: Ipv6Net = LAB_NET6.parse().unwrap();
        for net in [lan, far, sources] {
            assert!(lab.contains(&net), "{net}");
        }
        for i in SOURCE_POOL {
            assert!(sources.contains(&mirror6(Ipv4Addr::new(10, 213, 3, i))));
        }
        let mut seen = HashSet::new();
        for (h, s) in hosts().iter().zip(&SPECS) {
            assert_eq!(h.addr6, mirror6(h.addr), "{}", h.name);
            let segment = match s.segment {
                Segment::Lan => lan,
                Segment::Far => far,
            };
            assert!(segment.contains(&h.addr6), "{}", h.name);
            assert!(seen.insert(h.addr6), "{}", h.name);
        }
        assert_eq!(hosts()[0].addr6, v6("fd00:213:1::2"));
        assert_eq!(hosts()[2].addr6, v6("fd00:213:2::2"));
        // Each segment's addresses are on its interfaces, none tentative.
        let text: Vec<String> = plan(&Lab { prefix: "x".into() })
            .iter()
            .map(|s| s.argv.join(" "))
            .collect();
        for line in [
            "ip -n x-gw -6 addr add fd00:213:1::254/64 dev br0 nodad",
            "ip -n x-gw -6 addr add fd00:213:2::254/64 dev v-far nodad",
            "ip -n x-scan -6 addr add fd00:213:1::1/64 dev eth0 nodad",
            "ip -n x-web -6 addr add fd00:213:1::2/64 dev eth0 nodad",
            "ip -n x-far -6 addr add fd00:213:2::2/64 dev eth0 nodad",
            "ip -n x-scan -6 addr add fd00:213:3::16/128 dev eth0 nodad",
            "ip -n x-scan -6 route add fd00:213:2::/64 via fd00:213:1::254 src fd00:213:1::1",
            "ip -n x-gw -6 route add fd00:213:3::/64 via fd00:213:1::1",
            "ip -n x-web -6 route add fd00:213:2::/64 via fd00:213:1::254",
            "ip -n x-web -6 route add fd00:213:3::/64 via fd00:213:1::254",
            "ip -n x-far -6 route add fd00:213:1::/64 via fd00:213:2::254",
            "ip -n x-far -6 route add fd00:213:3::/64 via fd00:213:2::254",
            "ip netns exec x-gw sysctl -w net.ipv6.conf.all.forwarding=1",
        ] {
            assert!(text.iter().any(|t| t == line), "missing: {line}");
        }
        // IPv6 on, without DAD or router advertisements, in every
        // namespace before its first interface.
        for ns in (Lab { prefix: "x".into() }).all_netns() {
            let sysctl = text
                .iter()
                .position(|t| {
                    t.starts_with(&format!("ip netns exec {ns} sysctl -w"))
                        && t.contains("net.ipv6.conf.default.disable_ipv6=0")
                        && t.contains("net.ipv6.conf.all.disable_ipv6=0")
                        && t.contains("net.ipv6.conf.default.accept_dad=0")
                        && t.contains("net.ipv6.conf.default.accept_ra=0")
                })
                .unwrap_or_else(|| panic!("no IPv6 sysctls in {ns}"));
            let first_link = text
                .iter()
                .position(|t| t.contains(&format!("netns {ns}")) && t.contains("link add"))
                .unwrap_or(usize::MAX);
            assert!(sysctl < first_link, "{ns}");
        }
    }

    #[test]
    fn ip6tables_translate_iptables() {
        assert_eq!(
            ip6_args("-p tcp --dport 111 -j REJECT --reject-with icmp-port-unreachable").unwrap(),
            "-p tcp --dport 111 -j REJECT --reject-with icmp6-port-unreachable"
        );
        for t in [
            "icmp-admin-prohibited",
            "icmp-host-prohibited",
            "icmp-net-prohibited",
        ] {
            assert_eq!(
                ip6_args(&format!("-j REJECT --reject-with {t}")).unwrap(),
                "-j REJECT --reject-with icmp6-adm-prohibited"
            );
        }
        assert_eq!(
            ip6_args("-j REJECT --reject-with icmp-net-unreachable").unwrap(),
            "-j REJECT --reject-with icmp6-no-route"
        );
        assert_eq!(
            ip6_args("-j REJECT --reject-with icmp-host-unreachable").unwrap(),
            "-j REJECT --reject-with icmp6-addr-unreachable"
        );
        assert_eq!(
            ip6_args("-p tcp ! --syn -j REJECT --reject-with tcp-reset").unwrap(),
            "-p tcp ! --syn -j REJECT --reject-with tcp-reset"
        );
        assert_eq!(
            ip6_args("-p icmp --icmp-type echo-request -j ACCEPT").unwrap(),
            "-p ipv6-icmp --icmpv6-type echo-request -j ACCEPT"
        );
        assert_eq!(
            ip6_args("-j REJECT --reject-with icmp-proto-unreachable"),
            None
        );

        let v6_of = |rules: &[Rule]| -> Vec<(String, Option<String>)> {
            rules
                .iter()
                .map(|r| {
                    (
                        ip6_args(r.args).unwrap(),
                        r.fallback.map(|f| ip6_args(f).unwrap()),
                    )
                })
                .collect()
        };
        let verbatim = |rules: &[Rule]| -> Vec<(String, Option<String>)> {
            rules
                .iter()
                .map(|r| (r.args.to_string(), r.fallback.map(String::from)))
                .collect()
        };
        for spec in &SPECS {
            let name = spec.host.name;
            let rules = spec.ip6_rules();
            // Neighbour discovery first in both chains.
            for chain in ["INPUT", "OUTPUT"] {
                let mine: Vec<_> = rules.iter().filter(|r| r.0 == chain).collect();
                for (i, ndp) in NDP_ACCEPT.iter().enumerate() {
                    assert_eq!(mine[i].1, *ndp, "{name} {chain}");
                }
            }
            let chain = |c: &str| -> Vec<(String, Option<String>)> {
                rules
                    .iter()
                    .filter(|r| r.0 == c)
                    .skip(NDP_ACCEPT.len())
                    .map(|r| (r.1.clone(), r.2.clone()))
                    .collect()
            };
            assert_eq!(chain("OUTPUT"), v6_of(spec.output), "{name}");
            assert_eq!(
                spec.ip6tables.is_some(),
                spec.host.ipv6_differs.is_some(),
                "{name}: an IPv6 override says how it differs"
            );
            match spec.ip6tables {
                None => assert_eq!(chain("INPUT"), v6_of(spec.iptables), "{name}"),
                Some(own) => assert_eq!(chain("INPUT"), verbatim(own), "{name}"),
            }
        }
        // web: its IPv4 rules in translation, less exactly the tcp/137-139
        // DROP.
        let web = &SPECS[0];
        assert_eq!(web.host.name, "web");
        let mut expected = v6_of(web.iptables);
        let dropped = expected
            .iter()
            .position(|(a, _)| a == "-p tcp --dport 137:139 -j DROP")
            .unwrap();
        expected.remove(dropped);
        assert_eq!(verbatim(web.ip6tables.unwrap()), expected);
        assert_eq!(
            SPECS.iter().filter(|s| s.ip6tables.is_some()).count(),
            1,
            "only web's IPv6 firewall differs"
        );

        let text: Vec<String> = plan(&Lab { prefix: "x".into() })
            .iter()
            .map(|s| s.argv.join(" "))
            .collect();
        for line in [
            "ip netns exec x-fwd ip6tables -A INPUT -p ipv6-icmp -j ACCEPT",
            "ip netns exec x-fwd ip6tables -A INPUT -j REJECT --reject-with icmp6-adm-prohibited",
            "ip netns exec x-rst ip6tables -A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT",
            "ip netns exec x-web ip6tables -A INPUT -p tcp --dport 135 -j DROP",
            "ip netns exec x-rstlim ip6tables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP",
        ] {
            assert!(text.iter().any(|t| t == line), "missing: {line}");
        }
        assert!(!text
            .iter()
            .any(|t| t.contains("ip6tables") && t.contains("137:139")));
        // ICMPv6 limits mirror ICMP's: off where ICMP's are off.
        for h in hosts() {
            let off = format!(
                "ip netns exec x-{} sysctl -w net.ipv6.icmp.ratelimit=0",
                h.name
            );
            let off4 = format!(
                "ip netns exec x-{} sysctl -w net.ipv4.icmp_ratelimit=0",
                h.name
            );
            assert_eq!(text.contains(&off), !h.icmp_limited, "{}", h.name);
            assert_eq!(text.contains(&off4), text.contains(&off), "{}", h.name);
        }
    }

    /// Linux caps interface names at IFNAMSIZ - 1.
    const MAX_IFNAME: usize = 15;

    #[test]
    fn gateway_interface_names_fit() {
        for s in ["scan", "web", "rst", "far"] {
            assert!(gw_port(s).len() <= MAX_IFNAME);
        }
        let plan = plan(&Lab { prefix: "x".into() });
        let text: Vec<String> = plan.iter().map(|s| s.argv.join(" ")).collect();
        assert!(text.contains(
            &"ip -n x-gw link add v-far type veth peer name eth0 netns x-far".to_string()
        ));
        assert!(text.contains(&"ip -n x-scan route add 10.213.2.0/24 via 10.213.1.254".to_string()));
        assert!(text.contains(&"ip -n x-far route add default via 10.213.2.254".to_string()));
        assert!(text.contains(
            &"ip netns exec x-web iptables -A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset"
                .to_string()
        ));
    }

    #[test]
    fn bad_prefixes_are_usage_errors() {
        for p in ["", "-x", "a b", "a/b", "a;b"] {
            let e = check_prefix(p).unwrap_err();
            assert_eq!(
                crate::error::exit_code(&e),
                crate::error::EXIT_USAGE,
                "{p:?}"
            );
        }
        check_prefix(DEFAULT_PREFIX).unwrap();
    }

    #[test]
    fn pids_parse() {
        assert_eq!(parse_pids("12\n345\n\n"), [12, 345]);
        assert_eq!(parse_pids(""), Vec::<i32>::new());
    }

    #[test]
    fn missing_tools_name_their_package() {
        let e = spawn_error(std::io::ErrorKind::NotFound.into(), "iptables -A INPUT");
        assert!(e.to_string().contains("apt-get install iptables"), "{e}");
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_USAGE);
        let e = spawn_error(std::io::ErrorKind::NotFound.into(), "ip netns add x");
        assert!(e.to_string().contains("apt-get install iproute2"), "{e}");
    }

    #[test]
    fn status_of_absent_lab() {
        let text = status_text("flagscan-never-built").unwrap();
        assert!(text.contains("is down"), "{text}");
        assert!(
            text.contains("--netns flagscan-never-built-scan -sS -sF 10.213.1.2"),
            "{text}"
        );
        assert!(
            text.contains(
                "(10.213.1.1, fd00:213:1::1; for -S also 10.213.3.1-16, fd00:213:3::1-16)"
            ),
            "{text}"
        );
        for h in hosts() {
            assert!(
                text.contains(&format!("      ipv6: {}\n", h.addr6)),
                "{text}"
            );
        }
        assert!(
            text.contains("ipv6 firewall differs: ip6tables lacks the tcp/137-139 DROP"),
            "{text}"
        );
        assert!(!exists("flagscan-never-built"));
        down("flagscan-never-built").unwrap();
    }

    #[test]
    fn entering_a_missing_namespace_is_a_usage_error() {
        let e = crate::sys::netns::enter("flagscan-never-built-scan").unwrap_err();
        assert!(e.to_string().contains("flagscan-never-built-scan"), "{e}");
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_USAGE);
    }

    /// The listener used by the root test: this test binary re-run with the
    /// filter below, in place of `flagscan lab listen` which a unit test
    /// cannot reach. Inert unless the environment asks for it.
    #[test]
    #[ignore = "child process of lab_up_down_as_root"]
    fn listener_child() {
        if std::env::var_os("FLAGSCAN_LAB_LISTENER_CHILD").is_none() {
            return;
        }
        // libtest has printed "test ... " without a newline; `ready` must
        // start a line of its own.
        println!();
        let ports = std::env::args().next_back().unwrap();
        let ports: Vec<u16> = ports.split(',').map(|p| p.parse().unwrap()).collect();
        listen_forever(&ports).unwrap();
    }

    fn test_listener() -> ListenerCommand {
        ListenerCommand {
            program: std::env::current_exe().unwrap(),
            args: [
                "--exact",
                "lab::tests::listener_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ]
            .map(OsString::from)
            .to_vec(),
            env: vec![("FLAGSCAN_LAB_LISTENER_CHILD".into(), "1".into())],
            udp_args: None,
        }
    }

    /// Connects from inside `ns` on a thread of its own, since setns moves
    /// only the calling thread.
    fn connect_from(ns: &str, to: impl Into<IpAddr>, port: u16) -> std::io::Result<()> {
        let to = to.into();
        let ns = ns.to_string();
        std::thread::spawn(move || {
            crate::sys::netns::enter(&ns).unwrap();
            let addr = SocketAddr::from((to, port));
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop)
        })
        .join()
        .unwrap()
    }

    fn listener_pids(lab: &Lab) -> Vec<i32> {
        hosts()
            .iter()
            .flat_map(|h| {
                parse_pids(&run(&strings(&["ip", "netns", "pids", &lab.netns(h)])).unwrap())
            })
            .collect()
    }

    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // A killed child of this test stays a zombie until reaped.
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn lab_up_down_as_root() {
        if !is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "lab_up_down_as_root must run as root in CI"
            );
            eprintln!("skipped: needs root");
            return;
        }
        let prefix = format!("flagscan-t{}", std::process::id());
        let guard = LabGuard(up_with(&prefix, Some(&test_listener())).unwrap());
        let lab = &guard.0;
        assert!(exists(&prefix));
        assert!(status_text(&prefix).unwrap().contains("is up"));

        let scan = lab.scanner_netns();
        let [web, rst, far] = [&hosts()[0], &hosts()[1], &hosts()[2]];
        // Open on the LAN and across the gateway: addresses, bridge,
        // forwarding, routes and the listener handshake all work.
        // The same over IPv6: addresses, NDP, forwarding, routes and the
        // IPv6 listeners.
        for (h, port) in [(web, 22), (web, 8080), (rst, 443), (far, 22), (far, 443)] {
            connect_from(&scan, h.addr, port).unwrap_or_else(|e| panic!("{}:{port}: {e}", h.name));
            connect_from(&scan, h.addr6, port)
                .unwrap_or_else(|e| panic!("{} [{}]:{port}: {e}", h.name, h.addr6));
        }
        let refused_at = |h: &LabHost, to: IpAddr, port| {
            let e = connect_from(&scan, to, port).unwrap_err();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{} {to}:{port}: {e}",
                h.name
            );
        };
        let refused = |h: &LabHost, port| {
            refused_at(h, h.addr.into(), port);
            refused_at(h, h.addr6.into(), port);
        };
        refused(web, 81); // closed
        refused(web, 23); // REJECT tcp-reset
        refused(web, 111); // REJECT icmp-port-unreachable (icmp6- over IPv6)
        refused(far, 444); // closed, across the gateway
                           // web's IPv6 firewall lacks the DROP of 137-139: closed over IPv6,
                           // silent over IPv4.
        refused_at(web, web.addr6.into(), 137);
        let e = connect_from(&scan, web.addr, 137).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "web:137: {e}");
        if Path::new("/usr/bin/ping").exists() || Path::new("/bin/ping").exists() {
            run(&strings(&[
                "ip",
                "netns",
                "exec",
                &scan,
                "ping",
                "-c1",
                "-W1",
                "10.213.2.2",
            ]))
            .unwrap();
        }

        let pids = listener_pids(lab);
        assert_eq!(pids.len(), hosts().len(), "one listener per host: {pids:?}");

        // A second `up` with the same prefix replaces the lab.
        let lab2 = up_with(&prefix, None).unwrap();
        assert_eq!(&lab2, lab);
        assert!(pids.iter().all(|&p| !alive(p)), "old listeners survived");
        refused(web, 22);

        drop(guard);
        assert!(!exists(&prefix));
        let left = run(&strings(&["ip", "netns", "list"])).unwrap();
        assert!(!left.contains(&prefix), "{left}");
    }

    #[test]
    fn the_hosts_file_names_both_families_of_every_host() {
        let text = hosts_file_text();
        for h in hosts() {
            assert!(text.contains(&format!("{} {}\n", h.addr, h.name)), "{text}");
            assert!(
                text.contains(&format!("{} {}\n", h.addr6, h.name)),
                "{text}"
            );
        }
    }
}
