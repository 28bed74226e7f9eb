//! Progress bars for the pipelines' observer hooks: one bar per stage (encode, decode) and, for
//! work split into several batches, an overall bar over images. Hidden with `--quiet` or when
//! stderr is not a terminal (indicatif's default draw target).

use std::sync::Mutex;

use brenier::pipeline::Observer;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Bars {
    multi: MultiProgress,
    stage: Mutex<Option<ProgressBar>>,
    overall: Option<ProgressBar>,
    quiet: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        Bars { multi: MultiProgress::new(), stage: Mutex::new(None), overall: None, quiet }
    }

    /// Adds an overall bar over `images` (only worth it when the work comes in several batches).
    pub fn with_images(mut self, images: usize, batches: usize) -> Bars {
        if !self.quiet && batches > 1 {
            let bar = self.multi.add(ProgressBar::new(images as u64));
            bar.set_style(style("{msg:>16} [{bar:30}] {pos}/{len} images {elapsed_precise} eta {eta}"));
            bar.set_message("images");
            self.overall = Some(bar);
        }
        self
    }

    pub fn images_done(&self, n: usize) {
        if let Some(b) = &self.overall {
            b.inc(n as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.overall {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bars {
    fn stage(&self, name: &str, steps: usize) {
        if self.quiet {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(steps as u64));
        bar.set_style(style("{msg:>16} [{bar:30}] {pos}/{len} steps {elapsed_precise} eta {eta}"));
        bar.set_message(name.to_string());
        if let Ok(mut b) = self.stage.lock() {
            *b = Some(bar);
        }
    }
    fn step(&self) {
        if let Ok(b) = self.stage.lock() {
            if let Some(b) = b.as_ref() {
                b.inc(1);
            }
        }
    }
    fn done(&self) {
        if let Ok(mut b) = self.stage.lock() {
            if let Some(b) = b.take() {
                b.finish_and_clear();
                self.multi.remove(&b);
            }
        }
    }
}

/// The exporter's stages: its messages above the bars, and the solver's fit error per iteration
/// on a spinner (the iterations a solve needs are not known beforehand).
impl brenier_export::from_images::ExportObserver for Bars {
    fn solve(&self, map: &str, p: &brenier_export::ot::Progress) {
        if self.quiet {
            return;
        }
        let mut stage = match self.stage.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let bar = stage.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        bar.set_message(format!(
            "solving {map}: fit set of {} samples, iteration {}, RMS relative cell-mass error {:.3}, {} empty cells",
            p.fit_samples, p.iter, p.fit_mass_err, p.empty
        ));
        bar.tick();
    }

    fn message(&self, text: &str) {
        // A new stage: the previous stage's spinner ends.
        Observer::done(self);
        if self.quiet {
            log::info!("{text}");
        } else {
            let _ = self.multi.println(format!("== {text}"));
        }
    }
}
