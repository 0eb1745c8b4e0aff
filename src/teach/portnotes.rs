//! What a teacher says about a port: its IANA range class and, for the
//! common services of ../shared/ports.md, a one-sentence note in English and
//! Japanese ("Telnet is cleartext", "SMB must not face the internet", ...).
//!
//! The table is embedded: notes must not depend on the machine. Service
//! *names* as `ss` and nmap print them come from [`crate::model::services`]; the
//! `service` field here is the protocol's common name, for people.

use crate::model::ports::{port_class, PortClass};
use crate::teach::lang::Lang;

/// The note on one TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortNote {
    pub port: u16,
    /// The protocol's common name ("Telnet", "SMB", "HTTP alternate").
    pub service: &'static str,
    pub en: &'static str,
    pub ja: &'static str,
}

impl PortNote {
    /// The note in `lang`.
    pub fn text(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::Ja => self.ja,
        }
    }
}

const fn n(port: u16, service: &'static str, en: &'static str, ja: &'static str) -> PortNote {
    PortNote {
        port,
        service,
        en,
        ja,
    }
}

/// The TCP rows of ports.md, sorted by port.
pub const NOTES: &[PortNote] = &[
    n(
        20,
        "FTP data",
        "FTP's data channel: FTP needs it together with port 21 (control), and sends everything in cleartext.",
        "FTPのデータ転送用。FTPには21番(制御用)とあわせて両方が必要で、すべてが平文で送られる。",
    ),
    n(
        21,
        "FTP",
        "FTP's control channel: FTP needs it together with port 20 (data), and sends user names and passwords in cleartext; prefer SFTP.",
        "FTPの制御用。20番(データ転送用)とあわせて両方が必要で、ユーザー名もパスワードも平文で送られる。SFTPを使うほうがよい。",
    ),
    n(
        22,
        "SSH",
        "SSH: encrypted remote login; SCP and SFTP copy files over it.",
        "SSH: 暗号化されたリモートログイン。SCPやSFTPのファイル転送もこの上で行われる。",
    ),
    n(
        23,
        "Telnet",
        "Telnet sends everything, passwords included, in cleartext: close it and use SSH.",
        "Telnetはパスワードも含めてすべてを平文で送る。このポートは閉じて、SSHを使うこと。",
    ),
    n(
        25,
        "SMTP",
        "SMTP: mail transfer between servers; a server that relays mail for anyone (an open relay) is abused to send spam.",
        "SMTP: サーバー間のメール転送。誰のメールでも中継するサーバー(オープンリレー)はスパムの送信に悪用される。",
    ),
    n(
        53,
        "DNS",
        "DNS: turns names into addresses; TCP carries the large answers and zone transfers.",
        "DNS: 名前をIPアドレスに変換する。TCPは大きな応答やゾーン転送に使われる。",
    ),
    n(
        80,
        "HTTP",
        "HTTP: the web, unencrypted; a typical web server lets only 80 and 443 through its firewall.",
        "HTTP: Web(暗号化なし)。典型的なWebサーバーは、ファイアウォールで80番と443番だけを通す。",
    ),
    n(
        110,
        "POP3",
        "POP3: mail clients download their mail from the server; POP3S (port 995) is the same over TLS.",
        "POP3: メールクライアントがサーバーからメールを受信する。TLSで暗号化したものがPOP3S(995番)。",
    ),
    n(
        111,
        "portmapper",
        "portmapper (rpcbind): tells clients which ports RPC services such as NFS listen on; keep it inside the network.",
        "portmapper(rpcbind): NFSなどのRPCサービスが待ち受けるポートをクライアントに教える。ネットワークの内側だけで使うこと。",
    ),
    n(
        119,
        "NNTP",
        "NNTP: Usenet news.",
        "NNTP: Usenetのニュース。",
    ),
    n(
        137,
        "NetBIOS name",
        "NetBIOS name service, part of Windows file and printer sharing: keep it inside the network.",
        "NetBIOS名前サービス。Windowsのファイル・プリンタ共有の一部で、ネットワークの内側だけで使うこと。",
    ),
    n(
        138,
        "NetBIOS datagram",
        "NetBIOS datagram service, part of Windows file and printer sharing: keep it inside the network.",
        "NetBIOSデータグラムサービス。Windowsのファイル・プリンタ共有の一部で、ネットワークの内側だけで使うこと。",
    ),
    n(
        139,
        "NetBIOS session",
        "NetBIOS session service, Windows file and printer sharing (SMB over NetBIOS): keep it inside the network.",
        "NetBIOSセッションサービス。Windowsのファイル・プリンタ共有(NetBIOS上のSMB)で、ネットワークの内側だけで使うこと。",
    ),
    n(
        143,
        "IMAP",
        "IMAP: mail clients read their mail, which stays on the server; IMAPS (port 993) is the same over TLS.",
        "IMAP: メールクライアントがメールを読む(メールはサーバーに残る)。TLSで暗号化したものがIMAPS(993番)。",
    ),
    n(
        179,
        "BGP",
        "BGP: routers exchange routes between autonomous systems; only the peer routers should reach it.",
        "BGP: 自律システム(AS)の間でルーターが経路を交換する。相手のルーター以外からは届かないようにする。",
    ),
    n(
        194,
        "IRC",
        "IRC: chat.",
        "IRC: チャット。",
    ),
    n(
        443,
        "HTTPS",
        "HTTPS: HTTP over TLS; DNS over HTTPS (DoH) uses this port too.",
        "HTTPS: TLSで暗号化したHTTP。DNS over HTTPS(DoH)もこのポートを使う。",
    ),
    n(
        445,
        "SMB",
        "SMB (microsoft-ds), exploited by WannaCry: never expose it to the internet.",
        "SMB(microsoft-ds)。WannaCryに悪用された。インターネットには絶対に公開しないこと。",
    ),
    n(
        465,
        "SMTPS",
        "SMTPS: SMTP over TLS.",
        "SMTPS: TLSで暗号化したSMTP。",
    ),
    n(
        587,
        "SMTP submission",
        "Mail submission: mail clients hand their outgoing mail to the server here (SMTP).",
        "メールサブミッション: メールクライアントが送信するメールをここでサーバーに渡す(SMTP)。",
    ),
    n(
        993,
        "IMAPS",
        "IMAPS: IMAP over TLS.",
        "IMAPS: TLSで暗号化したIMAP。",
    ),
    n(
        995,
        "POP3S",
        "POP3S: POP3 over TLS.",
        "POP3S: TLSで暗号化したPOP3。",
    ),
    n(
        1080,
        "SOCKS",
        "SOCKS: a proxy; if anyone can use it, attackers can hide their traffic behind this host.",
        "SOCKS: プロキシ。誰でも使えると、攻撃者が自分の通信をこのホスト経由にして隠せる。",
    ),
    n(
        1521,
        "Oracle database",
        "Oracle database: the default listener; keep databases off the internet.",
        "Oracleデータベース: 既定のリスナー。データベースはインターネットに公開しないこと。",
    ),
    n(
        1723,
        "PPTP",
        "PPTP VPN: an outdated VPN protocol; replace it with a current one.",
        "PPTP VPN: 古いVPNプロトコル。現在のVPNに置き換えること。",
    ),
    n(
        1863,
        "MSN Messenger",
        "MSN Messenger: historic; the service no longer exists.",
        "MSN Messenger: 過去のもの。サービスはすでに終了している。",
    ),
    n(
        3306,
        "MySQL",
        "MySQL: keep databases off the internet.",
        "MySQL: データベースはインターネットに公開しないこと。",
    ),
    n(
        3389,
        "RDP",
        "RDP (remote desktop): allow it only from trusted addresses.",
        "RDP(リモートデスクトップ): 信頼できるアドレスからの接続だけを許可すること。",
    ),
    n(
        3724,
        "World of Warcraft",
        "World of Warcraft: games use registered ports too.",
        "World of Warcraft: ゲームも登録済みポートを使う。",
    ),
    n(
        5432,
        "PostgreSQL",
        "PostgreSQL: keep databases off the internet.",
        "PostgreSQL: データベースはインターネットに公開しないこと。",
    ),
    n(
        6881,
        "BitTorrent",
        "BitTorrent: peer-to-peer file sharing.",
        "BitTorrent: P2Pのファイル共有。",
    ),
    n(
        8080,
        "HTTP alternate",
        "An alternate HTTP port and Tomcat's default; proxies and application servers often listen here.",
        "HTTPの代替ポートで、Tomcatの既定のポート。プロキシやアプリケーションサーバーがよく待ち受ける。",
    ),
];

