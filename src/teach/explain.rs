//! `flagscan explain`: the teaching cards.
//!
//! A technique's card is built from its file in `scanners/` (title, nmap
//! option, flags, reply table, teaching text); a port's card from the IANA
//! range and the notes of [`crate::teach::portnotes`]. Both come in English and
//! Japanese; the layout is plain text for a terminal of 80 columns.

use crate::model::services::Services;
use crate::model::technique::{
    Protocol, Reason, ReplyMatch, ReplyRule, Teaching, Technique, WindowCond,
};
use crate::teach::lang::Lang;
use crate::teach::portnotes;
use crate::teach::width::{pad, width, wrap};
use crate::wire::flag;

/// Text is wrapped to this many terminal columns.
const WIDTH: usize = 78;
/// Section bodies are indented by this much.
const INDENT: &str = "  ";

/// The card of a technique in `lang`: what is sent, the exchange for an open
/// and a closed port, the reply table, the RFC 9293 rule, the exceptions and
/// the nmap option that does the same. A file without teaching text in
/// `lang` is explained with its English text.
pub fn technique_card(t: &Technique, lang: Lang) -> String {
    let mut out = String::new();
    let head = heading(&t.title, &t.name);
    out.push_str(&head);
    out.push('\n');
    out.push_str(&"=".repeat(width(&head)));
    out.push('\n');
    for line in technique_preamble(t, lang) {
        out.push_str(&line);
        out.push('\n');
    }
    for (title, body) in technique_sections(t, lang) {
        out.push('\n');
        out.push_str(&title);
        out.push('\n');
        for line in body {
            push_line(&mut out, &format!("{INDENT}{line}"));
        }
    }
    out
}

