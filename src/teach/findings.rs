//! What the differences between techniques mean, per port and per host.
//!
//! Pure logic over finished results: one [`PortRow`] per port holds the
//! answer of every technique, and [`host_findings`] turns a host's rows into
//! stable, evidence-carrying findings (`rfc793`, `resets-non-syn`, ...) in
//! English or Japanese. [`verdict`] gives the short plain-words column of the
//! comparison table.
//!
//! Techniques are told apart by the flags they send, never by name, so a
//! technique loaded from a file takes part like a built-in one:
//!
//! - the SYN technique is the first whose flags have SYN;
//! - the non-SYN probes are the techniques whose flags have neither SYN nor
//!   ACK (FIN, NULL, Xmas and any such file). RFC 793 (RFC 9293 3.10.7) says
//!   a CLOSED port answers them with RST and a LISTEN port drops them.
//!
//! Findings are driven by reasons (syn-ack, reset, no-response, ICMP code),
//! not by state words, because the reason is what the target did.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::result::{Finding, LimitKind, RateLimit};
use crate::model::technique::{PortState, Protocol, Reason, Technique};
use crate::teach::lang::Lang;
use crate::wire::flag;

/// One port's row: its answers per technique, same order as `techniques`.
/// `None` where a probe was not concluded (an interrupted scan).
pub struct PortRow<'a> {
    pub port: u16,
    pub findings: &'a [Option<Finding>],
    /// A probe of this port stayed silent where the host's rate limiter
    /// may have eaten its answer: its silence is no evidence of a filter.
    pub limited: bool,
}

/// One finding about a host, as the JSON Lines host record carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostFinding {
    /// One of `IDS` (below); stable across versions.
    pub id: &'static str,
    /// Sorted ascending; empty for `syn-proxy`, which covers every port.
    pub ports: Vec<u16>,
    pub text: String,
}

/// Every finding id, in the order [`host_findings`] reports them.
#[cfg(test)]
pub const IDS: [&str; 12] = [
    "rfc793",
    "resets-non-syn",
    "drops-non-syn",
    "ack-passes",
    "ack-dropped",
    "silent-filter",
    "drops-udp",
    "icmp-filter",
    "syn-proxy",
    "rst-rate-limit",
    "icmp-rate-limit",
    "families-differ",
];

/// `drops-udp` needs this many silent UDP ports: a scan of two ports that
/// both happen to be open|filtered says little.
const DROPS_UDP_MIN_PORTS: usize = 5;

/// `syn-proxy` is only reported when at least this many ports answered the
/// SYN technique, all with SYN/ACK. A scan of a handful of ports a server is
/// known to serve (22, 80, 443) is legitimately all open; a real host open on
/// twenty probed ports and closed on none is very rare, while a SYN proxy or
/// tarpit answers every port.
pub const SYN_PROXY_MIN_PORTS: usize = 20;

/// At most this many items (single ports or ranges) are written out in a
/// finding's text; `ports` always holds them all.
const MAX_LISTED: usize = 16;

/// Which columns are the SYN technique and the non-SYN probes.
struct Roles {
    syn: Option<usize>,
    non_syn: Vec<usize>,
    /// The ACK scan: probes with ACK alone whose RST means unfiltered.
    ack: Option<usize>,
}

impl Roles {
    fn of(techniques: &[Technique]) -> Roles {
        Roles {
            syn: techniques
                .iter()
                .position(|t| t.protocol == Protocol::Tcp && t.flags & flag::SYN != 0),
            non_syn: techniques
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.protocol == Protocol::Tcp && t.flags & (flag::SYN | flag::ACK) == 0
                })
                .map(|(i, _)| i)
                .collect(),
            ack: techniques.iter().position(|t| {
                t.protocol == Protocol::Tcp
                    && t.flags == flag::ACK
                    && t.rules.iter().any(|r| r.state == PortState::Unfiltered)
            }),
        }
    }
}

fn at(row: &PortRow, i: usize) -> Option<Finding> {
    row.findings.get(i).copied().flatten()
}

/// What the non-SYN probes got on one port.
#[derive(Default)]
struct NonSyn {
    /// Probes concluded (any reason).
    concluded: usize,
    /// Technique indexes answered with RST.
    reset: Vec<usize>,
    /// Technique indexes with no response.
    silent: Vec<usize>,
    /// ICMP unreachable codes, in technique order.
    icmp: Vec<u8>,
}

impl NonSyn {
    fn of(row: &PortRow, roles: &Roles) -> NonSyn {
        let mut s = NonSyn::default();
        for &i in &roles.non_syn {
            let Some(f) = at(row, i) else { continue };
            s.concluded += 1;
            match f.reason {
                Reason::Reset | Reason::ConnRefused => s.reset.push(i),
                Reason::NoResponse => s.silent.push(i),
                Reason::Unreachable(code) => s.icmp.push(code),
                Reason::SynAck | Reason::UdpResponse => {}
            }
        }
        s
    }

    fn all_silent(&self) -> bool {
        self.concluded > 0 && self.silent.len() == self.concluded
    }
}

/// Ports and evidence gathered for one finding.
#[derive(Debug, Default)]
pub struct Evidence {
    pub ports: Vec<u16>,
    /// Replies (or silences) counted as evidence.
    pub count: usize,
    /// Probes concluded on these ports by the techniques concerned.
    pub probes: usize,
    /// Techniques the evidence came from.
    pub techniques: BTreeSet<usize>,
}

impl Evidence {
    fn add(&mut self, port: u16, count: usize, probes: usize, techniques: &[usize]) {
        self.ports.push(port);
        self.count += count;
        self.probes += probes;
        self.techniques.extend(techniques.iter().copied());
    }

    fn finish(mut self) -> Evidence {
        self.ports.sort_unstable();
        self.ports.dedup();
        self
    }
}

/// A finding about one host: what the differences between techniques
/// show, with the evidence, before it is put into words
/// ([`HostEvidence::render`]).
pub enum HostEvidence {
    /// Ports open to SYN stayed silent to the non-SYN probes, and ports
    /// closed to SYN answered them with RST.
    Rfc793 {
        open_silent: Evidence,
        closed_reset: Evidence,
    },
    /// Ports open to SYN answered non-SYN probes with RST.
    ResetsNonSyn(Evidence),
    /// Ports closed to SYN gave no answer to non-SYN probes.
    DropsNonSyn(Evidence),
    /// Ports silent to SYN answered the ACK scan's probe with RST
    /// (unfiltered): a filter that matches SYN alone, no state.
    AckPasses { ports: Vec<u16> },
    /// Ports that answered SYN (open or closed) gave the ACK scan's probe
    /// no answer (filtered): packets of no connection are dropped.
    AckDropped { ports: Vec<u16> },
    /// Ports that never answered SYN.
    SilentFilter { ports: Vec<u16> },
    /// UDP probes of this many ports drew no port-unreach at all (none
    /// closed), and these ports stayed silent.
    DropsUdp { asked: usize, ports: Vec<u16> },
    /// Ports answered with ICMP unreachable, by any technique: per code,
    /// the replies and the ports.
    IcmpFilter {
        ports: Vec<u16>,
        codes: BTreeMap<u8, (usize, Vec<u16>)>,
    },
    /// Every one of this many ports answered SYN/ACK to SYN.
    SynProxy { answered: usize },
}