/// The note on `port`, if ports.md has one.
pub fn note(port: u16) -> Option<&'static PortNote> {
    NOTES
        .binary_search_by_key(&port, |note| note.port)
        .ok()
        .map(|i| &NOTES[i])
}

/// The note on `port` in `lang`.
pub fn note_text(port: u16, lang: Lang) -> Option<&'static str> {
    note(port).map(|note| note.text(lang))
}

/// The range class's name: "well-known" / "ウェルノウンポート(特権ポート)".
pub fn class_name(port: u16, lang: Lang) -> &'static str {
    class_name_of(port_class(port), lang)
}

/// [`class_name`] for a class.
pub fn class_name_of(class: PortClass, lang: Lang) -> &'static str {
    match (class, lang) {
        (PortClass::WellKnown, Lang::En) => "well-known",
        (PortClass::Registered, Lang::En) => "registered",
        (PortClass::Dynamic, Lang::En) => "dynamic",
        (PortClass::WellKnown, Lang::Ja) => "ウェルノウンポート(特権ポート)",
        (PortClass::Registered, Lang::Ja) => "登録済みポート(レジスタードポート)",
        (PortClass::Dynamic, Lang::Ja) => "ダイナミックポート",
    }
}

/// The first and last port of the class `port` falls in.
pub fn class_bounds(port: u16) -> (u16, u16) {
    class_bounds_of(port_class(port))
}

