//! `brenier.Bundle`: an open bundle on a backend, translating and generating NumPy images.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use runtime::backend;
use runtime::bundle::{Bundle as RtBundle, LoadMode};
use runtime::io::batch::{read_batch, ReadOptions};
use runtime::io::image::Fit;
use runtime::pipeline::{GenerateOptions, Silent, TranslateOptions};
use runtime::Engine;

use crate::arrays::{images, to_numpy};
use crate::errors::OrRaise;

/// An open bundle on a backend. Thread-safe: one Bundle serves several Python threads at once,
/// and each call runs with the GIL released. `close()` (or leaving a `with` block) releases the
/// bundle; calls already running finish first, later calls raise ValueError.
#[pyclass(frozen, module = "brenier")]
pub struct Bundle {
    engine: Mutex<Option<Arc<Engine>>>,
    origin: String,
}

/// Opens the engine; unnamed backend and precision are the runtime's defaults (the CLI's).
fn open_engine(
    bundle: RtBundle,
    backend: Option<&str>,
    precision: Option<&str>,
    threads: usize,
) -> runtime::Result<Engine> {
    Engine::new(bundle, backend::open_named(backend, precision, threads)?)
}

/// A result's report (what the runtime's JSON output holds: T, K, NFE, stage times, the map's
/// assignments) as a Python dict.
fn report<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot describe the run: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

impl Bundle {
    /// The engine for one call; the lock is held only to clone the handle, never during work.
    fn engine(&self) -> PyResult<Arc<Engine>> {
        let guard = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        guard.clone().ok_or_else(|| PyValueError::new_err(format!("{} is closed", self.origin)))
    }

    fn from_rt(
        py: Python<'_>,
        bundle: RtBundle,
        origin: String,
        backend: Option<&str>,
        precision: Option<&str>,
        threads: usize,
    ) -> PyResult<Self> {
        let engine = py.detach(|| open_engine(bundle, backend, precision, threads)).or_raise(py)?;
        Ok(Bundle { engine: Mutex::new(Some(Arc::new(engine))), origin })
    }
}

