//! Scoring translated or generated images with the exported classifier (run through tract):
//! target-class accuracy, Fréchet distance in its feature space against real target images,
//! and faithfulness to the source (SSIM, RMS).

use anyhow::{anyhow, Result};
use tract_onnx::prelude::*;

use crate::classifier::FEATURES;
use crate::metrics::{frechet_distance, rms, ssim};

/// The classifier ONNX, optimised once for a symbolic batch.
pub struct ClassifierRunner {
    plan: Arc<TypedRunnableModel>,
}

impl ClassifierRunner {
    pub fn new(onnx: &[u8]) -> Result<ClassifierRunner> {
        let mut model =
            tract_onnx::onnx().model_for_read(&mut &onnx[..]).map_err(|e| anyhow!("classifier ONNX: {e:#}"))?;
        let n: TDim = model.symbols.sym("N").into();
        let shape = tvec![n, 1.into(), 28.into(), 28.into()];
        model.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape)).map_err(|e| anyhow!("{e:#}"))?;
        let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| anyhow!("classifier: {e:#}"))?;
        Ok(ClassifierRunner { plan })
    }

    /// (features N×64, predicted class per image) for 28×28 images in model space.
    pub fn run(&self, x: &[f32]) -> Result<(Vec<f32>, Vec<usize>)> {
        let n = x.len() / 784;
        let (mut feats, mut preds) = (Vec::with_capacity(n * FEATURES), Vec::with_capacity(n));
        for chunk in x.chunks(256 * 784) {
            let m = chunk.len() / 784;
            let input = Tensor::from_shape(&[m, 1, 28, 28], chunk).map_err(|e| anyhow!("{e:#}"))?;
            let out = self.plan.run(tvec![input.into()]).map_err(|e| anyhow!("classifier run: {e:#}"))?;
            let logits = out[0].to_plain_array_view::<f32>().map_err(|e| anyhow!("{e:#}"))?;
            let f = out[1].to_plain_array_view::<f32>().map_err(|e| anyhow!("{e:#}"))?;
            feats.extend(f.iter().copied());
            let l: Vec<f32> = logits.iter().copied().collect();
            preds
                .extend(l.chunks(10).map(|r| {
                    r.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
                }));
        }
        Ok((feats, preds))
    }
}

/// Quality of a batch of outputs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    pub count: usize,
    /// Fraction classified as the target class.
    pub target_accuracy: f64,
    /// Fréchet distance to the real target images in classifier-feature space.
    pub frechet: f64,
    /// Mean SSIM and RMS to the source images (faithfulness), when there are sources.
    pub ssim_to_source: Option<f64>,
    pub rms_to_source: Option<f64>,
}

/// Scores `outputs` (N×784) against real `target_images` of `target_class`; `sources` (same N)
/// for faithfulness.
pub fn evaluate(
    runner: &ClassifierRunner,
    outputs: &[f32],
    sources: Option<&[f32]>,
    target_images: &[f32],
    target_class: usize,
) -> Result<Quality> {
    let (f_out, preds) = runner.run(outputs)?;
    let (f_real, _) = runner.run(target_images)?;
    let n = preds.len();
    let faithful = sources.map(|s| {
        let pairs = || s.chunks(784).zip(outputs.chunks(784));
        (
            pairs().map(|(a, b)| ssim(a, b, 28, 28, 2.0)).sum::<f64>() / n as f64,
            pairs().map(|(a, b)| rms(a, b)).sum::<f64>() / n as f64,
        )
    });
    Ok(Quality {
        count: n,
        target_accuracy: preds.iter().filter(|&&p| p == target_class).count() as f64 / n.max(1) as f64,
        frechet: frechet_distance(&f_out, &f_real, FEATURES),
        ssim_to_source: faithful.map(|f| f.0),
        rms_to_source: faithful.map(|f| f.1),
    })
}
