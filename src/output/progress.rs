//! The progress line on stderr: rate, percent, ETA and ports found.
//!
//! Shown only when stderr is a terminal, so logs and pipes stay clean;
//! indicatif redraws at most a few times a second whatever we feed it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::tap::ProgressView;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_when_not_a_terminal() {
        let p = Progress::with_target(10, false);
        assert!(!p.is_visible());
        p.update(5, 1);
        p.finish();
        assert!(Progress::with_target(10, true).is_visible());
    }
}
