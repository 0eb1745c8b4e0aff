//! `flagscan demo`: a guided tour of the lab in English or Japanese.

use crate::engine::scan::{self, ScanConfig};
use crate::engine::timing::TimingParams;
use crate::lab;
use crate::model::ports;
use crate::model::services::Services;
use crate::model::technique::{self, Protocol};
use crate::output::text::{report, TextOptions};
use crate::teach::lang::Lang;

/// Ports the demo scans: the defaults plus the lab's interesting ones.
fn demo_ports() -> Vec<u16> {
    let mut ports = ports::default_ports();
    ports.extend([5432, 5433, 8000, 8080, 8081]);
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// UDP ports the demo asks: web's services (echo, DNS, NTP, a bound but
/// silent port), its dropped and rejected ones, and a closed one.
const DEMO_UDP_PORTS: [u16; 7] = [7, 53, 111, 123, 161, 514, 9999];

struct Narration {
    building: &'static str,
    hosts: &'static str,
    scanning: &'static str,
    reading: &'static str,
    removed: &'static str,
    try_it: &'static str,
}

const EN: Narration = Narration {
    building: "Step 1. Building the lab: real Linux hosts in network namespaces on this machine (nothing outside them is touched).",
    hosts: "The hosts and what each one demonstrates:",
    scanning: "Step 2. Scanning all three (web over IPv4 and IPv6) with SYN, FIN, NULL and Xmas probes, and UDP probes on a few ports, in one interleaved pass.\n\
A SYN is the first step of a handshake: an open port answers SYN/ACK, a closed one RST.\n\
FIN, NULL and Xmas probes open nothing: by RFC 9293 a closed port answers RST and an open port stays silent.\n\
A UDP probe carries the port's own protocol where there is one (a DNS query to 53): a service answers, a closed port sends ICMP port unreachable, and silence could be either.",
    reading: "Step 3. Reading it: compare each port's columns. Where SYN says open and the others stay silent, the host follows RFC 793;\n\
where they answer RST anyway, their 'closed' cannot be trusted; where SYN gets a RST and the others silence, a filter drops what opens no connection.\n\
The UDP table below each host's TCP one: open where a service answered, closed where the kernel said port unreachable, open|filtered where nothing came back (dropped, or a service that ignored us).\n\
web's two addresses answer differently on 137-139 (families-differ): its IPv6 firewall was never given the rule its IPv4 one has.",
    removed: "Lab removed: no namespace, interface or process is left.",
    try_it: "To explore by hand: sudo flagscan lab up, then sudo flagscan --netns flagscan-scan -sS -sF --reason 10.213.1.2 (exercises: docs/lab.md).",
};

const JA: Narration = Narration {
    building: "ステップ1. ラボを構築します: このマシン上のネットワーク名前空間に本物のLinuxホストを作ります(外部には一切触れません)。",
    hosts: "ホストとそれぞれが示すもの:",
    scanning: "ステップ2. 3台すべて(webはIPv4とIPv6の両方)を、TCP SYNスキャン、FINスキャン、NULLスキャン、Xmas Treeスキャンの1回のパスでポートスキャンします。\n\
SYNは3ウェイハンドシェイクの最初の一歩: オープンポートはSYN/ACK、閉じたポートはRSTで応答します。\n\
FIN・NULL・Xmasのプローブは接続を開きません: RFC 9293により、閉じたポートはRSTを返し、オープンポートは応答しません。\n\
いくつかのポートにはUDPプローブも送ります。プロトコルがあるポートにはその要求(53にはDNS問い合わせ)を載せます: サービスは応答し、閉じたポートはICMPポート到達不能を返し、無応答はどちらとも言えません。",
    reading: "ステップ3. 読み方: ポートごとに列を比べます。SYNがopenで他が無応答なら、そのホストはRFC 793どおりです。\n\
それでもRSTが返るなら、それらのclosedは信用できません。SYNにRST、他に無応答なら、接続を開かないパケットを破棄するファイアウォールがあります。\n\
各ホストのTCPの表の下にUDPの表があります: サービスが応答すればopen、カーネルがポート到達不能を返せばclosed、何も返らなければopen|filtered(破棄されたか、サービスが無視したか)です。\n\
webの2つのアドレスは137-139で応答が異なります(families-differ): IPv6のファイアウォールにはIPv4と同じ規則が書かれていません。",
    removed: "ラボを削除しました: 名前空間・インターフェース・プロセスは残っていません。",
    try_it: "自分で試すには: sudo flagscan lab up のあと sudo flagscan --netns flagscan-scan -sS -sF --reason 10.213.1.2 (演習: docs/lab.md)。",
};

fn host_role_ja(name: &str) -> Option<&'static str> {
    match name {
        "web" => Some("ファイアウォールの内側にあるRFC 793どおりのホスト: 破棄(DROP)、ICMPによる拒否、偽のリセット、ステートフルな破棄を1つのアドレスで示します。"),
        "rst" => Some("FIN・NULL・Xmasのプローブすべてにリセットで応答するホスト(WindowsやCisco機器のように、全ポートがclosedに見えます)。"),
        "far" => Some("ゲートウェイの向こうのホスト: プローブは1ホップ転送され、応答はTTL 63で戻ります。"),
        _ => None,
    }
}

