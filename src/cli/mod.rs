//! The command line: raw arguments first (clap), then a resolved
//! configuration that consults the system, then the scan and its outputs.

pub mod resume;
pub mod targets;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::cli::resume::{ResumeFile, ResumeSink};
use crate::engine::scan::{self, ScanConfig, ScanResult};
use crate::error::{usage, EXIT_INTERRUPTED, EXIT_OK};
use crate::io::rawsock::IoMode;
use crate::lab;
use crate::lab::demo;
use crate::model::ports;
use crate::model::services::Services;
use crate::model::technique::{self, Technique};
use crate::output;
use crate::teach::findings::Lang;

const AFTER_HELP: &str = "\
Techniques (any subset runs as one interleaved pass):
  -sS  SYN scan      -sF  FIN scan      -sN  NULL scan      -sX  Xmas scan
  or --scan syn,fin,null,xmas; --technique FILE adds a technique file.
Targets: 10.0.0.2, 10.0.0.0/24, 10.0.0.1-20, 10.0.1-3.7, host names, -iL FILE.
Ports: -p 22,80,8000-8100; -p- for 1-65535; port 0 only when named.
Ctrl-C (or SIGTERM) stops a scan: the results so far go to every output and a resume
  file (flagscan.resume, or --resume-file PATH); `flagscan --resume FILE` finishes the scan,
  appending to the same output files. A second Ctrl-C quits at once.
Exit codes: 0 done, 1 failure while running, 2 bad command line or missing privileges,
  3 interrupted (results so far and a resume file written), 130 quit by a second Ctrl-C.
Raw sockets need root or CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin+eip $(command -v flagscan)
Try it without a network: sudo flagscan demo";

#[derive(Debug, Parser)]
#[command(
    name = "flagscan",
    version,
    about = "Raw-packet TCP port scanner: SYN, FIN, NULL and Xmas scans in one pass",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Targets: addresses, CIDR blocks, octet ranges, host names.
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

    /// Send at most N probes per second.
    #[arg(long = "max-rate", value_name = "N")]
    pub max_rate: Option<f64>,

    /// Seed for cookies, source ports and probe order (reproducible scans).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Send through this interface.
    #[arg(short = 'e', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Source address of the probes.
    #[arg(short = 'S', long = "source", value_name = "ADDR")]
    pub source: Option<Ipv4Addr>,

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

    /// Stay root while scanning (by default flagscan becomes the sudo user,
    /// or nobody, once its sockets and files are open).
    #[arg(long = "keep-privileges")]
    pub keep_privileges: bool,

    /// Packet I/O: fast (Linux: batched sends, a TPACKET_V3 ring and a
    /// kernel filter) or portable (pnet, one packet per call). The fast path
    /// falls back to the portable one, with a notice, where it is unavailable.
    #[arg(long = "io", value_name = "PATH", value_enum, default_value_t = IoMode::Fast)]
    pub io: IoMode,

    /// Language of the teaching texts (findings, verdicts): en or ja.
    /// Default: from LC_ALL / LC_MESSAGES / LANG.
    #[arg(long, value_name = "LANG", global = true, value_parser = parse_lang)]
    pub lang: Option<Lang>,

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
    /// Print a technique's card (syn, fin, null, xmas or a technique file),
    /// or what a port is: `flagscan explain port 445`.
    Explain {
        /// A technique name, a technique file, or `port`.
        topic: String,
        /// The port number, after `port`.
        port: Option<String>,
    },
    /// A guided tour: bring the lab up, scan it with all four techniques in
    /// one pass, explain the differences, tear it down.
    Demo {
        #[arg(long, default_value = lab::DEFAULT_PREFIX)]
        prefix: String,
    },
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
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language '{s}': use en or ja"))
}

