//! nmap's `--scanflags`: any TCP flags as the probes of one technique,
//! whose reply table reads the answers (`-sF --scanflags PSH`: FIN's table,
//! PSH probes; SYN's table when no technique is named).
//!
//! The result is a [`Technique`] like any other, built as data from its
//! base, so the engine needs nothing of its own for it: the cookie goes
//! where RFC 9293 makes a reply prove it ([`CookieField::for_flags`]).

use crate::error::usage;
use crate::model::technique::{
    CookieField, Protocol, ReplyMatch, ReplyRule, Technique, WindowCond,
};
use crate::model::technique::{PortState, Reason};
use crate::wire::flag;

const HINT: &str = "give flag names run together (URG ACK PSH RST SYN FIN ECE CWR, in any \
                    order and case, e.g. SYNFIN) or a number 0-255 (decimal, or 0x12)";

/// Parses `--scanflags`' argument as nmap does: three-letter flag names
/// run together, or a number.
pub fn parse(text: &str) -> anyhow::Result<u8> {
    let bad = |why: &str| usage(format!("invalid --scanflags '{text}': {why}; {HINT}"));
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                // Only too many digits fail here: past 255 either way.
                u32::from_str_radix(hex, 16).unwrap_or(u32::MAX)
            }
            Some(_) => return Err(bad("not a hexadecimal number")),
            // nmap reads a leading 0 as octal (strtol): refused rather than
            // read otherwise than nmap would.
            None if text.len() > 1 && text.starts_with('0') => {
                return Err(bad(
                    "a leading 0 is octal to nmap; write it in decimal or 0x",
                ))
            }
            None if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<u32>().unwrap_or(u32::MAX)
            }
            None => return Err(bad("not a number")),
        };
        return u8::try_from(value).map_err(|_| bad("above 255"));
    }
    if !text.is_ascii() || !text.len().is_multiple_of(3) {
        return Err(bad("not a run of three-letter flag names"));
    }
    let mut flags = 0u8;
    for i in (0..text.len()).step_by(3) {
        let name = &text[i..i + 3];
        let bit = flag::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, b)| *b)
            .ok_or_else(|| bad(&format!("unknown flag '{name}'")))?;
        flags |= bit;
    }
    Ok(flags)
}

/// The flags as nmap's XML writes them in `scaninfo`'s `scanflags`: names
/// run together in nmap's order (FIN SYN RST PSH ACK URG ECE CWR), and
/// nothing for none.
pub fn nmap_string(flags: u8) -> String {
    flag::NAMES
        .iter()
        .filter(|(_, b)| flags & b != 0)
        .map(|(n, _)| *n)
        .collect()
}

/// `base`'s reply table with probes carrying `flags`.
pub fn custom(base: &Technique, flags: u8) -> Technique {
    let words = match nmap_string(flags) {
        s if s.is_empty() => "none".to_string(),
        s => s,
    };
    let mut rules = base.rules.clone();
    // nmap takes a SYN-ACK for open whatever the scan type; a SYN-ACK
    // only ever answers a probe with SYN (the cookie check sees to that).
    if flags & flag::SYN != 0 && !rules.iter().any(|r| r.reply == ReplyMatch::SynAck) {
        rules.push(ReplyRule {
            reply: ReplyMatch::SynAck,
            state: PortState::Open,
            reason: Some(Reason::SynAck),
            codes: Vec::new(),
            window: WindowCond::Any,
        });
    }
    Technique {
        name: format!("{}-{}", base.name, words.to_ascii_lowercase()),
        title: format!("{} with --scanflags {words}", base.title),
        nmap: format!("{} --scanflags {words}", base.nmap.trim()),
        protocol: Protocol::Tcp,
        flags,
        cookie: CookieField::for_flags(flags),
        rules,
        no_response: base.no_response,
        // The base's card describes its own probe, not these.
        teach: Default::default(),
        replaces_builtin: false,
        connect: false,
        base: Some(base.name.clone()),
    }
}

