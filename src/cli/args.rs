//! Raw arguments: clap's view of the command line, and the nmap spellings
//! it cannot express. No system access here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::usage;
use crate::io::rawsock::IoMode;
use crate::lab;
use crate::model::ports;
use crate::model::technique;
use crate::teach::lang::Lang;

const AFTER_HELP: &str = "\
Techniques (any subset runs as one interleaved pass):
  -sS  SYN scan      -sF  FIN scan      -sN  NULL scan      -sX  Xmas scan
  -sA  ACK scan      -sW  Window scan   -sM  Maimon scan   -sU  UDP scan (with TCP ones too)
  -sT  connect scan: the kernel's connect(), no raw socket needed, on its own (chosen, with a
       notice, when raw sockets are not allowed and no technique is named)
  or --scan syn,fin,null,xmas,ack,window,maimon,udp,connect; --technique FILE adds a technique file.
Targets: 10.0.0.2, 10.0.0.0/24, 10.0.0.1-20, 10.0.1-3.7, host names, -iL FILE.
Ports: -p 22,80,8000-8100; -p- for 1-65535; port 0 only when named; U:53,T:22 as nmap.
Host discovery beside the scan, as nmap's: ARP on the local link, else -PE -PS443 -PA80 -PP;
  -Pn skips it (every target up), -sn does only it; -PS22,443 -PA80 (ports attached,
  as nmap writes them), -PE, -PP, -PR choose.
Ctrl-C (or SIGTERM) stops a scan: the results so far go to every output and a resume
  file (flagscan.resume, or --resume-file PATH); `flagscan --resume FILE` finishes the scan,
  appending to the same output files. A second Ctrl-C quits at once.
Outputs: -oN (text), -oX (XML), -oG (grepable), -oA BASE (all, and JSON Lines), -oJ (JSON
  Lines), -oL (masscan's list). Names: -n is accepted (flagscan never looks addresses up
  to names); -R is refused for that reason.
Exit codes: 0 done, 1 failure while running, 2 bad command line or missing privileges,
  3 interrupted (results so far and a resume file written), 130 quit by a second Ctrl-C.
Raw sockets need root or CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v flagscan)
Try it without a network: sudo flagscan demo";