#[pymethods]
impl Bundle {
    /// Opens the bundle at `path` (validated: header, section table, manifest; each section's
    /// checksum is verified on its first read) on
    /// `backend` "cpu" (the default), "cuda" or "auto", at `precision` "f32" (the default) or
    /// "f16", with `threads` host threads (0: every core). `mmap=False` reads the file instead of mapping it (for a file
    /// that may be replaced in place). Networks are prepared on first use.
    #[new]
    #[pyo3(signature = (path, *, backend = None, precision = None, threads = 0, mmap = true))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        backend: Option<&str>,
        precision: Option<&str>,
        threads: usize,
        mmap: bool,
    ) -> PyResult<Self> {
        let mode = if mmap { LoadMode::Mmap } else { LoadMode::Read };
        let bundle = py.detach(|| RtBundle::open_with(&path, mode)).or_raise(py)?;
        Self::from_rt(py, bundle, path.display().to_string(), backend, precision, threads)
    }

    /// Opens a bundle held in memory (the bytes are copied). As `Bundle(path)` otherwise.
    #[staticmethod]
    #[pyo3(signature = (data, *, backend = None, precision = None, threads = 0))]
    fn from_bytes(
        py: Python<'_>,
        data: &[u8],
        backend: Option<&str>,
        precision: Option<&str>,
        threads: usize,
    ) -> PyResult<Self> {
        // `bytes` are immutable, so validating them with the GIL released is sound.
        let bundle = py.detach(|| RtBundle::from_bytes(data)).or_raise(py)?;
        Self::from_rt(py, bundle, format!("a bundle of {} bytes", data.len()), backend, precision, threads)
    }

    /// An image's shape `(C, H, W)`; images are float32 in model space, [-1, 1].
    #[getter]
    fn image_shape(&self) -> PyResult<(usize, usize, usize)> {
        let img = self.engine()?.bundle().manifest().image;
        Ok((img.channels, img.height, img.width))
    }

    /// The two domains' names, `(a, b)`.
    #[getter]
    fn domains(&self) -> PyResult<(String, String)> {
        let engine = self.engine()?;
        let m = engine.bundle().manifest();
        Ok((m.domain_name(runtime::NetKey::A).to_string(), m.domain_name(runtime::NetKey::B).to_string()))
    }

    /// Translates `x` ([count, C, H, W] or one [C, H, W], model space) from domain `source`
    /// ("a", "b" or a domain name) to the other with `method` "ot-ald", "ddib" or "neural-ot".
    /// `t` (encode time), `steps` (K), `eta` (DDIM η) and `tau` (soft-map temperature) default
    /// to the bundle's; `seed` is the decode's noise (η > 0). Returns float32 images of x's shape,
    /// or `(images, report)` with `report=True`. `x` is read in place when it is an aligned,
    /// C-contiguous float32 array: do not change it from another thread during the call.
    #[pyo3(signature = (x, *, method = None, source = None, t = None, steps = None, eta = None, tau = None, seed = None, report = false))]
    #[allow(clippy::too_many_arguments)]
    fn translate<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        method: Option<&str>,
        source: Option<&str>,
        t: Option<usize>,
        steps: Option<usize>,
        eta: Option<f32>,
        tau: Option<f32>,
        seed: Option<u64>,
        report: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let base = TranslateOptions::named(engine.bundle().manifest(), method, source).or_raise(py)?;
        let opts = TranslateOptions { t, steps, eta, tau: tau.or(base.tau), seed: seed.unwrap_or(base.seed), ..base };
        let input = images(py, x, engine.bundle().manifest().image)?;
        let shape = input.shape().to_vec();
        let data = input.as_slice().map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
        let mut r = py.detach(|| engine.translate(data, &opts, &Silent)).or_raise(py)?;
        let out = to_numpy(py, std::mem::take(&mut r.images), &shape)?;
        finish(py, out, report.then_some(&r))
    }

    /// Generates `count` images of domain `domain` from noise with `method` "dpm-ot" or
    /// "prior-ot" in `nfe` network evaluations, DDIM `eta`, `tau` the soft-map temperature and
    /// `seed` the noise's; what is not given takes the CLI's defaults (DPM-OT into domain b,
    /// 10 evaluations, η = 0, the hard map, seed 0). Returns [count, C, H, W] float32, or
    /// `(images, report)` with `report=True`.
    #[pyo3(signature = (count, *, method = None, domain = None, nfe = None, eta = None, tau = None, seed = None, report = false))]
    #[allow(clippy::too_many_arguments)]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        method: Option<&str>,
        domain: Option<&str>,
        nfe: Option<usize>,
        eta: Option<f32>,
        tau: Option<f32>,
        seed: Option<u64>,
        report: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let base = GenerateOptions::named(engine.bundle().manifest(), method, domain).or_raise(py)?;
        let opts = GenerateOptions {
            count,
            nfe: nfe.unwrap_or(base.nfe),
            eta: eta.unwrap_or(base.eta),
            tau: tau.or(base.tau),
            seed: seed.unwrap_or(base.seed),
            ..base
        };
        let mut g = py.detach(|| engine.generate(&opts, &Silent)).or_raise(py)?;
        let img = engine.bundle().manifest().image;
        let out = to_numpy(py, std::mem::take(&mut g.images), &img.shape(count))?;
        finish(py, out, report.then_some(&g))
    }

    /// Reads images as `brenier translate --input` does: one PNG or JPEG, a folder of them, or a
    /// .npy [N, C, H, W] in model space, at the bundle's size (other sizes refused, or with
    /// `resize=True` cropped to its aspect ratio and resampled). Returns [N, C, H, W] float32.
    #[pyo3(signature = (path, *, resize = false))]
    fn read_images<'py>(&self, py: Python<'py>, path: PathBuf, resize: bool) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let engine = self.engine()?;
        let m = engine.bundle().manifest();
        let opts = ReadOptions { fit: if resize { Fit::CropResize } else { Fit::Exact }, ..ReadOptions::default() };
        let batch = py.detach(|| read_batch(&path, m.image, m.normalization, opts)).or_raise(py)?;
        to_numpy(py, batch.data, &m.image.shape(batch.count))
    }

    /// The bundle described as `brenier inspect --json` does: sections with their checksum
    /// status, the manifest, the calibration record.
    fn inspect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let value = py.detach(|| engine.bundle().report());
        report(py, &value)
    }

    /// Releases the bundle (its mapping and prepared networks) once calls in flight finish.
    /// Closing twice is harmless.
    fn close(&self) {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        let open = self.engine.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        format!("<brenier.Bundle {}{}>", self.origin, if open { "" } else { " (closed)" })
    }
}

/// The images alone, or `(images, report)`.
fn finish<'py>(
    py: Python<'py>,
    images: Bound<'py, PyArrayDyn<f32>>,
    run: Option<&impl serde::Serialize>,
) -> PyResult<Bound<'py, PyAny>> {
    match run {
        None => Ok(images.into_any()),
        Some(run) => {
            let d = report(py, run)?;
            Ok((images, d).into_pyobject(py)?.into_any())
        }
    }
}
