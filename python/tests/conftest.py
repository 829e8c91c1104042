"""Shared fixtures: the tandem CLI the module is compared with, the models, a cls engine."""
import os
import pathlib
import shutil
import subprocess

import pytest

SOURCE = pathlib.Path(os.environ.get("TANDEM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
MODELS = SOURCE / ".data" / "models"
DET = MODELS / "ch_PP-OCRv4_det_infer.onnx"
CLS = MODELS / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
DET_SHAPE = ("x", (1, 3, 640, 640))
CLS_SHAPE = ("x", (1, 3, 48, 192))
CALIB_IMAGES = SOURCE / "tests" / "data" / "calib"


def shape_arg(shape):
    name, dims = shape
    return f"{name}:{'x'.join(str(d) for d in dims)}"


@pytest.fixture(scope="session")
def cli():
    """Runs the tandem CLI; returns the CompletedProcess (stdout, stderr as text)."""
    exe = os.environ.get("TANDEM_CLI") or shutil.which("tandem")
    if not exe or not os.path.exists(exe):
        pytest.skip("the tandem CLI was not found (set TANDEM_CLI)")

    def run(*args, check=True):
        p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"tandem {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
        return p

    return run


def need(model):
    if not model.exists():
        pytest.skip(f"{model} is missing (scripts/fetch-data.sh fetches it)")
    return model


@pytest.fixture(scope="session")
def cls_engine(cli, tmp_path_factory):
    """The cls model built by the CLI's build-dla (images as trtutils reads them), with its cache."""
    need(CLS)
    d = tmp_path_factory.mktemp("cls_cli")
    engine, cache = d / "cls.engine", d / "cls.cache"
    cli("build-dla", CLS, "--shape", shape_arg(CLS_SHAPE), "-o", engine, "--calibration-dir", CALIB_IMAGES,
        "--calibration-cache", cache, "--optimization-level", "0")
    return engine, cache


@pytest.fixture(scope="session")
def cls_fp16_engine(cli, tmp_path_factory):
    """The cls model built by the CLI's build --fp16 (GPU only, no calibration)."""
    need(CLS)
    engine = tmp_path_factory.mktemp("cls_fp16") / "cls_fp16.engine"
    cli("build", CLS, "--shape", shape_arg(CLS_SHAPE), "-o", engine, "--fp16", "--optimization-level", "0")
    return engine
