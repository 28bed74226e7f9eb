//! Images between NumPy and the runtime: `[count, C, H, W]` (or one `[C, H, W]` image) float32
//! in model space. An aligned, C-contiguous float32 array is read in place; anything else
//! (another dtype, a list, a strided, Fortran-ordered or misaligned view) is converted once by
//! NumPy. Results move into NumPy without a copy.
//!
//! Read in place means read with the GIL released: like every zero-copy binding, it relies on
//! the caller not writing to (or resizing) that array from another thread during the call.

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use runtime::bundle::ImageSpec;
use runtime::Error;

use crate::errors::to_py;

/// `x` as an aligned, C-contiguous float32 array (itself when it is one: `numpy.require` copies
/// only what does not meet the requirements), checked against the bundle's image shape.
/// NumPy calls an F-ordered array contiguous too, which is why C order is required by name.
pub fn images<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, image: ImageSpec) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float32")?)?;
    kwargs.set_item("requirements", "CA")?;
    let array = np.call_method("require", (x,), Some(&kwargs))?.cast_into::<PyArrayDyn<f32>>()?.readonly();
    let shape = array.shape().to_vec();
    let per = [image.channels, image.height, image.width];
    let fits = match shape.len() {
        3 => shape[..] == per,
        4 => shape[1..] == per && shape[0] > 0,
        _ => false,
    };
    if !fits {
        let e = Error::Shape {
            what: "the input array".into(),
            expected: per.to_vec(),
            found: shape,
            hint: " as [count, C, H, W] (count ≥ 1) or one [C, H, W] image".into(),
        };
        return Err(to_py(py, e));
    }
    Ok(array)
}

/// `data` as a NumPy array of `shape`, owning the vector (no copy).
pub fn to_numpy<'py>(py: Python<'py>, data: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let array = ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("brenier returned images that do not fill {shape:?}: {e}"))
    })?;
    Ok(array.into_pyarray(py))
}
