//! Scan techniques as data.
//!
//! A technique (`scanners/*.toml`) says which TCP flags to send, where the
//! cookie goes, and how each kind of reply maps to a port state and reason.
//! The engine only ever consults this table, so adding a technique (ACK,
//! Window, Maimon) is a new file, not new code.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::error::usage;
use crate::wire::flag;
use crate::wire::ICMPV6_CODE;

/// The largest technique file read: the built-in ones are 2-4 KiB.
const MAX_FILE_BYTES: u64 = 256 << 10;

/// Port states, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum PortState {
    #[serde(rename = "open")]
    Open,
    #[serde(rename = "closed")]
    Closed,
    #[serde(rename = "filtered")]
    Filtered,
    #[serde(rename = "unfiltered")]
    Unfiltered,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    #[serde(rename = "closed|filtered")]
    ClosedFiltered,
}

impl PortState {
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unfiltered => "unfiltered",
            PortState::OpenFiltered => "open|filtered",
            PortState::ClosedFiltered => "closed|filtered",
        }
    }

    pub fn parse(s: &str) -> Option<PortState> {
        ALL_STATES.iter().copied().find(|st| st.as_str() == s)
    }
}

pub const ALL_STATES: [PortState; 6] = [
    PortState::Open,
    PortState::Closed,
    PortState::Filtered,
    PortState::Unfiltered,
    PortState::OpenFiltered,
    PortState::ClosedFiltered,
];

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a state was concluded, in nmap's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    SynAck,
    Reset,
    NoResponse,
    /// A UDP datagram from the port.
    UdpResponse,
    /// connect() failed with ECONNREFUSED: a RST the kernel heard.
    ConnRefused,
    /// ICMP destination unreachable with this code.
    Unreachable(u8),
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::NoResponse => "no-response",
            Reason::UdpResponse => "udp-response",
            Reason::ConnRefused => "conn-refused",
            // ICMPv6 (RFC 4443 3.1), in nmap's words.
            Reason::Unreachable(code) if code & ICMPV6_CODE != 0 => match code & !ICMPV6_CODE {
                0 => "no-route",
                1 | 5 => "admin-prohibited",
                2 => "beyond-scope",
                3 => "host-unreach",
                4 => "port-unreach",
                6 => "reject-route",
                _ => "icmp-unreach",
            },
            Reason::Unreachable(code) => match code {
                0 => "net-unreach",
                1 => "host-unreach",
                2 => "proto-unreach",
                3 => "port-unreach",
                9 => "net-prohibited",
                10 => "host-prohibited",
                13 => "admin-prohibited",
                _ => "icmp-unreach",
            },
        }
    }

    fn from_word(word: &str) -> Option<Reason> {
        match word {
            "syn-ack" => Some(Reason::SynAck),
            "reset" => Some(Reason::Reset),
            "no-response" => Some(Reason::NoResponse),
            "udp-response" => Some(Reason::UdpResponse),
            "conn-refused" => Some(Reason::ConnRefused),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ICMP code whose row in a technique's table decides an ICMP or
/// ICMPv6 (`ICMPV6_CODE` set) destination unreachable: ICMPv6's no route
/// is net-unreach's, administratively prohibited, failed policy and reject
/// route are admin-prohibited's, beyond scope and address unreachable are
/// host-unreach's, port unreachable is port-unreach's (as nmap maps them).
pub fn icmp_equivalent(code: u8) -> Option<u8> {
    if code & ICMPV6_CODE == 0 {
        return Some(code);
    }
    match code & !ICMPV6_CODE {
        0 => Some(0),
        1 | 5 | 6 => Some(13),
        2 | 3 => Some(1),
        4 => Some(3),
        _ => None,
    }
}

/// What came back for a probe, reduced to what the tables distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    SynAck,
    /// RST (with or without ACK); the window matters to the Window scan.
    Rst {
        window: u16,
    },
    /// ICMP destination unreachable.
    Unreachable {
        code: u8,
    },
    /// A UDP datagram from the probed port.
    Udp,
}

/// The transport a technique's probes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Where the per-probe cookie travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CookieField {
    /// In the sequence number: replies prove it in their ack (RFC 9293 reset
    /// generation for segments without ACK).
    Seq,
    /// In the acknowledgment number: a RST to a segment carrying ACK takes
    /// its sequence number from our ack.
    Ack,
    /// UDP: in the source port (and the IP identification an ICMP error
    /// quotes, and the protocol's own echoed field where it has one).
    Sport,
}

