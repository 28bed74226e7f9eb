//! An ε-network's ONNX graph as tract sees it, shared by every backend that runs networks through
//! tract (cpu, cuda): parsing and op checks, the image/timestep inputs, the typed model for a
//! batch size and precision, and the f32 boundary (inputs in, outputs out).

use half::f16;
use tract_onnx::prelude::*;

use super::Precision;
use crate::bundle::{ImageSpec, NetSpec, TimeDtype};
use crate::error::{Error, Result};

pub struct Graph {
    /// The parsed model; taken by `typed_once`.
    model: Option<InferenceModel>,
    /// Positions of the image and timestep inputs in the model's input list.
    pub x_pos: usize,
    t_pos: usize,
    pub t_dtype: TimeDtype,
    pub image: ImageSpec,
    pub label: String,
    /// Weights in the ONNX file (values, not bytes).
    pub params: usize,
}

impl Graph {
    /// Parses a network for a backend that types it more than once (a plan per batch size): the
    /// model stays as the bundle stores it, f16 weights behind their casts included (the CUDA
    /// backend's).
    #[cfg(feature = "cuda")]
    pub fn parse(onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Graph> {
        Graph::from_proto(crate::onnx::decode(onnx, label)?, spec, image, label)
    }

    /// Parses a network for a backend that types it once (`typed_once`) and keeps only its plan.
    /// The weights the exporter froze to f16 are widened to f32 first
    /// (`onnx::widen_frozen_weights`), which spares tract folding each cast while decluttering;
    /// the f32 copy lives only until `typed_once` takes the model.
    pub fn parse_for_one_plan(onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Graph> {
        let mut proto = crate::onnx::decode(onnx, label)?;
        let widened = crate::onnx::widen_frozen_weights(&mut proto);
        log::debug!("{label}: {widened} f16 weight tensors widened to f32 before tract");
        Graph::from_proto(proto, spec, image, label)
    }

    fn from_proto(proto: tract_onnx::pb::ModelProto, spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Graph> {
        crate::onnx::check_ops(&proto, label)?;
        let params: usize = proto
            .graph
            .iter()
            .flat_map(|g| &g.initializer)
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
            .sum();
        let model = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| Error::tract(format!("parsing {label}"), e))?;
        let names: Vec<String> = model
            .input_outlets()
            .map_err(|e| Error::tract(label, e))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let pos = |name: &str| {
            names.iter().position(|n| n == name).ok_or_else(|| Error::Onnx {
                net: label.into(),
                problem: format!("input `{name}` recorded in the bundle is not an input of the graph ({names:?})"),
            })
        };
        let (x_pos, t_pos) = (pos(&spec.x_input)?, pos(&spec.t_input)?);
        Ok(Graph { model: Some(model), x_pos, t_pos, t_dtype: spec.t_dtype, image, label: label.into(), params })
    }

    /// The decluttered typed model for exactly `batch` images, translated to f16 where asked.
    /// The translation runs before any backend picks kernels, so it picks f16 ones.
    #[cfg(feature = "cuda")]
    pub fn typed(&self, batch: usize, precision: Precision) -> Result<TypedModel> {
        self.type_model(self.model.clone(), batch, precision, |_| Ok(()))
    }

    /// `typed`, taking the parsed model rather than a copy: the plan made from it holds its own
    /// (packed) weights, and the parsed ones would otherwise stay resident for the network's
    /// life. `typed` and `typed_once` fail afterwards. `before_declutter` sees the typed model
    /// before tract declutters it (brenier's 1×1 convolutions take tract's there).
    pub fn typed_once(
        &mut self,
        batch: usize,
        precision: Precision,
        before_declutter: impl FnOnce(&mut TypedModel) -> Result<()>,
    ) -> Result<TypedModel> {
        let model = self.model.take();
        self.type_model(model, batch, precision, before_declutter)
    }

    fn type_model(
        &self,
        model: Option<InferenceModel>,
        batch: usize,
        precision: Precision,
        before_declutter: impl FnOnce(&mut TypedModel) -> Result<()>,
    ) -> Result<TypedModel> {
        let img = self.image;
        let b: TDim = batch.into();
        let x_shape = tvec![b.clone(), img.channels.into(), img.height.into(), img.width.into()];
        let t_type = match self.t_dtype {
            TimeDtype::Int64 => i64::datum_type(),
            TimeDtype::Float => f32::datum_type(),
        };
        let Some(mut model) = model else {
            return Err(Error::tract(&self.label, "the parsed graph was already typed once and let go"));
        };
        let preparing = |e| {
            Error::tract(
                format!(
                    "preparing {} (does the graph accept [N,{},{},{}] images?)",
                    self.label, img.channels, img.height, img.width
                ),
                e,
            )
        };
        let mut typed = model
            .set_input_fact(self.x_pos, InferenceFact::dt_shape(f32::datum_type(), x_shape))
            .and_then(|_| model.set_input_fact(self.t_pos, InferenceFact::dt_shape(t_type, tvec![b])))
            .and_then(|_| model.into_typed())
            .map_err(preparing)?;
        // Its own error: a failure here is brenier's, not a sign the graph refuses the shape.
        before_declutter(&mut typed)?;
        typed
            .into_decluttered()
            .and_then(|mut typed| {
                if precision == Precision::F16 {
                    use tract_onnx::tract_core::floats::FloatPrecisionTranslator;
                    use tract_onnx::tract_core::transform::ModelTransform;
                    FloatPrecisionTranslator::new(f32::datum_type(), f16::datum_type()).transform(&mut typed)?;
                }
                Ok(typed)
            })
            .map_err(preparing)
    }

    /// The input list for `n` images at timestep `t`, in the model's order and precision.
    pub fn inputs(&self, x: &[f32], n: usize, t: i64, precision: Precision) -> Result<TVec<TValue>> {
        let img = self.image;
        let shape = [n, img.channels, img.height, img.width];
        let f16 = precision == Precision::F16;
        let xt = if f16 {
            let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            Tensor::from_shape(&shape, &h)
        } else {
            Tensor::from_shape(&shape, x)
        }
        .map_err(|e| Error::tract(format!("building the input of {}", self.label), e))?;
        let tt = match self.t_dtype {
            TimeDtype::Int64 => Tensor::from_shape(&[n], &vec![t; n]),
            // t ≤ 2048 is exact in f16, so a float timestep survives the translation.
            TimeDtype::Float if f16 => Tensor::from_shape(&[n], &vec![f16::from_f32(t as f32); n]),
            TimeDtype::Float => Tensor::from_shape(&[n], &vec![t as f32; n]),
        }
        .map_err(|e| Error::tract(format!("building the timestep of {}", self.label), e))?;
        Ok(if self.x_pos == 0 { tvec![xt.into(), tt.into()] } else { tvec![tt.into(), xt.into()] })
    }

    /// The first output as f32, checked to hold one value per input value.
    pub fn output(&self, out: &TValue, n: usize, precision: Precision) -> Result<Vec<f32>> {
        let img = self.image;
        let read = |e| Error::tract(format!("reading the output of {}", self.label), e);
        let (values, found): (Vec<f32>, Vec<usize>) = if precision == Precision::F16 {
            let view = out.to_plain_array_view::<f16>().map_err(read)?;
            (view.iter().map(|v| v.to_f32()).collect(), view.shape().to_vec())
        } else {
            let view = out.to_plain_array_view::<f32>().map_err(read)?;
            (view.iter().copied().collect(), view.shape().to_vec())
        };
        if values.len() != n * img.elems() {
            return Err(Error::Shape {
                what: format!("output of {}", self.label),
                expected: vec![n, img.channels, img.height, img.width],
                found,
                hint: " (an ε-network returns one value per input value)".into(),
            });
        }
        Ok(values)
    }

    /// Fails with a shape error unless `x` holds `batch` images.
    pub fn check_input(&self, x: &[f32], batch: usize) -> Result<()> {
        if x.len() != batch * self.image.elems() {
            let img = self.image;
            return Err(Error::Shape {
                what: format!("input of {}", self.label),
                expected: vec![batch, img.channels, img.height, img.width],
                found: vec![x.len()],
                hint: String::new(),
            });
        }
        Ok(())
    }
}