/// Tears the lab down if Ctrl-C or SIGTERM arrives, so an interrupted demo
/// leaves no namespace or listener behind. Must run before any other thread
/// starts: the signals are blocked in this thread and every thread it
/// spawns, and only the watcher thread takes them.
fn teardown_on_signal(prefix: &str) -> anyhow::Result<()> {
    let prefix = prefix.to_string();
    crate::sys::interrupt::watch(move |sig| {
        eprintln!("\nflagscan: {sig}: removing the lab '{prefix}'...");
        let _ = lab::down(&prefix);
        std::process::exit(crate::sys::interrupt::EXIT_KILLED);
    })
}

pub fn run(prefix: &str, lang: Lang) -> anyhow::Result<()> {
    let say = match lang {
        Lang::En => &EN,
        Lang::Ja => &JA,
    };
    teardown_on_signal(prefix)?;
    println!("{}", say.building);
    let guard = lab::LabGuard(lab::up(prefix)?);
    crate::sys::netns::enter(&guard.0.scanner_netns())?;
    println!("{}", say.hosts);
    for host in lab::demo_hosts() {
        let role = match lang {
            Lang::Ja => host_role_ja(host.name).unwrap_or(host.role),
            Lang::En => host.role,
        };
        println!("  {:<14} {:<4} {}", host.addr, host.name, role);
    }
    let web = lab::demo_hosts()
        .iter()
        .find(|h| h.name == "web")
        .ok_or_else(|| anyhow::anyhow!("the lab has no host named web"))?;
    let web6_role = match lang {
        Lang::En => "web again, over IPv6: its IPv6 firewall lacks the rule that drops 137-139.",
        Lang::Ja => "IPv6で見たweb: IPv6のファイアウォールには137-139を破棄する規則がありません。",
    };
    println!("  {:<14} {:<4} {}", web.addr6, web.name, web6_role);
    println!("\n{}\n", say.scanning);
    let techniques = ["syn", "fin", "null", "xmas", "udp"]
        .iter()
        .map(|n| technique::builtin_by_name(n).expect("built in"))
        .collect();
    let mut targets: Vec<_> = lab::demo_hosts()
        .iter()
        .map(|h| std::net::IpAddr::V4(h.addr))
        .collect();
    targets.push(web.addr6.into());
    let targets: crate::model::hosts::Hosts = targets.into();
    let route = crate::route::plan(&targets, None, &[])?;
    let mut result = scan::run(
        ScanConfig {
            discovery: Some(crate::engine::discovery::PingPlan::default()),
            limit_budget: crate::engine::tracker::DEFAULT_LIMIT_BUDGET,
            source_port: None,
            targets,
            ports: {
                let mut all = demo_ports();
                all.extend(DEMO_UDP_PORTS);
                all.sort_unstable();
                all.dedup();
                all
            },
            in_order: false,
            shard: None,
            protocol_ports: vec![
                (Protocol::Tcp, demo_ports()),
                (Protocol::Udp, DEMO_UDP_PORTS.to_vec()),
            ],
            techniques,
            timing: TimingParams::default(),
            seed: None,
            device: None,
            sources: Vec::new(),
            max_rate: None,
            min_rate: None,
            taps: Vec::new(),
            notify: Some(crate::error::stderr_notify()),
            progress: crate::output::progress::Progress::for_terminal()
                .map(|p| Box::new(p) as Box<dyn crate::model::tap::ProgressView>),
            // The demo removes its lab afterwards, which needs root.
            drop_privileges: None,
            io: Default::default(),
            // A signal removes the lab and exits (above).
            interrupt: None,
            resume: None,
            early_ring: None,
        },
        route,
    )?;
    // Both of web's addresses by its name: the finding compares them.
    result.names = vec![
        (web.addr.into(), web.name.to_string()),
        (web.addr6.into(), web.name.to_string()),
    ];
    let services = Services::load();
    report(
        &result,
        &services,
        TextOptions {
            reason: true,
            open_only: false,
            lang,
        },
        false,
    )?;
    println!("{}\n", say.reading);
    drop(guard);
    println!("{}", say.removed);
    println!("{}", say.try_it);
    Ok(())
}