impl CookieField {
    /// The field a reply to a probe with `flags` proves it saw: the ack
    /// (from our seq) unless the probe carries ACK, in which case a RST
    /// copies our ack into its seq (RFC 9293 3.10.7.1). A technique file
    /// must name this one.
    pub fn for_flags(flags: u8) -> CookieField {
        if flags & flag::ACK != 0 {
            CookieField::Ack
        } else {
            CookieField::Seq
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CookieField::Seq => "seq",
            CookieField::Ack => "ack",
            CookieField::Sport => "sport",
        }
    }
}

/// A technique as the cookie code sees it: the flags its probe carries and
/// where its cookie travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeShape {
    pub flags: u8,
    pub cookie: CookieField,
}

impl ProbeShape {
    /// The shape of a probe with `flags`, its cookie where RFC 9293 puts it.
    pub fn for_flags(flags: u8) -> ProbeShape {
        ProbeShape {
            flags,
            cookie: CookieField::for_flags(flags),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub state: PortState,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowCond {
    #[default]
    Any,
    Zero,
    Nonzero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyMatch {
    SynAck,
    Rst,
    IcmpUnreachable,
    UdpResponse,
}

/// One row of a technique's reply table, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    reply: ReplyMatch,
    state: String,
    /// Required for TCP replies; ICMP rows take the code's name.
    reason: Option<String>,
    #[serde(default)]
    codes: Vec<u8>,
    #[serde(default)]
    window: WindowCond,
}

/// One row of a technique's reply table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRule {
    pub reply: ReplyMatch,
    pub state: PortState,
    /// `None` for ICMP rows: the reason is the code's name.
    pub reason: Option<Reason>,
    /// ICMP unreachable codes this row covers (ICMP rows only).
    pub codes: Vec<u8>,
    /// RST rows only: which RST windows this row covers.
    pub window: WindowCond,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoResponse {
    pub state: String,
    pub reason: String,
}

/// The teaching card of a technique in one language.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teaching {
    pub sent: String,
    pub open: String,
    pub closed: String,
    pub rule: String,
    pub exceptions: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TechniqueFile {
    name: String,
    title: String,
    nmap: String,
    #[serde(default)]
    protocol: Protocol,
    flags: Vec<String>,
    cookie: CookieField,
    replies: Vec<RuleFile>,
    no_response: NoResponse,
    #[serde(default)]
    teach: BTreeMap<String, Teaching>,
    /// A file named like a built-in technique must say that it replaces it.
    #[serde(default)]
    replaces_builtin: bool,
    /// The kernel's connect() makes the probes (`-sT`), not raw packets.
    #[serde(default)]
    connect: bool,
}

/// A validated technique.
#[derive(Debug, Clone)]
pub struct Technique {
    pub name: String,
    pub title: String,
    pub nmap: String,
    pub protocol: Protocol,
    /// Flag bits sent in the probe (TCP).
    pub flags: u8,
    pub cookie: CookieField,
    pub rules: Vec<ReplyRule>,
    pub no_response: Outcome,
    pub teach: BTreeMap<String, Teaching>,
    /// The file says it replaces the built-in technique of its name.
    pub replaces_builtin: bool,
    /// Probes are the kernel's connect() calls (no raw socket): what
    /// connect() reports stands for the reply (success for SYN/ACK,
    /// ECONNREFUSED for RST, an unreachable error for ICMP).
    pub connect: bool,
    /// `--scanflags`: the technique whose reply table this one reads its
    /// answers with (nmap's XML names the scan by it); `None` for a
    /// technique of its own.
    pub base: Option<String>,
}

impl Technique {
    /// What the cookie code needs: the flags sent and where the cookie goes.
    pub fn shape(&self) -> ProbeShape {
        ProbeShape {
            flags: self.flags,
            cookie: self.cookie,
        }
    }

    /// Parses and validates a technique file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Technique> {
        let file: TechniqueFile = toml::from_str(text).map_err(|e| {
            // One line: where, and what (toml's own text quotes the file).
            let line = e.span().map_or(1, |s| {
                text.get(..s.start)
                    .map_or(1, |t| t.matches('\n').count() + 1)
            });
            usage(format!(
                "technique file {origin} is malformed at line {line}: {}",
                e.message().trim_end()
            ))
        })?;
        let bad = |msg: String| usage(format!("technique file {origin}: {msg}"));

        if file.name.is_empty()
            || !file
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad(format!(
                "name '{}' must be lowercase letters, digits and '-'",
                file.name
            )));
        }
        let mut flags = 0u8;
        for name in &file.flags {
            let bit = flag::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    bad(format!(
                        "unknown flag '{name}' (use FIN SYN RST PSH ACK URG ECE CWR)"
                    ))
                })?;
            flags |= bit;
        }
        if flags & flag::RST != 0 {
            return Err(bad("a probe with RST set gets no reply by design".into()));
        }
        if file.connect && (file.protocol != Protocol::Tcp || flags != flag::SYN) {
            return Err(bad(
                "a connect technique is TCP and its probe is the kernel's SYN: 'flags = [\"SYN\"]'"
                    .into(),
            ));
        }
        // A reply proves it saw our probe only through the field the stack
        // echoes back.
        let expected = match file.protocol {
            Protocol::Tcp => CookieField::for_flags(flags),
            Protocol::Udp if flags != 0 => {
                return Err(bad("a UDP probe has no TCP flags: 'flags = []'".into()))
            }
            Protocol::Udp => CookieField::Sport,
        };
        if file.cookie != expected {
            return Err(bad(format!(
                "cookie must be \"{}\" for a {} probe with flags {}",
                expected.as_str(),
                file.protocol.as_str(),
                flag::describe(flags)
            )));
        }
        let mut rules = Vec::new();
        for (i, rule) in file.replies.into_iter().enumerate() {
            let row = i + 1;
            let state = PortState::parse(&rule.state).ok_or_else(|| {
                bad(format!(
                    "reply row {row}: unknown state '{}' (use {})",
                    rule.state,
                    state_words()
                ))
            })?;
            let reason = match (rule.reply, &rule.reason) {
                (ReplyMatch::IcmpUnreachable, None) => None,
                (ReplyMatch::IcmpUnreachable, Some(_)) => {
                    return Err(bad(format!(
                    "reply row {row}: ICMP rows take their reason from the code; remove 'reason'"
                )))
                }
                (_, None) => return Err(bad(format!("reply row {row}: 'reason' is missing"))),
                (_, Some(word)) => Some(Reason::from_word(word).ok_or_else(|| {
                    bad(format!(
                        "reply row {row}: unknown reason '{word}' (use syn-ack, reset, conn-refused, udp-response)"
                    ))
                })?),
            };
            match rule.reply {
                ReplyMatch::IcmpUnreachable
                    if rule.codes.is_empty() || rule.codes.iter().any(|&c| c > 15) =>
                {
                    return Err(bad(format!(
                        "reply row {row}: 'codes' must list ICMP unreachable codes 0-15"
                    )));
                }
                ReplyMatch::IcmpUnreachable => {}
                _ if !rule.codes.is_empty() => {
                    return Err(bad(format!(
                        "reply row {row}: 'codes' only applies to icmp-unreachable"
                    )))
                }
                _ => {}
            }
            let fits = match rule.reply {
                ReplyMatch::IcmpUnreachable => true,
                ReplyMatch::UdpResponse => file.protocol == Protocol::Udp,
                ReplyMatch::SynAck | ReplyMatch::Rst => file.protocol == Protocol::Tcp,
            };
            if !fits {
                return Err(bad(format!(
                    "reply row {row}: a {} probe gets no such reply",
                    file.protocol.as_str()
                )));
            }
            if rule.window != WindowCond::Any && rule.reply != ReplyMatch::Rst {
                return Err(bad(format!(
                    "reply row {row}: 'window' only applies to rst"
                )));
            }
            rules.push(ReplyRule {
                reply: rule.reply,
                state,
                reason,
                codes: rule.codes,
                window: rule.window,
            });
        }
        let no_response = Outcome {
            state: PortState::parse(&file.no_response.state).ok_or_else(|| {
                bad(format!(
                    "no_response: unknown state '{}' (use {})",
                    file.no_response.state,
                    state_words()
                ))
            })?,
            reason: Reason::from_word(&file.no_response.reason)
                .filter(|r| *r == Reason::NoResponse)
                .ok_or_else(|| bad("no_response: reason must be 'no-response'".into()))?,
        };
        Ok(Technique {
            name: file.name,
            title: file.title,
            nmap: file.nmap,
            protocol: file.protocol,
            flags,
            cookie: file.cookie,
            rules,
            no_response,
            teach: file.teach,
            replaces_builtin: file.replaces_builtin,
            connect: file.connect,
            base: None,
        })
    }

    /// Loads a technique file given with `--technique FILE`.
    pub fn load(path: &Path) -> anyhow::Result<Technique> {
        let fail = |e: String| {
            usage(format!(
                "cannot read technique file {}: {e}",
                path.display()
            ))
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(format!(
                "larger than {} KiB; a technique file is a short TOML table",
                MAX_FILE_BYTES >> 10
            )));
        }
        let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
        Technique::from_toml(&text, &path.display().to_string())
    }

    /// The table row that decides a reply, and the outcome; `None` when the
    /// table has no row for it (the reply is then ignored and counted).
    pub fn classify(&self, reply: ReplyKind) -> Option<(usize, Outcome)> {
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            let hit = match (rule.reply, reply) {
                (ReplyMatch::SynAck, ReplyKind::SynAck) => true,
                (ReplyMatch::Rst, ReplyKind::Rst { window }) => match rule.window {
                    WindowCond::Any => true,
                    WindowCond::Zero => window == 0,
                    WindowCond::Nonzero => window != 0,
                },
                (ReplyMatch::IcmpUnreachable, ReplyKind::Unreachable { code }) => {
                    icmp_equivalent(code).is_some_and(|c| rule.codes.contains(&c))
                }
                (ReplyMatch::UdpResponse, ReplyKind::Udp) => true,
                _ => false,
            };
            if !hit {
                return None;
            }
            let (state, reason) = (rule.state, rule.reason);
            let reason = reason.unwrap_or(match reply {
                ReplyKind::Unreachable { code } => Reason::Unreachable(code),
                _ => Reason::Reset,
            });
            Some((i, Outcome { state, reason }))
        })
    }

    /// The teaching card in `lang`, falling back to English.
    pub fn teaching(&self, lang: &str) -> Option<&Teaching> {
        self.teach.get(lang).or_else(|| self.teach.get("en"))
    }
}

