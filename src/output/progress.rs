//! The progress line on stderr: rate, percent, ETA and ports found.
//!
//! Shown only when stderr is a terminal, so logs and pipes stay clean;
//! indicatif redraws at most a few times a second whatever we feed it.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::tap::{ProgressView, TimingNote, TimingState};
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
    /// `-d`: the timing state about once a second.
    debug: bool,
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
    /// `debug`: `-d` (implies `verbose`).
    pub fn new(verbose: bool, debug: bool, every: Option<Duration>) -> Option<Verbose> {
        let verbose = verbose || debug;
        let bar = Progress::for_terminal();
        let every = every.or((verbose && bar.is_none()).then_some(VERBOSE_STATS_EVERY));
        if !verbose && every.is_none() {
            return None;
        }
        let now = Instant::now();
        Some(Verbose {
            bar,
            open_lines: verbose,
            debug,
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

/// A `-v` line for a timing change, as nmap's timing notes read.
pub fn timing_note_line(note: &TimingNote) -> String {
    match *note {
        TimingNote::WindowShrank { from, to } => format!(
            "Timing: answers to retransmissions show loss: probes in flight cut from {from} to {to}"
        ),
        TimingNote::MoreRetries { to } => {
            format!("Timing: loss seen: a silent probe is now retried up to {to} times")
        }
        TimingNote::LongerTimeout { from, to } => format!(
            "Timing: replies came after their timeout: timeout raised from {} to {}",
            ms(from),
            ms(to)
        ),
        TimingNote::Confirming { probes } => format!(
            "Timing: a rate limiter is suspected: confirming {probes} silent probe{} at its pace",
            if probes == 1 { "" } else { "s" }
        ),
    }
}

/// The `-d` line: the timing as it stands.
pub fn timing_state_line(t: &TimingState) -> String {
    let rtt = match t.srtt {
        Some(srtt) => format!("srtt {} rttvar {}", ms(srtt), ms(t.rttvar)),
        None => "srtt none yet".to_string(),
    };
    format!(
        "Timing: {rtt}, timeout {}, window {}, in flight {}, retries {}, confirming {}",
        ms(t.timeout),
        t.window,
        t.in_flight,
        t.retries,
        t.confirming
    )
}

/// Milliseconds as people read them: `0.42 ms`, `12 ms`, `1250 ms`.
fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

impl ProgressView for Verbose {
    fn timing_note(&self, note: &TimingNote, _now: &TimingState) {
        if self.open_lines {
            self.line(&timing_note_line(note));
        }
    }

    fn timing_state(&self, now: &TimingState, last: bool) {
        if self.debug {
            let line = timing_state_line(now);
            match last {
                true => self.line(&line.replacen("Timing:", "Final timing:", 1)),
                false => self.line(&line),
            }
        }
    }

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

    fn found_open(&self, host: IpAddr, port: u16, technique: &Technique, techniques: usize) {
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
    fn timing_lines_name_what_changed() {
        let before = TimingState {
            srtt: Some(Duration::from_micros(420)),
            rttvar: Duration::from_micros(100),
            timeout: Duration::from_millis(10),
            window: 512,
            in_flight: 40,
            retries: 1,
            confirming: 0,
        };
        assert!(TimingNote::between(&before, &before).is_empty());
        // Growth and drift are not news.
        let grown = TimingState {
            window: 600,
            timeout: Duration::from_millis(15),
            ..before
        };
        assert!(TimingNote::between(&before, &grown).is_empty());
        let worse = TimingState {
            window: 256,
            retries: 3,
            timeout: Duration::from_millis(20),
            confirming: 8,
            ..before
        };
        let lines: Vec<String> = TimingNote::between(&before, &worse)
            .iter()
            .map(timing_note_line)
            .collect();
        assert_eq!(
            lines,
            [
                "Timing: answers to retransmissions show loss: probes in flight cut from 512 to 256",
                "Timing: loss seen: a silent probe is now retried up to 3 times",
                "Timing: replies came after their timeout: timeout raised from 10 ms to 20 ms",
                "Timing: a rate limiter is suspected: confirming 8 silent probes at its pace",
            ]
        );
        assert_eq!(
            timing_state_line(&before),
            "Timing: srtt 0.42 ms rttvar 0.10 ms, timeout 10 ms, window 512, in flight 40, retries 1, confirming 0"
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