/// [`class_bounds`] for a class.
pub fn class_bounds_of(class: PortClass) -> (u16, u16) {
    match class {
        PortClass::WellKnown => (0, 1023),
        PortClass::Registered => (1024, 49151),
        PortClass::Dynamic => (49152, 65535),
    }
}

/// One line on what the class `port` falls in is for (without the bounds).
pub fn class_description(port: u16, lang: Lang) -> &'static str {
    class_description_of(port_class(port), lang)
}

/// [`class_description`] for a class.
pub fn class_description_of(class: PortClass, lang: Lang) -> &'static str {
    match (class, lang) {
        (PortClass::WellKnown, Lang::En) => {
            "Reserved for major services; on Linux only root may bind them."
        }
        (PortClass::Registered, Lang::En) => {
            "IANA registers them for specific applications, such as Oracle (1521) and \
             PostgreSQL (5432)."
        }
        (PortClass::Dynamic, Lang::En) => {
            "Also called private or ephemeral ports: free for any program; clients' \
             source ports come from here (Linux's default ephemeral range is 32768-60999)."
        }
        (PortClass::WellKnown, Lang::Ja) => {
            "主要なサービスのために予約されている。Linuxではrootだけがbindできる。"
        }
        (PortClass::Registered, Lang::Ja) => {
            "IANAが特定のアプリケーションのために登録している(Oracleの1521番、\
             PostgreSQLの5432番など)。"
        }
        (PortClass::Dynamic, Lang::Ja) => {
            "プライベートポート、エフェメラルポートとも呼ぶ。どのプログラムも自由に使え、\
             クライアントの送信元ポートはここから選ばれる(Linuxの既定のエフェメラルポート範囲は32768〜60999)。"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tcp rows of ../shared/ports.md.
    const PORTS_MD_TCP: [u16; 32] = [
        20, 21, 22, 23, 25, 53, 80, 110, 111, 119, 137, 138, 139, 143, 179, 194, 443, 445, 465,
        587, 993, 995, 1080, 1521, 1723, 1863, 3306, 3389, 3724, 5432, 6881, 8080,
    ];

    #[test]
    fn table_is_sorted_unique_and_covers_ports_md() {
        assert!(NOTES.windows(2).all(|w| w[0].port < w[1].port));
        let ports: Vec<u16> = NOTES.iter().map(|n| n.port).collect();
        assert_eq!(ports, PORTS_MD_TCP);
        for port in PORTS_MD_TCP {
            assert_eq!(note(port).unwrap().port, port);
        }
    }

    #[test]
    fn every_note_is_a_sentence_in_both_languages() {
        for n in NOTES {
            assert!(!n.service.is_empty(), "{}", n.port);
            assert!(n.en.ends_with('.'), "{}: {:?}", n.port, n.en);
            assert!(n.ja.ends_with('。'), "{}: {:?}", n.port, n.ja);
            assert!(!n.ja.is_ascii(), "{}: ja is English", n.port);
            assert!(!n.en.contains("  ") && !n.ja.contains("  "), "{}", n.port);
        }
    }

    #[test]
    fn notes_say_what_ports_md_says() {
        assert_eq!(
            note_text(23, Lang::En),
            Some(
                "Telnet sends everything, passwords included, in cleartext: close it and use SSH."
            )
        );
        assert!(note_text(445, Lang::En).unwrap().contains("WannaCry"));
        assert!(note_text(445, Lang::Ja).unwrap().contains("インターネット"));
        assert!(note_text(3306, Lang::En)
            .unwrap()
            .contains("off the internet"));
        assert!(note_text(8080, Lang::En).unwrap().contains("Tomcat"));
        for port in [0, 24, 123, 161, 8081, 50000, 65535] {
            assert_eq!(note(port), None, "{port}");
            assert_eq!(note_text(port, Lang::Ja), None, "{port}");
        }
    }

    #[test]
    fn classes_follow_the_iana_ranges() {
        for (port, en, ja) in [
            (0, "well-known", "ウェルノウンポート(特権ポート)"),
            (1023, "well-known", "ウェルノウンポート(特権ポート)"),
            (1024, "registered", "登録済みポート(レジスタードポート)"),
            (49151, "registered", "登録済みポート(レジスタードポート)"),
            (49152, "dynamic", "ダイナミックポート"),
            (65535, "dynamic", "ダイナミックポート"),
        ] {
            assert_eq!(class_name(port, Lang::En), en, "{port}");
            assert_eq!(class_name(port, Lang::Ja), ja, "{port}");
            assert_eq!(class_name(port, Lang::En), port_class(port).name());
            let (lo, hi) = class_bounds(port);
            assert!(lo <= port && port <= hi, "{port}");
            assert_eq!(port_class(lo), port_class(hi));
            assert!(!class_description(port, Lang::En).is_empty());
            assert!(!class_description(port, Lang::Ja).is_empty());
        }
        assert!(class_description(80, Lang::En).contains("root"));
        assert!(class_description(60000, Lang::En).contains("32768-60999"));
    }
}