/// Applies `--scanflags TEXT` to a scan's techniques: the one TCP
/// technique (SYN's when none was named, as nmap) gets these probes.
/// Returns a notice for the user, if the flags call for one.
pub fn apply(techniques: &mut [Technique], text: &str) -> anyhow::Result<Option<String>> {
    let flags = parse(text)?;
    let tcp: Vec<usize> = (0..techniques.len())
        .filter(|&i| techniques[i].protocol == Protocol::Tcp)
        .collect();
    let at =
        match tcp.as_slice() {
            [one] => *one,
            [] => return Err(usage(
                "--scanflags sets the probes of a TCP scan and this scan has none: add -sS (or \
                 another TCP technique) for its reply table",
            )),
            many => {
                let names: Vec<&str> = many.iter().map(|&i| techniques[i].name.as_str()).collect();
                return Err(usage(format!(
                    "--scanflags sets the probes of one TCP technique, whose table reads the \
                 answers; this scan has {} ({}): keep one, as nmap does",
                    many.len(),
                    names.join(", ")
                )));
            }
        };
    let t = custom(&techniques[at], flags);
    let notice = (flags & flag::RST != 0).then(|| {
        format!(
            "notice: --scanflags {}: a stack that follows RFC 9293 never answers a segment \
             with RST (3.10.7.1), so expect {} (no-response) on every port that no firewall \
             answers for",
            nmap_string(flags),
            t.no_response.state
        )
    });
    techniques[at] = t;
    Ok(notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, EXIT_USAGE};
    use crate::model::technique::{builtin_by_name, ReplyKind};

    #[test]
    fn names_in_any_order_and_case_and_numbers_parse_as_nmap_reads_them() {
        use flag::*;
        let good: &[(&str, u8)] = &[
            ("URGACKPSHRSTSYNFIN", URG | ACK | PSH | RST | SYN | FIN),
            ("synfin", SYN | FIN),
            ("FinSyn", SYN | FIN),
            ("PSH", PSH),
            ("ECECWR", ECE | CWR),
            ("SYNSYN", SYN),
            ("0", 0),
            ("18", SYN | ACK),
            ("255", 0xff),
            ("0x12", SYN | ACK),
            ("0XfF", 0xff),
            ("0x00", 0),
            ("0x0", 0),
        ];
        for (text, want) in good {
            assert_eq!(parse(text).unwrap(), *want, "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("256", "above 255"),
            ("99999999999999999999", "above 255"),
            ("0x100", "above 255"),
            ("0x", "hexadecimal"),
            ("0xg1", "hexadecimal"),
            ("012", "octal"),
            ("-1", "three-letter"),
            ("12a", "not a number"),
            ("SY", "three-letter"),
            ("SYNFI", "three-letter"),
            ("SYNFOO", "unknown flag 'FOO'"),
            ("SYN FIN", "three-letter"),
            ("SYN-FIN-X", "unknown flag '-FI'"),
            ("ÄÄÄ", "three-letter"),
        ];
        for (text, why) in bad {
            let err = parse(text).unwrap_err();
            assert_eq!(exit_code(&err), EXIT_USAGE, "{text}");
            let msg = format!("{err:#}");
            assert!(
                msg.contains("--scanflags") && msg.contains(why),
                "{text}: {msg}"
            );
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn the_base_table_reads_the_answers_to_the_new_probes() {
        let fin = builtin_by_name("fin").unwrap();
        let t = custom(&fin, flag::PSH);
        assert_eq!(
            (t.name.as_str(), t.base.as_deref()),
            ("fin-psh", Some("fin"))
        );
        assert_eq!((t.flags, t.cookie), (flag::PSH, CookieField::Seq));
        assert_eq!(t.rules, fin.rules);
        assert_eq!(t.no_response, fin.no_response);
        assert_eq!(t.nmap, "-sF --scanflags PSH");
        // Probes carrying ACK put the cookie where a RST proves it.
        let t = custom(&builtin_by_name("syn").unwrap(), flag::SYN | flag::ACK);
        assert_eq!(
            (t.name.as_str(), t.cookie),
            ("syn-synack", CookieField::Ack)
        );
        let t = custom(&builtin_by_name("syn").unwrap(), 0);
        assert_eq!(t.name, "syn-none");
        // A SYN-ACK is open whatever the base, as nmap reads it.
        let t = custom(&fin, flag::SYN | flag::FIN);
        let open = t.classify(ReplyKind::SynAck).unwrap().1;
        assert_eq!((open.state, open.reason), (PortState::Open, Reason::SynAck));
        assert_eq!(
            t.classify(ReplyKind::Rst { window: 0 }).unwrap().1.state,
            PortState::Closed
        );
        assert!(custom(&fin, flag::PSH)
            .classify(ReplyKind::SynAck)
            .is_none());
    }

    #[test]
    fn one_tcp_technique_takes_the_flags_and_several_are_refused() {
        let b = |n: &str| builtin_by_name(n).unwrap();
        let mut ts = vec![b("udp"), b("maimon")];
        assert_eq!(apply(&mut ts, "psh").unwrap(), None);
        assert_eq!(ts[0].name, "udp");
        assert_eq!(
            (ts[1].name.as_str(), ts[1].flags),
            ("maimon-psh", flag::PSH)
        );
        let notice = apply(&mut [b("ack")], "RST").unwrap().unwrap();
        assert!(notice.contains("filtered"), "{notice}");
        for (mut ts, why) in [
            (vec![b("syn"), b("fin")], "has 2 (syn, fin)"),
            (vec![b("udp")], "has none"),
        ] {
            let err = apply(&mut ts, "SYN").unwrap_err();
            assert_eq!(exit_code(&err), EXIT_USAGE);
            let msg = format!("{err:#}");
            assert!(msg.contains(why) && !msg.contains('\n'), "{msg}");
        }
        assert!(apply(&mut [b("syn")], "bogus").is_err());
    }

    #[test]
    fn nmaps_xml_order_of_flag_names() {
        assert_eq!(nmap_string(0xff), "FINSYNRSTPSHACKURGECECWR");
        assert_eq!(nmap_string(flag::URG | flag::PSH), "PSHURG");
        assert_eq!(nmap_string(0), "");
    }
}
