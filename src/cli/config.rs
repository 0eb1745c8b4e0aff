//! Raw arguments -> a resolved configuration: techniques loaded, targets
//! expanded (DNS, target files), ports parsed, the timing template applied.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::cli::args::{normalize_args, Args};
use crate::cli::resume::{self, ResumeFile};
use crate::cli::targets;
use crate::engine::discovery::{Ping, PingPlan};
use crate::engine::scan::ScanConfig;
use crate::error::usage;
use crate::model::ports;
use crate::model::technique::{self, Protocol, Technique};
use crate::output::text::TextOptions;
use crate::teach::lang::Lang;

/// Everything a scan needs, resolved from the arguments.
pub struct Resolved {
    pub scan: ScanConfig,
    pub json: Option<PathBuf>,
    /// `-oX`, `-oN`, `-oG` (and `-oA`'s three).
    pub xml: Option<PathBuf>,
    pub normal: Option<PathBuf>,
    pub grepable: Option<PathBuf>,
    /// `-oL`: masscan's list of open ports.
    pub list: Option<PathBuf>,
    /// `--pcap FILE`: every probe and every reply captured, to this file.
    pub pcap: Option<PathBuf>,
    /// `--packet-trace`: a line per probe and per reply, as they happen.
    pub packet_trace: bool,
    pub text: TextOptions,
    /// `-v`: open ports told as found.
    pub verbose: bool,
    /// `-d`: the timing every second.
    pub debug: bool,
    /// `--stats-every`.
    pub stats_every: Option<Duration>,
    /// The host names targets were given by, for the outputs.
    pub names: Vec<(std::net::IpAddr, String)>,
}