/// The card of a port in `lang`: number, range class, service, the note from
/// ports.md if there is one, and how to check the port without a scanner.
pub fn port_card(port: u16, proto: Protocol, services: &Services, lang: Lang) -> String {
    let ja = matches!(lang, Lang::Ja);
    let udp = proto == Protocol::Udp;
    let (lo, hi) = portnotes::class_bounds(port);
    let note = portnotes::note(port);
    let service = match (services.name_in(proto, port), note) {
        (Some(name), Some(n)) if n.service.eq_ignore_ascii_case(name) => name.to_string(),
        (Some(name), Some(n)) => format!("{name} ({})", n.service),
        (Some(name), None) => name.to_string(),
        (None, Some(n)) => n.service.to_string(),
        (None, None) if ja => "不明(サービス名の一覧にない)".to_string(),
        (None, None) => "unknown (not in the list of service names)".to_string(),
    };
    let note_text = match note {
        Some(n) => n.text(lang).to_string(),
        None if ja => "このポートについての注記はない。".to_string(),
        None => "flagscan has no note on this port.".to_string(),
    };
    let range = if ja {
        format!("{}、{lo}〜{hi}番", portnotes::class_name(port, lang))
    } else {
        format!("{} ({lo}-{hi})", portnotes::class_name(port, lang))
    };
    let mut fields: Vec<(&str, Vec<String>)> = if ja {
        vec![
            (
                "範囲:",
                vec![range, portnotes::class_description(port, lang).to_string()],
            ),
            ("サービス:", vec![service]),
            ("注記:", vec![note_text]),
        ]
    } else {
        vec![
            (
                "Range:",
                vec![range, portnotes::class_description(port, lang).to_string()],
            ),
            ("Service:", vec![service]),
            ("Note:", vec![note_text]),
        ]
    };
    // What -sU sends there (scanners/udp/), and from which specification.
    if let Some(p) = crate::model::payloads::Payloads::builtin().for_port(port) {
        let text = match ja {
            true => format!("{}({}バイト)。{}", p.name, p.bytes.len(), p.spec),
            false => format!(
                "{} ({} bytes), built from {}",
                p.name,
                p.bytes.len(),
                p.spec
            ),
        };
        fields.push((if ja { "UDPプローブ:" } else { "UDP probe:" }, vec![text]));
    }

    let mut out = String::new();
    let p = proto.as_str();
    out.push_str(&if ja {
        format!("ポート番号 {port}/{p}\n")
    } else {
        format!("Port {port}/{p}\n")
    });
    let label_width = fields.iter().map(|(l, _)| width(l)).max().unwrap_or(0) + 2;
    let hang = INDENT.len() + label_width;
    for (label, paragraphs) in &fields {
        let mut first = true;
        for paragraph in paragraphs {
            for line in wrap(paragraph, WIDTH - hang) {
                let lead = if first {
                    format!("{INDENT}{}", pad(label, label_width))
                } else {
                    " ".repeat(hang)
                };
                first = false;
                push_line(&mut out, &format!("{lead}{line}"));
            }
        }
    }

    // ports.md: how people check a single port without a scanner.
    let check = match udp {
        false => [
            format!("telnet HOST {port}"),
            format!("Test-NetConnection HOST -Port {port}"),
            if ja {
                "ss -tln または netstat -an".to_string()
            } else {
                "ss -tln  or  netstat -an".to_string()
            },
        ],
        // UDP has no handshake to complete: a request of the service's
        // own protocol is the test (dig for DNS, ntpdate -q for NTP).
        true => [
            format!("nc -u -v HOST {port}"),
            match port {
                53 => "dig @HOST example.org".to_string(),
                123 => "ntpdate -q HOST".to_string(),
                161 => "snmpget -v2c -c public HOST sysDescr.0".to_string(),
                _ => format!("echo | nc -u -w1 HOST {port}"),
            },
            if ja {
                "ss -uln または netstat -anu".to_string()
            } else {
                "ss -uln  or  netstat -anu".to_string()
            },
        ],
    };
    let what: [&str; 3] = match (ja, udp) {
        (true, false) => [
            "Linux・macOS",
            "WindowsのPowerShell",
            "ホスト自身で: 待ち受け中のポート一覧",
        ],
        (false, false) => [
            "Linux, macOS",
            "Windows PowerShell",
            "on the host itself: its listening ports",
        ],
        (true, true) => [
            "Linux・macOS(送るだけ: 無応答は何も示さない)",
            "そのサービス自身の要求: 応答があればopen",
            "ホスト自身で: 待ち受け中のUDPポート一覧",
        ],
        (false, true) => [
            "Linux, macOS (sends; silence proves nothing)",
            "the service's own request: an answer means open",
            "on the host itself: its UDP ports",
        ],
    };
    out.push('\n');
    out.push_str(if ja {
        "スキャナを使わずにこのポートを確かめるには\n"
    } else {
        "To check this port without a scanner\n"
    });
    let command_width = check.iter().map(|c| width(c)).max().unwrap_or(0) + 2;
    for (command, what) in check.iter().zip(what) {
        push_line(
            &mut out,
            &format!("{INDENT}{}{what}", pad(command, command_width)),
        );
    }
    let result = match (ja, udp) {
        (true, false) => {
            "開いているポートには接続できる(PowerShellでは\u{a0}TcpTestSucceeded\u{a0}:\u{a0}True)。\
             SYNスキャンと違い、どちらも接続を最後まで確立する。"
        }
        (false, false) => {
            "An open port accepts the connection (PowerShell:\u{a0}TcpTestSucceeded\u{a0}:\u{a0}True); \
             unlike a SYN scan, both complete the handshake."
        }
        (true, true) => {
            "UDPには接続がない: 応答があればopen、ICMPポート到達不能ならclosed、\
             無応答ならopen|filtered(破棄されたか、サービスが無視したか)。"
        }
        (false, true) => {
            "UDP has no connection: an answer means open, an ICMP port unreachable \
             closed, and silence open|filtered (dropped, or a service that ignored it)."
        }
    };
    for line in wrap(result, WIDTH - INDENT.len()) {
        push_line(&mut out, &format!("{INDENT}{line}"));
    }
    out
}

fn heading(title: &str, name: &str) -> String {
    if title.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {title}")
    }
}

/// The lines under the title: the nmap equivalent, and a word when the card
/// falls back to another language.
fn technique_preamble(t: &Technique, lang: Lang) -> Vec<String> {
    let ja = matches!(lang, Lang::Ja);
    let nmap = t.nmap.trim();
    let mut lines = vec![match (nmap.is_empty(), ja) {
        (false, false) => format!("nmap option that does the same: nmap {nmap}"),
        (false, true) => format!("nmapで同じことをするオプション: nmap {nmap}"),
        (true, false) => "nmap option that does the same: none".to_string(),
        (true, true) => "nmapで同じことをするオプション: なし".to_string(),
    }];
    match teaching(t, lang) {
        Some((code, _)) if code == lang.code() => {}
        None => {}
        Some(("en", _)) if ja => lines.push(
            "(この技法ファイルには日本語の説明がないため、説明文は英語で表示する)".to_string(),
        ),
        Some((code, _)) if ja => lines.push(format!(
            "(この技法ファイルには日本語の説明がないため、説明文は \"{code}\" で表示する)"
        )),
        Some((code, _)) => lines.push(format!(
            "(this technique file has no English teaching text: shown in \"{code}\")"
        )),
    }
    lines
}

