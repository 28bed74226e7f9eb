"""Shared fixtures: the shipped demo bundle and inputs, and the CLI built by `cargo test` (the
reference the package's bits are compared against)."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import brenier

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo.brn"
INPUTS = ROOT / "assets" / "demo-inputs"


@pytest.fixture(scope="session")
def demo():
    with brenier.Bundle(DEMO) as b:
        yield b


@pytest.fixture(scope="session")
def inputs(demo):
    return demo.read_images(INPUTS)


@pytest.fixture(scope="session")
def cli():
    """The `brenier` binary: $BRENIER_CLI, else the one `cargo test --workspace` builds."""
    path = pathlib.Path(os.environ.get("BRENIER_CLI", ROOT / "target" / "debug" / "brenier"))
    if not path.is_file():
        pytest.fail(f"no brenier CLI at {path}: build it (cargo build) or set BRENIER_CLI")

    def run(*args):
        done = subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, f"brenier {' '.join(map(str, args))} failed:\n{done.stderr}"
        return done.stdout

    return run


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))