pub fn resolve(args: &Args) -> anyhow::Result<Resolved> {
    let mut techniques: Vec<Technique> = Vec::new();
    for name in &args.scan {
        let t = technique::builtin_by_name(name.trim()).ok_or_else(|| {
            usage(format!(
                "unknown technique '{name}' in --scan: use syn, fin, null, xmas, ack, window, maimon, udp, connect \
                 or --technique FILE"
            ))
        })?;
        if !techniques.iter().any(|x| x.name == t.name) {
            techniques.push(t);
        }
    }
    for path in &args.technique_files {
        let t = Technique::load(path)?;
        if technique::builtin_by_name(&t.name).is_some() && !t.replaces_builtin {
            return Err(usage(format!(
                "technique file {} is named '{}' like a built-in technique: rename it, or add \
                 `replaces_builtin = true` to it to scan with it instead of the built-in one",
                path.display(),
                t.name
            )));
        }
        if techniques.iter().any(|x| x.name == t.name) {
            return Err(usage(format!(
                "technique '{}' from {} is already in this scan",
                t.name,
                path.display()
            )));
        }
        techniques.push(t);
    }
    if techniques.is_empty() {
        techniques.push(technique::builtin_by_name("syn").expect("syn is built in"));
    }
    if techniques.iter().any(|t| t.connect) && (args.pcap.is_some() || args.packet_trace) {
        return Err(usage(
            "-sT sends no packet of its own: --pcap and --packet-trace need a raw technique \
             (-sS as root); capture with tcpdump instead",
        ));
    }
    if let Some(text) = &args.scanflags {
        if techniques.iter().any(|t| t.connect) {
            return Err(usage(format!(
                "--scanflags {text} with -sT: a connect scan's packets are the kernel's; \
                 give --scanflags a raw technique (-sS, -sF, ...) or none"
            )));
        }
        if let Some(notice) = crate::model::scanflags::apply(&mut techniques, text)? {
            crate::error::say(&format!("flagscan: {notice}"));
        }
    }

    let mut tokens = args.targets.clone();
    if let Some(path) = &args.input_list {
        tokens.extend(targets::read_list_file(path)?);
    }
    let mut excludes = args.exclude.clone();
    if let Some(path) = &args.exclude_file {
        excludes.extend(targets::read_list_file(path)?);
    }
    if tokens.is_empty() {
        return Err(usage("no targets given: name at least one host, e.g. `flagscan -sS 10.0.0.2`, or try `flagscan demo`"));
    }
    let names_mode = targets::Names {
        ipv6: args.ipv6,
        all: args.resolve_all,
    };
    // fe80::1%eth0: the scope is the interface the scan goes out of.
    let (tokens, scope) = targets::strip_scopes(&tokens)?;
    let device = match (scope, &args.interface) {
        (Some(s), Some(e)) if &s != e => {
            return Err(usage(format!(
                "the targets' scope is interface '{s}' but -e names '{e}': a scan goes out of \
                 one interface"
            )))
        }
        (Some(s), _) => Some(s),
        (None, e) => e.clone(),
    };
    let (targets, names) = targets::expand_targets_named(&tokens, &excludes, args.yes, names_mode)?;
    // Each protocol of the pass gets its own ports (`-p U:53,T:22`); a
    // list without prefixes is every protocol's, as nmap reads it.
    let mut protocols: Vec<Protocol> = Vec::new();
    for t in &techniques {
        if !protocols.contains(&t.protocol) {
            protocols.push(t.protocol);
        }
    }
    if protocols.is_empty() {
        protocols.push(Protocol::default());
    }
    let services = crate::model::services::Services::load();
    let top = args.top_ports.or(args.fast.then_some(100));
    let nmap_table = top.and_then(|_| crate::model::services::Services::nmap_table());
    let mut protocol_ports: Vec<(Protocol, Vec<u16>)> = Vec::new();
    for &proto in &protocols {
        let list = match &args.ports {
            // -sn: no port is probed.
            _ if args.ping_only => Vec::new(),
            None if top.is_some() => {
                let n = top.unwrap_or(100) as usize;
                let (list, source) = ports::top_ports(proto, n, nmap_table.as_deref());
                if source == ports::TopSource::Own && proto == protocols[0] {
                    crate::error::say(&format!(
                        "flagscan: notice: nmap's table of common ports (/usr/share/nmap/nmap-services) is not \
                         installed: the top {n} ports come from flagscan's own list of common \
                         services, then its default ports"
                    ));
                }
                list
            }
            Some(spec) => {
                // nmap's way: a name stands for its port in every protocol
                // scanned (`-sU -p ssh` probes udp/22), its own protocol's
                // port first where the two differ.
                let named = |name: &str| {
                    let own = services.ports_named_in(proto, name);
                    match own.is_empty() {
                        true => [Protocol::Tcp, Protocol::Udp]
                            .iter()
                            .flat_map(|&p| services.ports_named_in(p, name))
                            .collect(),
                        false => own,
                    }
                };
                ports::parse_ports_in(spec, proto, Some(&named))?
            }
            None => ports::default_ports(),
        };
        protocol_ports.push((proto, list));
    }
    let mut ports: Vec<u16> = protocol_ports.iter().flat_map(|(_, p)| p.clone()).collect();
    ports.sort_unstable();
    ports.dedup();
    if protocol_ports.len() == 1 {
        protocol_ports.clear();
    }
    for (option, rate) in [("--max-rate", args.max_rate), ("--min-rate", args.min_rate)] {
        if let Some(rate) = rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(usage(format!(
                    "invalid {option} '{rate}': give a positive number of probes per second"
                )));
            }
        }
    }
    if let (Some(min), Some(max)) = (args.min_rate, args.max_rate) {
        if min > max {
            return Err(usage(format!("--min-rate {min} is above --max-rate {max}")));
        }
    }
    let template = crate::engine::timing::template(args.timing).expect("clap keeps -T within 0-5");
    let mut timing = template.params;
    if let Some(n) = args.max_retries {
        timing.max_retries = n;
        timing.max_adaptive_retries = timing.max_adaptive_retries.max(n);
    }
    let time = |option: &str, text: &Option<String>| -> anyhow::Result<Option<Duration>> {
        match text {
            None => Ok(None),
            Some(t) => match nmap_time(t) {
                Some(d) if !d.is_zero() => Ok(Some(d)),
                _ => Err(usage(format!(
                    "invalid {option} '{t}': give a time such as 500ms, 2s or 1m (at most 24h)"
                ))),
            },
        }
    };
    if let Some(max) = time("--max-rtt-timeout", &args.max_rtt_timeout)? {
        timing.max_rto = max;
        timing.min_rto = timing.min_rto.min(max);
        timing.initial_rto = timing.initial_rto.min(max);
    }
    if let Some(initial) = time("--initial-rtt-timeout", &args.initial_rtt_timeout)? {
        timing.initial_rto = initial.clamp(timing.min_rto, timing.max_rto);
    }
    let delay_rate = time("--scan-delay", &args.scan_delay)?.map(|d| 1.0 / d.as_secs_f64());
    let max_rate = match (args.max_rate.or(template.max_rate), delay_rate) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let outputs = outputs(args)?;
    Ok(Resolved {
        scan: ScanConfig {
            targets,
            ports,
            protocol_ports,
            in_order: args.in_order,
            shard: shard(args.shard.as_deref(), args.shards)?,
            techniques,
            timing,
            seed: args.seed,
            device,
            sources: match &args.source {
                Some(text) => crate::cli::targets::parse_sources(text)?,
                None => Vec::new(),
            },
            max_rate,
            min_rate: args.min_rate,
            taps: Vec::new(),
            notify: Some(crate::error::stderr_notify()),
            progress: None,
            drop_privileges: (!args.keep_privileges).then(Default::default),
            io: args.io,
            interrupt: None,
            resume: None,
            early_ring: None,
            discovery: ping_plan(args)?,
            limit_budget: limit_budget(&args.limit_budget, args.host_timeout.as_deref())?,
            source_port: args.source_port,
        },
        json: outputs.json,
        xml: outputs.xml,
        normal: outputs.normal,
        grepable: outputs.grepable,
        list: args.output_list.clone(),
        pcap: args.pcap.clone(),
        packet_trace: args.packet_trace,
        text: TextOptions {
            open_only: args.open,
            reason: args.reason,
            lang: args.lang.unwrap_or_else(Lang::from_env),
        },
        names,
        verbose: args.verbose > 0,
        debug: args.debug > 0,
        stats_every: match &args.stats_every {
            Some(t) => match nmap_time(t) {
                Some(d) if !d.is_zero() => Some(d),
                _ => {
                    return Err(usage(format!(
                        "invalid --stats-every '{t}': give a time such as 10s, 1m or 500ms (at most 24h)"
                    )))
                }
            },
            None => None,
        },
    })
}

