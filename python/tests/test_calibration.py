"""Python data batchers feed calibration through the C++ Batcher: same cache as the CLI."""
import numpy as np
import pytest
import tandem

from conftest import CALIB_IMAGES, CLS, CLS_SHAPE, need, shape_arg


class TrtutilsStyleBatcher:
    """A plain Python object with trtutils' AbstractBatcher interface (single pass, no reset)."""

    def __init__(self, batches, batch_size):
        self._batches = list(batches)
        self._batch_size = batch_size

    @property
    def num_batches(self):
        return len(self._batches)

    @property
    def batch_size(self):
        return self._batch_size

    def get_next_batch(self):
        return self._batches.pop(0) if self._batches else None


class ImagesThroughPython:
    """Images decoded by tandem.ImageBatcher (as trtutils' ImageBatcher: BGR, letterbox, last partial batch
    dropped), handed over batch by batch by Python code."""

    def __init__(self, folder, batch_size=8):
        self.inner = tandem.ImageBatcher(str(folder), (48, 192, 3), np.float32, batch_size=batch_size)
        self.batch_size = batch_size
        self.calls = 0

    def get_next_batch(self):
        self.calls += 1
        b = self.inner.get_next_batch()
        return None if b is None else np.array(b)  # a fresh NumPy array, owned by Python


def samples(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, 3, 48, 192)).astype(np.float32)


def test_python_image_batcher_build_dla_equals_cli(cls_engine, tmp_path):
    _, cli_cache = cls_engine
    cache = tmp_path / "py.cache"
    batcher = ImagesThroughPython(CALIB_IMAGES)
    r = tandem.build_dla_engine(str(CLS), str(tmp_path / "cls.engine"), batcher, 0, shapes=[CLS_SHAPE],
                                calibration_cache=str(cache), optimization_level=0)
    assert batcher.calls == 32 // 8 + 1  # four full batches, then None
    assert cache.read_bytes() == cli_cache.read_bytes()
    assert r["dla_layers"] > 0 and (tmp_path / "cls.engine").exists()


def test_iterable_of_dicts_calibrate_equals_cli(cli, tmp_path):
    need(CLS)
    data = samples(6)
    np.save(tmp_path / "x.npy", data)
    cli("calibrate", CLS, "--shape", shape_arg(CLS_SHAPE), "--calib-npy", f"x={tmp_path / 'x.npy'}", "--batch-size", "2",
        "-o", tmp_path / "cli.cache", "-q")
    py_cache = tmp_path / "py.cache"
    r = tandem.calibrate(str(CLS), ({"x": data[i:i + 3]} for i in range(0, 6, 3)), str(py_cache), shapes=[CLS_SHAPE])
    assert py_cache.read_bytes() == (tmp_path / "cli.cache").read_bytes()
    assert r["cache"] == py_cache.read_bytes() and not r["from_cache"] and r["samples"] == 6
    # A trtutils-style batcher of float64 arrays (cast to the input's float32), and the cache reuse.
    r2 = tandem.calibrate(str(CLS), TrtutilsStyleBatcher([data[:4].astype(np.float64), data[4:]], 4),
                          str(tmp_path / "py2.cache"), shapes=[CLS_SHAPE])
    assert r2["cache"] == r["cache"]
    again = tandem.calibrate(str(CLS), None, str(py_cache), shapes=[CLS_SHAPE])
    assert again["from_cache"] and again["scales"] == r["scales"]


def test_build_dla_with_a_plain_list(cli, tmp_path):
    need(CLS)
    data = samples(8, seed=1)
    np.save(tmp_path / "x.npy", data)
    cli("build-dla", CLS, "--shape", shape_arg(CLS_SHAPE), "-o", tmp_path / "cli.engine", "--calibration-npy",
        tmp_path / "x.npy", "--batch-size", "4", "--calibration-cache", tmp_path / "cli.cache",
        "--optimization-level", "0")
    tandem.build_dla_engine(str(CLS), str(tmp_path / "py.engine"), [data[:4], data[4:]], 0, shapes=[CLS_SHAPE],
                            calibration_cache=str(tmp_path / "py.cache"), optimization_level=0)
    assert (tmp_path / "py.cache").read_bytes() == (tmp_path / "cli.cache").read_bytes()


def test_batcher_errors(tmp_path):
    need(CLS)

    class Broken:
        batch_size = 1

        def get_next_batch(self):
            raise ValueError("camera unplugged")

    with pytest.raises(ValueError, match="camera unplugged"):
        tandem.calibrate(str(CLS), Broken(), shapes=[CLS_SHAPE])
    with pytest.raises(tandem.Error, match="input 'x'.*shape 2x3x48x190"):
        tandem.calibrate(str(CLS), [np.zeros((2, 3, 48, 190), np.float32)], shapes=[CLS_SHAPE])
    with pytest.raises(tandem.Error, match="no input 'y'"):
        tandem.calibrate(str(CLS), [{"x": samples(1), "y": samples(1)}], shapes=[CLS_SHAPE])
    with pytest.raises(tandem.Error, match="no batches"):
        tandem.calibrate(str(CLS), [], shapes=[CLS_SHAPE])


def test_compare_reports_every_output(tmp_path):
    need(CLS)
    r = tandem.compare(str(CLS), [samples(2)], shapes=[CLS_SHAPE])
    assert r["samples"] == 2 and r["int8_layers"] > 0
    (out,) = r["outputs"]
    assert out["shape"] == "1x2" and 0.9 < out["cosine"] <= 1.0000001 and out["top1_agreement"] >= 0.5