fn state_words() -> String {
    ALL_STATES.map(|s| s.as_str()).join(", ")
}

/// The techniques built into the binary, in the order `--help` lists them.
pub const BUILTIN_FILES: [(&str, &str); 9] = [
    ("syn.toml", include_str!("../../scanners/syn.toml")),
    ("fin.toml", include_str!("../../scanners/fin.toml")),
    ("null.toml", include_str!("../../scanners/null.toml")),
    ("xmas.toml", include_str!("../../scanners/xmas.toml")),
    ("ack.toml", include_str!("../../scanners/ack.toml")),
    ("window.toml", include_str!("../../scanners/window.toml")),
    ("maimon.toml", include_str!("../../scanners/maimon.toml")),
    ("udp.toml", include_str!("../../scanners/udp.toml")),
    ("connect.toml", include_str!("../../scanners/connect.toml")),
];

pub fn builtin() -> Vec<Technique> {
    BUILTIN_FILES
        .iter()
        .map(|(file, text)| {
            Technique::from_toml(text, file)
                .with_context(|| format!("built-in technique {file} is invalid"))
                // The build-time files are validated by the test suite.
                .expect("built-in techniques are valid")
        })
        .collect()
}

/// Finds a built-in technique by name (`syn`) or nmap option letter (`S`).
pub fn builtin_by_name(name: &str) -> Option<Technique> {
    builtin()
        .into_iter()
        .find(|t| t.name == name || t.nmap.strip_prefix("-s").is_some_and(|l| l == name))
}

