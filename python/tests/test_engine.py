"""tandem.Engine against `tandem run`."""
import numpy as np
import pytest
import tandem


@pytest.fixture(params=["build-dla", "fp16"])
def engine_path(request, cls_engine, cls_fp16_engine):
    return cls_engine[0] if request.param == "build-dla" else cls_fp16_engine


def test_engine_run_equals_cli_run(cli, engine_path, tmp_path):
    x = np.random.default_rng(3).uniform(0, 1, size=(1, 3, 48, 192)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    p = cli("run", engine_path, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "out", check=False)
    if p.returncode != 0:  # the same failure, with the same line, from both
        with pytest.raises(tandem.Error) as e:
            tandem.Engine(str(engine_path)).run({"x": x})
        assert p.stderr.strip() == f"tandem: error: {e.value}"
        return
    engine = tandem.Engine(str(engine_path))
    assert engine.input_names == ["x"] and engine.input_shapes == [[1, 3, 48, 192]]
    assert engine.input_dtypes == [np.dtype(np.float32)]
    assert engine.input_spec == [("x", (1, 3, 48, 192), np.dtype(np.float32))]
    assert engine.backend == "cpu" and engine.batch_size == 1
    got = engine.run({"x": x})
    assert list(got) == engine.output_names
    for name, array in got.items():
        want = np.load(tmp_path / "out" / f"{name.replace('/', '_')}.npy")
        assert array.dtype == want.dtype and array.shape == want.shape == tuple(engine.output_shapes[0])
        assert np.array_equal(array, want)
    (first,) = engine.execute([x])
    assert np.array_equal(first, got[engine.output_names[0]])


def test_engine_benchmark_and_errors(cls_fp16_engine, tmp_path):
    engine = tandem.Engine(cls_fp16_engine, warmup=True, warmup_iterations=1)
    b = engine.benchmark(iterations=3, warmup_iterations=1)
    assert len(b["latency"]["raw"]) == 3 and b["latency"]["min"] <= b["latency"]["median"] <= b["latency"]["max"]
    with pytest.raises(tandem.Error, match="shape"):
        engine.run({"x": np.zeros((1, 3, 48, 191), np.float32)})
    with pytest.raises(tandem.Error, match="no input 'y'"):
        engine.run({"y": np.zeros((1, 3, 48, 192), np.float32)})
    with pytest.raises(tandem.Error):
        tandem.Engine(str(tmp_path / "missing.engine"))


def test_shape_value_inputs(tmp_path):
    """input_values fixes a shape-value input at import (CLI --input-value); runs may leave it out."""
    model = "/usr/share/libonnx-testdata/data/node/test_reshape_reordered_all_dims/model.onnx"
    if not __import__("os").path.exists(model):
        pytest.skip("libonnx-testdata is not installed (scripts/setup.sh installs it)")
    with pytest.raises(tandem.Error, match="--input-value shape:V"):
        tandem.build_engine(model, tmp_path / "none.engine", default_device="gpu")
    out = tmp_path / "reshape.engine"
    tandem.build_engine(model, out, default_device="gpu", input_values={"shape": [4, 2, 3]})
    engine = tandem.Engine(str(out))
    assert engine.input_names == ["data", "shape"] and engine.output_shapes == [[4, 2, 3]]
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (y,) = engine.run({"data": x}).values()  # the fixed shape is fed by the backend
    assert np.array_equal(y, x.reshape(4, 2, 3))
    (y2,) = engine.execute([x, np.array([4, 2, 3], np.int64)])
    assert np.array_equal(y2, y)
    with pytest.raises(tandem.Error, match="fixed at import to 4,2,3"):
        engine.run({"data": x, "shape": np.array([2, 3, 4], np.int64)})
    plan = tandem.can_run_on_dla(model, input_values=[("shape", (4, 2, 3))])
    assert plan is not None