/// What the differences between techniques mean for one host, in the order
/// of `IDS` (below). Findings that compare the SYN technique with the non-SYN
/// probes need both in the scan; without a SYN technique only `icmp-filter`
/// can be reported.
pub fn host_evidence(rows: &[PortRow], techniques: &[Technique]) -> Vec<HostEvidence> {
    let roles = Roles::of(techniques);
    let mut out = Vec::new();

    if let Some(syn) = roles.syn {
        if !roles.non_syn.is_empty() {
            let mut open_silent = Evidence::default();
            let mut closed_reset = Evidence::default();
            let mut resets = Evidence::default();
            let mut drops = Evidence::default();
            for row in rows.iter().filter(|r| !r.limited) {
                let Some(s) = at(row, syn) else { continue };
                let ns = NonSyn::of(row, &roles);
                match s.reason {
                    Reason::SynAck if !ns.reset.is_empty() => {
                        resets.add(row.port, ns.reset.len(), ns.concluded, &ns.reset)
                    }
                    Reason::SynAck if ns.all_silent() => {
                        open_silent.add(row.port, ns.silent.len(), ns.concluded, &ns.silent)
                    }
                    Reason::Reset if !ns.reset.is_empty() => {
                        closed_reset.add(row.port, ns.reset.len(), ns.concluded, &ns.reset)
                    }
                    Reason::Reset if ns.all_silent() => {
                        drops.add(row.port, ns.silent.len(), ns.concluded, &ns.silent)
                    }
                    _ => {}
                }
            }
            let (open_silent, closed_reset) = (open_silent.finish(), closed_reset.finish());
            let (resets, drops) = (resets.finish(), drops.finish());
            if resets.ports.is_empty()
                && !open_silent.ports.is_empty()
                && !closed_reset.ports.is_empty()
            {
                out.push(HostEvidence::Rfc793 {
                    open_silent,
                    closed_reset,
                });
            }
            if !resets.ports.is_empty() {
                out.push(HostEvidence::ResetsNonSyn(resets));
            }
            if !drops.ports.is_empty() {
                out.push(HostEvidence::DropsNonSyn(drops));
            }
        }

        // The ACK scan beside SYN: an ACK of no connection is what tells
        // a stateful firewall (drops it) from a filter on flags alone
        // (lets it through where it blocks the SYN).
        if let Some(ack) = roles.ack {
            let (mut passes, mut dropped) = (Vec::new(), Vec::new());
            for row in rows.iter().filter(|r| !r.limited) {
                let (Some(s), Some(a)) = (at(row, syn), at(row, ack)) else {
                    continue;
                };
                match (s.reason, a.state) {
                    (Reason::NoResponse, PortState::Unfiltered) => passes.push(row.port),
                    (Reason::SynAck | Reason::Reset, PortState::Filtered)
                        if a.reason == Reason::NoResponse =>
                    {
                        dropped.push(row.port)
                    }
                    _ => {}
                }
            }
            if !passes.is_empty() {
                out.push(HostEvidence::AckPasses { ports: passes });
            }
            if !dropped.is_empty() {
                out.push(HostEvidence::AckDropped { ports: dropped });
            }
        }

        let mut silent: Vec<u16> = rows
            .iter()
            .filter(|row| !row.limited)
            .filter(|row| matches!(at(row, syn), Some(f) if f.reason == Reason::NoResponse))
            .map(|row| row.port)
            .collect();
        silent.sort_unstable();
        silent.dedup();
        if !silent.is_empty() {
            out.push(HostEvidence::SilentFilter { ports: silent });
        }
    }

    // A closed UDP port answers with ICMP port unreachable (RFC 1122
    // 4.1.3.1): a host with not one closed port among many silent ones
    // has its UDP (or its ICMP errors) dropped on the way. Marked rows
    // are the limiter's doubt, not this evidence.
    if let Some(udp) = techniques.iter().position(|t| t.protocol == Protocol::Udp) {
        let asked: Vec<&PortRow> = rows.iter().filter(|r| at(r, udp).is_some()).collect();
        let closed = asked
            .iter()
            .any(|r| at(r, udp).is_some_and(|f| f.state == PortState::Closed));
        let silent: Vec<u16> = asked
            .iter()
            .filter(|r| !r.limited)
            .filter(|r| at(r, udp).is_some_and(|f| f.reason == Reason::NoResponse))
            .map(|r| r.port)
            .collect();
        if !closed && silent.len() >= DROPS_UDP_MIN_PORTS {
            out.push(HostEvidence::DropsUdp {
                asked: asked.len(),
                ports: silent,
            });
        }
    }

    // ICMP unreachable from any technique: code -> (replies, ports). A
    // UDP port's port-unreach is its closed answer, not a firewall's.
    let mut codes: BTreeMap<u8, (usize, Vec<u16>)> = BTreeMap::new();
    for row in rows {
        for f in row.findings.iter().flatten() {
            if f.state == PortState::Closed {
                continue;
            }
            if let Reason::Unreachable(code) = f.reason {
                let e = codes.entry(code).or_default();
                e.0 += 1;
                e.1.push(row.port);
            }
        }
    }
    if !codes.is_empty() {
        let mut ports: Vec<u16> = codes
            .values()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        for (_, p) in codes.values_mut() {
            p.sort_unstable();
            p.dedup();
        }
        out.push(HostEvidence::IcmpFilter { ports, codes });
    }

    if let Some(syn) = roles.syn {
        let answered: BTreeSet<u16> = rows
            .iter()
            .filter(|row| at(row, syn).is_some())
            .map(|row| row.port)
            .collect();
        let all_synack = rows
            .iter()
            .filter_map(|row| at(row, syn))
            .all(|f| f.reason == Reason::SynAck);
        if all_synack && answered.len() >= SYN_PROXY_MIN_PORTS {
            out.push(HostEvidence::SynProxy {
                answered: answered.len(),
            });
        }
    }
    out
}

