//! The progress line on stderr: rate, percent, ETA and ports found.
//!
//! Shown only when stderr is a terminal, so logs and pipes stay clean;
//! indicatif redraws at most a few times a second whatever we feed it.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::tap::ProgressView;
use crate::model::technique::Technique;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `total` probes to decide; hidden unless stderr is a terminal.
    pub fn new(total: u64) -> Progress {
        Progress::with_target(total, std::io::IsTerminal::is_terminal(&std::io::stderr()))
    }

    pub fn with_target(total: u64, visible: bool) -> Progress {
        if !visible {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template(
                "{percent:>3}% [{bar:30}] {pos}/{len} probes decided, {per_sec}, ETA {eta}, {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        Progress { bar: Some(bar) }
    }

    /// Cheap when hidden: one branch.
    pub fn update(&self, decided: u64, open: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(decided);
            bar.set_message(format!("{open} open"));
        }
    }

    #[cfg(test)]
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// The line for a scan, if stderr is a terminal.
    pub fn for_terminal() -> Option<Progress> {
        Some(Progress::new(0)).filter(Progress::is_visible)
    }
}

impl ProgressView for Progress {
    fn update(&self, decided: u64, total: u64, open: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
        Progress::update(self, decided, open);
    }
}

/// `-v` and `--stats-every`: open ports told as they are found, and a
/// stats line every so often, on stderr; beside the bar on a terminal.
pub struct Verbose {
    bar: Option<Progress>,
    open_lines: bool,
    every: Option<Duration>,
    started: Instant,
    last: Mutex<Instant>,
}

/// How often `-v` prints a stats line when stderr is no terminal (a log):
/// often enough to show a long scan is alive, rarely enough to stay short.
pub const VERBOSE_STATS_EVERY: Duration = Duration::from_secs(30);

impl Verbose {
    /// `verbose`: `-v` given; `every`: `--stats-every`. `None` when
    /// neither asks for anything beyond the bar.
    pub fn new(verbose: bool, every: Option<Duration>) -> Option<Verbose> {
        let bar = Progress::for_terminal();
        let every = every.or((verbose && bar.is_none()).then_some(VERBOSE_STATS_EVERY));
        if !verbose && every.is_none() {
            return None;
        }
        let now = Instant::now();
        Some(Verbose {
            bar,
            open_lines: verbose,
            every,
            started: now,
            last: Mutex::new(now),
        })
    }

    fn line(&self, text: &str) {
        match self.bar.as_ref().and_then(|p| p.bar.as_ref()) {
            Some(bar) => bar.println(text),
            None => crate::error::say(text),
        }
    }
}

/// "Stats: 0:01:05 elapsed; 1200 of 4000 probes decided (30.00%), 3 open;
/// about 0:02:31 left", as nmap's `--stats-every` says it.
pub fn stats_line(elapsed: Duration, decided: u64, total: u64, open: u64) -> String {
    let clock = |d: Duration| {
        let s = d.as_secs();
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let share = if total > 0 {
        decided as f64 / total as f64
    } else {
        1.0
    };
    let left = if share > 0.0 && share < 1.0 {
        let rest = elapsed.as_secs_f64() * (1.0 - share) / share;
        format!("; about {} left", clock(Duration::from_secs_f64(rest)))
    } else {
        String::new()
    };
    format!(
        "Stats: {} elapsed; {decided} of {total} probes decided ({:.2}%), {open} open{left}",
        clock(elapsed),
        share * 100.0
    )
}

impl ProgressView for Verbose {
    fn update(&self, decided: u64, total: u64, open: u64) {
        if let Some(bar) = &self.bar {
            ProgressView::update(bar, decided, total, open);
        }
        let Some(every) = self.every else { return };
        let now = Instant::now();
        let due = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = now.duration_since(*last) >= every;
            if due {
                *last = now;
            }
            due
        };
        if due {
            self.line(&stats_line(now - self.started, decided, total, open));
        }
    }

    fn found_open(&self, host: Ipv4Addr, port: u16, technique: &Technique, techniques: usize) {
        if !self.open_lines {
            return;
        }
        let proto = technique.protocol.as_str();
        let by = if techniques > 1 {
            format!(" ({})", technique.name)
        } else {
            String::new()
        };
        self.line(&format!(
            "Discovered open port {port}/{proto} on {host}{by}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_say_elapsed_share_and_time_left() {
        assert_eq!(
            stats_line(Duration::from_secs(65), 1000, 4000, 3),
            "Stats: 0:01:05 elapsed; 1000 of 4000 probes decided (25.00%), 3 open; about 0:03:15 left"
        );
        assert_eq!(
            stats_line(Duration::from_secs(3700), 0, 10, 0),
            "Stats: 1:01:40 elapsed; 0 of 10 probes decided (0.00%), 0 open"
        );
    }

    #[test]
    fn hidden_when_not_a_terminal() {
        let p = Progress::with_target(10, false);
        assert!(!p.is_visible());
        p.update(5, 1);
        p.finish();
        assert!(Progress::with_target(10, true).is_visible());
    }
}