/// The output files, `-oA BASE` spelt out.
struct Outputs {
    json: Option<PathBuf>,
    xml: Option<PathBuf>,
    normal: Option<PathBuf>,
    grepable: Option<PathBuf>,
}

fn outputs(args: &Args) -> anyhow::Result<Outputs> {
    let mut o = Outputs {
        json: args.output_json.clone(),
        xml: args.output_xml.clone(),
        normal: args.output_normal.clone(),
        grepable: args.output_grepable.clone(),
    };
    let Some(base) = &args.output_all else {
        return Ok(o);
    };
    if base.as_os_str() == "-" {
        return Err(usage(
            "-oA - : -oA writes four files named after its argument; give a base name",
        ));
    }
    let named = |ext: &str| {
        let mut name = base.as_os_str().to_owned();
        name.push(ext);
        Some(PathBuf::from(name))
    };
    for (option, slot, ext) in [
        ("-oJ", &mut o.json, ".jsonl"),
        ("-oX", &mut o.xml, ".xml"),
        ("-oN", &mut o.normal, ".nmap"),
        ("-oG", &mut o.grepable, ".gnmap"),
    ] {
        if slot.is_some() {
            return Err(usage(format!(
                "-oA {} already writes {}{ext}: drop {option}, or -oA",
                base.display(),
                base.display()
            )));
        }
        *slot = named(ext);
    }
    Ok(o)
}

/// `--limit-budget`, capped by `--host-timeout`.
fn limit_budget(text: &str, host_timeout: Option<&str>) -> anyhow::Result<Duration> {
    let budget = match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..=86_400.0).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        _ => {
            return Err(usage(format!(
                "invalid --limit-budget '{text}': give seconds from 0 to 86400"
            )))
        }
    };
    let cap = match host_timeout {
        Some(t) => match nmap_time(t) {
            // 0 is nmap's "no timeout".
            Some(d) if d.is_zero() => Duration::MAX,
            Some(d) => d,
            None => {
                return Err(usage(format!(
                    "invalid --host-timeout '{t}': give a time such as 500ms, 30s, 5m or 1h (at most 24h)"
                )))
            }
        },
        None => Duration::MAX,
    };
    Ok(budget.min(cap))
}