impl HostEvidence {
    /// The finding's stable id, one of `IDS` (below).
    pub fn id(&self) -> &'static str {
        match self {
            HostEvidence::Rfc793 { .. } => "rfc793",
            HostEvidence::ResetsNonSyn(_) => "resets-non-syn",
            HostEvidence::DropsNonSyn(_) => "drops-non-syn",
            HostEvidence::AckPasses { .. } => "ack-passes",
            HostEvidence::AckDropped { .. } => "ack-dropped",
            HostEvidence::SilentFilter { .. } => "silent-filter",
            HostEvidence::DropsUdp { .. } => "drops-udp",
            HostEvidence::IcmpFilter { .. } => "icmp-filter",
            HostEvidence::SynProxy { .. } => "syn-proxy",
        }
    }

    /// The finding in words, in `lang`; `techniques` are the scan's.
    pub fn text(&self, techniques: &[Technique], lang: Lang) -> String {
        let names = |set: &BTreeSet<usize>| tech_names(techniques, set, lang);
        match self {
            HostEvidence::Rfc793 {
                open_silent,
                closed_reset,
            } => {
                let (po, pc) = (
                    port_list(&open_silent.ports, lang),
                    port_list(&closed_reset.ports, lang),
                );
                let (to, tc) = (
                    names(&open_silent.techniques),
                    names(&closed_reset.techniques),
                );
                let (no, nc) = (open_silent.ports.len(), closed_reset.ports.len());
                let (s, r) = (open_silent.count, closed_reset.count);
                let text = match lang {
                    Lang::En => format!(
                        "Non-SYN probes are answered as RFC 793 says (RFC 9293 3.10.7): \
                         {} that answered SYN/ACK ({po}) stayed silent to all {s} {to} probes, \
                         and {} that answered RST to SYN ({pc}) answered RST to {tc} too ({}). \
                         FIN, NULL and Xmas results can be trusted on this host, \
                         except on ports another finding names.",
                        n_ports(no),
                        n_ports(nc),
                        plural(r, "RST", "RSTs"),
                    ),
                    Lang::Ja => format!(
                        "非SYNプローブへの応答はRFC 793(RFC 9293 3.10.7)どおりです: \
                         SYN/ACKを返した{no}個のポート({po})は{to}のプローブ{s}個すべてに応答せず、\
                         SYNにRSTを返した{nc}個のポート({pc})は{tc}にもRSTを返しました(RST {r}個)。\
                         ほかの所見が挙げるポートを除き、このホストではFINスキャン、NULLスキャン、\
                         Xmas Treeスキャンの結果を信頼できます。"
                    ),
                };
                text
            }
            HostEvidence::ResetsNonSyn(resets) => {
                let p = port_list(&resets.ports, lang);
                let t = names(&resets.techniques);
                let n = resets.ports.len();
                let (r, of) = (resets.count, resets.probes);
                let text = match lang {
                    Lang::En => format!(
                        "{} that answered SYN/ACK to SYN ({p}) answered RST to {t} probes \
                         ({r} of {of} probes reset). RFC 793 says a listening port drops such \
                         segments, so this is a stack that resets regardless (Windows, many \
                         Cisco devices) or a firewall that resets: the \"closed\" results of \
                         {t} are unreliable on this host.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "SYNにSYN/ACKを返した{n}個のポート({p})が{t}のプローブにRSTを返しました\
                         (プローブ{of}個中{r}個)。RFC 793では待ち受け中のポートはこうしたセグメントを\
                         破棄するはずなので、これは常にRSTを返すスタック(Windows、多くのCisco機器)か、\
                         RSTを返すファイアウォールです。このホストでは{t}の「closed」は信頼できません。"
                    ),
                };
                text
            }
            HostEvidence::DropsNonSyn(drops) => {
                let p = port_list(&drops.ports, lang);
                let t = names(&drops.techniques);
                let (n, s) = (drops.ports.len(), drops.count);
                let text = match lang {
                    Lang::En => format!(
                        "{} that answered RST to SYN ({p}) gave no response to {s} {t} probes, \
                         even after retries. A closed port answers them with RST \
                         (RFC 9293 3.10.7.1), so a stateful filter drops packets that open no \
                         connection: \"open|filtered\" results of {t} on this host do not show \
                         open ports.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "SYNにRSTを返した{n}個のポート({p})が、{t}のプローブ{s}個に再送後も\
                         応答しませんでした。閉じたポートはこれらにRSTで応答する(RFC 9293 3.10.7.1)\
                         ので、接続を開かないパケットをステートフルなファイアウォールが破棄しています。\
                         このホストでの{t}の「open|filtered」はオープンポートを示しません。"
                    ),
                };
                text
            }
            HostEvidence::AckPasses { ports } => {
                let p = port_list(ports, lang);
                let n = ports.len();
                match lang {
                    Lang::En => format!(
                        "{} that gave SYN no answer ({p}) answered the ACK scan's probe with RST \
                         (unfiltered): the ACK reached the host. A stateful firewall drops an ACK \
                         that belongs to no connection; this filter let it through, so it matches \
                         the SYN flag alone, with no state (a router ACL, iptables --syn): it \
                         blocks new connections, and anything that does not look like one passes.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "SYNに応答しなかった{n}個のポート({p})が、ACKスキャンのプローブにはRSTで\
                         応答しました(unfiltered): ACKはホストに届いています。ステートフルな\
                         ファイアウォールは接続に属さないACKを破棄しますが、このフィルタは\
                         通しました。状態を持たずSYNフラグだけを見るフィルタ(ルータのACL、\
                         iptables --syn)で、新しい接続は止めても、それに見えないものは通します。"
                    ),
                }
            }
            HostEvidence::AckDropped { ports } => {
                let p = port_list(ports, lang);
                let n = ports.len();
                match lang {
                    Lang::En => format!(
                        "{} that answered SYN ({p}) gave the ACK scan's probe no answer \
                         (filtered). An ACK of no connection gets a RST from any port \
                         (RFC 9293 3.10.7), so something drops packets that belong to no \
                         connection while it lets new ones in: a stateful firewall (connection \
                         tracking), or a rule that drops every segment without SYN.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "SYNに応答した{n}個のポート({p})が、ACKスキャンのプローブには応答しません\
                         でした(filtered)。接続に属さないACKにはどのポートもRSTを返す\
                         (RFC 9293 3.10.7)ので、新しい接続は通しながら接続に属さないパケットを\
                         破棄するものがあります: ステートフルなファイアウォール(コネクション\
                         トラッキング)か、SYNのないセグメントをすべて破棄するルールです。"
                    ),
                }
            }
            HostEvidence::SilentFilter { ports: silent } => {
                let p = port_list(silent, lang);
                let n = silent.len();
                let text = match lang {
                    Lang::En => format!(
                        "SYN probes got no answer at all from {} ({p}), even after retries. \
                         A live host answers a SYN with SYN/ACK or RST, so a firewall drops these \
                         probes silently (DROP): the ports are filtered, and whether a service \
                         listens behind it is unknown.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "{n}個のポート({p})はSYNに再送後もまったく応答しませんでした。稼働中のホストは\
                         SYNにSYN/ACKかRSTで応答するので、ファイアウォールがプローブを黙って破棄(DROP)\
                         しています。これらのポートはfilteredで、奥でサービスが待ち受けているかは\
                         分かりません。"
                    ),
                };
                text
            }
            HostEvidence::DropsUdp { asked, ports } => {
                let p = port_list(ports, lang);
                let n = ports.len();
                match lang {
                    Lang::En => format!(
                        "Not one of the {asked} UDP ports asked answered ICMP port unreachable, \
                         and {} ({p}) stayed silent, even after paced retries. A closed UDP port \
                         answers with port unreachable (RFC 1122 4.1.3.1), and most ports of a \
                         host are closed, so a firewall drops UDP to this host (or the ICMP \
                         errors back): its open|filtered ports say nothing about services.",
                        n_ports(n),
                    ),
                    Lang::Ja => format!(
                        "問い合わせたUDPポート{asked}個のどれからもICMPポート到達不能が返らず、\
                         {n}個のポート({p})は間隔をあけた再送後も無応答でした。閉じたUDPポートは\
                         ポート到達不能で応答し(RFC 1122 4.1.3.1)、ホストのポートの大半は閉じて\
                         いるので、ファイアウォールがこのホストへのUDP(または返るICMPエラー)を\
                         破棄しています。open|filteredのポートはサービスの有無を示しません。"
                    ),
                }
            }
            HostEvidence::IcmpFilter { ports, codes } => {
                let each: Vec<String> = codes
                    .iter()
                    .map(|(&code, (replies, p))| {
                        let word = Reason::Unreachable(code).as_str();
                        let list = port_list(p, lang);
                        // ICMPv6's codes are its own (RFC 4443 3.1).
                        let (icmp, code) = match code & crate::wire::ICMPV6_CODE {
                            0 => ("code", code),
                            _ => ("ICMPv6 code", code & !crate::wire::ICMPV6_CODE),
                        };
                        match lang {
                            Lang::En => format!(
                                "{word} ({icmp} {code}): {} from {} {list}",
                                plural(*replies, "reply", "replies"),
                                if p.len() == 1 { "port" } else { "ports" },
                            ),
                            Lang::Ja => {
                                let icmp = if icmp == "code" {
                                    "コード"
                                } else {
                                    "ICMPv6コード"
                                };
                                format!("ポート{list}から{word}({icmp}{code})が{replies}件")
                            }
                        }
                    })
                    .collect();
                let p = port_list(ports, lang);
                let n = ports.len();
                // A scan's techniques share one protocol: what the port
                // would have answered with.
                let proto = match techniques.first().map(|t| t.protocol) {
                    Some(Protocol::Udp) => "UDP",
                    _ => "TCP",
                };
                let text = match lang {
                    Lang::En => format!(
                        "{} ({p}) answered with ICMP destination unreachable instead of {proto}: {}. \
                         A firewall or router rejects these probes and says so (REJECT): the ports \
                         are filtered.",
                        n_ports(n),
                        each.join("; "),
                    ),
                    Lang::Ja => format!(
                        "{n}個のポート({p})は{proto}ではなくICMP到達不能(destination unreachable)で\
                         応答しました: {}。ファイアウォールかルータがプローブを拒否(REJECT)して\
                         通知しています。これらのポートはfilteredです。",
                        each.join("、"),
                    ),
                };
                text
            }
            HostEvidence::SynProxy { answered: n } => {
                let n = *n;
                let text = match lang {
                    Lang::En => format!(
                        "All {n} probed ports answered SYN/ACK to SYN. A real host almost never \
                         listens on every port, so a SYN proxy, tarpit or firewall is likely \
                         answering for it: the open results are suspect until a full connection or \
                         a service reply confirms them. This finding covers every probed port, so \
                         its port list is empty."
                    ),
                    Lang::Ja => format!(
                        "調べた{n}個のポートすべてがSYNにSYN/ACKを返しました。実際のホストが全ポートで\
                         待ち受けることはまずないため、SYNプロキシ、ターピット、またはファイアウォールが\
                         代わりに応答している可能性が高く、オープンポートという結果は、完全な接続や\
                         サービスの応答で確かめるまで疑わしいものです。この所見は調べた全ポートに\
                         当てはまるため、ポート一覧は空です。"
                    ),
                };
                text
            }
        }
    }

    /// The finding as the outputs carry it, in `lang`.
    pub fn render(self, techniques: &[Technique], lang: Lang) -> HostFinding {
        HostFinding {
            id: self.id(),
            text: self.text(techniques, lang),
            ports: match self {
                HostEvidence::Rfc793 { open_silent, .. } => open_silent.ports,
                HostEvidence::ResetsNonSyn(e) | HostEvidence::DropsNonSyn(e) => e.ports,
                HostEvidence::SilentFilter { ports }
                | HostEvidence::AckPasses { ports }
                | HostEvidence::AckDropped { ports }
                | HostEvidence::DropsUdp { ports, .. }
                | HostEvidence::IcmpFilter { ports, .. } => ports,
                HostEvidence::SynProxy { .. } => Vec::new(),
            },
        }
    }
}

/// The host's findings in words: [`host_evidence`] rendered in `lang`.
pub fn host_findings(rows: &[PortRow], techniques: &[Technique], lang: Lang) -> Vec<HostFinding> {
    host_evidence(rows, techniques)
        .into_iter()
        .map(|e| e.render(techniques, lang))
        .collect()
}