/// The teaching text to show and its language code: `lang`'s own, else
/// English, else whatever the file has.
fn teaching(t: &Technique, lang: Lang) -> Option<(&str, &Teaching)> {
    [lang.code(), "en"]
        .into_iter()
        .find_map(|code| t.teach.get_key_value(code))
        .or_else(|| t.teach.iter().next())
        .map(|(code, teach)| (code.as_str(), teach))
}

/// The sections of a technique's card, heading and body lines (wrapped,
/// not indented), in order.
fn technique_sections(t: &Technique, lang: Lang) -> Vec<(String, Vec<String>)> {
    let ja = matches!(lang, Lang::Ja);
    let teach = teaching(t, lang).map(|(_, teach)| teach);
    let missing = if ja {
        "(この技法ファイルには説明がない)"
    } else {
        "(this technique file does not say)"
    };
    let text = |pick: fn(&Teaching) -> &String| -> Vec<String> {
        match teach.map(pick).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            Some(s) => wrap(s, WIDTH - INDENT.len()),
            None => vec![missing.to_string()],
        }
    };
    // Diagrams keep their own layout.
    let diagram = |pick: fn(&Teaching) -> &String| -> Vec<String> {
        match teach
            .map(pick)
            .map(|s| s.trim_matches('\n'))
            .filter(|s| !s.trim().is_empty())
        {
            Some(s) => s.lines().map(|l| l.trim_end().to_string()).collect(),
            None => vec![missing.to_string()],
        }
    };

    let flags = match (flag::describe(t.flags).as_str(), ja) {
        ("none", true) => "なし".to_string(),
        (names, _) => names.to_string(),
    };
    let [sent, open, closed, replies, rule, exceptions] = if ja {
        [
            format!("送るもの(フラグビット: {flags})"),
            "オープンポート(開いているポート)の場合".to_string(),
            "クローズドポート(閉じているポート)の場合".to_string(),
            "応答と判定".to_string(),
            match t.protocol {
                Protocol::Tcp => "RFC 9293 の規則".to_string(),
                Protocol::Udp => "RFC 768・RFC 1122 の規則".to_string(),
            },
            "既知の例外".to_string(),
        ]
    } else {
        [
            format!("What is sent (flags: {flags})"),
            "Open port".to_string(),
            "Closed port".to_string(),
            "Replies and what they mean".to_string(),
            match t.protocol {
                Protocol::Tcp => "The rule in RFC 9293".to_string(),
                Protocol::Udp => "The rule in RFC 768 and RFC 1122".to_string(),
            },
            "Known exceptions".to_string(),
        ]
    };
    vec![
        (sent, text(|t| &t.sent)),
        (open, diagram(|t| &t.open)),
        (closed, diagram(|t| &t.closed)),
        (replies, reply_table(t, lang)),
        (rule, text(|t| &t.rule)),
        (exceptions, text(|t| &t.exceptions)),
    ]
}

/// The reply table: one row per rule (per code for ICMP rows), then the row
/// for silence, then what happens to anything else.
fn reply_table(t: &Technique, lang: Lang) -> Vec<String> {
    let ja = matches!(lang, Lang::Ja);
    let mut rows: Vec<[String; 3]> = vec![if ja {
        ["応答".into(), "状態".into(), "理由".into()]
    } else {
        ["reply".into(), "state".into(), "reason".into()]
    }];
    for rule in &t.rules {
        rows.extend(rule_rows(rule, ja));
    }
    rows.push([
        if ja {
            "応答なし(再送しても)".into()
        } else {
            "no reply (after retries)".into()
        },
        t.no_response.state.as_str().into(),
        t.no_response.reason.as_str().into(),
    ]);

    let col0 = rows.iter().map(|r| width(&r[0])).max().unwrap_or(0) + 2;
    let col1 = rows.iter().map(|r| width(&r[1])).max().unwrap_or(0) + 2;
    let mut lines: Vec<String> = rows
        .iter()
        .map(|[reply, state, reason]| {
            format!("{}{}{reason}", pad(reply, col0), pad(state, col1))
                .trim_end()
                .to_string()
        })
        .collect();
    lines.extend(wrap(
        if ja {
            "表にない応答は判定に使わず、数えるだけにする。"
        } else {
            "A reply the table does not list decides nothing: it is only counted."
        },
        WIDTH - INDENT.len(),
    ));
    lines
}