/// `--shard I/N` (masscan's, from 1) or `--shards N --shard I` (zmap's,
/// from 0), as (index from 0, count).
fn shard(spec: Option<&str>, shards: Option<u64>) -> anyhow::Result<Option<(u64, u64)>> {
    let Some(spec) = spec else { return Ok(None) };
    let bad = |why: &str| {
        usage(format!(
            "invalid --shard '{spec}': {why} (masscan's --shard 2/4, or zmap's --shards 4 --shard 1)"
        ))
    };
    let number = |t: &str| t.trim().parse::<u64>().map_err(|_| bad("not a number"));
    let (i, n) = match (spec.split_once('/'), shards) {
        (Some(_), Some(_)) => return Err(bad("give I/N or --shards N, not both")),
        (Some((i, n)), None) => {
            let (i, n) = (number(i)?, number(n)?);
            if i == 0 || i > n {
                return Err(bad("I counts from 1 to N"));
            }
            (i - 1, n)
        }
        (None, Some(n)) => {
            let i = number(spec)?;
            if i >= n {
                return Err(bad("I counts from 0 to N-1"));
            }
            (i, n)
        }
        (None, None) => return Err(bad("how many shards? give I/N")),
    };
    if n == 0 || n > 65_536 {
        return Err(bad("N is 1 to 65536"));
    }
    Ok(Some((i, n)))
}

