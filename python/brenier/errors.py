"""The exceptions brenier raises, one per kind of failure a program can act on differently.

Every one is a ``BrenierError``; each also derives from the built-in exception a Python
program would already catch for that kind (a bad argument is a ``ValueError``, an unreadable
file an ``OSError``). The message is the runtime's own, naming the problem and what to do.
"""


class BrenierError(Exception):
    """Any failure reported by the brenier runtime."""


class InvalidArgumentError(BrenierError, ValueError):
    """A value, name or count given is not acceptable (an unknown method or domain, ...)."""


class FileError(BrenierError, OSError):
    """A file could not be read or written."""


class BundleError(BrenierError):
    """Not a bundle, truncated, corrupted, a newer format, or a damaged section or manifest."""


class ShapeError(BrenierError, ValueError):
    """Images of the wrong size for the bundle."""


class NonFiniteError(BrenierError, ValueError):
    """NaN or Inf in the input, or produced by a network."""


class MissingError(BrenierError, LookupError):
    """The bundle lacks what was asked for (an OT map at that time, a neural map)."""


class NetworkError(BrenierError):
    """A network could not be prepared or run (an unsupported operator, a tract failure)."""


class CudaError(BrenierError):
    """The CUDA backend cannot start (no driver or libraries) or failed on the device."""


class MemoryBudgetError(BrenierError, MemoryError):
    """A memory budget, or the machine's free memory, refused the run."""


# The runtime's error kinds (`ErrorKind::as_str`) to the class raised for each: the one table the
# extension looks kinds up in. tests/test_errors.py checks it covers exactly the runtime's kinds.
BY_KIND = {
    "invalid_argument": InvalidArgumentError,
    "io": FileError,
    "bundle": BundleError,
    "shape": ShapeError,
    "non_finite": NonFiniteError,
    "missing": MissingError,
    "network": NetworkError,
    "cuda": CudaError,
    "memory": MemoryBudgetError,
}

__all__ = [
    "BrenierError",
    "InvalidArgumentError",
    "FileError",
    "BundleError",
    "ShapeError",
    "NonFiniteError",
    "MissingError",
    "NetworkError",
    "CudaError",
    "MemoryBudgetError",
]
