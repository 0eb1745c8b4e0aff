//! A session: runs a resolved scan, writes its outputs, and on an
//! interrupt the resume file.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::Args;
use crate::cli::config::{resolve, resume_args, Resolved};
use crate::cli::resume::{self, ResumeFile, ResumeSink};
use crate::engine::scan;
use crate::error::{usage, EXIT_INTERRUPTED, EXIT_OK};
use crate::io::rawsock::IoMode;
use crate::model::result::ScanResult;
use crate::model::services::Services;
use crate::model::tap::ProgressView;
use crate::output::json::JsonLines;
use crate::output::pcap::{PcapSink, PcapTap};
use crate::output::progress::{Progress, Verbose};
use crate::output::text::{report, TextOptions};
use crate::output::trace::TraceTap;
use crate::output::xml::RunInfo;
use crate::output::{self, Exporter};
use crate::route;
use crate::sys::files::same_file;
use crate::sys::privilege::DropPlan;

/// Runs a scan from its arguments (`raw` as given, for a resume file);
/// returns the exit code.
pub fn run(mut args: Args, raw: &[OsString]) -> anyhow::Result<i32> {
    // A resume file keeps the arguments as JSON text: arguments that are
    // not UTF-8 (a path) cannot be kept, and such a scan cannot be resumed.
    let raw: Option<Vec<String>> = raw.iter().map(|a| a.to_str().map(String::from)).collect();
    // --resume: the saved command line (and seed) replaces this one.
    let resumed = match args.resume.clone() {
        Some(path) => {
            let raw = raw.as_deref().ok_or_else(|| {
                usage("--resume: the other arguments must be UTF-8 text (only --resume-file may follow)")
            })?;
            let (saved, rf) = resume_args(raw, &args, &path)?;
            args = saved;
            Some(rf)
        }
        None => None,
    };
    let saved_args = match &resumed {
        Some(rf) => Some(rf.args.clone()),
        None => raw.as_deref().map(resume::saved_args),
    };
    // Enter the namespace first: names, routes and sockets are looked up there.
    if let Some(ns) = &args.netns {
        crate::sys::netns::enter(ns)?;
    }
    // In the scan's namespace now: the ring's set-up may start.
    let ring_delay = std::time::Duration::from_millis(args.ring_delay_ms);
    let early_ring = (args.io == IoMode::Fast)
        .then(|| crate::io::ring::EarlyRing::start(ring_delay))
        .flatten();
    // Without raw sockets the scan nobody chose becomes a connect scan,
    // as nmap's does for users without privileges.
    let raw = crate::io::socket::raw_allowed();
    if !raw
        && args.scan.is_empty()
        && args.technique_files.is_empty()
        && args.scanflags.is_none()
        && !args.ping_only
    {
        crate::error::say(
            "flagscan: notice: raw sockets need root or CAP_NET_RAW, so this is a connect scan \
             (-sT): each probe is a real connection the target may log; sudo flagscan for a SYN scan",
        );
        args.scan = vec!["connect".into()];
    }
    let mut resolved = resolve(&args)?;
    resolved.scan.early_ring = early_ring;
    if !raw
        && resolved.scan.techniques.iter().all(|t| t.connect)
        && resolved.scan.discovery.is_some()
    {
        crate::error::say(
            "flagscan: notice: host discovery needs raw sockets (root or CAP_NET_RAW): every \
             target is taken as up, as with -Pn",
        );
        resolved.scan.discovery = None;
    }
    // Before the resume check: the probe space is the targets left.
    route::skip_subnet_edges(&mut resolved.scan.targets, resolved.scan.notify.as_ref())?;
    if let Some(rf) = &resumed {
        let from = args.resume.as_deref().unwrap_or(Path::new(""));
        resolved.scan.resume = Some(check_resume(rf, &resolved, from)?);
    }
    let dropping = resolved.scan.drop_privileges.is_some();
    let resume_path = match &args.resume_file {
        Some(path) if path.as_os_str() == "-" => {
            return Err(usage(
                "--resume-file - : a resume file is a file flagscan reads back; name one",
            ));
        }
        Some(path) => Some(path.clone()),
        None => resume::default_path(dropping),
    };
    refuse_collisions(&args, &resolved, resume_path.as_deref())?;
    // Open the outputs before scanning, so a bad path fails in a second
    // (and while root may still create them). A resumed scan appends.
    let mut json = match &resolved.json {
        Some(path) => Some(output::open(path, "-oJ", resumed.is_some())?),
        None => None,
    };
    let mut nmap_outputs = open_nmap_outputs(&resolved, resumed.is_some())?;
    let mut resume_sink = match &saved_args {
        Some(_) => open_resume_file(args.resume_file.as_deref(), resume_path.as_deref())?,
        None => None,
    };
    if let Some(plan) = resolved.scan.drop_privileges.as_mut() {
        give_away(plan, json.as_ref(), resume_sink.as_ref());
        plan.for_user.extend(
            nmap_outputs
                .iter()
                .filter_map(|o| o.dest.created.as_ref()?.try_clone().ok()),
        );
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    // Before any thread starts: every scan thread inherits the signal mask.
    let stop = crate::sys::interrupt::stop_flag(|sig| {
        crate::error::say(&format!(
            "\nflagscan: {sig}: stopping; writing the results so far and a resume file \
             (press Ctrl-C again to quit at once)"
        ));
    })?;
    crate::sys::interrupt::stop_when_stdout_closes(stop.clone(), || {
        crate::error::say(
            "flagscan: stdout was closed: stopping; writing the other outputs and a resume file",
        );
    })?;
    resolved.scan.interrupt = Some(stop);
    let is_stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
    // With another output on stdout, the report is one line on stderr.
    let stdout_taken = is_stdout(&resolved.json)
        || is_stdout(&resolved.pcap)
        || nmap_outputs.iter().any(|o| o.path.as_os_str() == "-");
    // A resumed scan's documents name the scan's own arguments.
    let args_list: Vec<String> = match (&resumed, &saved_args) {
        (Some(_), Some(saved)) => std::iter::once("flagscan".to_string())
            .chain(saved.iter().cloned())
            .collect(),
        _ => std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    };
    let args_text = args_list.join(" ");
    let started_at = std::time::SystemTime::now();
    if let Some(dest) = json.as_mut() {
        // A failure here (a full disk) must not stop the scan: it comes
        // back, with the file's name, when the records are written, and the
        // report still prints.
        let _ = crate::output::json::write_start(
            dest.writer.as_mut(),
            &args_list,
            started_at,
            resumed.is_some(),
        );
    }
    let run_info = RunInfo {
        args: args_text,
        start: started_at,
        open_only: resolved.text.open_only,
        resume_file: resume_sink.as_ref().map(|s| s.path.clone()),
    };
    let written = scan_and_write(
        resolved,
        resumed.is_some(),
        json.as_mut(),
        stdout_taken,
        (&mut nmap_outputs, &run_info),
    );
    let result = match written {
        Ok(result) => result,
        Err(e) => {
            // The files were emptied before the scan: each says why.
            write_nmap_failure(&mut nmap_outputs, &run_info, &e);
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
    if result.complete {
        // Stopped while confirming: nothing is left to resume.
        if let Some(sink) = resume_sink {
            sink.finish(false);
        }
        crate::error::say(
            "flagscan: interrupted: every probe has a state (any left unconfirmed are marked \
             rate_limited); nothing to resume",
        );
        return Ok(EXIT_INTERRUPTED);
    }
    let Some(saved_args) = saved_args else {
        crate::error::say(
            "flagscan: interrupted; no resume file: an argument is not UTF-8 text, which a \
             resume file cannot keep",
        );
        return Ok(EXIT_INTERRUPTED);
    };
    let digest = resume::scan_digest(
        &saved_args,
        &cwd,
        result.seed,
        &result.space,
        &result.techniques,
    );
    let rf = ResumeFile::new(
        saved_args,
        cwd,
        result.seed,
        result.space.len(),
        &result.decided,
        digest,
    );
    // What is said counts the probes this scan asks (not the other
    // protocol's ports, nor other shards'), decided here or before.
    let asked = result.space.asked();
    let concluded = (result.findings.concluded() + result.stats.skipped).min(asked);
    match resume_sink.as_mut() {
        Some(sink) => {
            sink.write(&rf)?;
            crate::error::say(&format!(
                "flagscan: interrupted: {} of {} probes concluded; resume file {}; \
                 finish with: flagscan --resume {}",
                concluded,
                asked,
                sink.path.display(),
                sink.path.display()
            ));
        }
        None => crate::error::say("flagscan: interrupted; no resume file could be created"),
    }
    Ok(EXIT_INTERRUPTED)
}

/// Which files the drop of privileges gives away: an output or resume
/// file this run created, to the `sudo` user. Run as plain root they stay
/// root's: a resume file `nobody` owned could be rewritten by any other
/// process running as `nobody`, and root would then resume its arguments
/// (where `nobody` cannot remove it afterwards, it is emptied instead).
fn give_away(plan: &mut DropPlan, json: Option<&output::Dest>, resume: Option<&ResumeSink>) {
    plan.for_user
        .extend(json.and_then(|d| d.created.as_ref()?.try_clone().ok()));
    plan.for_user
        .extend(resume.and_then(ResumeSink::created_handle));
    plan.for_scan_user
        .extend(resume.and_then(ResumeSink::dir_handle));
}

/// The positions a resumed scan skips, once its arguments are known to
/// describe the scan that was interrupted: the same number of probes, and
/// the same [`resume::scan_digest`].
fn check_resume(
    rf: &ResumeFile,
    resolved: &Resolved,
    from: &Path,
) -> anyhow::Result<Vec<std::ops::Range<u64>>> {
    let space = resolved.scan.space();
    let probes = space.len();
    if probes != rf.probes {
        return Err(usage(format!(
            "cannot resume from {}: its arguments now describe {probes} probes, not the {} \
             of the interrupted scan (did a host name resolve differently?)",
            from.display(),
            rf.probes
        )));
    }
    let digest = resume::scan_digest(
        &rf.args,
        &rf.cwd,
        rf.seed,
        &space,
        &resolved.scan.techniques,
    );
    if digest != rf.digest {
        return Err(usage(format!(
            "cannot resume from {}: its arguments now describe another scan than the one \
             that was interrupted (edited, or a target list or host name that now says \
             something else); its outputs would mix two scans",
            from.display(),
        )));
    }
    Ok(rf.decided_ranges())
}

/// Plans the routes, opens `--pcap` and the taps, runs the scan and writes
/// its outputs. The engine's own check and the routes come before the
/// pcap file is created or emptied, as a failing scan leaves it alone.
fn scan_and_write(
    mut resolved: Resolved,
    resuming: bool,
    json: Option<&mut output::Dest>,
    stdout_taken: bool,
    (nmap_outputs, run_info): (&mut [NmapOutput], &RunInfo),
) -> anyhow::Result<ScanResult> {
    scan::check(&resolved.scan)?;
    let cfg = &resolved.scan;
    let route = route::plan(&cfg.targets, cfg.device.as_deref(), &cfg.sources)?;
    let pcap = match &resolved.pcap {
        Some(path) => {
            let sink = match resuming && path.as_os_str() != "-" {
                true => PcapSink::append(path)?,
                false => PcapSink::create(path)?,
            };
            if let Some(plan) = resolved.scan.drop_privileges.as_mut() {
                plan.for_user.extend(sink.created_handle());
            }
            Some(Arc::new(PcapTap::new(sink)))
        }
        None => None,
    };
    let trace = resolved.packet_trace.then(|| {
        // With stdout taken, the trace goes to stderr to keep it clean.
        let out: Box<dyn Write + Send> = if stdout_taken {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        Arc::new(TraceTap::new(out, &resolved.scan.techniques))
    });
    if let Some(tap) = &pcap {
        resolved.scan.taps.push(tap.clone());
    }
    if let Some(tap) = &trace {
        resolved.scan.taps.push(tap.clone());
    }
    resolved.scan.progress =
        match Verbose::new(resolved.verbose, resolved.debug, resolved.stats_every) {
            Some(v) => Some(Box::new(v) as Box<dyn ProgressView>),
            None => Progress::for_terminal().map(|p| Box::new(p) as Box<dyn ProgressView>),
        };
    let mut result = scan::run(resolved.scan, route)?;
    result.names = std::mem::take(&mut resolved.names);
    if let Some(tap) = &trace {
        tap.flush();
    }
    // A failed pcap file is reported after the other outputs are written;
    // a pcap on a stdout whose reader left is no failure.
    let mut pcap_error = None;
    if let Some(tap) = &pcap {
        match tap.finish() {
            Ok(counts) => result.stats.pcap = Some(counts),
            Err(e) if is_stdout(resolved.pcap.as_deref()) && broken_pipe(&e) => {}
            Err(e) => pcap_error = Some(e),
        }
    }
    let json_name = match resolved.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => "(stdout)".to_string(),
        Some(p) => p.display().to_string(),
        None => String::new(),
    };
    let to_stdout = is_stdout(resolved.json.as_deref());
    write_outputs(&result, json, &json_name, resolved.text, stdout_taken).or_else(|e| {
        if to_stdout && broken_pipe(&e) {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    write_nmap_outputs(&result, nmap_outputs, run_info, resolved.text)?;
    match pcap_error {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

fn is_stdout(path: Option<&Path>) -> bool {
    path.is_some_and(|p| p.as_os_str() == "-")
}

/// The error is a write to a pipe whose reader left.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) || format!("{e:#}").contains("Broken pipe")
}

/// The JSON file and the text report, written side by side: the scan's
/// threads are done and a core is free.
fn write_outputs(
    result: &ScanResult,
    json: Option<&mut output::Dest>,
    json_name: &str,
    text: TextOptions,
    stdout_taken: bool,
) -> anyhow::Result<()> {
    let services = Services::load();
    let jsonl = JsonLines(text.lang);
    let (services, jsonl) = (&services, &jsonl);
    std::thread::scope(|scope| {
        let json_job = json.map(|d| {
            scope.spawn(move || {
                jsonl
                    .write(d.writer.as_mut(), result, services)
                    .and_then(|()| Ok(d.writer.flush()?))
                    .map_err(|e| anyhow::anyhow!("cannot write -oJ {json_name}: {e:#}"))
            })
        });
        // A reader that left (`| head -1`) stopped the scan: the report has
        // nowhere to go, and the other outputs and the resume file still do.
        let written = report(result, services, text, stdout_taken).or_else(|e| {
            if broken_pipe(&e) {
                Ok(())
            } else {
                Err(e)
            }
        });
        if let Some(job) = json_job {
            job.join()
                .map_err(|_| anyhow::anyhow!("writing the JSON output failed unexpectedly"))??;
        }
        written
    })
}

/// Creates (or opens) the resume file before the scan, while root may still
/// write anywhere: `named` (`--resume-file`) must work; the default
/// (`default`, else a new file in the temporary directory) may fail with a
/// warning.
fn open_resume_file(
    named: Option<&Path>,
    default: Option<&Path>,
) -> anyhow::Result<Option<ResumeSink>> {
    if let Some(path) = named {
        return ResumeSink::open(path).map(Some);
    }
    // The default name is predictable: a file someone else left there is
    // not ours to write the seed into, so a new one is made instead.
    let default = default.filter(|p| resume::ours_or_absent(p));
    let opened = match default {
        Some(path) => ResumeSink::open(path).map_err(|e| format!("{e:#}")),
        None => ResumeSink::create_temp().map_err(|e| {
            format!(
                "cannot create a resume file in {}: {e}",
                std::env::temp_dir().display()
            )
        }),
    };
    match opened {
        Ok(sink) => Ok(Some(sink)),
        Err(why) => {
            crate::error::say(&format!(
                "flagscan: warning: {why}; an interrupted scan could not be resumed \
                 (use --resume-file PATH)"
            ));
            Ok(None)
        }
    }
}

/// Refuses outputs that would overwrite each other or an input, however
/// spelled: the same file (by device and inode, or by resolved path), or
/// two of them on stdout.
fn refuse_collisions(
    args: &Args,
    resolved: &Resolved,
    resume_file: Option<&Path>,
) -> anyhow::Result<()> {
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(p) = &resolved.json {
        outputs.push(("-oJ", p));
    }
    if let Some(p) = &resolved.pcap {
        outputs.push(("--pcap", p));
    }
    if let Some(p) = resume_file {
        outputs.push(("the resume file", p));
    }
    let nmap_files = nmap_files(resolved, args.resume.is_some())?;
    outputs.extend(nmap_files.iter().map(|o| (o.option, o.path.as_path())));
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(p) = &args.input_list {
        inputs.push(("-iL", p));
    }
    if let Some(p) = &args.exclude_file {
        inputs.push(("--exclude-file", p));
    }
    inputs.extend(
        args.technique_files
            .iter()
            .map(|p| ("--technique", p.as_path())),
    );
    for (i, (a, pa)) in outputs.iter().enumerate() {
        for (b, pb) in &outputs[i + 1..] {
            if same_file(pa, pb) {
                let what = if pa.as_os_str() == "-" {
                    "stdout".to_string()
                } else {
                    pa.display().to_string()
                };
                return Err(usage(format!(
                    "{a} and {b} would both write to {what}: give each its own file"
                )));
            }
        }
        for (b, pb) in &inputs {
            if pb.as_os_str() != "-" && same_file(pa, pb) {
                return Err(usage(format!(
                    "{a} {} is also the {b} input: writing it would destroy what is read",
                    pa.display()
                )));
            }
        }
    }
    Ok(())
}

/// Which of nmap's formats an output file holds, and for which technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NmapFormat {
    Xml(usize),
    Grepable(usize),
    Normal,
    /// masscan's `-oL`.
    List,
}

/// A file of one of nmap's formats, planned from the options.
struct NmapFile {
    option: &'static str,
    format: NmapFormat,
    path: PathBuf,
}

struct NmapOutput {
    format: NmapFormat,
    path: PathBuf,
    dest: output::Dest,
}

/// The files `-oX`, `-oG` and `-oN` write: one XML and one grepable file
/// per technique (nmap's formats hold one scan type), the text report
/// once.
fn nmap_files(resolved: &Resolved, resumed: bool) -> anyhow::Result<Vec<NmapFile>> {
    let techniques = &resolved.scan.techniques;
    let mut out = Vec::new();
    // Per technique (a format of one scan type), or the whole scan once.
    type Per = Result<fn(usize) -> NmapFormat, NmapFormat>;
    for (option, path, per_technique) in [
        (
            "-oX",
            &resolved.xml,
            Ok(NmapFormat::Xml as fn(usize) -> NmapFormat) as Per,
        ),
        (
            "-oG",
            &resolved.grepable,
            Ok(NmapFormat::Grepable as fn(usize) -> NmapFormat),
        ),
        ("-oN", &resolved.normal, Err(NmapFormat::Normal)),
        ("-oL", &resolved.list, Err(NmapFormat::List)),
    ] {
        let Some(path) = path else { continue };
        let format = match per_technique {
            Ok(format) => format,
            Err(whole) => {
                // Beside the interrupted one's, as XML and grepable (below).
                let special = path.as_os_str() == "-"
                    || std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
                out.push(NmapFile {
                    option,
                    format: whole,
                    path: match resumed && !special {
                        true => crate::output::xml::sibling(path, "resumed", 1),
                        false => path.clone(),
                    },
                });
                continue;
            }
        };
        let special = path.as_os_str() == "-"
            || std::fs::metadata(path).is_ok_and(|m| !m.file_type().is_file());
        if special && techniques.len() > 1 {
            return Err(usage(format!(
                "{option} {} : nmap's format holds one scan type and this scan has {}; give a \
                 file name and each technique gets its own file beside it (see docs/output.md)",
                path.display(),
                techniques.len()
            )));
        }
        // A resumed scan writes beside the interrupted one's documents,
        // which hold what it concluded.
        let base = match resumed && !special {
            true => crate::output::xml::sibling(path, "resumed", 1),
            false => path.clone(),
        };
        for (t, technique) in techniques.iter().enumerate() {
            out.push(NmapFile {
                option,
                format: format(t),
                path: crate::output::xml::sibling(&base, &technique.name, t),
            });
        }
    }
    Ok(out)
}

/// Creates (empties) nmap's output files before the scan, as -oJ's: a
/// bad path fails at once. A resumed scan rewrites them: an XML document
/// cannot be appended to.
fn open_nmap_outputs(resolved: &Resolved, resumed: bool) -> anyhow::Result<Vec<NmapOutput>> {
    nmap_files(resolved, resumed)?
        .into_iter()
        .map(|f| {
            Ok(NmapOutput {
                dest: output::open(&f.path, f.option, false)?,
                format: f.format,
                path: f.path,
            })
        })
        .collect()
}

fn write_nmap_outputs(
    result: &ScanResult,
    outputs: &mut [NmapOutput],
    run: &RunInfo,
    text: TextOptions,
) -> anyhow::Result<()> {
    if outputs.is_empty() {
        return Ok(());
    }
    let nmap_names = Services::load_nmap();
    let services = Services::load();
    let mut first_error = None;
    for o in outputs {
        let w = o.dest.writer.as_mut();
        let written = match o.format {
            NmapFormat::Xml(t) => crate::output::xml::write_xml(w, result, &nmap_names, run, t),
            NmapFormat::Grepable(t) => {
                crate::output::grepable::write_grepable(w, result, &nmap_names, run, t)
            }
            NmapFormat::Normal => {
                crate::output::text::write_normal(w, result, &services, text, run)
            }
            NmapFormat::List => crate::output::list::write_list(w, result, run),
        }
        .and_then(|()| Ok(w.flush()?));
        // Every output is tried; the first failure is reported.
        match written {
            Err(e) if o.path.as_os_str() == "-" && broken_pipe(&e) => {}
            Err(e) if first_error.is_none() => {
                first_error = Some(anyhow::anyhow!("cannot write {}: {e:#}", o.path.display()))
            }
            _ => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A scan that failed leaves each XML document whole, saying why (the
/// files were emptied before the scan began).
fn write_nmap_failure(outputs: &mut [NmapOutput], run: &RunInfo, error: &anyhow::Error) {
    for o in outputs.iter_mut() {
        if let NmapFormat::Xml(_) = o.format {
            let w = o.dest.writer.as_mut();
            let _ = crate::output::xml::write_failure(w, run, &format!("{error:#}"))
                .and_then(|()| Ok(w.flush()?));
        }
    }
}