#[derive(Debug, Parser)]
#[command(
    name = "flagscan",
    version,
    about = "Raw-packet port scanner: TCP (SYN, FIN, NULL, Xmas, ACK, Window, Maimon) and UDP in one pass",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Targets: addresses, CIDR blocks, octet ranges, host names (the outputs
    /// name a target given by name, as nmap's do).
    pub targets: Vec<String>,

    /// Techniques by name, comma-separated (-sS -sF -sN -sX are shorthands).
    #[arg(long = "scan", value_delimiter = ',', value_name = "NAMES")]
    pub scan: Vec<String>,

    /// Load a technique from a TOML file (see scanners/).
    #[arg(long = "technique", value_name = "FILE")]
    pub technique_files: Vec<PathBuf>,

    /// Ports to scan (-p- for all). Default: see below.
    #[arg(short = 'p', long = "ports", value_name = "PORTS", help = ports::DEFAULT_PORTS_HELP)]
    pub ports: Option<String>,

    /// Scan the N ports nmap's table finds open most often
    /// (/usr/share/nmap/nmap-services; without it, flagscan's own list of
    /// common services, then its default ports), per protocol.
    #[arg(long = "top-ports", value_name = "N", conflicts_with_all = ["ports", "fast"],
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub top_ports: Option<u32>,

    /// -r: probe hosts, ports and techniques in order instead of the seeded
    /// random order (one host at a time, its ports ascending).
    #[arg(short = 'r', long = "in-order")]
    pub in_order: bool,

    /// Scan one shard of the probes, as masscan (`--shard 2/4`, counted
    /// from 1) or zmap (`--shards 4 --shard 1`, counted from 0) split a
    /// scan across machines: each (host, port) goes to exactly one shard,
    /// whatever the seed, so the shards' union is the whole scan.
    #[arg(long = "shard", value_name = "I/N")]
    pub shard: Option<String>,

    /// How many shards `--shard I` counts (zmap's spelling).
    #[arg(long = "shards", value_name = "N", requires = "shard")]
    pub shards: Option<u64>,

    /// -F: the 100 most common ports, as nmap's fast scan (--top-ports 100).
    #[arg(short = 'F', long = "fast", conflicts_with = "ports")]
    pub fast: bool,

    /// Read targets from FILE (-iL FILE; '-' for stdin).
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Option<PathBuf>,

    /// Targets to leave out (comma-separated, same syntax as targets).
    #[arg(long = "exclude", value_name = "LIST")]
    pub exclude: Vec<String>,

    /// Read targets to leave out from FILE.
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_file: Option<PathBuf>,

    /// Write JSON Lines to FILE (-oJ FILE; '-' for stdout).
    #[arg(long = "output-json", value_name = "FILE")]
    pub output_json: Option<PathBuf>,

    /// Write nmap's XML to FILE (-oX FILE; '-' for stdout). With several
    /// techniques, one document each: FILE for the first, FILE-NAME.xml
    /// beside it for the others (see docs/output.md).
    #[arg(long = "output-xml", value_name = "FILE")]
    pub output_xml: Option<PathBuf>,

    /// Write the text report to FILE (-oN FILE; '-' for stdout).
    #[arg(long = "output-normal", value_name = "FILE")]
    pub output_normal: Option<PathBuf>,

    /// Write nmap's grepable format to FILE (-oG FILE; '-' for stdout);
    /// one file per technique, as for -oX.
    #[arg(long = "output-grepable", value_name = "FILE")]
    pub output_grepable: Option<PathBuf>,

    /// Write masscan's list format to FILE (-oL FILE; '-' for stdout): one
    /// line per open port, `open tcp 22 10.0.0.2 TIMESTAMP`.
    #[arg(long = "output-list", value_name = "FILE")]
    pub output_list: Option<PathBuf>,

    /// -oA BASE: BASE.xml, BASE.nmap, BASE.gnmap and BASE.jsonl at once.
    #[arg(long = "output-all", value_name = "BASE")]
    pub output_all: Option<PathBuf>,

    /// Show only ports that may be open (open, open|filtered, unfiltered)
    /// in the text report, -oX and -oG, and hosts with at least one; JSON
    /// Lines keeps every port.
    #[arg(long)]
    pub open: bool,

    /// nmap's --max-rtt-timeout: the longest a probe's timeout grows
    /// (30ms, 1s; default 1250 ms at -T4).
    #[arg(long = "max-rtt-timeout", value_name = "TIME")]
    pub max_rtt_timeout: Option<String>,

    /// nmap's --initial-rtt-timeout: the timeout before any round trip is
    /// measured (default 500 ms at -T4).
    #[arg(long = "initial-rtt-timeout", value_name = "TIME")]
    pub initial_rtt_timeout: Option<String>,

    /// nmap's --scan-delay: at least TIME between two probes (the whole
    /// scan's, not each host's as in nmap; the same as --max-rate 1/TIME).
    #[arg(long = "scan-delay", value_name = "TIME")]
    pub scan_delay: Option<String>,

    /// -v: tell each open port as it is found ("Discovered open port"), each
    /// change of the timing (loss, longer timeouts, a rate limiter being
    /// confirmed), and, when stderr is no terminal, a stats line every 30 s.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// -d: -v, and the scan's timing (round trip, timeout, window, probes in flight,
    /// retries) on stderr every second, as nmap's -d shows it (-dd, -d2 ... the same)
    #[arg(short = 'd', long = "debug", action = clap::ArgAction::Count)]
    pub debug: u8,

    /// A stats line on stderr every TIME (nmap's time syntax: 10s, 1m):
    /// elapsed, probes decided, open ports, time left.
    #[arg(long = "stats-every", value_name = "TIME")]
    pub stats_every: Option<String>,

    /// Show why each state was concluded, and the reply's TTL.
    #[arg(long)]
    pub reason: bool,

    /// Times a probe is sent again before silence is concluded (0-7: the
    /// try travels in the source port; default 1). When answers arrive only
    /// on retries (loss), the scan allows more, up to 6, as nmap does.
    #[arg(long = "max-retries", value_name = "N",
          value_parser = clap::value_parser!(u8).range(0..=7))]
    pub max_retries: Option<u8>,

    /// Timing template 0-5 (-T0 .. -T5): paranoid, sneaky, polite, normal,
    /// aggressive (default), insane. --max-retries and --max-rate override it.
    #[arg(long = "timing", value_name = "0-5", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(0..=5))]
    pub timing: u8,

    /// Send at least N probes per second, even past the congestion window.
    #[arg(long = "min-rate", value_name = "N")]
    pub min_rate: Option<f64>,

    /// Send at most N probes per second (`--rate`, as masscan and zmap spell it).
    #[arg(long = "max-rate", visible_alias = "rate", value_name = "N")]
    pub max_rate: Option<f64>,

    /// Seed for cookies, source ports and probe order (reproducible scans).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Send through this interface.
    #[arg(short = 'e', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Source address of the probes, or several (`10.0.0.100-115`, a list):
    /// probes take them in turn, and a target that limits its ICMP errors
    /// or resets per destination answers each address with its own
    /// budget. Each must be an address of this host.
    #[arg(short = 'S', long = "source", value_name = "ADDRS")]
    pub source: Option<String>,

    /// nmap's --scanflags: send these TCP flags (names run together in any
    /// order and case, URG ACK PSH RST SYN FIN ECE CWR, e.g. SYNFIN; or a
    /// number 0-255, decimal or 0x hex) as the probes of the one TCP
    /// technique named (SYN when none is), whose table reads the answers:
    /// -sF --scanflags PSH is FIN's table with PSH probes.
    #[arg(long = "scanflags", value_name = "FLAGS")]
    pub scanflags: Option<String>,

    /// -g PORT: every TCP probe leaves from this source port (nmap's -g;
    /// e.g. 53 or 20, which some firewalls let through). The try and the
    /// technique move into the cookie. Host discovery's probes keep their
    /// own ports; refused with -sU, whose cookie is its source port.
    #[arg(short = 'g', long = "source-port", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..=65535))]
    pub source_port: Option<u16>,

    /// Print every probe and reply as it happens, with the cookie check and
    /// the table row that decided the state.
    #[arg(long = "packet-trace")]
    pub packet_trace: bool,

    /// Write every probe sent and every reply captured to a pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Go ahead with more than 2^24 target addresses (a /8).
    #[arg(long)]
    pub yes: bool,

    /// Host names resolve to their IPv6 addresses, as nmap's -6 (IPv6
    /// addresses and blocks need no flag).
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Scan every address a host name resolves to, not only the first
    /// (without -6: its IPv4 and IPv6 addresses both).
    #[arg(long = "resolve-all")]
    pub resolve_all: bool,

    /// Stay root while scanning (by default flagscan becomes the sudo user,
    /// or nobody, once its sockets and files are open).
    #[arg(long = "keep-privileges")]
    pub keep_privileges: bool,

    /// Packet I/O: fast (Linux: batched sends, a TPACKET_V3 ring and a
    /// kernel filter) or portable (pnet, one packet per call). The fast path
    /// falls back to the portable one, with a notice, where it is unavailable.
    #[arg(long = "io", value_name = "PATH", value_enum, default_value_t = IoMode::Fast)]
    pub io: IoMode,

    /// Makes the fast path's capture ring ready this many milliseconds
    /// late, so that the scan starts on the interim capture and hands over
    /// mid-scan (the I/O test's way to reach that path; not for users).
    #[arg(
        long = "ring-delay-ms",
        value_name = "MS",
        default_value_t = 0,
        hide = true
    )]
    pub ring_delay_ms: u64,

    /// Language of the teaching texts (findings, verdicts): en or ja.
    /// Default: from LC_ALL / LC_MESSAGES / LANG.
    #[arg(long, value_name = "LANG", global = true, value_parser = parse_lang)]
    pub lang: Option<Lang>,

    /// How long, per host, silent probes are confirmed when the host
    /// rate-limits its RSTs or ICMP errors (paced to the measured rate);
    /// those still silent then are marked rate_limited. 0: none.
    #[arg(
        long = "limit-budget",
        value_name = "SECONDS",
        default_value = "40",
        allow_hyphen_values = true
    )]
    pub limit_budget: String,

    /// Caps --limit-budget (nmap's time syntax: 500ms, 30s, 5m, 1h; a
    /// bare number is seconds; 0: no cap). Unlike nmap's, a host's first
    /// pass is not cut short: only the confirming of rate-limited answers is.
    #[arg(long = "host-timeout", value_name = "TIME", allow_hyphen_values = true)]
    pub host_timeout: Option<String>,

    /// -Pn: no host discovery; every target is taken as up.
    #[arg(long = "no-ping")]
    pub no_ping: bool,

    /// -sn: host discovery only; list the hosts that are up.
    #[arg(long = "ping-only")]
    pub ping_only: bool,

    /// -PS PORTS: discovery sends a TCP SYN to these ports (-PS alone: 80).
    #[arg(long = "ping-syn", value_name = "PORTS")]
    pub ping_syn: Option<String>,

    /// -PA PORTS: discovery sends a TCP ACK to these ports (-PA alone: 80).
    #[arg(long = "ping-ack", value_name = "PORTS")]
    pub ping_ack: Option<String>,

    /// -PE: discovery sends an ICMP echo request.
    #[arg(long = "ping-echo")]
    pub ping_echo: bool,

    /// -PP: discovery sends an ICMP timestamp request.
    #[arg(long = "ping-timestamp")]
    pub ping_timestamp: bool,

    /// -PR: discovery asks ARP on the local link (always, as nmap as root
    /// does; targets beyond the link get -PE -PS443 -PA80 -PP unless
    /// other -P options are named).
    #[arg(long = "ping-arp")]
    pub ping_arp: bool,

    /// Scan from inside this network namespace (e.g. flagscan-scan from `flagscan lab up`).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,

    /// Where an interrupted scan writes its resume file [default: flagscan.resume].
    #[arg(long = "resume-file", value_name = "PATH")]
    pub resume_file: Option<PathBuf>,

    /// Finish an interrupted scan: its options, targets and seed come from
    /// FILE, and its records are appended to the same output files.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, inspect or remove the lab: real Linux hosts in network namespaces.
    Lab {
        #[command(subcommand)]
        action: LabAction,
        /// Name prefix of the lab's namespaces.
        #[arg(long, default_value = lab::DEFAULT_PREFIX, global = true)]
        prefix: String,
    },
    /// Print a technique's card (syn, fin, null, xmas, ack, window, maimon, udp, connect or a technique
    /// file), or what a port is: `flagscan explain port 445`, `flagscan explain port 53/udp`.
    Explain {
        /// A technique name, a technique file, or `port`.
        topic: String,
        /// The port number, after `port`.
        port: Option<String>,
    },
    /// A guided tour: bring the lab up, scan it with SYN, FIN, NULL, Xmas
    /// and UDP in one pass, explain the differences, tear it down.
    Demo {
        #[arg(long, default_value = lab::DEFAULT_PREFIX)]
        prefix: String,
    },
    /// Print a shell completion script, e.g.
    /// `flagscan completions bash > /etc/bash_completion.d/flagscan`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `flagscan man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Create the lab (replacing one with the same prefix).
    Up,
    /// Remove the lab and its processes.
    Down,
    /// Show whether the lab is up, its hosts and what each demonstrates.
    Status,
    /// (internal) Listen on TCP ports until killed: the lab's open ports.
    #[command(hide = true)]
    Listen {
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
    },
    /// (internal) Run a lab host's UDP services until killed.
    #[command(hide = true, name = "listen-udp")]
    ListenUdp {
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
    },
}

