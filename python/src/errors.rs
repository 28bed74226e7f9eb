//! Runtime errors raised as the exception classes of `brenier.errors`, chosen by the error's
//! kind (the runtime's classification, which the C API's status codes follow too).

use pyo3::prelude::*;
use pyo3::types::PyType;
use runtime::{Error, ErrorKind};

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Io => "FileError",
        ErrorKind::Bundle => "BundleError",
        ErrorKind::Shape => "ShapeError",
        ErrorKind::NonFinite => "NonFiniteError",
        ErrorKind::Missing => "MissingError",
        ErrorKind::Network => "NetworkError",
        ErrorKind::Cuda => "CudaError",
        ErrorKind::Memory => "MemoryBudgetError",
    }
}

/// The Python exception for `e`, its text the runtime's message with its causes.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = e.message_with_causes();
    let class = py
        .import("brenier.errors")
        .and_then(|m| m.getattr(class_name(e.kind())))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, message),
        // The package's own module is missing or damaged: say so with the original message.
        Err(import) => {
            pyo3::exceptions::PyImportError::new_err(format!("{message} (and brenier.errors is unusable: {import})"))
        }
    }
}

/// A runtime result as a Python one: the error raised as its exception class.
pub trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for runtime::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
