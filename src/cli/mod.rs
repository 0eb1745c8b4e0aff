//! The command line: raw arguments ([`args`], clap, no system access) ->
//! a resolved configuration ([`config`]: DNS, routes, timing templates) ->
//! a session that runs it ([`session`]); and the other subcommands.

pub(crate) mod args;
pub(crate) mod config;
pub(crate) mod resume;
pub(crate) mod session;
pub mod targets;

use clap::Parser;

use crate::cli::args::{normalize_args, Args, Command, LabAction};
use crate::error::{usage, EXIT_OK};
use crate::lab;
use crate::lab::demo;
use crate::model::services::Services;
use crate::model::technique::{self, Technique};
use crate::teach::lang::Lang;

/// Runs the program; returns the exit code.
pub fn run(raw: Vec<String>) -> anyhow::Result<i32> {
    let args = Args::try_parse_from(normalize_args(raw.clone())?).unwrap_or_else(|e| e.exit());
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
    session::run(args, &raw)
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
