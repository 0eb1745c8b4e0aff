//! A session: runs a resolved scan, writes its outputs, and on an
//! interrupt the resume file.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::cli::args::Args;
use crate::cli::config::{resolve, resume_args};
use crate::cli::resume::{self, ResumeFile, ResumeSink};
use crate::engine::scan;
use crate::error::{usage, EXIT_INTERRUPTED, EXIT_OK};
use crate::io::rawsock::IoMode;
use crate::model::services::Services;
use crate::model::tap::ProgressView;
use crate::output::json::JsonLines;
use crate::output::pcap::{PcapSink, PcapTap};
use crate::output::progress::Progress;
use crate::output::text::report;
use crate::output::trace::TraceTap;
use crate::output::{self, Exporter};
use crate::route;

/// Runs a scan from its arguments (`raw` as given, for a resume file);
/// returns the exit code.
pub fn run(mut args: Args, raw: &[String]) -> anyhow::Result<i32> {
    // --resume: the saved command line (and seed) replaces this one.
    let resumed = match args.resume.clone() {
        Some(path) => {
            let (saved, rf) = resume_args(raw, &args, &path)?;
            args = saved;
            Some(rf)
        }
        None => None,
    };
    let saved_args = match &resumed {
        Some(rf) => rf.args.clone(),
        None => resume::saved_args(raw),
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
    let mut resolved = resolve(&args)?;
    resolved.scan.early_ring = early_ring;
    if let Some(rf) = &resumed {
        let probes = crate::model::probe::ProbeSpace::new(
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
    // Before any socket: a bad --pcap path is a usage error in a second.
    let pcap = match &resolved.pcap {
        Some(path) if resumed.is_some() => Some(Arc::new(PcapTap::new(PcapSink::append(path)?))),
        Some(path) => Some(Arc::new(PcapTap::new(PcapSink::create(path)?))),
        None => None,
    };
    let trace = resolved.packet_trace.then(|| {
        // With JSON on stdout, the trace goes to stderr to keep the JSON clean.
        let out: Box<dyn Write + Send> = if json_on_stdout {
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
    resolved.scan.progress = Progress::for_terminal().map(|p| Box::new(p) as Box<dyn ProgressView>);
    let text_opts = resolved.text;
    let scan = resolved.scan;
    let route = route::plan(&scan.targets, scan.device.as_deref(), scan.source);
    let written = route
        .and_then(|route| scan::run(scan, route))
        .and_then(|mut result| {
            if let Some(tap) = &trace {
                tap.flush();
            }
            if let Some(tap) = &pcap {
                result.stats.pcap = Some(tap.finish()?);
            }
            let services = Services::load();
            // The JSON file and the text report are written side by side: the
            // scan's threads are done and a core is free.
            let jsonl = JsonLines(text_opts.lang);
            let (result_ref, services_ref, jsonl) = (&result, &services, &jsonl);
            std::thread::scope(|scope| {
                let json_job = json.as_mut().map(|w| {
                    scope.spawn(move || jsonl.write(w.as_mut(), result_ref, services_ref))
                });
                let text = report(&result, &services, text_opts, json_on_stdout);
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
