"""The GPU chain agrees end to end: the endpoint's AMI (its NVIDIA driver's CUDA), the image's CUDA
base and the pinned onnxruntime-gpu wheel's CUDA. A mismatch anywhere makes onnxruntime's CUDA
provider fail to start, and the models run on the CPU at GPU prices."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from alphacut_dev.template import ROOT, load_sam

# AWS's documented InferenceAmiVersion values: the CUDA version each one's NVIDIA driver runs
# (the SageMaker API reference, ProductionVariant.InferenceAmiVersion)
AMI_CUDA = {
    "al2-ami-sagemaker-inference-gpu-2": (12, 2),  # driver 535
    "al2-ami-sagemaker-inference-gpu-2-1": (12, 2),  # driver 535
    "al2-ami-sagemaker-inference-gpu-3-1": (12, 4),  # driver 550
    "al2023-ami-sagemaker-inference-gpu-4-1": (13, 0),  # driver 580
}


def chain_faults(ami: str, image_cuda: tuple[int, int], ort_version: str) -> list[str]:
    """What breaks the chain AMI -> image CUDA -> onnxruntime-gpu's CUDA; empty when it holds."""
    if ami not in AMI_CUDA:
        return [f"InferenceAmiVersion {ami} is not one AWS documents: {sorted(AMI_CUDA)}"]
    faults = []
    if image_cuda > AMI_CUDA[ami]:
        faults.append(f"image CUDA {image_cuda} needs a newer driver than {ami} has ({AMI_CUDA[ami]})")
    if wheel_cuda_major(ort_version) != image_cuda[0]:
        faults.append(f"onnxruntime-gpu {ort_version} is built for another CUDA major than {image_cuda}")
    return faults


def dockerfile_chain(text: str) -> tuple[tuple[int, int], str]:
    """(the CUDA version of the image's base, the onnxruntime-gpu version it installs)."""
    base = re.search(r"^FROM nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn", text, re.MULTILINE)
    pin = re.search(r"^ARG ONNXRUNTIME_GPU_VERSION=(\S+)", text, re.MULTILINE)
    assert base and pin, "sagemaker/Dockerfile names its CUDA base and ARG ONNXRUNTIME_GPU_VERSION"
    return (int(base.group(1)), int(base.group(2))), pin.group(1)


def wheel_cuda_major(version: str) -> int:
    """The CUDA major onnxruntime-gpu==version is built for, from its metadata on the package
    registry (pip reads the metadata alone, not the 300 MB wheel)."""
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
         "--report", "-", f"onnxruntime-gpu=={version}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    requires = json.loads(report.stdout)["install"][0]["metadata"].get("requires_dist", [])
    runtime = [r for r in requires if r.startswith("nvidia-cuda-runtime")]
    match = re.search(r"~=\s*(\d+)\.", runtime[0]) if runtime else None
    assert match, f"onnxruntime-gpu {version} names no nvidia-cuda-runtime requirement: {requires}"
    return int(match.group(1))


def endpoint_ami() -> str:
    return load_sam()["Mappings"]["GpuChain"]["Endpoint"]["InferenceAmiVersion"]


def test_the_dockerfile_the_wheel_and_the_endpoint_ami_agree_on_cuda():
    image_cuda, ort_version = dockerfile_chain((ROOT / "sagemaker" / "Dockerfile").read_text())
    assert chain_faults(endpoint_ami(), image_cuda, ort_version) == []


def test_the_gpu_image_runs_the_lambda_layers_onnxruntime():
    _, ort_version = dockerfile_chain((ROOT / "sagemaker" / "Dockerfile").read_text())
    layer = (ROOT / "layers" / "core" / "requirements.txt").read_text()
    assert f"onnxruntime=={ort_version}\n" in layer


@pytest.mark.parametrize(
    "ami, dockerfile, fault",
    [
        # CUDA 12.8 base with onnxruntime-gpu 1.31.1 (built for CUDA 13): what the image had once
        ("al2023-ami-sagemaker-inference-gpu-4-1", "12.8.1", "another CUDA major"),
        # the CUDA 13 image on the AMI before (driver 550 runs CUDA 12.4 at most)
        ("al2-ami-sagemaker-inference-gpu-3-1", "13.0.1", "newer driver"),
        # the CUDA 12.4 image with the CUDA 12 wheel on the new AMI is fine; with 1.31.1 it is not
        ("al2023-ami-sagemaker-inference-gpu-4-1", "12.4.1", "another CUDA major"),
        ("al2-ami-sagemaker-inference-gpu-4", "13.0.1", "not one AWS documents"),
    ],
)
def test_the_check_refuses_mismatched_links(ami, dockerfile, fault):
    image_cuda, ort_version = dockerfile_chain(
        f"FROM nvidia/cuda:{dockerfile}-cudnn-runtime-ubuntu24.04\nARG ONNXRUNTIME_GPU_VERSION=1.31.1\n"
    )
    faults = chain_faults(ami, image_cuda, ort_version)
    assert len(faults) == 1 and fault in faults[0], faults


def test_the_check_accepts_the_cuda_12_chain_it_replaced():
    image_cuda, ort_version = dockerfile_chain(
        "FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\nARG ONNXRUNTIME_GPU_VERSION=1.26.0\n"
    )
    assert chain_faults("al2-ami-sagemaker-inference-gpu-3-1", image_cuda, ort_version) == []


def test_a_gpu_instance_type_gets_the_ami_and_must_run_on_cuda():
    from alphacut_dev.local.intrinsics import Resolver

    sam = load_sam()
    for instance, needs_gpu in (("ml.g4dn.xlarge", True), ("ml.g6.2xlarge", True), ("ml.c7i.xlarge", False)):
        refs = {"SageMakerInstanceType": instance, "SegmentBackend": "sagemaker", "AWS::NoValue": None}
        resolver = Resolver(refs, {}, sam["Conditions"], sam["Mappings"])
        assert resolver.condition("GpuEndpoint") is needs_gpu, instance
        variant = sam["Resources"]["SegmentEndpointConfig"]["Properties"]["ProductionVariants"][0]
        assert resolver.resolve(variant["InferenceAmiVersion"]) == (endpoint_ami() if needs_gpu else None)
        environment = sam["Resources"]["SegmentModel"]["Properties"]["PrimaryContainer"]["Environment"]
        assert resolver.resolve(environment["ALPHACUT_REQUIRE_GPU"]) == ("1" if needs_gpu else "0")


@pytest.mark.parametrize("instance", load_sam()["Parameters"]["SageMakerInstanceType"]["AllowedValues"])
def test_every_allowed_instance_type_is_in_the_mapping(instance):
    assert instance in load_sam()["Mappings"]["EndpointInstances"]