pub(crate) fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language '{s}': use en or ja"))
}

/// Rewrites nmap-style spellings that clap cannot express (`-sS`, `-p-`,
/// `-oJ`, `-iL`) into long options; unknown `-s?` letters are an error.
/// An argument that is not UTF-8 text is kept as it is: clap accepts it
/// as a path and refuses it, in one line, anywhere else.
pub fn normalize_args<A: Into<OsString>>(
    raw: impl IntoIterator<Item = A>,
) -> anyhow::Result<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for (i, arg) in raw.into_iter().enumerate() {
        let arg: OsString = arg.into();
        let text = match arg.to_str() {
            Some(text) if i > 0 => text,
            _ => {
                out.push(arg);
                continue;
            }
        };
        match text {
            "-p-" => out.push("--ports=-".into()),
            "-oJ" => out.push("--output-json".into()),
            "-oX" => out.push("--output-xml".into()),
            "-oN" => out.push("--output-normal".into()),
            "-oG" => out.push("--output-grepable".into()),
            "-oA" => out.push("--output-all".into()),
            "-oL" => out.push("--output-list".into()),
            "-iL" => out.push("--input-list".into()),
            // nmap's habit that is flagscan's behaviour anyway: no reverse DNS.
            "-n" => {}
            "-R" => {
                return Err(usage(
                    "-R: flagscan never looks addresses up to names (nmap's -n is its behaviour); \
                     leave -R out",
                ))
            }
            "-Pn" => out.push("--no-ping".into()),
            // nmap's -d1 .. -d9: one level of debugging here; -d0 is off.
            s if s.len() > 2
                && s.starts_with("-d")
                && s[2..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                if s[2..].bytes().any(|b| b != b'0') {
                    out.push("--debug".into())
                }
            }
            "-sn" | "-sP" => out.push("--ping-only".into()),
            "-PE" => out.push("--ping-echo".into()),
            "-PP" => out.push("--ping-timestamp".into()),
            "-PR" => out.push("--ping-arp".into()),
            s if s.starts_with("-PS") || s.starts_with("-PA") => {
                let long = if s.starts_with("-PS") {
                    "--ping-syn"
                } else {
                    "--ping-ack"
                };
                let ports = if s.len() > 3 { &s[3..] } else { "80" };
                out.push(format!("{long}={ports}").into());
            }
            s if s.len() == 3 && s.starts_with("-T") => {
                out.push(format!("--timing={}", &s[2..]).into())
            }
            s if s.len() > 2 && s.starts_with("-s") => {
                let letters = &s[2..];
                let t = technique::builtin_by_name(letters).ok_or_else(|| {
                    usage(format!(
                        "unknown scan technique '{s}': flagscan knows -sS (syn), -sF (fin), -sN (null), -sX (xmas), \
                         -sA (ack), -sW (window), -sM (maimon), -sU (udp), -sT (connect); \
                         other techniques load with --technique FILE"
                    ))
                })?;
                out.push(format!("--scan={}", t.name).into());
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}
