//! Images between NumPy and the runtime: `[count, C, H, W]` (or one `[C, H, W]` image) float32
//! in model space. Read in place when the array is float32 and C-contiguous; anything else
//! (another dtype, a list, a strided or Fortran-ordered view) is converted once. Results move
//! into NumPy without a copy.

use std::borrow::Cow;

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{AllowTypeChange, IntoPyArray, PyArrayDyn, PyArrayLikeDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use runtime::bundle::ImageSpec;
use runtime::Error;

/// What `translate` accepts: any array-like NumPy can turn into float32.
pub type ImagesIn<'py> = PyArrayLikeDyn<'py, f32, AllowTypeChange>;

/// Images read from an array: the floats in C order and the shape to give the result.
pub struct Images<'a> {
    pub data: Cow<'a, [f32]>,
    pub shape: Vec<usize>,
}

/// Checks `x` against the bundle's image shape and takes its floats, in place when it is
/// C-contiguous. NumPy calls an F-ordered array contiguous too, and its memory order is not the
/// C order the runtime reads, so only C-contiguity is taken as is.
pub fn images<'a>(x: &'a ImagesIn<'_>, image: ImageSpec) -> Result<Images<'a>, Error> {
    let shape = x.shape().to_vec();
    let per = [image.channels, image.height, image.width];
    let fits = match shape.len() {
        3 => shape[..] == per,
        4 => shape[1..] == per && shape[0] > 0,
        _ => false,
    };
    if !fits {
        return Err(Error::Shape {
            what: "the input array".into(),
            expected: vec![image.channels, image.height, image.width],
            found: shape,
            hint: " as [count, C, H, W] (count ≥ 1) or one [C, H, W] image".into(),
        });
    }
    let data = match x.as_slice() {
        Ok(s) if x.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(x.as_array().iter().copied().collect()),
    };
    Ok(Images { data, shape })
}

/// `data` as a NumPy array of `shape`, owning the vector (no copy).
pub fn to_numpy<'py>(py: Python<'py>, data: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let array = ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("brenier returned images that do not fill {shape:?}: {e}"))
    })?;
    Ok(array.into_pyarray(py))
}
