"""brenier: translate images between two domains with OT-accelerated diffusion, and generate
from noise, from one ``.brn`` bundle.

    import brenier
    with brenier.Bundle("assets/demo.brn") as b:
        x = b.read_images("assets/demo-inputs")   # [N, C, H, W] float32 in [-1, 1]
        y = b.translate(x, method="ot-ald", steps=10)

The work runs in brenier's Rust runtime (the same library as the ``brenier`` CLI and the C API)
with the GIL released; failures raise the exceptions of ``brenier.errors``.
"""

from . import errors
from ._native import Bundle, __version__
from .errors import *  # noqa: F403 (the exception classes, listed in errors.__all__)

__all__ = ["Bundle", "__version__", *errors.__all__]