fn rule_rows(rule: &ReplyRule, ja: bool) -> Vec<[String; 3]> {
    let tcp = |reply: String| {
        vec![[
            reply,
            rule.state.as_str().into(),
            rule.reason.map_or("", |r| r.as_str()).into(),
        ]]
    };
    match (rule.reply, rule.window, ja) {
        (ReplyMatch::SynAck, _, _) => tcp("SYN/ACK".into()),
        (ReplyMatch::UdpResponse, _, false) => tcp("UDP datagram".into()),
        (ReplyMatch::UdpResponse, _, true) => tcp("UDPデータグラム".into()),
        (ReplyMatch::Rst, WindowCond::Any, _) => tcp("RST".into()),
        (ReplyMatch::Rst, WindowCond::Nonzero, false) => tcp("RST, window > 0".into()),
        (ReplyMatch::Rst, WindowCond::Zero, false) => tcp("RST, window 0".into()),
        (ReplyMatch::Rst, WindowCond::Nonzero, true) => tcp("RST(ウィンドウ > 0)".into()),
        (ReplyMatch::Rst, WindowCond::Zero, true) => tcp("RST(ウィンドウ = 0)".into()),
        (ReplyMatch::IcmpUnreachable, _, _) => rule
            .codes
            .iter()
            .map(|&code| {
                [
                    if ja {
                        format!("ICMP到達不能 コード{code}")
                    } else {
                        format!("ICMP unreachable, code {code}")
                    },
                    rule.state.as_str().into(),
                    Reason::Unreachable(code).as_str().into(),
                ]
            })
            .collect(),
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::technique::{builtin, builtin_by_name, Protocol};

    /// Set to regenerate the files under tests/snapshots/ from the code.
    const UPDATE: &str = "FLAGSCAN_UPDATE_SNAPSHOTS";

    /// Compares `actual` with the snapshot file `name`; on a difference,
    /// shows the first differing line and the whole actual text.
    fn check_snapshot(name: &str, expected: &str, actual: &str) {
        if actual == expected {
            return;
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(name);
        if std::env::var_os(UPDATE).is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let (n, want, got) = expected
            .split('\n')
            .map(Some)
            .chain(std::iter::repeat(None))
            .zip(actual.split('\n').map(Some).chain(std::iter::repeat(None)))
            .enumerate()
            .find(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| {
                let show =
                    |l: Option<&str>| l.map_or("(end of text)".to_string(), |l| format!("{l:?}"));
                (i + 1, show(e), show(a))
            })
            .unwrap_or_default();
        panic!(
            "output differs from the snapshot {}\n\
             first difference at line {n}:\n\
             - expected: {want}\n\
             + actual:   {got}\n\
             ---- actual output ----\n{actual}---- end ----\n\
             If the new text is right, regenerate with {UPDATE}=1 cargo test explain, \
             then read the file.",
            path.display()
        );
    }

    macro_rules! snapshot {
        ($file:literal, $actual:expr) => {
            check_snapshot(
                $file,
                include_str!(concat!("../../tests/snapshots/", $file)),
                &$actual,
            )
        };
    }

    /// Names as netbase's /etc/services gives them, so the snapshots do
    /// not depend on the machine.
    fn services() -> Services {
        Services::from_services_text(
            "telnet\t\t23/tcp\n\
             microsoft-ds\t445/tcp\t\t\t\t# Microsoft Naked CIFS\n\
             http-alt\t8080/tcp\twebcache\t# WWW caching service\n",
        )
    }

    #[test]
    fn fin_card_snapshots() {
        let fin = builtin_by_name("fin").unwrap();
        snapshot!("explain_fin_en.txt", technique_card(&fin, Lang::En));
        snapshot!("explain_fin_ja.txt", technique_card(&fin, Lang::Ja));
    }

    #[test]
    fn syn_card_snapshots() {
        let syn = builtin_by_name("syn").unwrap();
        snapshot!("explain_syn_en.txt", technique_card(&syn, Lang::En));
        snapshot!("explain_syn_ja.txt", technique_card(&syn, Lang::Ja));
    }

    #[test]
    fn port_card_snapshots() {
        let s = services();
        let tcp = |port, lang| port_card(port, Protocol::Tcp, &s, lang);
        snapshot!("explain_port_23_en.txt", tcp(23, Lang::En));
        snapshot!("explain_port_23_ja.txt", tcp(23, Lang::Ja));
        snapshot!("explain_port_445_en.txt", tcp(445, Lang::En));
        snapshot!("explain_port_445_ja.txt", tcp(445, Lang::Ja));
        snapshot!("explain_port_8080_en.txt", tcp(8080, Lang::En));
        snapshot!("explain_port_8080_ja.txt", tcp(8080, Lang::Ja));
        snapshot!("explain_port_50000_en.txt", tcp(50000, Lang::En));
        snapshot!("explain_port_50000_ja.txt", tcp(50000, Lang::Ja));
    }

    #[test]
    fn every_builtin_has_full_cards_in_both_languages() {
        for t in builtin() {
            for lang in [Lang::En, Lang::Ja] {
                let sections = technique_sections(&t, lang);
                assert_eq!(sections.len(), 6, "{}", t.name);
                for (title, body) in &sections {
                    assert!(!title.trim().is_empty(), "{}", t.name);
                    assert!(
                        body.iter().any(|l| !l.trim().is_empty()),
                        "{} {lang:?}: section {title:?} is empty",
                        t.name
                    );
                    assert!(
                        !body
                            .iter()
                            .any(|l| l.contains("説明がない") || l.contains("does not say")),
                        "{} {lang:?}: section {title:?} has no text",
                        t.name
                    );
                }
                let card = technique_card(&t, lang);
                let teach = &t.teach[lang.code()];
                for part in [&teach.open, &teach.closed] {
                    for line in part.lines() {
                        assert!(card.contains(line.trim_end()), "{}: {line:?}", t.name);
                    }
                }
                assert!(card.contains(&format!("nmap {}", t.nmap)), "{}", t.name);
                let rule = match t.protocol {
                    Protocol::Tcp => "RFC 9293 3.10.7",
                    Protocol::Udp => "RFC 1122",
                };
                assert!(card.contains(rule), "{}", t.name);
                assert!(!card.contains("\n\n\n") && card.ends_with('\n'));
                for line in card.lines() {
                    assert_eq!(line, line.trim_end(), "{}: trailing space", t.name);
                }
            }
            let ja = technique_card(&t, Lang::Ja);
            assert!(ja.contains("既知の例外") && !ja.contains("Known exceptions"));
            assert!(!ja.contains("日本語の説明がない"), "{}", t.name);
        }
    }

    #[test]
    fn reply_table_lists_every_rule_and_icmp_code() {
        let fin = builtin_by_name("fin").unwrap();
        let table = reply_table(&fin, Lang::En);
        let fields = |prefix: &str| -> Vec<String> {
            let line = table.iter().find(|l| l.starts_with(prefix)).unwrap();
            line[prefix.len()..]
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert_eq!(fields("RST "), ["closed", "reset"]);
        assert_eq!(
            fields("ICMP unreachable, code 0 "),
            ["filtered", "net-unreach"]
        );
        assert_eq!(
            fields("ICMP unreachable, code 13 "),
            ["filtered", "admin-prohibited"]
        );
        assert_eq!(
            fields("no reply (after retries) "),
            ["open|filtered", "no-response"]
        );
        // The columns line up.
        let state_column = table[0].find("state").unwrap();
        for line in &table[1..table.len() - 1] {
            assert_ne!(line.as_bytes()[state_column], b' ', "{line}");
            assert_eq!(line.as_bytes()[state_column - 1], b' ', "{line}");
        }
        let table = table.join("\n");
        assert!(!table.contains("SYN/ACK"), "fin has no SYN/ACK row");
        let syn = reply_table(&builtin_by_name("syn").unwrap(), Lang::En).join("\n");
        assert!(syn.contains("SYN/ACK") && syn.contains("syn-ack"));
    }

    fn window_en_only() -> String {
        format!("{}{}", crate::model::technique::WINDOW_TOML, TEACH_EN)
    }

    const TEACH_EN: &str = r#"[teach.en]
sent = "A TCP segment with only ACK set."
open = "scanner  --ACK-->  target\nscanner  <--RST (window > 0)--  target  => open"
closed = "scanner  --ACK-->  target\nscanner  <--RST (window 0)--  target  => closed"
rule = "RFC 9293 3.10.7.2: in LISTEN, an ACK is answered with RST."
exceptions = "Only some systems set a window in their RST."
"#;

    #[test]
    fn a_file_without_japanese_falls_back_to_english() {
        let dir = std::env::temp_dir().join(format!("flagscan-explain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("window.toml");
        std::fs::write(&path, window_en_only()).unwrap();
        let t = Technique::load(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        let t = t.unwrap();
        assert!(!t.teach.contains_key("ja"));

        let ja = technique_card(&t, Lang::Ja);
        let en = technique_card(&t, Lang::En);
        for text in [
            "A TCP segment with only ACK set.",
            "scanner  <--RST (window > 0)--  target  => open",
            "RFC 9293 3.10.7.2: in LISTEN, an ACK is answered with RST.",
            "Only some systems set a window in their RST.",
        ] {
            assert!(ja.contains(text), "{text:?} missing from\n{ja}");
            assert!(en.contains(text), "{text:?} missing from\n{en}");
        }
        // Japanese headings, and a word on why the text is English.
        assert!(ja.contains("既知の例外") && ja.contains("RST(ウィンドウ > 0)"));
        assert!(ja.contains("日本語の説明がない"), "{ja}");
        assert!(!en.contains("日本語") && en.contains("RST, window > 0"));
        assert!(en.contains("nmap option that does the same: nmap -sW"));
        for lang in [Lang::En, Lang::Ja] {
            for (title, body) in technique_sections(&t, lang) {
                assert!(body.iter().any(|l| !l.trim().is_empty()), "{title}");
            }
        }
    }

    #[test]
    fn a_file_with_another_language_only_is_shown_in_it() {
        let t = Technique::from_toml(
            &window_en_only().replace("[teach.en]", "[teach.fr]"),
            "fr.toml",
        )
        .unwrap();
        let en = technique_card(&t, Lang::En);
        assert!(
            en.contains("no English teaching text: shown in \"fr\""),
            "{en}"
        );
        assert!(en.contains("A TCP segment with only ACK set."));
        let ja = technique_card(&t, Lang::Ja);
        assert!(ja.contains("説明文は \"fr\" で表示する"), "{ja}");
    }

    #[test]
    fn a_file_without_teaching_text_says_so_in_every_section() {
        let full = window_en_only();
        let bare = full.split("[teach.en]").next().unwrap();
        let t = Technique::from_toml(bare, "bare.toml").unwrap();
        let en = technique_card(&t, Lang::En);
        assert_eq!(
            en.matches("(this technique file does not say)").count(),
            5,
            "{en}"
        );
        let ja = technique_card(&t, Lang::Ja);
        assert_eq!(
            ja.matches("(この技法ファイルには説明がない)").count(),
            5,
            "{ja}"
        );
    }

    #[test]
    fn a_udp_port_card_says_udp_and_how_to_ask_the_service() {
        let s = services();
        let en = port_card(53, Protocol::Udp, &s, Lang::En);
        assert!(en.starts_with("Port 53/udp\n"), "{en}");
        assert!(en.contains("dig @HOST") && en.contains("ss -uln"), "{en}");
        assert!(!en.contains("telnet"), "{en}");
        let ja = port_card(123, Protocol::Udp, &s, Lang::Ja);
        assert!(
            ja.contains("123/udp") && ja.contains("ntpdate -q HOST"),
            "{ja}"
        );
    }

    #[test]
    fn port_card_without_a_note_says_so() {
        let empty = Services::default();
        let en = port_card(50000, Protocol::Tcp, &empty, Lang::En);
        assert!(en.contains("flagscan has no note on this port."));
        assert!(en.contains("unknown"));
        assert!(en.contains("telnet HOST 50000"));
        assert!(en.contains("Test-NetConnection HOST -Port 50000"));
        let ja = port_card(1024, Protocol::Tcp, &empty, Lang::Ja);
        assert!(ja.contains("このポートについての注記はない。"));
        assert!(ja.contains("登録済みポート(レジスタードポート)、1024〜49151番"));
        // Without /etc/services, the note's service name stands in.
        assert!(port_card(445, Protocol::Tcp, &empty, Lang::En).contains("Service:  SMB\n"));
        // Names as they are on this machine: any, but the card is complete.
        let here = Services::load();
        for port in [0, 22, 445, 3389, 49152, 65535] {
            for lang in [Lang::En, Lang::Ja] {
                let card = port_card(port, Protocol::Tcp, &here, lang);
                assert!(card.lines().count() >= 8, "{card}");
                assert!(card.lines().all(|l| width(l) <= WIDTH), "{card}");
            }
        }
    }
}