/// The `rst-rate-limit` or `icmp-rate-limit` finding: what the limiter
/// cost, what stays unconfirmed, and how to confirm it.
pub fn rate_limit_finding(limit: &RateLimit, unconfirmed: Vec<u16>, lang: Lang) -> HostFinding {
    let what = match (limit.kind, lang) {
        (LimitKind::Rst, Lang::En) => "RSTs",
        (LimitKind::Icmp, Lang::En) => "ICMP errors",
        (LimitKind::Rst, Lang::Ja) => "RST",
        (LimitKind::Icmp, Lang::Ja) => "ICMPエラー",
    };
    let rate = match (limit.rate, lang) {
        (Some(r), Lang::En) => format!("about {r:.1} a second"),
        (Some(r), Lang::Ja) => format!("毎秒約{r:.1}個"),
        (None, Lang::En) => "too few to measure a rate".to_string(),
        (None, Lang::Ja) => "少なすぎて速度は測れず".to_string(),
    };
    let need = limit.time_to_confirm().as_secs_f64().ceil() as u64 + 5;
    let budget = limit.budget.as_secs();
    let ports = port_list(&unconfirmed, lang);
    if limit.budget.is_zero() {
        let n = limit.unconfirmed as usize;
        let text = match lang {
            Lang::En => format!(
                "This host sends {what}, which hosts commonly rate-limit, and \
                 --limit-budget 0 confirms nothing: {} that stayed silent may be the \
                 limiter's, not a firewall's. Their state is unconfirmed (rate_limited): \
                 {ports}. Confirming them takes about {need} s: --limit-budget {need}.",
                plural(n, "probe", "probes"),
            ),
            Lang::Ja => format!(
                "このホストは{what}を送ります。{what}は多くのホストが送信数を制限しますが、\
                 --limit-budget 0 のため確認していません: 無応答のプローブ{n}個はファイアウォール\
                 ではなく制限のせいかもしれません。その状態は未確認(rate_limited)です: {ports}。\
                 確認には約{need}秒: --limit-budget {need}。"
            ),
        };
        return HostFinding {
            id: limit.kind.finding_id(),
            ports: unconfirmed,
            text,
        };
    }
    let text =
        match lang {
            Lang::En => {
                let mut t =
                    format!(
                "This host limits the {what} it sends ({rate}): past its limit a probe gets \
                 no answer, exactly as if a firewall dropped it. {} sent again, paced to \
                 that rate, and {} of them answered.",
                plural(limit.paced as usize, "silent probe was", "silent probes were"),
                limit.confirmed
            );
                let at_budget = limit.unconfirmed - limit.out_of_tries.min(limit.unconfirmed);
                if limit.out_of_tries > 0 {
                    t.push_str(&format!(
                        " {} stayed silent through all their paced tries while the host answered \
                     others.",
                        plural(limit.out_of_tries as usize, "probe", "probes"),
                    ));
                }
                if at_budget > 0 && limit.stopped {
                    t.push_str(&format!(
                        " {} stayed silent when the scan was interrupted; confirming them \
                     takes about {need} s.",
                        plural(at_budget as usize, "probe", "probes"),
                    ));
                } else if at_budget > 0 {
                    t.push_str(&format!(
                        " {} stayed silent when the {budget} s budget ended; confirming them \
                     takes about {need} s more: --limit-budget {}.",
                        plural(at_budget as usize, "probe", "probes"),
                        budget + need
                    ));
                }
                if limit.unconfirmed > 0 {
                    t.push_str(&format!(
                    " Their state is unconfirmed (rate_limited), not evidence of a filter: {ports}."
                ));
                }
                t
            }
            Lang::Ja => {
                let mut t = format!(
                    "このホストは送る{what}の数を制限しています({rate})。上限を超えたプローブには\
                 応答がなく、ファイアウォールが破棄した場合と見分けがつきません。\
                 応答のなかったプローブ{}個をその速度に合わせて送り直し、{}個に応答がありました。",
                    limit.paced, limit.confirmed
                );
                let at_budget = limit.unconfirmed - limit.out_of_tries.min(limit.unconfirmed);
                if limit.out_of_tries > 0 {
                    t.push_str(&format!(
                    "{}個は、ホストが他に応答している間、間隔を空けた再送すべてに無応答でした。",
                    limit.out_of_tries
                ));
                }
                if at_budget > 0 && limit.stopped {
                    t.push_str(&format!(
                        "スキャンが中断された時点で{at_budget}個が無応答のままです。\
                     確認するには約{need}秒かかります。"
                    ));
                } else if at_budget > 0 {
                    t.push_str(&format!(
                        "{budget}秒の予算が尽きた時点で{at_budget}個が無応答のままです。\
                     確認するにはあと約{need}秒: --limit-budget {}。",
                        budget + need
                    ));
                }
                if limit.unconfirmed > 0 {
                    t.push_str(&format!(
                        "その状態は未確認(rate_limited)で、フィルタの証拠ではありません: {ports}。"
                    ));
                }
                t
            }
        };
    HostFinding {
        id: limit.kind.finding_id(),
        ports: unconfirmed,
        text,
    }
}

/// A one-line title for a finding id, for headings. An unknown id gets a
/// generic title.
pub fn narrate_id(id: &str, lang: Lang) -> &'static str {
    match (id, lang) {
        ("rfc793", Lang::En) => "Follows RFC 793: FIN/NULL/Xmas results are trustworthy",
        ("rfc793", Lang::Ja) => "RFC 793どおり: FIN/NULL/Xmasスキャンの結果は信頼できる",
        ("resets-non-syn", Lang::En) => "Open ports reset non-SYN probes",
        ("resets-non-syn", Lang::Ja) => "オープンポートが非SYNプローブにRSTを返す",
        ("drops-non-syn", Lang::En) => "A stateful firewall drops non-SYN probes",
        ("drops-non-syn", Lang::Ja) => "ステートフルなファイアウォールが非SYNプローブを破棄",
        ("ack-passes", Lang::En) => "A stateless filter blocks SYN only: ACK passes",
        ("ack-passes", Lang::Ja) => "状態を持たないフィルタがSYNだけを遮断: ACKは通過",
        ("ack-dropped", Lang::En) => "Packets of no connection are dropped: ACK filtered",
        ("ack-dropped", Lang::Ja) => "接続に属さないパケットを破棄: ACKはfiltered",
        ("silent-filter", Lang::En) => "A firewall drops probes silently",
        ("silent-filter", Lang::Ja) => "ファイアウォールがプローブを黙って破棄",
        ("drops-udp", Lang::En) => "A firewall drops UDP: no port answered closed",
        ("drops-udp", Lang::Ja) => "ファイアウォールがUDPを破棄: closedと答えるポートがない",
        ("icmp-filter", Lang::En) => "Probes rejected with ICMP unreachable",
        ("icmp-filter", Lang::Ja) => "ICMP到達不能でプローブを拒否",
        ("rst-rate-limit", Lang::En) => "The host rate-limits its RSTs",
        ("rst-rate-limit", Lang::Ja) => "ホストがRSTの送信数を制限",
        ("icmp-rate-limit", Lang::En) => "The host rate-limits its ICMP errors",
        ("icmp-rate-limit", Lang::Ja) => "ホストがICMPエラーの送信数を制限",
        ("families-differ", Lang::En) => "IPv4 and IPv6 of one name answer differently",
        ("families-differ", Lang::Ja) => "同じ名前のIPv4とIPv6で応答が異なる",
        ("syn-proxy", Lang::En) => "Every port answers SYN/ACK: SYN proxy or tarpit likely",
        ("syn-proxy", Lang::Ja) => "全ポートがSYN/ACK: SYNプロキシかターピットの疑い",
        (_, Lang::En) => "Finding",
        (_, Lang::Ja) => "所見",
    }
}

/// Plain words for the verdict column of one port (under 60 characters).
pub fn verdict(row: &PortRow, techniques: &[Technique], lang: Lang) -> String {
    let roles = Roles::of(techniques);
    let ns = NonSyn::of(row, &roles);
    let en = lang == Lang::En;
    let pick = |e: &str, j: &str| if en { e.to_string() } else { j.to_string() };
    let icmp = |code: u8| Reason::Unreachable(code).as_str();
    let not_concluded = || pick("not concluded (scan interrupted)", "未確定(スキャン中断)");

    let Some(syn_col) = roles.syn else {
        if roles.non_syn.is_empty() {
            // Neither SYN nor non-SYN probes (ACK-type techniques only):
            // the first concluded answer in nmap's words.
            return match row.findings.iter().flatten().next() {
                Some(f) => format!("{} ({})", f.state, f.reason),
                None => not_concluded(),
            };
        }
        return if ns.concluded == 0 {
            not_concluded()
        } else if let Some(&code) = ns.icmp.first() {
            format!("filtered: ICMP {}", icmp(code))
        } else if ns.reset.len() == ns.concluded {
            "closed".to_string()
        } else if ns.all_silent() {
            pick(
                "open|filtered: no reply (open or dropped)",
                "open|filtered: 応答なし(オープンか破棄)",
            )
        } else {
            pick(
                "mixed: RST to some probes, silence to others",
                "不一致: 一部のプローブにRST、ほかは無応答",
            )
        };
    };

    let Some(syn) = at(row, syn_col) else {
        return not_concluded();
    };
    match syn.reason {
        Reason::SynAck if !ns.reset.is_empty() => pick(
            "open, but resets non-SYN probes",
            "open(ただし非SYNプローブにRST)",
        ),
        Reason::SynAck if !ns.icmp.is_empty() => match lang {
            Lang::En => format!("open, but non-SYN probes get ICMP {}", icmp(ns.icmp[0])),
            Lang::Ja => format!("open(非SYNプローブにはICMP {})", icmp(ns.icmp[0])),
        },
        Reason::SynAck if ns.all_silent() => pick(
            "open (FIN/NULL/Xmas silent, as RFC 793 says)",
            "open(FIN/NULL/Xmasに無応答: RFC 793どおり)",
        ),
        Reason::SynAck => "open".to_string(),
        Reason::Reset if ns.reset.is_empty() && !ns.icmp.is_empty() => match lang {
            Lang::En => format!("closed to SYN, ICMP {} to non-SYN", icmp(ns.icmp[0])),
            Lang::Ja => format!("SYNにはclosed、非SYNにはICMP {}", icmp(ns.icmp[0])),
        },
        Reason::Reset if ns.all_silent() => pick(
            "closed to SYN, non-SYN dropped: stateful filter",
            "SYNにはclosed、非SYNは破棄: ステートフルフィルタ",
        ),
        Reason::Reset | Reason::ConnRefused => "closed".to_string(),
        Reason::NoResponse if !ns.reset.is_empty() => pick(
            "SYN dropped, non-SYN reset: filter blocks SYN only",
            "SYNは破棄、非SYNにはRST: SYNだけを遮断するフィルタ",
        ),
        Reason::NoResponse => pick("filtered: dropped silently", "filtered: 黙って破棄"),
        Reason::Unreachable(code) => format!("filtered: ICMP {}", icmp(code)),
        // Not a SYN scan's answer.
        Reason::UdpResponse => "open".to_string(),
    }
}

