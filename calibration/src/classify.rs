//! Scoring translated or generated images with the evaluation classifier (ONNX, run through
//! tract): target-class accuracy, Fréchet distance in its feature space against real target
//! images, and faithfulness to the source (SSIM, RMS).

pub use brenier::bundle::calibration::Quality;
use brenier::bundle::{ImageSpec, Normalization};
use tract_onnx::prelude::*;

use crate::error::{CalibError, Result};
use crate::metrics::{frechet_distance, rms, ssim};

/// The classifier ONNX (input `[N, C, H, W]`, outputs logits `[N, classes]` and features
/// `[N, F]`), optimised once for a symbolic batch.
pub struct ClassifierRunner {
    plan: Arc<TypedRunnableModel>,
    image: ImageSpec,
    /// Width of the model range, SSIM's dynamic range.
    range: f32,
}

fn err(context: &str) -> impl Fn(TractError) -> CalibError + '_ {
    move |e| CalibError::Classifier(format!("{context}: {e:#}"))
}

impl ClassifierRunner {
    pub fn new(onnx: &[u8], image: ImageSpec, norm: Normalization) -> Result<ClassifierRunner> {
        let mut model = tract_onnx::onnx().model_for_read(&mut &onnx[..]).map_err(err("reading the ONNX"))?;
        let n: TDim = model.symbols.sym("N").into();
        let shape = tvec![n, image.channels.into(), image.height.into(), image.width.into()];
        model.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape)).map_err(err("input shape"))?;
        let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(err("optimising"))?;
        Ok(ClassifierRunner { plan, image, range: norm.high - norm.low })
    }

    /// (features N×F row-major, F, predicted class per image) for images in model space.
    pub fn run(&self, x: &[f32]) -> Result<(Vec<f32>, usize, Vec<usize>)> {
        let d = self.image.elems();
        let n = x.len() / d;
        let (mut feats, mut preds, mut width) = (Vec::new(), Vec::with_capacity(n), 0);
        for chunk in x.chunks(256 * d) {
            let m = chunk.len() / d;
            let input = Tensor::from_shape(&self.image.shape(m), chunk).map_err(err("input"))?;
            let out = self.plan.run(tvec![input.into()]).map_err(err("running"))?;
            if out.len() < 2 {
                return Err(CalibError::Classifier("needs two outputs, logits and features".into()));
            }
            let logits = out[0].to_plain_array_view::<f32>().map_err(err("logits"))?;
            let f = out[1].to_plain_array_view::<f32>().map_err(err("features"))?;
            width = f.len() / m.max(1);
            feats.extend(f.iter().copied());
            let l: Vec<f32> = logits.iter().copied().collect();
            let classes = l.len() / m.max(1);
            preds
                .extend(l.chunks(classes.max(1)).map(|r| {
                    r.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
                }));
        }
        Ok((feats, width, preds))
    }
}

/// Scores `outputs` against real `target_images` of `target_class`; `sources` (same count) for
/// faithfulness.
pub fn evaluate(
    runner: &ClassifierRunner,
    outputs: &[f32],
    sources: Option<&[f32]>,
    target_images: &[f32],
    target_class: usize,
) -> Result<Quality> {
    let img = runner.image;
    let (f_out, width, preds) = runner.run(outputs)?;
    let (f_real, _, _) = runner.run(target_images)?;
    let n = preds.len();
    let d = img.elems();
    let faithful = sources.map(|s| {
        let pairs = || s.chunks(d).zip(outputs.chunks(d));
        let ssim_mean = pairs()
            .map(|(a, b)| {
                (0..img.channels)
                    .map(|c| {
                        let p = img.height * img.width;
                        ssim(&a[c * p..(c + 1) * p], &b[c * p..(c + 1) * p], img.height, img.width, runner.range)
                    })
                    .sum::<f64>()
                    / img.channels as f64
            })
            .sum::<f64>()
            / n.max(1) as f64;
        (ssim_mean, pairs().map(|(a, b)| rms(a, b)).sum::<f64>() / n.max(1) as f64)
    });
    Ok(Quality {
        count: n,
        target_accuracy: preds.iter().filter(|&&p| p == target_class).count() as f64 / n.max(1) as f64,
        frechet: frechet_distance(&f_out, &f_real, width),
        ssim_to_source: faithful.map(|f| f.0),
        rms_to_source: faithful.map(|f| f.1),
    })
}