/// A time as nmap writes it: a number, in seconds unless followed by
/// `ms`, `s`, `m` or `h`; at most a day.
fn nmap_time(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let secs = number.parse::<f64>().ok()? * scale;
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Host discovery from `-Pn`, `-sn` and the `-P` options: nmap's default
/// set unless some are named, then those.
fn ping_plan(args: &Args) -> anyhow::Result<Option<PingPlan>> {
    if args.no_ping {
        if args.ping_only {
            return Err(usage(
                "-Pn and -sn contradict each other: -Pn skips host discovery, -sn does only that",
            ));
        }
        return Ok(None);
    }
    let ports = |option: &str, spec: &Option<String>| -> anyhow::Result<Vec<u16>> {
        match spec {
            Some(spec) => ports::parse_ports(spec).map_err(|e| usage(format!("{option}: {e}"))),
            None => Ok(Vec::new()),
        }
    };
    let mut ip = Vec::new();
    if args.ping_echo {
        ip.push(Ping::Echo);
    }
    ip.extend(ports("-PS", &args.ping_syn)?.into_iter().map(Ping::Syn));
    ip.extend(ports("-PA", &args.ping_ack)?.into_iter().map(Ping::Ack));
    if args.ping_timestamp {
        ip.push(Ping::Timestamp);
    }
    // ARP stays on for the local link whatever else is named, as nmap's.
    let mut plan = PingPlan::default();
    if !ip.is_empty() {
        plan.ip = ip;
    }
    Ok(Some(plan))
}

/// `--resume FILE`: the arguments saved in FILE, with the seed it used and
/// the resume file to write if interrupted again (FILE itself unless
/// `--resume-file` is given); moves to the directory the scan ran in.
pub(crate) fn resume_args(
    raw: &[String],
    given: &Args,
    path: &Path,
) -> anyhow::Result<(Args, ResumeFile)> {
    let extra = resume::saved_args(raw);
    if !extra.is_empty() {
        return Err(usage(format!(
            "--resume takes the scan's options from {}; give no others than --resume-file (got: {})",
            path.display(),
            extra.join(" ")
        )));
    }
    let rf = ResumeFile::load(path)?;
    // Absolute before moving to the scan's directory.
    let resume_file = std::path::absolute(given.resume_file.as_deref().unwrap_or(path))
        .map_err(|e| usage(format!("resume file {}: {e}", path.display())))?;
    let argv = std::iter::once("flagscan".to_string()).chain(rf.args.iter().cloned());
    let bad = |why: String| usage(format!("bad resume file {}: {why}", path.display()));
    let argv = normalize_args(argv).map_err(|e| bad(format!("{e:#}")))?;
    let mut args = Args::try_parse_from(argv).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or_default();
        bad(format!(
            "its arguments do not parse: {}",
            first.trim_start_matches("error: ")
        ))
    })?;
    if args.command.is_some() || args.resume.is_some() {
        return Err(bad("its arguments are not a scan".into()));
    }
    args.seed = Some(rf.seed);
    args.resume = Some(resume_file.clone());
    args.resume_file = Some(resume_file);
    if !rf.cwd.as_os_str().is_empty() {
        std::env::set_current_dir(&rf.cwd).map_err(|e| {
            usage(format!(
                "cannot resume in {}, where the scan ran (its relative paths start there): {e}",
                rf.cwd.display()
            ))
        })?;
    }
    Ok((args, rf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        std::iter::once("flagscan")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn parse(s: &str) -> anyhow::Result<Resolved> {
        let args = Args::try_parse_from(normalize_args(argv(s))?)?;
        resolve(&args)
    }

    #[test]
    fn nmaps_timing_options_set_the_timeouts_and_the_rate() {
        let t = |s: &str| parse(s).unwrap().scan;
        let d = t("127.0.0.1");
        let c = t("--max-rtt-timeout 300ms --initial-rtt-timeout 200ms 127.0.0.1");
        assert_eq!(c.timing.max_rto, Duration::from_millis(300));
        assert_eq!(c.timing.initial_rto, Duration::from_millis(200));
        assert_eq!(c.timing.min_rto, d.timing.min_rto);
        // An initial timeout above the ceiling is brought under it.
        let c = t("--max-rtt-timeout 100ms --initial-rtt-timeout 2s 127.0.0.1");
        assert_eq!(c.timing.initial_rto, Duration::from_millis(100));
        assert_eq!(t("--scan-delay 100ms 127.0.0.1").max_rate, Some(10.0));
        assert_eq!(
            t("--scan-delay 1s --max-rate 5 127.0.0.1").max_rate,
            Some(1.0)
        );
        assert_eq!(d.max_rate, None);
        for bad in [
            "--max-rtt-timeout 0",
            "--scan-delay soon",
            "--initial-rtt-timeout 5x",
        ] {
            let Err(err) = parse(&format!("{bad} 127.0.0.1")) else {
                panic!("{bad} accepted");
            };
            let option = bad.split(' ').next().unwrap();
            assert!(format!("{err:#}").contains(option), "{bad}: {err:#}");
        }
    }

    #[test]
    fn host_timeout_caps_the_limit_budget_in_nmaps_time_syntax() {
        let budget = |s: &str| parse(s).map(|r| r.scan.limit_budget);
        assert_eq!(budget("127.0.0.1").unwrap(), Duration::from_secs(40));
        assert_eq!(
            budget("--host-timeout 5s 127.0.0.1").unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            budget("--host-timeout 2m 127.0.0.1").unwrap(),
            Duration::from_secs(40)
        );
        assert_eq!(
            budget("--host-timeout 2m --limit-budget 600 127.0.0.1").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            budget("--host-timeout 1500ms 127.0.0.1").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            budget("--host-timeout 7 127.0.0.1").unwrap(),
            Duration::from_secs(7)
        );
        for bad in ["5x", "-1", "", "s", "25h", "1e3"] {
            let err = budget(&format!("--host-timeout={bad} 127.0.0.1")).unwrap_err();
            assert!(
                format!("{err:#}").contains("--host-timeout"),
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn nmap_spellings_become_one_interleaved_scan() {
        let r = parse("-sS -sF -sN -sX -p- 127.0.0.1 -oJ out.jsonl").unwrap();
        let names: Vec<&str> = r.scan.techniques.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["syn", "fin", "null", "xmas"]);
        assert_eq!(r.scan.ports.len(), 65535);
        assert_eq!(r.json, Some(PathBuf::from("out.jsonl")));
        let r = parse("--scan syn,fin,syn -p 22 127.0.0.1").unwrap();
        assert_eq!(r.scan.techniques.len(), 2);
        let r = parse("127.0.0.1").unwrap();
        assert_eq!(r.scan.techniques[0].name, "syn");
        assert_eq!(r.scan.ports, ports::default_ports());
    }

    #[test]
    fn bad_tokens_are_usage_errors_naming_them() {
        for (cmd, token) in [
            ("-sQ 127.0.0.1", "-sQ"),
            ("--scan bogus 127.0.0.1", "bogus"),
            ("-p 70000 127.0.0.1", "70000"),
            ("-p 10-5 127.0.0.1", "10-5"),
            ("10.0.0.300", "10.0.0.300"),
            ("--max-rate=-5 127.0.0.1", "-5"),
            ("--max-rate 0 127.0.0.1", "max-rate"),
            (
                "--technique /nonexistent.toml 127.0.0.1",
                "/nonexistent.toml",
            ),
            ("-p 22", "no targets"),
        ] {
            let err = match normalize_args(argv(cmd)) {
                Err(e) => e,
                Ok(a) => resolve(&Args::try_parse_from(a).unwrap())
                    .err()
                    .unwrap_or_else(|| panic!("{cmd} passed")),
            };
            assert_eq!(
                crate::error::exit_code(&err),
                crate::error::EXIT_USAGE,
                "{cmd}"
            );
            assert!(format!("{err:#}").contains(token), "{cmd}: {err:#}");
        }
    }

    #[test]
    fn a_technique_file_replaces_a_built_in_only_when_it_says_so() {
        let fin = include_str!("../../scanners/fin.toml");
        let dir = std::env::temp_dir();
        let path = dir.join(format!("flagscan-fin-copy-{}.toml", std::process::id()));
        std::fs::write(&path, fin).unwrap();
        let p = path.to_str().unwrap();
        let e = parse(&format!("--technique {p} 127.0.0.1")).err().unwrap();
        assert_eq!(crate::error::exit_code(&e), crate::error::EXIT_USAGE);
        assert!(format!("{e:#}").contains("named 'fin'"), "{e:#}");
        std::fs::write(&path, format!("replaces_builtin = true\n{fin}")).unwrap();
        let r = parse(&format!("--technique {p} 127.0.0.1")).unwrap();
        assert_eq!(r.scan.techniques.len(), 1);
        assert!(r.scan.techniques[0].replaces_builtin);
        // Still one of a name per scan.
        assert!(parse(&format!("-sF --technique {p} 127.0.0.1")).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resume_reparses_the_saved_arguments_with_the_seed_used() {
        let raw = argv("-sS -sF -p 1-20,80 --resume-file R 10.0.0.2 10.0.0.3 -oJ a.jsonl --reason");
        let saved = resume::saved_args(&raw);
        assert!(!saved.iter().any(|a| a == "R" || a == "--resume-file"));
        let original = parse(&saved.join(" ")).unwrap();
        // The directory is this one: a unit test must not move the process.
        let cwd = std::env::current_dir().unwrap();
        let rf = ResumeFile::new(
            saved,
            cwd.clone(),
            42,
            2 * 21 * 2,
            &[0..10, 12..13],
            "0".repeat(32),
        );
        let path = std::env::temp_dir().join(format!("flagscan-cli-resume-{}", std::process::id()));
        std::fs::write(&path, rf.to_json().unwrap()).unwrap();
        let p = path.to_str().unwrap();

        let given = argv(&format!("--resume {p}"));
        let args = Args::try_parse_from(normalize_args(given.clone()).unwrap()).unwrap();
        let (args, loaded) = resume_args(&given, &args, &path).unwrap();
        assert_eq!(loaded, rf);
        assert_eq!(args.seed, Some(42));
        // Interrupted again, it rewrites the file it resumed from.
        assert_eq!(args.resume_file.as_deref(), Some(path.as_path()));
        let r = resolve(&args).unwrap();
        assert_eq!(r.scan.targets, original.scan.targets);
        assert_eq!(r.scan.ports, original.scan.ports);
        let names = |r: &Resolved| -> Vec<String> {
            r.scan.techniques.iter().map(|t| t.name.clone()).collect()
        };
        assert_eq!(names(&r), ["syn", "fin"]);
        assert_eq!(r.json, Some(PathBuf::from("a.jsonl")));
        assert!(r.text.reason);
        assert_eq!(r.scan.seed, Some(42));

        // --resume-file with --resume names where to write instead.
        let given = argv(&format!("--resume {p} --resume-file other.resume"));
        let args = Args::try_parse_from(normalize_args(given.clone()).unwrap()).unwrap();
        let (args, _) = resume_args(&given, &args, &path).unwrap();
        assert_eq!(args.resume_file, Some(cwd_join("other.resume")));

        // Other options with --resume, or saved arguments that no longer
        // parse, are usage errors naming the problem.
        let given = argv(&format!("--resume {p} -p 22"));
        let args = Args::try_parse_from(normalize_args(given.clone()).unwrap()).unwrap();
        let err = resume_args(&given, &args, &path).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        assert!(format!("{err:#}").contains("-p 22"), "{err:#}");
        let mut bad = rf.clone();
        bad.args.push("--no-such-option".into());
        std::fs::write(&path, bad.to_json().unwrap()).unwrap();
        let given = argv(&format!("--resume {p}"));
        let args = Args::try_parse_from(normalize_args(given.clone()).unwrap()).unwrap();
        let err = resume_args(&given, &args, &path).err().unwrap();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
        let msg = format!("{err:#}");
        assert!(msg.contains(p) && msg.contains("--no-such-option"), "{msg}");
        std::fs::remove_file(&path).unwrap();
    }

    fn cwd_join(p: &str) -> PathBuf {
        std::env::current_dir().unwrap().join(p)
    }
}
