//! Runtime errors raised as the exception classes of `brenier.errors`: the error's kind (the
//! runtime's classification, which the C API's status codes follow too) is looked up by name in
//! that module's one table, `BY_KIND`.

use pyo3::prelude::*;
use pyo3::types::PyType;
use runtime::{Error, ErrorKind};

/// The Python exception for `e`, its text the runtime's message with its causes.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let message = e.message_with_causes();
    let class = py
        .import("brenier.errors")
        .and_then(|m| m.getattr("BY_KIND"))
        .and_then(|table| table.get_item(e.kind().as_str()))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(class) => PyErr::from_type(class, message),
        // The package's own table is missing or damaged: say so with the original message.
        Err(lookup) => pyo3::exceptions::PyImportError::new_err(format!(
            "{message} (and brenier.errors has no class for kind `{}`: {lookup})",
            e.kind().as_str()
        )),
    }
}

/// The runtime's error kinds by name: what `brenier.errors.BY_KIND` must cover (its tests
/// compare the two).
#[pyfunction]
pub fn _error_kinds() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.as_str()).collect()
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