/// Upper-case names of the techniques in `set`, in scan order: "FIN, NULL, XMAS".
fn tech_names(techniques: &[Technique], set: &BTreeSet<usize>, lang: Lang) -> String {
    let names: Vec<String> = set
        .iter()
        .filter_map(|&i| techniques.get(i))
        .map(|t| t.name.to_uppercase())
        .collect();
    names.join(match lang {
        Lang::En => ", ",
        Lang::Ja => "、",
    })
}

/// "1 port", "3 ports".
fn n_ports(n: usize) -> String {
    plural(n, "port", "ports")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `families-differ`: one name's IPv4 and IPv6 addresses, scanned
/// together, answer some port differently (a technique concludes two
/// states). `rows` are this address's, `other_rows` the other family's,
/// both over the same ports; ports a rate limiter left unconfirmed on
/// either side are not compared. `None` where every port agrees.
pub fn families_finding(
    name: &str,
    (this, other): (std::net::IpAddr, std::net::IpAddr),
    rows: &[PortRow],
    other_rows: &[PortRow],
    techniques: &[Technique],
    lang: Lang,
) -> Option<HostFinding> {
    let mut ports = Vec::new();
    let mut example: Option<(u16, usize, PortState, PortState)> = None;
    for (a, b) in rows.iter().zip(other_rows) {
        if a.port != b.port || a.limited || b.limited {
            continue;
        }
        let differs = a
            .findings
            .iter()
            .zip(b.findings)
            .enumerate()
            .find_map(|(t, (x, y))| {
                let (x, y) = (x.as_ref()?, y.as_ref()?);
                (x.state != y.state).then_some((t, x.state, y.state))
            });
        if let Some((t, x, y)) = differs {
            ports.push(a.port);
            example.get_or_insert((a.port, t, x, y));
        }
    }
    let (port, t, mine, theirs) = example?;
    let (v4, v6, s4, s6) = if this.is_ipv4() {
        (this, other, mine, theirs)
    } else {
        (other, this, theirs, mine)
    };
    let technique = techniques.get(t).map_or("?", |t| t.name.as_str());
    let list = port_list(&ports, lang);
    let text = match lang {
        Lang::En => format!(
            "{name} is {v4} and {v6}, and they answer differently on {list}: port {port} \
             ({technique}) is {s4} over IPv4 and {s6} over IPv6. A firewall written for one \
             family only leaves the other as it was."
        ),
        Lang::Ja => format!(
            "{name} は {v4} と {v6} で、{list} の応答が異なる: ポート{port}({technique})は \
             IPv4で{s4}、IPv6で{s6}。片方のアドレスファミリだけに書かれたファイアウォールは、\
             もう片方を素通しにする。"
        ),
    };
    Some(HostFinding {
        id: "families-differ",
        ports,
        text,
    })
}

/// Sorted, deduplicated ports as text; runs of three or more fold into a
/// range ("22, 80, 8000-8002"); past [`MAX_LISTED`] items the rest is counted.
fn port_list(ports: &[u16], lang: Lang) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &p in ports {
        match runs.last_mut() {
            Some((_, hi)) if p == *hi => {}
            Some((_, hi)) if Some(p) == hi.checked_add(1) => *hi = p,
            _ => runs.push((p, p)),
        }
    }
    let mut items: Vec<String> = Vec::new();
    for (lo, hi) in runs {
        match hi - lo {
            0 => items.push(lo.to_string()),
            1 => items.extend([lo.to_string(), hi.to_string()]),
            _ => items.push(format!("{lo}-{hi}")),
        }
    }
    if items.len() <= MAX_LISTED {
        return items.join(", ");
    }
    let shown = items[..MAX_LISTED].join(", ");
    let listed: usize = items[..MAX_LISTED]
        .iter()
        .map(|s| match s.split_once('-') {
            Some((lo, hi)) => {
                hi.parse::<usize>().unwrap_or(0) - lo.parse::<usize>().unwrap_or(0) + 1
            }
            None => 1,
        })
        .sum();
    let rest = ports.len().saturating_sub(listed);
    match lang {
        Lang::En => format!("{shown} and {rest} more"),
        Lang::Ja => format!("{shown} ほか{rest}個"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::technique::{builtin_by_name, PortState};

    fn techs(names: &[&str]) -> Vec<Technique> {
        names.iter().map(|n| builtin_by_name(n).unwrap()).collect()
    }

    fn four() -> Vec<Technique> {
        techs(&["syn", "fin", "null", "xmas"])
    }

    const SYNACK: Finding = Finding {
        state: PortState::Open,
        reason: Reason::SynAck,
        ttl: Some(64),
    };
    const RST: Finding = Finding {
        state: PortState::Closed,
        reason: Reason::Reset,
        ttl: Some(64),
    };
    /// SYN got nothing.
    const SILENT_SYN: Finding = Finding {
        state: PortState::Filtered,
        reason: Reason::NoResponse,
        ttl: None,
    };
    /// A non-SYN probe got nothing.
    const SILENT: Finding = Finding {
        state: PortState::OpenFiltered,
        reason: Reason::NoResponse,
        ttl: None,
    };
    fn icmp(code: u8) -> Finding {
        Finding {
            state: PortState::Filtered,
            reason: Reason::Unreachable(code),
            ttl: Some(63),
        }
    }

    /// One row of the four-technique scan: SYN's answer, then FIN/NULL/Xmas.
    fn row4(syn: Finding, non_syn: Finding) -> Vec<Option<Finding>> {
        vec![Some(syn), Some(non_syn), Some(non_syn), Some(non_syn)]
    }

    type Table = Vec<(u16, Vec<Option<Finding>>)>;

    fn rows(table: &Table) -> Vec<PortRow<'_>> {
        table
            .iter()
            .map(|(port, f)| PortRow {
                port: *port,
                findings: f,
                limited: false,
            })
            .collect()
    }

    fn ids(f: &[HostFinding]) -> Vec<&'static str> {
        f.iter().map(|f| f.id).collect()
    }

    fn get<'a>(f: &'a [HostFinding], id: &str) -> &'a HostFinding {
        f.iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no {id} in {:?}", ids(f)))
    }

    /// Open 22/80 silent to FIN/NULL/Xmas, every other port resets all.
    fn rfc793_host() -> Table {
        let mut t: Table = vec![(22, row4(SYNACK, SILENT)), (80, row4(SYNACK, SILENT))];
        for p in [21, 23, 25, 443] {
            t.push((p, row4(RST, RST)));
        }
        t
    }

    /// Open 22/80 answer RST to everything but SYN; 21/23 closed.
    fn resetting_host() -> Table {
        vec![
            (80, row4(SYNACK, RST)),
            (21, row4(RST, RST)),
            (22, row4(SYNACK, RST)),
            (23, row4(RST, RST)),
        ]
    }

    /// An RFC 793 host behind a firewall: DROP on 135, REJECT with ICMP 3
    /// on 111 and ICMP 13 on 445, a stateful rule on 8000-8002; rows given
    /// out of order.
    fn firewalled_host() -> Table {
        vec![
            (8002, row4(RST, SILENT)),
            (445, row4(icmp(13), icmp(13))),
            (22, row4(SYNACK, SILENT)),
            (135, row4(SILENT_SYN, SILENT)),
            (8000, row4(RST, SILENT)),
            (111, row4(icmp(3), icmp(3))),
            (80, row4(SYNACK, SILENT)),
            (23, row4(RST, RST)),
            (8001, row4(RST, SILENT)),
        ]
    }

    fn syn_proxy_host(ports: u16) -> Table {
        (1..=ports).map(|p| (p, row4(SYNACK, SILENT))).collect()
    }

    #[test]
    fn rfc793_host_gives_exactly_rfc793() {
        let t = rfc793_host();
        let f = host_findings(&rows(&t), &four(), Lang::En);
        assert_eq!(ids(&f), ["rfc793"]);
        assert_eq!(f[0].ports, [22, 80]);
        assert_eq!(
            f[0].text,
            "Non-SYN probes are answered as RFC 793 says (RFC 9293 3.10.7): 2 ports that \
             answered SYN/ACK (22, 80) stayed silent to all 6 FIN, NULL, XMAS probes, and 4 \
             ports that answered RST to SYN (21, 23, 25, 443) answered RST to FIN, NULL, XMAS \
             too (12 RSTs). FIN, NULL and Xmas results can be trusted on this host, except on \
             ports another finding names."
        );
        let ja = host_findings(&rows(&t), &four(), Lang::Ja);
        assert_eq!(ids(&ja), ["rfc793"]);
        assert_eq!(ja[0].ports, [22, 80]);
        assert_eq!(
            ja[0].text,
            "非SYNプローブへの応答はRFC 793(RFC 9293 3.10.7)どおりです: SYN/ACKを返した2個の\
             ポート(22, 80)はFIN、NULL、XMASのプローブ6個すべてに応答せず、SYNにRSTを返した\
             4個のポート(21, 23, 25, 443)はFIN、NULL、XMASにもRSTを返しました(RST 12個)。\
             ほかの所見が挙げるポートを除き、このホストではFINスキャン、NULLスキャン、\
             Xmas Treeスキャンの結果を信頼できます。"
        );
    }

    /// UDP: one open port and six silent, none closed, is a host whose UDP
    /// is dropped; one closed port among them, or the silences marked as
    /// the limiter's, or too few ports, and it is not.
    #[test]
    fn silent_udp_with_no_closed_port_gives_drops_udp() {
        let udp = techs(&["udp"]);
        let open = Finding {
            state: PortState::Open,
            reason: Reason::UdpResponse,
            ttl: Some(64),
        };
        let closed = Finding {
            state: PortState::Closed,
            reason: Reason::Unreachable(3),
            ttl: Some(64),
        };
        let mut t: Table = vec![(53, vec![Some(open)])];
        t.extend((100..106).map(|p| (p, vec![Some(SILENT)])));
        let f = host_findings(&rows(&t), &udp, Lang::En);
        assert_eq!(ids(&f), ["drops-udp"]);
        assert_eq!(f[0].ports, [100, 101, 102, 103, 104, 105]);
        assert!(
            f[0].text.starts_with("Not one of the 7 UDP ports asked"),
            "{}",
            f[0].text
        );
        let ja = host_findings(&rows(&t), &udp, Lang::Ja);
        assert_eq!(ids(&ja), ["drops-udp"]);

        let mut one_closed = t.clone();
        one_closed.push((7, vec![Some(closed)]));
        assert!(host_findings(&rows(&one_closed), &udp, Lang::En).is_empty());
        let marked: Vec<PortRow> = rows(&t)
            .into_iter()
            .map(|r| PortRow {
                limited: r.port != 53,
                ..r
            })
            .collect();
        assert!(host_findings(&marked, &udp, Lang::En).is_empty());
        assert!(host_findings(&rows(&t[..5].to_vec()), &udp, Lang::En).is_empty());
        // In a pass with TCP, a TCP-only port (no UDP finding) is not asked.
        let mixed = techs(&["syn", "udp"]);
        let mut m: Table = t.iter().map(|(p, f)| (*p, vec![Some(RST), f[0]])).collect();
        m.push((22, vec![Some(SYNACK), None]));
        assert!(
            get(&host_findings(&rows(&m), &mixed, Lang::En), "drops-udp")
                .text
                .contains("the 7 UDP ports")
        );
    }

    #[test]
    fn rfc793_needs_both_kinds_of_evidence() {
        // Only open ports, or only closed ones: no comparison to make.
        let open: Table = vec![(22, row4(SYNACK, SILENT))];
        assert!(host_findings(&rows(&open), &four(), Lang::En).is_empty());
        let closed: Table = vec![(23, row4(RST, RST))];
        assert!(host_findings(&rows(&closed), &four(), Lang::En).is_empty());
    }

    #[test]
    fn resetting_host_gives_resets_non_syn_and_no_rfc793() {
        let t = resetting_host();
        let f = host_findings(&rows(&t), &four(), Lang::En);
        assert_eq!(ids(&f), ["resets-non-syn"]);
        assert_eq!(f[0].ports, [22, 80]);
        assert_eq!(
            f[0].text,
            "2 ports that answered SYN/ACK to SYN (22, 80) answered RST to FIN, NULL, XMAS \
             probes (6 of 6 probes reset). RFC 793 says a listening port drops such segments, \
             so this is a stack that resets regardless (Windows, many Cisco devices) or a \
             firewall that resets: the \"closed\" results of FIN, NULL, XMAS are unreliable on \
             this host."
        );
        let ja = host_findings(&rows(&t), &four(), Lang::Ja);
        assert_eq!(ids(&ja), ["resets-non-syn"]);
        assert_eq!(
            ja[0].text,
            "SYNにSYN/ACKを返した2個のポート(22, 80)がFIN、NULL、XMASのプローブにRSTを返しました\
             (プローブ6個中6個)。RFC 793では待ち受け中のポートはこうしたセグメントを破棄するはずなので、\
             これは常にRSTを返すスタック(Windows、多くのCisco機器)か、RSTを返すファイアウォールです。\
             このホストではFIN、NULL、XMASの「closed」は信頼できません。"
        );
    }

    #[test]
    fn one_resetting_port_suppresses_rfc793() {
        let mut t = rfc793_host();
        // 443 is open to SYN, and only the Xmas probe got a RST there.
        t.retain(|(p, _)| *p != 443);
        t.push((
            443,
            vec![Some(SYNACK), Some(SILENT), Some(SILENT), Some(RST)],
        ));
        let f = host_findings(&rows(&t), &four(), Lang::En);
        assert_eq!(ids(&f), ["resets-non-syn"]);
        assert_eq!(f[0].ports, [443]);
        assert!(
            f[0].text.starts_with(
                "1 port that answered SYN/ACK to SYN (443) answered RST to XMAS probes \
                 (1 of 3 probes reset)."
            ),
            "{}",
            f[0].text
        );
    }

    #[test]
    fn firewalled_host_gives_drops_silent_and_icmp_with_the_right_ports() {
        let t = firewalled_host();
        let f = host_findings(&rows(&t), &four(), Lang::En);
        assert_eq!(
            ids(&f),
            ["rfc793", "drops-non-syn", "silent-filter", "icmp-filter"]
        );
        assert_eq!(get(&f, "rfc793").ports, [22, 80]);
        assert_eq!(get(&f, "drops-non-syn").ports, [8000, 8001, 8002]);
        assert_eq!(get(&f, "silent-filter").ports, [135]);
        assert_eq!(get(&f, "icmp-filter").ports, [111, 445]);

        assert_eq!(
            get(&f, "drops-non-syn").text,
            "3 ports that answered RST to SYN (8000-8002) gave no response to 9 FIN, NULL, \
             XMAS probes, even after retries. A closed port answers them with RST \
             (RFC 9293 3.10.7.1), so a stateful filter drops packets that open no connection: \
             \"open|filtered\" results of FIN, NULL, XMAS on this host do not show open ports."
        );
        assert_eq!(
            get(&f, "silent-filter").text,
            "SYN probes got no answer at all from 1 port (135), even after retries. A live \
             host answers a SYN with SYN/ACK or RST, so a firewall drops these probes silently \
             (DROP): the ports are filtered, and whether a service listens behind it is \
             unknown."
        );
        assert_eq!(
            get(&f, "icmp-filter").text,
            "2 ports (111, 445) answered with ICMP destination unreachable instead of TCP: \
             port-unreach (code 3): 4 replies from port 111; admin-prohibited (code 13): 4 \
             replies from port 445. A firewall or router rejects these probes and says so \
             (REJECT): the ports are filtered."
        );

        let ja = host_findings(&rows(&t), &four(), Lang::Ja);
        assert_eq!(ids(&ja), ids(&f));
        for (a, b) in f.iter().zip(&ja) {
            assert_eq!(a.ports, b.ports, "{}", a.id);
        }
        assert_eq!(
            get(&ja, "drops-non-syn").text,
            "SYNにRSTを返した3個のポート(8000-8002)が、FIN、NULL、XMASのプローブ9個に再送後も\
             応答しませんでした。閉じたポートはこれらにRSTで応答する(RFC 9293 3.10.7.1)ので、\
             接続を開かないパケットをステートフルなファイアウォールが破棄しています。\
             このホストでのFIN、NULL、XMASの「open|filtered」はオープンポートを示しません。"
        );
        assert_eq!(
            get(&ja, "silent-filter").text,
            "1個のポート(135)はSYNに再送後もまったく応答しませんでした。稼働中のホストはSYNに\
             SYN/ACKかRSTで応答するので、ファイアウォールがプローブを黙って破棄(DROP)しています。\
             これらのポートはfilteredで、奥でサービスが待ち受けているかは分かりません。"
        );
        assert_eq!(
            get(&ja, "icmp-filter").text,
            "2個のポート(111, 445)はTCPではなくICMP到達不能(destination unreachable)で\
             応答しました: ポート111からport-unreach(コード3)が4件、ポート445から\
             admin-prohibited(コード13)が4件。ファイアウォールかルータがプローブを拒否(REJECT)\
             して通知しています。これらのポートはfilteredです。"
        );
    }

    /// SYN and ACK scans side by side: where SYN is dropped but the ACK
    /// reaches the host, the filter has no state; where SYN is answered but
    /// the ACK is dropped, packets of no connection are. Ports that agree
    /// (both dropped, both answered) say neither.
    #[test]
    fn the_ack_scan_tells_a_filter_on_flags_from_one_with_state() {
        let unfiltered = Finding {
            state: PortState::Unfiltered,
            reason: Reason::Reset,
            ttl: Some(64),
        };
        let ack_silent = SILENT_SYN;
        let t: Table = vec![
            (22, vec![Some(SYNACK), Some(unfiltered)]),
            (23, vec![Some(RST), Some(unfiltered)]),
            (25, vec![Some(SILENT_SYN), Some(unfiltered)]),
            (26, vec![Some(SILENT_SYN), Some(unfiltered)]),
            (135, vec![Some(SILENT_SYN), Some(ack_silent)]),
            (8000, vec![Some(RST), Some(ack_silent)]),
            (8080, vec![Some(SYNACK), Some(ack_silent)]),
        ];
        let techs = techs(&["syn", "ack"]);
        let f = host_findings(&rows(&t), &techs, Lang::En);
        assert_eq!(ids(&f), ["ack-passes", "ack-dropped", "silent-filter"]);
        assert_eq!(get(&f, "ack-passes").ports, [25, 26]);
        assert_eq!(get(&f, "ack-dropped").ports, [8000, 8080]);
        assert_eq!(
            get(&f, "ack-passes").text,
            "2 ports that gave SYN no answer (25, 26) answered the ACK scan's probe with RST \
             (unfiltered): the ACK reached the host. A stateful firewall drops an ACK that \
             belongs to no connection; this filter let it through, so it matches the SYN flag \
             alone, with no state (a router ACL, iptables --syn): it blocks new connections, \
             and anything that does not look like one passes."
        );
        assert_eq!(
            get(&f, "ack-dropped").text,
            "2 ports that answered SYN (8000, 8080) gave the ACK scan's probe no answer \
             (filtered). An ACK of no connection gets a RST from any port (RFC 9293 3.10.7), \
             so something drops packets that belong to no connection while it lets new ones \
             in: a stateful firewall (connection tracking), or a rule that drops every segment \
             without SYN."
        );
        let ja = host_findings(&rows(&t), &techs, Lang::Ja);
        assert_eq!(ids(&ja), ids(&f));
        assert!(get(&ja, "ack-passes").text.contains("iptables --syn"));
        // The Window scan carries ACK too, but its RST is no "unfiltered":
        // it is not the ACK scan.
        let window = host_findings(&rows(&t), &techs_named(&["syn", "window"]), Lang::En);
        assert!(!ids(&window).contains(&"ack-passes"), "{:?}", ids(&window));
        // Without SYN beside it, the ACK scan alone compares nothing.
        let alone: Table = t.iter().map(|(p, f)| (*p, vec![f[1]])).collect();
        assert!(host_findings(&rows(&alone), &techs_named(&["ack"]), Lang::En).is_empty());
    }

    fn techs_named(names: &[&str]) -> Vec<Technique> {
        techs(names)
    }

    #[test]
    fn syn_proxy_host_is_flagged_above_the_threshold_only() {
        let n = SYN_PROXY_MIN_PORTS as u16;
        let t = syn_proxy_host(n + 10);
        let f = host_findings(&rows(&t), &four(), Lang::En);
        assert_eq!(ids(&f), ["syn-proxy"]);
        assert!(f[0].ports.is_empty());
        assert_eq!(
            f[0].text,
            "All 30 probed ports answered SYN/ACK to SYN. A real host almost never listens on \
             every port, so a SYN proxy, tarpit or firewall is likely answering for it: the \
             open results are suspect until a full connection or a service reply confirms \
             them. This finding covers every probed port, so its port list is empty."
        );
        let ja = host_findings(&rows(&t), &four(), Lang::Ja);
        assert_eq!(
            ja[0].text,
            "調べた30個のポートすべてがSYNにSYN/ACKを返しました。実際のホストが全ポートで\
             待ち受けることはまずないため、SYNプロキシ、ターピット、またはファイアウォールが\
             代わりに応答している可能性が高く、オープンポートという結果は、完全な接続や\
             サービスの応答で確かめるまで疑わしいものです。この所見は調べた全ポートに\
             当てはまるため、ポート一覧は空です。"
        );

        // Exactly at the threshold: reported; one below: not.
        let at_min = syn_proxy_host(n);
        assert_eq!(
            ids(&host_findings(&rows(&at_min), &four(), Lang::En)),
            ["syn-proxy"]
        );
        let small = syn_proxy_host(n - 1);
        assert!(host_findings(&rows(&small), &four(), Lang::En).is_empty());
        // One closed port among many: a real host.
        let mut real = syn_proxy_host(n + 10);
        real.push((999, row4(RST, RST)));
        assert_eq!(
            ids(&host_findings(&rows(&real), &four(), Lang::En)),
            ["rfc793"]
        );
        // A SYN-only scan can still tell a proxy.
        let syn_only: Table = (1..=n).map(|p| (p, vec![Some(SYNACK)])).collect();
        assert_eq!(
            ids(&host_findings(&rows(&syn_only), &techs(&["syn"]), Lang::En)),
            ["syn-proxy"]
        );
    }

    #[test]
    fn techniques_are_told_apart_by_flags_not_names() {
        // The same firewalled host with the columns in another order and
        // every technique renamed.
        let mut ts = techs(&["xmas", "syn", "null", "fin"]);
        for (i, t) in ts.iter_mut().enumerate() {
            t.name = format!("custom{i}");
        }
        let reorder = |f: &Vec<Option<Finding>>| vec![f[3], f[0], f[2], f[1]];
        let t: Table = firewalled_host()
            .iter()
            .map(|(p, f)| (*p, reorder(f)))
            .collect();
        let f = host_findings(&rows(&t), &ts, Lang::En);
        let orig = firewalled_host();
        let g = host_findings(&rows(&orig), &four(), Lang::En);
        assert_eq!(ids(&f), ids(&g));
        for (a, b) in f.iter().zip(&g) {
            assert_eq!(a.ports, b.ports, "{}", a.id);
        }
        assert!(get(&f, "drops-non-syn")
            .text
            .contains("9 CUSTOM0, CUSTOM2, CUSTOM3 probes"));

        // A technique carrying ACK is not a non-SYN probe.
        let mut ack = builtin_by_name("fin").unwrap();
        ack.name = "ack".into();
        ack.flags = flag::ACK;
        let ts = vec![builtin_by_name("syn").unwrap(), ack];
        let t: Table = vec![
            (22, vec![Some(SYNACK), Some(RST)]),
            (23, vec![Some(RST), Some(RST)]),
        ];
        assert!(host_findings(&rows(&t), &ts, Lang::En).is_empty());
    }

    #[test]
    fn without_syn_only_icmp_filter_and_without_non_syn_no_comparison() {
        let t: Table = firewalled_host()
            .into_iter()
            .map(|(p, f)| (p, f[1..].to_vec()))
            .collect();
        let f = host_findings(&rows(&t), &techs(&["fin", "null", "xmas"]), Lang::En);
        assert_eq!(ids(&f), ["icmp-filter"]);
        assert_eq!(f[0].ports, [111, 445]);
        assert!(f[0]
            .text
            .contains("port-unreach (code 3): 3 replies from port 111"));

        let t: Table = firewalled_host()
            .into_iter()
            .map(|(p, f)| (p, f[..1].to_vec()))
            .collect();
        let f = host_findings(&rows(&t), &techs(&["syn"]), Lang::En);
        assert_eq!(ids(&f), ["silent-filter", "icmp-filter"]);
        let t = resetting_host();
        let t: Table = t.into_iter().map(|(p, f)| (p, f[..1].to_vec())).collect();
        assert!(host_findings(&rows(&t), &techs(&["syn"]), Lang::En).is_empty());
    }

    #[test]
    fn unconcluded_probes_are_no_evidence() {
        // An interrupted scan: non-SYN probes missing on the open port.
        let t: Table = vec![
            (22, vec![Some(SYNACK), None, None, None]),
            (23, row4(RST, RST)),
            (24, vec![None, Some(RST), Some(RST), Some(RST)]),
        ];
        assert!(host_findings(&rows(&t), &four(), Lang::En).is_empty());
        // A short row (fewer findings than techniques) does not panic.
        let short: Table = vec![(22, vec![Some(SYNACK)])];
        assert!(host_findings(&rows(&short), &four(), Lang::En).is_empty());
    }

    #[test]
    fn port_lists_fold_ranges_and_stop_listing_after_a_while() {
        assert_eq!(
            port_list(&[22, 23, 80, 8000, 8001, 8002], Lang::En),
            "22, 23, 80, 8000-8002"
        );
        assert_eq!(port_list(&[65534, 65535], Lang::En), "65534, 65535");
        let many: Vec<u16> = (1..=40).map(|p| p * 2).collect();
        assert_eq!(
            port_list(&many, Lang::En),
            "2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32 and 24 more"
        );
        let mut mixed: Vec<u16> = (100..=199).collect();
        mixed.extend((1..=20).map(|p| 1000 + p * 2));
        let text = port_list(&mixed, Lang::Ja);
        assert!(text.starts_with("100-199, 1002, "), "{text}");
        assert!(text.ends_with(" ほか5個"), "{text}");
    }

    #[test]
    fn findings_serialize_as_the_host_record_wants() {
        let t = resetting_host();
        let f = host_findings(&rows(&t), &four(), Lang::En);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v[0]["id"], "resets-non-syn");
        assert_eq!(v[0]["ports"], serde_json::json!([22, 80]));
        assert_eq!(v[0]["text"], f[0].text.as_str());
        assert_eq!(v[0].as_object().unwrap().len(), 3);
    }

    #[test]
    fn verdicts_in_both_languages() {
        let four = four();
        let cases: Vec<(Vec<Option<Finding>>, &str, &str)> = vec![
            (
                row4(SYNACK, SILENT),
                "open (FIN/NULL/Xmas silent, as RFC 793 says)",
                "open(FIN/NULL/Xmasに無応答: RFC 793どおり)",
            ),
            (
                row4(SYNACK, RST),
                "open, but resets non-SYN probes",
                "open(ただし非SYNプローブにRST)",
            ),
            (
                row4(SYNACK, icmp(13)),
                "open, but non-SYN probes get ICMP admin-prohibited",
                "open(非SYNプローブにはICMP admin-prohibited)",
            ),
            (vec![Some(SYNACK), None, None, None], "open", "open"),
            (row4(RST, RST), "closed", "closed"),
            (
                row4(RST, SILENT),
                "closed to SYN, non-SYN dropped: stateful filter",
                "SYNにはclosed、非SYNは破棄: ステートフルフィルタ",
            ),
            (
                row4(RST, icmp(10)),
                "closed to SYN, ICMP host-prohibited to non-SYN",
                "SYNにはclosed、非SYNにはICMP host-prohibited",
            ),
            (
                row4(SILENT_SYN, SILENT),
                "filtered: dropped silently",
                "filtered: 黙って破棄",
            ),
            (
                row4(SILENT_SYN, RST),
                "SYN dropped, non-SYN reset: filter blocks SYN only",
                "SYNは破棄、非SYNにはRST: SYNだけを遮断するフィルタ",
            ),
            (
                row4(icmp(13), icmp(13)),
                "filtered: ICMP admin-prohibited",
                "filtered: ICMP admin-prohibited",
            ),
            (
                row4(icmp(3), icmp(3)),
                "filtered: ICMP port-unreach",
                "filtered: ICMP port-unreach",
            ),
            (
                vec![None, Some(RST), Some(RST), Some(RST)],
                "not concluded (scan interrupted)",
                "未確定(スキャン中断)",
            ),
        ];
        for (f, en, ja) in &cases {
            let row = PortRow {
                port: 1,
                findings: f,
                limited: false,
            };
            assert_eq!(verdict(&row, &four, Lang::En), *en);
            assert_eq!(verdict(&row, &four, Lang::Ja), *ja);
        }

        // Scans without a SYN technique.
        let ns = techs(&["fin", "null", "xmas"]);
        let no_syn: Vec<(Vec<Option<Finding>>, &str, &str)> = vec![
            (vec![Some(RST); 3], "closed", "closed"),
            (
                vec![Some(SILENT); 3],
                "open|filtered: no reply (open or dropped)",
                "open|filtered: 応答なし(オープンか破棄)",
            ),
            (
                vec![Some(RST), Some(SILENT), Some(RST)],
                "mixed: RST to some probes, silence to others",
                "不一致: 一部のプローブにRST、ほかは無応答",
            ),
            (
                vec![Some(icmp(9)); 3],
                "filtered: ICMP net-prohibited",
                "filtered: ICMP net-prohibited",
            ),
            (
                vec![None; 3],
                "not concluded (scan interrupted)",
                "未確定(スキャン中断)",
            ),
        ];
        for (f, en, ja) in &no_syn {
            let row = PortRow {
                port: 1,
                findings: f,
                limited: false,
            };
            assert_eq!(verdict(&row, &ns, Lang::En), *en);
            assert_eq!(verdict(&row, &ns, Lang::Ja), *ja);
        }

        // Only techniques carrying ACK: nmap's words for the first answer.
        let mut ack = builtin_by_name("fin").unwrap();
        ack.flags = flag::ACK;
        let f = vec![Some(Finding {
            state: PortState::Unfiltered,
            reason: Reason::Reset,
            ttl: Some(64),
        })];
        let row = PortRow {
            port: 1,
            findings: &f,
            limited: false,
        };
        assert_eq!(verdict(&row, &[ack], Lang::En), "unfiltered (reset)");

        for (_, en, ja) in cases.iter().chain(&no_syn) {
            assert!(en.chars().count() < 60, "{en}");
            assert!(ja.chars().count() < 60, "{ja}");
        }
    }

    #[test]
    fn every_id_has_a_title_in_both_languages() {
        for lang in [Lang::En, Lang::Ja] {
            let titles: BTreeSet<&str> = IDS.iter().map(|id| narrate_id(id, lang)).collect();
            assert_eq!(titles.len(), IDS.len(), "titles must differ");
            assert!(!titles.contains(narrate_id("no-such-id", lang)));
        }
        assert_eq!(narrate_id("no-such-id", Lang::En), "Finding");
        assert_ne!(
            narrate_id("rfc793", Lang::En),
            narrate_id("rfc793", Lang::Ja)
        );
    }

    #[test]
    fn families_differ_names_the_ports_and_skips_the_limited_ones() {
        let syn = crate::model::technique::builtin_by_name("syn").unwrap();
        let f = |state, reason| {
            Some(Finding {
                state,
                reason,
                ttl: Some(64),
            })
        };
        let closed = [f(PortState::Closed, Reason::Reset)];
        let filtered = [f(PortState::Filtered, Reason::NoResponse)];
        let open = [f(PortState::Open, Reason::SynAck)];
        let row = |port, findings, limited| PortRow {
            port,
            findings,
            limited,
        };
        let v4 = [
            row(22, &open[..], false),
            row(137, &filtered[..], false),
            row(138, &filtered[..], false),
            row(139, &filtered[..], true),
        ];
        let v6 = [
            row(22, &open[..], false),
            row(137, &closed[..], false),
            row(138, &closed[..], false),
            row(139, &closed[..], false),
        ];
        let a4: std::net::IpAddr = "10.213.1.2".parse().unwrap();
        let a6: std::net::IpAddr = "fd00:213:1::2".parse().unwrap();
        let techniques = [syn];
        let got = families_finding("web", (a6, a4), &v6, &v4, &techniques, Lang::En).unwrap();
        assert_eq!(got.id, "families-differ");
        assert_eq!(got.ports, [137, 138]);
        assert!(
            got.text
                .contains("port 137 (syn) is filtered over IPv4 and closed over IPv6"),
            "{}",
            got.text
        );
        assert!(
            families_finding("web", (a4, a6), &v4[..1], &v6[..1], &techniques, Lang::Ja).is_none()
        );
        assert!(
            !families_finding("web", (a4, a6), &v4, &v6, &techniques, Lang::Ja)
                .unwrap()
                .text
                .is_empty()
        );
    }
}
