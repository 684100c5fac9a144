"""``alphacut models add`` as an operator runs it (a real subprocess) on a graph with BiRefNet's
signature (1 x 3 x H x W in, ImageNet normalisation, one logits map out), here 96 x 64 and BGR:
the file is checked, added beside the built models, listed, chosen with ``--model``, and a file
that is not what its flags say is refused, naming what is wrong."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
from alphacut.errors import InvalidOption
from PIL import Image

from tests.model_graphs import BUILT, first_channel_graph, operator_copy
from tests.model_graphs import run_alphacut as run


@pytest.fixture
def models_dir(tmp_path):
    return operator_copy(tmp_path / "models")


def test_an_added_model_is_checked_listed_and_cuts_out_by_name(models_dir, tmp_path, eval_dir):
    graph = tmp_path / "tiny.onnx"
    graph.write_bytes(first_channel_graph(96, 64))
    added = run(
        models_dir, "models", "add", "tiny", graph, "--size", "96x64", "--colour", "BGR", "--licence", "MIT"
    )
    assert added.returncode == 0, added.stderr
    assert "the matte [1, 1, 64, 96]" in added.stdout and "added tiny" in added.stdout
    entry = json.loads((models_dir / "manifest.json").read_text())["models"]["tiny"]
    assert entry["added"] and entry["matting"]["values"] == "logits" and entry["matting"]["colour"] == "BGR"
    assert (models_dir / "tiny" / "tiny.onnx").read_bytes() == graph.read_bytes()
    listed = run(models_dir, "models", "list")
    assert any(line.split()[:2] == ["tiny", "96x64"] and "MIT" in line for line in listed.stdout.splitlines())

    photo = min((eval_dir / "general" / "images").iterdir())
    cut = run(models_dir, "remove", photo, "-o", tmp_path / "out", "--output", "mask", "--model", "tiny")
    assert cut.returncode == 0, cut.stderr
    mask = np.asarray(Image.open(tmp_path / "out" / f"{photo.stem}.png"))
    assert mask.shape == Image.open(photo).size[::-1] and mask.max() > 0
    again = run(models_dir, "models", "add", "tiny", graph, "--size", "96x64")
    assert again.returncode == 2 and "a model 'tiny' is there already" in again.stderr


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--size", "96x64", "--output", "3"], "there is no output 3"),
        (["--size", "96x64", "--values", "probabilities"], "not probabilities (--values logits?)"),
        (["--size", "big"], "size: must be a side"),
        (["--size", "96x64", "--mean", "0.5,0.5"], "mean: must be three numbers"),
    ],
)
def test_a_model_file_that_is_not_what_its_flags_say_is_refused_naming_why(
    models_dir, tmp_path, flags, named
):
    graph = tmp_path / "tiny.onnx"
    # logits of ImageNet-normalised pixels run from about -2.1 to 2.6: not probabilities
    graph.write_bytes(first_channel_graph(96, 64))
    refused = run(models_dir, "models", "add", "tiny", graph, *flags)
    assert refused.returncode == 2 and named in refused.stderr, refused.stderr
    assert "tiny" not in json.loads((models_dir / "manifest.json").read_text())["models"]


def test_a_file_that_is_no_onnx_model_is_refused(models_dir, tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a graph")
    refused = run(models_dir, "models", "add", "bogus", bogus, "--size", "320")
    assert refused.returncode == 2 and "does not load as an ONNX model" in refused.stderr


def test_an_added_model_measured_on_an_eval_folder_keeps_its_file_and_records_its_figures(
    models_dir, tmp_path, eval_dir
):
    graph = tmp_path / "tiny.onnx"
    graph.write_bytes(first_channel_graph(96, 64))
    folder = tmp_path / "eval" / "general"
    for sub in ("images", "gt"):
        (folder / sub).mkdir(parents=True)
    for photo in sorted((eval_dir / "general" / "images").iterdir())[:2]:
        (folder / "images" / photo.name).symlink_to(photo)
        truth = eval_dir / "general" / "gt" / f"{photo.stem}.png"
        (folder / "gt" / truth.name).symlink_to(truth)
    added = run(models_dir, "models", "add", "tiny", graph, "--size", "96x64", "--eval", tmp_path / "eval")
    assert added.returncode == 0, added.stderr
    entry = json.loads((models_dir / "manifest.json").read_text())["models"]["tiny"]
    assert (
        set(entry["figures"]) == {"general IoU", "general ghosts"}
        and 0 <= entry["figures"]["general IoU"] <= 1
    )
    assert (models_dir / "tiny" / "tiny.onnx").read_bytes() == graph.read_bytes()


def test_a_gpu_only_model_goes_to_the_endpoints_model_data_and_packs_as_sagemaker_reads_it(
    models_dir, tmp_path, eval_dir
):
    graph, data = tmp_path / "tiny.onnx", tmp_path / "model-data"
    graph.write_bytes(first_channel_graph(96, 64))
    added = run(
        models_dir, "models", "add", "big", graph, "--size", "96x64", "--gpu-only", "--model-data", data
    )
    assert added.returncode == 0, added.stderr
    assert "goes to the GPU endpoint's model data" in added.stdout
    layer = json.loads((models_dir / "manifest.json").read_text())["models"]["big"]
    assert layer["matting"]["runs_on"] == ["gpu"] and layer["place"] == "model data"
    assert (
        not (models_dir / "big").exists() and (data / "big" / "big.onnx").read_bytes() == graph.read_bytes()
    )
    assert json.loads((data / "manifest.json").read_text())["models"]["big"] == layer
    listed = run(models_dir, "models", "list")
    assert any(line.split()[:3] == ["big", "96x64", "gpu"] for line in listed.stdout.splitlines())

    packed = run(models_dir, "models", "pack", "-o", tmp_path / "model.tar.gz", "--model-data", data)
    assert packed.returncode == 0 and "GpuModelDataUrl=s3://" in packed.stdout
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["big", "big/big.onnx", "manifest.json"]
    # this machine runs any model it has: the CLI cuts out with the GPU-only one
    photo = min((eval_dir / "general" / "images").iterdir())
    env = {"ALPHACUT_MODEL_DATA_DIR": str(data)}
    cut = run(models_dir, "remove", photo, "-o", tmp_path / "out", "--model", "big", env=env)
    assert cut.returncode == 0, cut.stderr


def test_a_model_too_large_for_lambda_is_refused_there_and_taken_for_the_gpu(
    models_dir, tmp_path, monkeypatch
):
    from alphacut.models import intake
    from alphacut.models.registry import MattingSpec

    graph = tmp_path / "tiny.onnx"
    graph.write_bytes(first_channel_graph(96, 64))
    monkeypatch.setattr(intake, "MODELS_LAYER_ROOM", intake.layer_bytes(models_dir) + 100)
    spec = MattingSpec("big", "big.onnx", 96, 64, (0.5,) * 3, (0.5,) * 3, values="logits")
    assert not intake.fits_lambda(models_dir, graph, "big")
    with pytest.raises(InvalidOption, match="more than the .* MB Lambda leaves it") as refused:
        intake.add_model(models_dir, graph, spec, model_data_dir=tmp_path / "data")
    assert refused.value.field == "file" and refused.value.limit == intake.MODELS_LAYER_ROOM
    entry = intake.add_model(models_dir, graph, intake.gpu_only(spec), model_data_dir=tmp_path / "data")
    assert entry["place"] == "model data" and (tmp_path / "data" / "big" / "big.onnx").exists()


def test_u2netp_added_by_the_command_as_rembg_runs_it_makes_the_built_entrys_matte(
    models_dir, tmp_path, eval_dir
):
    """A real model through ``models add``: u2netp's file with rembg's conventions (320², LANCZOS,
    ImageNet mean/std, probabilities stretched min to max) cuts out as the registry's u2netp."""
    source = BUILT / "u2netp" / "u2netp.onnx"
    flags = ["--size", "320", "--resize", "lanczos", "--values", "probabilities", "--rescale", "minmax"]
    added = run(models_dir, "models", "add", "mine", source, *flags, "--licence", "MIT")
    assert added.returncode == 0, added.stderr
    photo = min((eval_dir / "general" / "images").iterdir())
    masks = []
    for name in ("u2netp", "mine"):
        out = tmp_path / name
        cut = run(models_dir, "remove", photo, "-o", out, "--output", "mask", "--model", name)
        assert cut.returncode == 0, cut.stderr
        masks.append(np.asarray(Image.open(out / f"{photo.stem}.png")))
    assert masks[0].max() > 0 and np.array_equal(masks[0], masks[1])


def test_an_added_model_whose_file_changed_or_points_outside_its_folder_is_not_loaded(models_dir, tmp_path):
    from alphacut.errors import ModelUnavailable
    from alphacut.models import ModelStore

    graph = tmp_path / "tiny.onnx"
    graph.write_bytes(first_channel_graph(96, 64))
    assert run(models_dir, "models", "add", "tiny", graph, "--size", "96x64").returncode == 0
    assert ModelStore(models_dir).matting("tiny") is not None  # as added: loads
    (models_dir / "tiny" / "tiny.onnx").write_bytes(first_channel_graph(64, 96))  # swapped since
    with pytest.raises(ModelUnavailable, match="not the file the manifest recorded"):
        ModelStore(models_dir).matting("tiny")
    manifest = json.loads((models_dir / "manifest.json").read_text())
    entry = manifest["models"]["tiny"]
    entry["matting"]["file"] = "../selfie/selfie.onnx"  # another model's file, by a path
    entry["files"] = {"../selfie/selfie.onnx": "0" * 64}
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailable, match="outside its folder"):
        ModelStore(models_dir).matting("tiny")
