"""Translation and generation through the package give the CLI's bits (the same runtime), and
arrays in any layout read as their logical C order."""

import subprocess
import sys

import numpy as np
import pytest

import brenier
from conftest import DEMO, INPUTS, ROOT, same_bits


@pytest.fixture(scope="module")
def cli_translation(cli, tmp_path_factory):
    """The CLI's OT-ALD translation (K = 10) of the shipped demo inputs, read by the CLI."""
    out = tmp_path_factory.mktemp("cli") / "out.npy"
    cli("translate", "--bundle", DEMO, "--input", INPUTS, "--output", out, "--steps", 10, "--quiet")
    return np.load(out)


def test_translate_gives_the_clis_bits(demo, inputs, cli_translation):
    y = demo.translate(inputs, method="ot-ald", steps=10)
    assert same_bits(y, cli_translation)


def test_the_example_script_gives_the_clis_bits(cli_translation, tmp_path):
    out = tmp_path / "y.npy"
    script = ROOT / "examples" / "python" / "translate.py"
    done = subprocess.run(
        [sys.executable, script, DEMO, INPUTS, out, "10"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "8 images, 20 NFE" in done.stdout
    assert same_bits(np.load(out), cli_translation)


def test_ddib_gives_the_clis_bits(cli, demo, inputs, tmp_path):
    np.save(tmp_path / "in.npy", inputs)
    cli("translate", "--bundle", DEMO, "--method", "ddib", "--input", tmp_path / "in.npy",
        "--output", tmp_path / "out.npy", "--steps", 4, "--quiet")
    assert same_bits(demo.translate(inputs, method="ddib", steps=4), np.load(tmp_path / "out.npy"))


def test_generate_gives_the_clis_bits(cli, demo, tmp_path):
    cli("generate", "--bundle", DEMO, "--count", 3, "--seed", 7, "--output", tmp_path / "g.npy", "--quiet")
    g, run = demo.generate(3, seed=7, report=True)
    assert same_bits(g, np.load(tmp_path / "g.npy"))
    assert run["nfe"] == 10 and g.shape == (3, *demo.image_shape)


def test_report_counts_the_network_evaluations(demo, inputs):
    y, run = demo.translate(inputs[:2], steps=3, report=True)
    assert run["nfe"] == 6 and run["encode"]["nfe"] == 3 and run["decode"]["nfe"] == 3
    assert run["steps"] == 3 and y.shape == (2, *demo.image_shape)


def test_strided_fortran_misaligned_and_float64_inputs_read_in_logical_order(demo, inputs):
    want = demo.translate(inputs[:3], steps=2)
    fortran = np.asfortranarray(inputs[:3])
    assert not fortran.flags.c_contiguous
    strided = np.repeat(inputs[:3], 2, axis=0)[::2]
    assert not strided.flags.c_contiguous
    raw = bytearray(inputs[:3].nbytes + 1)
    misaligned = np.frombuffer(raw, dtype=np.float32, offset=1, count=inputs[:3].size).reshape(inputs[:3].shape)
    misaligned[...] = inputs[:3]
    assert not misaligned.flags.aligned
    for x in (fortran, strided, misaligned, inputs[:3].astype(np.float64), inputs[:3].tolist()):
        assert same_bits(demo.translate(x, steps=2), want)


def test_one_image_in_gives_one_image_out(demo, inputs):
    one = demo.translate(inputs[0], steps=2)
    assert one.shape == demo.image_shape
    assert same_bits(one, demo.translate(inputs[:1], steps=2)[0])


def test_input_is_not_modified(demo, inputs):
    x = inputs[:2].copy()
    demo.translate(x, steps=2)
    assert same_bits(x, inputs[:2])


def test_a_bundle_from_bytes_translates_as_from_the_file(demo, inputs):
    b = brenier.Bundle.from_bytes(DEMO.read_bytes())
    assert same_bits(b.translate(inputs[:2], steps=2), demo.translate(inputs[:2], steps=2))


def test_inspect_is_the_clis_json(cli, demo):
    import json

    want = json.loads(cli("inspect", DEMO, "--json"))
    del want["path"]
    got = demo.inspect()
    assert got == want
    assert tuple(got["manifest"]["image"][k] for k in ("channels", "height", "width")) == demo.image_shape
    assert all(s["checksum_ok"] for s in got["sections"])


def test_read_images_reads_a_folder_and_its_npy_alike(demo, inputs, tmp_path):
    assert inputs.dtype == np.float32 and inputs.shape == (8, *demo.image_shape)
    assert -1.0 <= inputs.min() < inputs.max() <= 1.0
    np.save(tmp_path / "x.npy", inputs)
    assert same_bits(demo.read_images(tmp_path / "x.npy"), inputs)
    assert same_bits(demo.read_images(INPUTS / "7-003.png"), inputs[3:4])