/// A Window scan file: the tests' example of a technique that is only data.
#[cfg(test)]
pub(crate) const WINDOW_TOML: &str = r#"
name = "window"
title = "TCP Window scan"
nmap = "-sW"
flags = ["ACK"]
cookie = "ack"
[[replies]]
reply = "rst"
window = "nonzero"
state = "open"
reason = "reset"
[[replies]]
reply = "rst"
window = "zero"
state = "closed"
reason = "reset"
[no_response]
state = "filtered"
reason = "no-response"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scanner_file_in_the_tree_is_valid_and_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scanners");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = BUILTIN_FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "every file in scanners/ must be embedded"
        );
        for name in on_disk {
            let t = Technique::load(&dir.join(&name)).unwrap();
            assert_eq!(format!("{}.toml", t.name), name);
            for lang in ["en", "ja"] {
                let card = t
                    .teach
                    .get(lang)
                    .unwrap_or_else(|| panic!("{name}: no {lang} card"));
                assert!(!card.sent.is_empty() && !card.rule.is_empty());
            }
        }
    }

    fn outcome(t: &Technique, reply: ReplyKind) -> Option<(PortState, &'static str)> {
        t.classify(reply).map(|(_, o)| (o.state, o.reason.as_str()))
    }

    /// The reply tables of design.md (nmap's reference guide), row by row.
    #[test]
    fn builtin_tables_match_nmap() {
        use PortState::*;
        let rst = ReplyKind::Rst { window: 0 };
        let icmp = |code| ReplyKind::Unreachable { code };
        let syn = builtin_by_name("syn").unwrap();
        assert_eq!(syn.flags, flag::SYN);
        assert_eq!(outcome(&syn, ReplyKind::SynAck), Some((Open, "syn-ack")));
        assert_eq!(outcome(&syn, rst), Some((Closed, "reset")));
        assert_eq!(
            syn.no_response,
            Outcome {
                state: Filtered,
                reason: Reason::NoResponse
            }
        );
        for name in ["fin", "null", "xmas"] {
            let t = builtin_by_name(name).unwrap();
            assert_eq!(outcome(&t, rst), Some((Closed, "reset")), "{name}");
            assert_eq!(outcome(&t, ReplyKind::SynAck), None, "{name}");
            assert_eq!(t.no_response.state, OpenFiltered, "{name}");
        }
        // nmap's UDP table (design.md, "UDP").
        let udp = builtin_by_name("udp").unwrap();
        assert_eq!(
            (udp.protocol, udp.flags, udp.cookie),
            (Protocol::Udp, 0, CookieField::Sport)
        );
        assert_eq!(outcome(&udp, ReplyKind::Udp), Some((Open, "udp-response")));
        assert_eq!(outcome(&udp, icmp(3)), Some((Closed, "port-unreach")));
        assert_eq!(outcome(&udp, rst), None);
        assert_eq!(udp.no_response.state, OpenFiltered);
        assert_eq!(builtin_by_name("U").unwrap().name, "udp");
        // connect(): the kernel reports only some codes, each as an errno.
        let connect = builtin_by_name("T").unwrap();
        assert!(connect.connect && connect.flags == flag::SYN);
        assert_eq!(
            outcome(&connect, ReplyKind::SynAck),
            Some((Open, "syn-ack"))
        );
        assert_eq!(outcome(&connect, rst), Some((Closed, "conn-refused")));
        assert_eq!(connect.no_response.state, Filtered);
        for (code, word) in [
            (0, "net-unreach"),
            (1, "host-unreach"),
            (2, "proto-unreach"),
            (13, "admin-prohibited"),
        ] {
            assert_eq!(outcome(&connect, icmp(code)), Some((Filtered, word)));
        }
        for t in builtin().into_iter().filter(|t| !t.connect) {
            for (code, word) in [
                (0, "net-unreach"),
                (1, "host-unreach"),
                (2, "proto-unreach"),
                (3, "port-unreach"),
                (9, "net-prohibited"),
                (10, "host-prohibited"),
                (13, "admin-prohibited"),
            ] {
                let want = match (t.protocol, code) {
                    (Protocol::Udp, 3) => Closed,
                    _ => Filtered,
                };
                assert_eq!(outcome(&t, icmp(code)), Some((want, word)), "{}", t.name);
            }
            // Fragmentation needed (4) says nothing about the port.
            assert_eq!(outcome(&t, icmp(4)), None);
        }
        // The ACK family: the cookie rides in the acknowledgment number.
        let window = |w| ReplyKind::Rst { window: w };
        let ack = builtin_by_name("A").unwrap();
        assert_eq!((ack.flags, ack.cookie), (flag::ACK, CookieField::Ack));
        assert_eq!(outcome(&ack, rst), Some((Unfiltered, "reset")));
        assert_eq!(ack.no_response.state, Filtered);
        let win = builtin_by_name("W").unwrap();
        assert_eq!((win.flags, win.cookie), (flag::ACK, CookieField::Ack));
        assert_eq!(outcome(&win, window(0)), Some((Closed, "reset")));
        assert_eq!(outcome(&win, window(512)), Some((Open, "reset")));
        assert_eq!(win.no_response.state, Filtered);
        let maimon = builtin_by_name("M").unwrap();
        assert_eq!(maimon.flags, flag::FIN | flag::ACK);
        assert_eq!(maimon.cookie, CookieField::Ack);
        assert_eq!(outcome(&maimon, rst), Some((Closed, "reset")));
        assert_eq!(maimon.no_response.state, OpenFiltered);
        for t in [&ack, &win, &maimon] {
            assert_eq!(outcome(t, ReplyKind::SynAck), None, "{}", t.name);
        }
        assert_eq!(builtin_by_name("fin").unwrap().flags, flag::FIN);
        assert_eq!(builtin_by_name("null").unwrap().flags, 0);
        assert_eq!(
            builtin_by_name("X").unwrap().flags,
            flag::FIN | flag::PSH | flag::URG
        );
        assert!(builtin_by_name("Q").is_none());
    }

    use super::WINDOW_TOML as WINDOW;

    #[test]
    fn a_new_technique_is_only_a_file() {
        let t = Technique::from_toml(WINDOW, "window.toml").unwrap();
        assert_eq!(t.cookie, CookieField::Ack);
        assert_eq!(
            outcome(&t, ReplyKind::Rst { window: 512 }),
            Some((PortState::Open, "reset"))
        );
        assert_eq!(
            outcome(&t, ReplyKind::Rst { window: 0 }),
            Some((PortState::Closed, "reset"))
        );
        assert_eq!(t.classify(ReplyKind::Rst { window: 0 }).unwrap().0, 1);
    }

    #[test]
    fn malformed_files_are_rejected_with_the_reason() {
        let cases = [
            ("name = ", "malformed"),
            (
                &WINDOW.replace("cookie = \"ack\"", "cookie = \"seq\""),
                "cookie must be \"ack\"",
            ),
            (
                &WINDOW.replace("[\"ACK\"]", "[\"ACK\", \"BOGUS\"]"),
                "unknown flag 'BOGUS'",
            ),
            (
                &WINDOW.replace("state = \"open\"", "state = \"ajar\""),
                "unknown state 'ajar'",
            ),
            (
                &WINDOW.replace("reason = \"no-response\"", "reason = \"reset\""),
                "no-response",
            ),
            (
                &WINDOW.replace("window = \"nonzero\"", "codes = [3]"),
                "'codes' only applies",
            ),
            (
                &WINDOW.replace("name = \"window\"", "name = \"Win dow\""),
                "name 'Win dow'",
            ),
            (
                &WINDOW.replace("title =", "colour = \"red\"\ntitle ="),
                "unknown field",
            ),
            (&WINDOW.replace("[\"ACK\"]", "[\"RST\"]"), "RST"),
        ];
        for (text, want) in cases {
            let err = Technique::from_toml(text, "t.toml").unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{msg:?} should mention {want:?}");
            assert!(msg.contains("t.toml"), "{msg:?} should name the file");
        }
    }
}
