//! The command line: raw arguments ([`args`], clap, no system access) ->
//! a resolved configuration ([`config`]: DNS, routes, timing templates) ->
//! a session that runs it ([`session`]); and the other subcommands.

pub(crate) mod args;
pub(crate) mod config;
pub(crate) mod resume;
pub(crate) mod session;
pub mod targets;

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

use crate::cli::args::{normalize_args, Args, Command, LabAction};
use crate::error::{usage, EXIT_OK};
use crate::lab;
use crate::lab::demo;
use crate::model::services::Services;
use crate::model::technique::{self, Protocol, Technique};
use crate::teach::lang::Lang;

/// clap's view of the arguments. `--help` and `--version` print and exit;
/// any other error is one line with a hint, for `main` to print (clap's own
/// tips, such as passing `-o` as a value after `--`, mislead here).
fn parse(argv: Vec<OsString>) -> anyhow::Result<Args> {
    use clap::error::ErrorKind;
    match Args::try_parse_from(argv) {
        Ok(args) => Ok(args),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // The first line, and the lines it introduces ("... not provided:").
            let text = e.to_string();
            let mut lines = text.lines();
            let mut line = lines.next().unwrap_or_default().to_string();
            if line.ends_with(':') {
                let more: Vec<&str> = lines
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                line = format!("{line} {}", more.join(", "));
            }
            let line = line.trim_start_matches("error: ").trim_end_matches('.');
            // The accepted values, where clap lists them, are the useful hint.
            let values = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("[possible values:"))
                .map_or(String::new(), |l| format!(" {l}"));
            Err(usage(format!("{line}{values}; see flagscan --help")))
        }
    }
}

/// Writes a generated text to stdout; a reader that stopped early
/// (`| head`) is not an error.
fn print_all(text: &[u8]) -> anyhow::Result<i32> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(EXIT_OK),
    }
}

/// Runs the program; returns the exit code.
pub fn run(raw: Vec<OsString>) -> anyhow::Result<i32> {
    let args = parse(normalize_args(raw.clone())?)?;
    match &args.command {
        Some(Command::Lab { action, prefix }) => return run_lab(action, prefix),
        Some(Command::Explain { topic, port }) => {
            let lang = args.lang.unwrap_or_else(Lang::from_env);
            print!("{}", explain(topic, port.as_deref(), lang)?);
            return Ok(EXIT_OK);
        }
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Args::command(), "flagscan", &mut out);
            return print_all(&out);
        }
        Some(Command::Man) => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Args::command()).render(&mut out)?;
            return print_all(&out);
        }
        Some(Command::Demo { prefix }) => {
            demo::run(prefix, args.lang.unwrap_or_else(Lang::from_env))?;
            return Ok(EXIT_OK);
        }
        None => {}
    }
    session::run(args, &raw)
}

fn explain(topic: &str, port: Option<&str>, lang: Lang) -> anyhow::Result<String> {
    if topic == "port" {
        let arg = port.ok_or_else(|| {
            usage("explain port needs a port number, e.g. `flagscan explain port 445`")
        })?;
        // `53`, `53/udp`, `22/tcp`, as nmap writes ports.
        let (number, proto) = match arg.split_once('/') {
            Some((n, "tcp")) => (n, Some(Protocol::Tcp)),
            Some((n, "udp")) => (n, Some(Protocol::Udp)),
            Some(_) => {
                return Err(usage(format!(
                    "invalid port '{arg}' for explain port: write 53, 53/udp or 22/tcp"
                )))
            }
            None => (arg, None),
        };
        let n: u16 = number.parse().map_err(|_| {
            usage(format!(
                "invalid port '{arg}' for explain port: ports are 0-65535"
            ))
        })?;
        let services = Services::load();
        // A bare number is TCP's, unless only UDP has a service there.
        let proto = proto.unwrap_or(
            match services.name_in(Protocol::Tcp, n).is_none()
                && services.name_in(Protocol::Udp, n).is_some()
            {
                true => Protocol::Udp,
                false => Protocol::Tcp,
            },
        );
        return Ok(crate::teach::explain::port_card(n, proto, &services, lang));
    }
    if let Some(extra) = port {
        return Err(usage(format!("unexpected '{extra}' after explain {topic}")));
    }
    let t = match technique::builtin_by_name(topic) {
        Some(t) => t,
        None if std::path::Path::new(topic).exists() => {
            Technique::load(std::path::Path::new(topic))?
        }
        None => {
            return Err(usage(format!(
            "nothing to explain called '{topic}': use syn, fin, null, xmas, ack, window, maimon, \
                 udp, a technique file, or `port N` (`port 53/udp`)"
        )))
        }
    };
    Ok(crate::teach::explain::technique_card(&t, lang))
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
        LabAction::ListenUdp { services } => lab::listen_udp_forever(services)?,
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_the_man_page_are_generated_from_the_options() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "flagscan", &mut out);
            let text = String::from_utf8(out).unwrap();
            for option in ["max-rate", "pcap", "resume-file", "explain"] {
                assert!(text.contains(option), "{shell:?} lacks {option}");
            }
        }
        let mut man = Vec::new();
        clap_mangen::Man::new(Args::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH flagscan"),
            "{}",
            &man[..200]
        );
        for option in ["max\\-rate", "pcap", "Exit codes"] {
            assert!(man.contains(option), "the man page lacks {option}");
        }
    }
}