/// Rewrites nmap-style spellings that clap cannot express (`-sS`, `-p-`,
/// `-oJ`, `-iL`) into long options; unknown `-s?` letters are an error.
pub fn normalize_args(raw: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, arg) in raw.into_iter().enumerate() {
        if i == 0 {
            out.push(arg);
            continue;
        }
        match arg.as_str() {
            "-p-" => out.push("--ports=-".into()),
            "-oJ" => out.push("--output-json".into()),
            "-iL" => out.push("--input-list".into()),
            // nmap habits that are flagscan's behaviour anyway: no ping, no DNS.
            "-Pn" | "-n" => {}
            s if s.len() == 3 && s.starts_with("-T") => out.push(format!("--timing={}", &s[2..])),
            s if s.len() > 2 && s.starts_with("-s") => {
                let letters = &s[2..];
                let t = technique::builtin_by_name(letters).ok_or_else(|| {
                    usage(format!(
                        "unknown scan technique '{s}': flagscan knows -sS (syn), -sF (fin), -sN (null), -sX (xmas); \
                         other techniques load with --technique FILE"
                    ))
                })?;
                out.push(format!("--scan={}", t.name));
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}

/// Everything a scan needs, resolved from the arguments.
pub struct Resolved {
    pub scan: ScanConfig,
    pub json: Option<PathBuf>,
    pub text: output::TextOptions,
}

pub fn resolve(args: &Args) -> anyhow::Result<Resolved> {
    let mut techniques: Vec<Technique> = Vec::new();
    for name in &args.scan {
        let t = technique::builtin_by_name(name.trim()).ok_or_else(|| {
            usage(format!(
                "unknown technique '{name}' in --scan: use syn, fin, null, xmas or --technique FILE"
            ))
        })?;
        if !techniques.iter().any(|x| x.name == t.name) {
            techniques.push(t);
        }
    }
    for path in &args.technique_files {
        let t = Technique::load(path)?;
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
    let targets = targets::expand_targets_confirmed(&tokens, &excludes, args.yes)?;
    let ports = match &args.ports {
        Some(spec) => ports::parse_ports(spec)?,
        None => ports::default_ports(),
    };
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
    let max_rate = args.max_rate.or(template.max_rate);
    Ok(Resolved {
        scan: ScanConfig {
            targets,
            ports,
            techniques,
            timing,
            seed: args.seed,
            device: args.interface.clone(),
            source: args.source,
            max_rate,
            min_rate: args.min_rate,
            packet_trace: args.packet_trace,
            pcap: args.pcap.clone(),
            drop_privileges: (!args.keep_privileges).then(|| crate::sys::privilege::DropPlan {
                chown: args.output_json.iter().chain(&args.pcap).cloned().collect(),
            }),
            io: args.io,
            interrupt: None,
            resume: None,
            early_ring: None,
        },
        json: args.output_json.clone(),
        text: output::TextOptions {
            reason: args.reason,
            lang: args.lang.unwrap_or_else(Lang::from_env),
        },
    })
}

/// Runs the program; returns the exit code.
pub fn run(raw: Vec<String>) -> anyhow::Result<i32> {
    let mut args = Args::try_parse_from(normalize_args(raw.clone())?).unwrap_or_else(|e| e.exit());
    match &args.command {
        Some(Command::Lab { action, prefix }) => return run_lab(action, prefix),
        Some(Command::Explain { topic, port }) => {
            let lang = args.lang.unwrap_or_else(Lang::from_env);
            print!("{}", explain(topic, port.as_deref(), lang)?);
            return Ok(EXIT_OK);
        }
        Some(Command::Demo { prefix }) => {
            demo::run(prefix, args.lang.unwrap_or_else(Lang::from_env))?;
            return Ok(EXIT_OK);
        }
        None => {}
    }
    // --resume: the saved command line (and seed) replaces this one.
    let resumed = match args.resume.clone() {
        Some(path) => {
            let (saved, rf) = resume_args(&raw, &args, &path)?;
            args = saved;
            Some(rf)
        }
        None => None,
    };
    let saved_args = match &resumed {
        Some(rf) => rf.args.clone(),
        None => resume::saved_args(&raw),
    };
    // Enter the namespace first: names, routes and sockets are looked up there.
    if let Some(ns) = &args.netns {
        lab::enter_netns(ns)?;
    }
    // In the scan's namespace now: the ring's set-up may start.
    let early_ring = (args.io == IoMode::Fast)
        .then(crate::io::ring::EarlyRing::start)
        .flatten();
    let mut resolved = resolve(&args)?;
    resolved.scan.early_ring = early_ring;
    if let Some(rf) = &resumed {
        let probes = crate::engine::tracker::ProbeSpace::new(
            resolved.scan.targets.clone(),
            resolved.scan.ports.clone(),
            resolved.scan.techniques.len(),
        )
        .len();
        if probes != rf.probes {
            return Err(usage(format!(
                "cannot resume from {}: its arguments now describe {probes} probes, not the {} \
                 of the interrupted scan (did a host name resolve differently?)",
                args.resume.as_deref().unwrap_or(Path::new("")).display(),
                rf.probes
            )));
        }
        resolved.scan.resume = Some(rf.decided_ranges());
    }
    // Open the outputs before scanning, so a bad path fails in a second
    // (and while root may still create them). A resumed scan appends.
    let mut json = match &resolved.json {
        Some(path) if resumed.is_some() => Some(output::open_append(path, "-oJ")?),
        Some(path) => Some(output::open(path, "-oJ")?),
        None => None,
    };
    let dropping = resolved.scan.drop_privileges.is_some();
    let mut resume_sink = open_resume_file(args.resume_file.as_deref(), dropping)?;
    if let (Some(plan), Some(sink)) = (resolved.scan.drop_privileges.as_mut(), &resume_sink) {
        if sink.created {
            plan.chown.push(sink.path.clone());
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    // Before any thread starts: every scan thread inherits the signal mask.
    resolved.scan.interrupt = Some(crate::sys::interrupt::stop_flag()?);
    let json_on_stdout = resolved.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    // With JSON on stdout, the trace goes to stderr to keep the JSON clean.
    let trace_out: Box<dyn Write + Send> = if json_on_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let written = scan::run_with_trace(resolved.scan, trace_out).and_then(|result| {
        let services = Services::load();
        // The JSON file and the text report are written side by side: the
        // scan's threads are done and a core is free.
        let lang = resolved.text.lang;
        let (result_ref, services_ref) = (&result, &services);
        std::thread::scope(|scope| {
            let json_job = json.as_mut().map(|w| {
                scope.spawn(move || output::write_jsonl(w.as_mut(), result_ref, services_ref, lang))
            });
            let text = report(&result, &services, resolved.text, json_on_stdout);
            if let Some(job) = json_job {
                job.join().map_err(|_| {
                    anyhow::anyhow!("writing the JSON output failed unexpectedly")
                })??;
            }
            text
        })?;
        Ok(result)
    });
    let result = match written {
        Ok(result) => result,
        Err(e) => {
            // Nothing to resume from: the outputs may lack what it would skip.
            if let Some(sink) = resume_sink {
                sink.finish(false);
            }
            return Err(e);
        }
    };
    if !result.interrupted {
        if let Some(sink) = resume_sink {
            // The file this scan resumed from is used up.
            let consumed = args.resume.as_deref() == Some(sink.path.as_path());
            sink.finish(consumed);
        }
        return Ok(EXIT_OK);
    }
    let rf = ResumeFile::new(
        saved_args,
        cwd,
        result.seed,
        result.space.len(),
        &result.decided,
    );
    match resume_sink.as_mut() {
        Some(sink) => {
            sink.write(&rf)?;
            eprintln!(
                "flagscan: interrupted: {} of {} probes concluded; resume file {}; \
                 finish with: flagscan --resume {}",
                rf.decided_count,
                rf.probes,
                sink.path.display(),
                sink.path.display()
            );
        }
        None => eprintln!("flagscan: interrupted; no resume file could be created"),
    }
    Ok(EXIT_INTERRUPTED)
}

/// `--resume FILE`: the arguments saved in FILE, with the seed it used and
/// the resume file to write if interrupted again (FILE itself unless
/// `--resume-file` is given); moves to the directory the scan ran in.
fn resume_args(raw: &[String], given: &Args, path: &Path) -> anyhow::Result<(Args, ResumeFile)> {
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
    let argv = normalize_args(argv.collect()).map_err(|e| bad(format!("{e:#}")))?;
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

/// Creates (or opens) the resume file before the scan, while root may still
/// write anywhere. A path the user named must work; the default may fail
/// with a warning.
fn open_resume_file(named: Option<&Path>, dropping: bool) -> anyhow::Result<Option<ResumeSink>> {
    let default;
    let path = match named {
        Some(p) => p,
        None => {
            default = resume::default_path(dropping);
            default.as_path()
        }
    };
    match ResumeSink::open(path) {
        Ok(sink) => Ok(Some(sink)),
        Err(e) if named.is_some() => Err(usage(format!(
            "cannot write --resume-file {}: {e}",
            path.display()
        ))),
        Err(e) => {
            eprintln!(
                "flagscan: warning: cannot create {}: {e}; an interrupted scan could not be \
                 resumed (use --resume-file PATH)",
                path.display()
            );
            Ok(None)
        }
    }
}

fn explain(topic: &str, port: Option<&str>, lang: Lang) -> anyhow::Result<String> {
    if topic == "port" {
        let arg = port.ok_or_else(|| {
            usage("explain port needs a port number, e.g. `flagscan explain port 445`")
        })?;
        let n: u16 = arg.parse().map_err(|_| {
            usage(format!(
                "invalid port '{arg}' for explain port: ports are 0-65535"
            ))
        })?;
        return Ok(crate::teach::explain::port_card(n, &Services::load(), lang));
    }
    if let Some(extra) = port {
        return Err(usage(format!("unexpected '{extra}' after explain {topic}")));
    }
    let t = match technique::builtin_by_name(topic) {
        Some(t) => t,
        None if std::path::Path::new(topic).exists() => Technique::load(std::path::Path::new(topic))?,
        None => {
            return Err(usage(format!(
                "nothing to explain called '{topic}': use syn, fin, null, xmas, a technique file, or `port N`"
            )))
        }
    };
    Ok(crate::teach::explain::technique_card(&t, lang))
}

pub(crate) fn report(
    result: &ScanResult,
    services: &Services,
    opts: output::TextOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    if quiet {
        eprintln!("{}", output::summary(result));
        return Ok(());
    }
    // Block-buffered: stdout is line-buffered, a system call per line, and
    // the report of a /16 sweep has 458,753 lines (1.3 s of writes).
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    output::write_text(&mut w, result, services, opts)?;
    writeln!(w, "{}", output::summary(result))?;
    w.flush()?;
    Ok(())
}

fn run_lab(action: &LabAction, prefix: &str) -> anyhow::Result<i32> {
    match action {
        LabAction::Up => {
            lab::up(prefix)?;
            print!("{}", lab::status_text(prefix)?);
        }
        LabAction::Down => {
            lab::down(prefix)?;
            println!("lab '{prefix}' removed");
        }
        LabAction::Status => print!("{}", lab::status_text(prefix)?),
        LabAction::Listen { ports } => lab::listen_forever(ports)?,
    }
    Ok(EXIT_OK)
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
    fn resume_reparses_the_saved_arguments_with_the_seed_used() {
        let raw = argv("-sS -sF -p 1-20,80 --resume-file R 10.0.0.2 10.0.0.3 -oJ a.jsonl --reason");
        let saved = resume::saved_args(&raw);
        assert!(!saved.iter().any(|a| a == "R" || a == "--resume-file"));
        let original = parse(&saved.join(" ")).unwrap();
        // The directory is this one: a unit test must not move the process.
        let cwd = std::env::current_dir().unwrap();
        let rf = ResumeFile::new(saved, cwd, 42, 2 * 21 * 2, &[0..10, 12..13]);
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
