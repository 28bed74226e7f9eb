//! Taking in a user's ONNX ε-network: decode, check operators and weights, read the signature,
//! freeze weights to fp16, and prove the result runs in tract on a probe input.

use brenier::backend::{Backend, CpuBackend};
use brenier::bundle::manifest::{Fp16Report, NetSpec};
use brenier::bundle::ImageSpec;
use brenier::onnx::{check_ops, decode, signature, Signature};
use brenier::rng::NoiseStream;
use tract_onnx::pb;

use crate::error::{ExportError, Result};
use crate::freeze::{check_weights, freeze_fp16, prefrozen};
use crate::onnx_build::to_bytes;

/// A network checked and ready to be written.
#[derive(Debug, Clone)]
pub struct IngestedNet {
    pub spec: NetSpec,
    pub signature: Signature,
    /// The ONNX bytes to store (fp16-frozen unless disabled).
    pub onnx: Vec<u8>,
}

/// Decodes and statically checks a network; returns the proto and its signature.
pub fn inspect(bytes: &[u8], label: &str) -> Result<(pb::ModelProto, Signature)> {
    let proto = decode(bytes, label)?;
    check_ops(&proto, label)?;
    check_weights(&proto, label)?;
    let sig = signature(&proto, label)?;
    if !(13..=18).contains(&sig.opset) && sig.opset != 0 {
        log::warn!("{label}: opset {} is outside the tested 13..=18 range; validating anyway", sig.opset);
    }
    Ok((proto, sig))
}

/// Full ingest: freezes (if `fp16`) and runs original and frozen nets in tract on a probe batch
/// at step `probe_t`, recording the output error fp16 freezing causes. A network whose weights
/// are fp16 already (re-exported from a bundle) keeps `carried`, the record of the export that
/// froze it, when that record covers exactly those weights: re-freezing finds nothing to convert
/// and could only report zeros.
pub fn ingest(
    bytes: &[u8],
    label: &str,
    image: ImageSpec,
    probe_t: usize,
    fp16: bool,
    section: &str,
    carried: Option<&Fp16Report>,
) -> Result<IngestedNet> {
    let (mut proto, sig) = inspect(bytes, label)?;
    sig.check_image(image, label)?;
    let mut spec = sig.net_spec(section);
    let backend = CpuBackend::new(1)?;
    let batch = sig.batch.unwrap_or(2);
    let probe = NoiseStream::new(0x5EED, 0).normal(batch * image.elems());
    let run = |onnx: &[u8], what: &str| -> Result<Vec<f32>> {
        let net = backend.load_net(onnx, &spec, image, &format!("{label} ({what})"))?;
        let out = net.run(&probe, batch, probe_t as i64)?;
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            return Err(ExportError::invalid(format!("{label}: the {what} network returns a non-finite value at index {i} on a N(0, I) probe at t = {probe_t}")));
        }
        Ok(out)
    };
    let reference = run(bytes, "original")?;
    let (prefrozen_tensors, prefrozen_params) = prefrozen(&proto);
    let converted = if fp16 { freeze_fp16(&mut proto) } else { Fp16Report::default() };
    let onnx = if converted.tensors > 0 {
        let frozen = to_bytes(&proto);
        let out = run(&frozen, "fp16-frozen")?;
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        let err = out.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        spec.fp16 = Fp16Report { output_rel_err: err, prefrozen_tensors, prefrozen_params, ..converted };
        frozen
    } else {
        spec.fp16 = match carried {
            Some(c) if c.tensors + c.prefrozen_tensors == prefrozen_tensors && prefrozen_tensors > 0 => c.clone(),
            _ => Fp16Report { prefrozen_tensors, prefrozen_params, ..Fp16Report::default() },
        };
        bytes.to_vec()
    };
    log::info!("{label}: {}", spec.fp16);
    Ok(IngestedNet { spec, signature: sig, onnx })
}
