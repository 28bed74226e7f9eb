"""Bad input raises the exception of its kind (also the built-in a Python program would catch),
with the runtime's message naming the problem, and leaves nothing half done."""

import numpy as np
import pytest

import brenier
from brenier import errors
from conftest import DEMO


def test_a_missing_file_is_a_file_error_naming_it(tmp_path):
    path = tmp_path / "nowhere.brn"
    with pytest.raises(errors.FileError) as e:
        brenier.Bundle(path)
    assert isinstance(e.value, OSError) and str(path) in str(e.value)


@pytest.mark.parametrize("cut", [0, 16, 1000, -1])
def test_truncated_bytes_are_a_bundle_error(cut):
    data = DEMO.read_bytes()
    with pytest.raises(errors.BundleError, match="truncated|not a brenier bundle|too short|section"):
        brenier.Bundle.from_bytes(data[:cut] if cut >= 0 else data[: len(data) // 2])


def test_a_flipped_byte_in_a_network_is_a_bundle_error_on_use(demo, inputs, tmp_path):
    data = bytearray(DEMO.read_bytes())
    net_a = next(s for s in demo.inspect()["sections"] if s["name"] == "net.a")
    data[net_a["offset"] + net_a["bytes"] // 2] ^= 0xFF
    path = tmp_path / "damaged.brn"
    path.write_bytes(bytes(data))
    with pytest.raises(errors.BundleError, match="net.a"):
        brenier.Bundle(path).translate(inputs[:1], steps=1)


def test_wrong_image_shape_is_a_shape_error(demo):
    c, h, w = demo.image_shape
    for shape in [(2, c, h + 1, w), (c, h), (0, c, h, w), (1, 1, c, h, w)]:
        with pytest.raises(errors.ShapeError) as e:
            demo.translate(np.zeros(shape, np.float32))
        assert isinstance(e.value, ValueError) and "[count, C, H, W]" in str(e.value)


def test_nan_input_is_a_non_finite_error(demo, inputs):
    x = inputs[:2].copy()
    x[1, 0, 3, 4] = np.nan
    with pytest.raises(errors.NonFiniteError, match="NaN"):
        demo.translate(x, steps=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "diffusion"}, "diffusion"),
        ({"source": "cats"}, "cats"),
        ({"steps": 0}, "steps"),
        ({"method": "ddib", "t": 5000}, "t = 5000 must be below"),
        ({"tau": 0.5, "method": "ddib"}, "tau"),
    ],
)
def test_bad_translate_arguments_are_invalid_argument_errors(demo, inputs, kwargs, match):
    with pytest.raises(errors.InvalidArgumentError, match=match) as e:
        demo.translate(inputs[:1], **kwargs)
    assert isinstance(e.value, ValueError)


def test_a_map_the_bundle_lacks_is_a_missing_error(demo, inputs):
    with pytest.raises(errors.MissingError, match="no neural OT map a->b at t = 100") as e:
        demo.translate(inputs[:1], method="neural-ot", t=100, steps=1)
    assert isinstance(e.value, LookupError)
    with pytest.raises(errors.InvalidArgumentError, match="t = 500, 100, 250, 750, 999"):
        demo.translate(inputs[:1], t=123, steps=1)


def test_bad_open_and_generate_arguments(demo):
    with pytest.raises(errors.InvalidArgumentError, match="gpu"):
        brenier.Bundle(DEMO, backend="gpu")
    with pytest.raises(errors.InvalidArgumentError, match="f8"):
        brenier.Bundle(DEMO, precision="f8")
    with pytest.raises(errors.InvalidArgumentError, match="count must be at least 1"):
        demo.generate(0)
    with pytest.raises(errors.InvalidArgumentError, match="more than memory can address"):
        demo.generate(2**62)
    with pytest.raises(errors.InvalidArgumentError, match="zebra"):
        demo.generate(1, method="zebra")


def test_cuda_where_it_cannot_start_says_why():
    # The wheel CI builds has no cuda feature; one built with it on a machine without a GPU
    # fails to probe the driver; both are CudaError.
    try:
        b = brenier.Bundle(DEMO, backend="cuda")
    except errors.CudaError as e:
        assert "CUDA" in str(e)
        return
    b.close()
    pytest.skip("this machine has a CUDA device: the backend opened")


def test_a_closed_bundle_refuses_calls(inputs):
    b = brenier.Bundle(DEMO)
    b.close()
    b.close()
    assert "closed" in repr(b)
    with pytest.raises(ValueError, match="closed"):
        b.translate(inputs[:1])


def test_every_runtime_error_kind_has_its_class():
    from brenier import _native

    assert sorted(errors.BY_KIND) == sorted(_native._error_kinds())
    builtin = {"invalid_argument": ValueError, "io": OSError, "shape": ValueError, "non_finite": ValueError,
               "missing": LookupError, "memory": MemoryError}
    for kind, cls in errors.BY_KIND.items():
        assert issubclass(cls, errors.BrenierError), kind
        assert issubclass(cls, builtin.get(kind, errors.BrenierError)), kind
