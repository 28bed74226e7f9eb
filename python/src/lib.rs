//! `brenier._native`, the extension module of the Python package `brenier` (../brenier): one
//! class, `Bundle`, over the runtime's `Engine`. Thin: every translation and generation is the
//! runtime's, names are parsed by the runtime, so the bits are the CLI's for the same images in
//! one batch (its default).
//!
//! Network work runs with the GIL released; array inputs are read in place when they are
//! aligned, C-contiguous float32, and results are handed to NumPy without a copy.

use pyo3::prelude::*;

mod arrays;
mod bundle;
mod errors;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<bundle::Bundle>()?;
    m.add_function(wrap_pyfunction!(errors::_error_kinds, m)?)?;
    Ok(())
}
