"""can_run_on_dla, dla_check, plan and the exports against the CLI's output."""
import json

import pytest
import tandem

from conftest import CLS, CLS_SHAPE, DET, DET_SHAPE, need, shape_arg

MODELS = [pytest.param(DET, DET_SHAPE, id="det"), pytest.param(CLS, CLS_SHAPE, id="cls")]


@pytest.mark.parametrize("model,shape", MODELS)
def test_can_run_on_dla_equals_cli_json(cli, model, shape):
    need(model)
    full_dla, chunks = tandem.can_run_on_dla(str(model), shapes=[shape])
    j = json.loads(cli("dla-check", model, "--shape", shape_arg(shape), "--json").stdout)
    assert isinstance(full_dla, bool) and full_dla == j["full_dla"]
    # trtutils' shape: [(layers, start, end, on_dla)], contiguous layer index ranges.
    assert [(start, end, len(layers), "DLA" if on_dla else "GPU") for layers, start, end, on_dla in chunks] == [
        (c["start"], c["end"], c["size"], c["device"]) for c in j["chunks"]
    ]
    for layers, start, end, on_dla in chunks:
        assert [layer.index for layer in layers] == list(range(start, end + 1))
        for layer in layers:
            row = j["layers"][layer.index]
            assert (layer.name, layer.type, layer.onnx_node, layer.dla, layer.reason) == (
                row["name"], row["trt_type"], row["onnx_node"], row["dla"], row["reason"])
            assert layer.dla == on_dla
    assert sum(len(c[0]) for c in chunks) == j["total_layers"]


@pytest.mark.parametrize("model,shape", MODELS)
def test_dla_check_dict_equals_cli_json(cli, model, shape):
    need(model)
    out = cli("dla-check", model, "--shape", shape_arg(shape), "--json", "--target", "xavier", "--precision", "fp16")
    assert tandem.dla_check(str(model), shapes=[shape], target="xavier", precision="fp16") == json.loads(out.stdout)
    assert tandem.dla_check(str(model), shapes=[shape], format="json") == \
        cli("dla-check", model, "--shape", shape_arg(shape), "--json").stdout


def test_shapes_spellings_agree():
    need(CLS)
    name, dims = CLS_SHAPE
    want = tandem.can_run_on_dla(CLS, shapes=[(name, dims)])  # os.PathLike works too
    for shapes in ({name: list(dims)}, [shape_arg(CLS_SHAPE)], shape_arg(CLS_SHAPE)):
        got = tandem.can_run_on_dla(str(CLS), shapes=shapes)
        assert got[0] == want[0]
        assert [(c[1], c[2], c[3], [l.name for l in c[0]]) for c in got[1]] == \
               [(c[1], c[2], c[3], [l.name for l in c[0]]) for c in want[1]]


@pytest.mark.parametrize("model,shape", MODELS)
def test_plan_equals_cli_json(cli, model, shape):
    need(model)
    args = ["--max-chunks", "0", "--min-layers", "3"]
    want = json.loads(cli("plan", model, "--shape", shape_arg(shape), "--json", *args).stdout)
    assert tandem.plan(str(model), shapes=[shape], max_chunks=0, min_layers=3) == want
    graph = json.loads(cli("plan", model, "--shape", shape_arg(shape), "--json", "--strategy", "graph").stdout)
    assert tandem.plan(str(model), shapes=[shape], strategy="graph") == graph


def test_plan_layer_overrides_by_index_and_name(cli):
    need(CLS)
    first = tandem.can_run_on_dla(str(CLS), shapes=[CLS_SHAPE])[1][0][0][0]
    by_name = tandem.plan(str(CLS), shapes=[CLS_SHAPE], layer_device=[(first.name, "gpu")])
    by_index = tandem.plan(str(CLS), shapes=[CLS_SHAPE], layer_device=[(first.index, "GPU"), (3, None)])
    want = json.loads(cli("plan", CLS, "--shape", shape_arg(CLS_SHAPE), "--json", "--layer-device",
                          f"{first.name}:gpu").stdout)
    assert by_name == by_index == want


def test_export_trtexec_equals_cli(cli, tmp_path):
    need(CLS)
    want = cli("export", "trtexec", CLS, "--shape", shape_arg(CLS_SHAPE), "--calib", "cls.cache",
               "--trt-version", "10", "--max-chunks", "0").stdout
    out = tmp_path / "build.sh"
    got = tandem.export_trtexec(str(CLS), shapes=[CLS_SHAPE], calib="cls.cache", trt_version="10", max_chunks=0,
                                output=str(out))
    assert got == want
    assert out.read_text() == "#!/bin/sh\n" + want


def test_export_dot_equals_cli(cli, tmp_path):
    need(CLS)
    cli("export", "dot", CLS, "--shape", shape_arg(CLS_SHAPE), "-o", tmp_path / "cli.dot")
    assert tandem.export_dot(str(CLS), shapes=[CLS_SHAPE]) == (tmp_path / "cli.dot").read_text()


def test_errors_carry_the_cli_message(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    for args, call in [
        ((bad,), lambda: tandem.can_run_on_dla(str(bad))),
        ((tmp_path / "missing.onnx",), lambda: tandem.can_run_on_dla(str(tmp_path / "missing.onnx"))),
    ]:
        p = cli("dla-check", *args, check=False)
        assert p.returncode == 2
        with pytest.raises(tandem.Error) as e:
            call()
        assert isinstance(e.value, RuntimeError)
        assert e.value.exit_code == 2
        assert p.stderr.strip() == f"tandem: error: {e.value}"
    need(DET)
    p = cli("dla-check", DET, check=False)  # the dynamic input needs a shape
    with pytest.raises(tandem.Error) as e:
        tandem.can_run_on_dla(str(DET))
    assert p.stderr.strip() == f"tandem: error: {e.value}"
    with pytest.raises(tandem.Error, match="target"):
        tandem.can_run_on_dla(str(DET), shapes=[DET_SHAPE], target="thor")
