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
}


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
    ami = endpoint_ami()
    assert ami in AMI_CUDA, f"InferenceAmiVersion {ami} is not one AWS documents: {sorted(AMI_CUDA)}"
    assert image_cuda <= AMI_CUDA[ami], f"image CUDA {image_cuda} needs a newer driver than {ami} has"
    assert wheel_cuda_major(ort_version) == image_cuda[0], (
        f"onnxruntime-gpu {ort_version} is built for another CUDA major than the image's {image_cuda}"
    )


def test_the_check_refuses_the_chain_that_ran_on_the_cpu():
    # CUDA 12.8 base with onnxruntime-gpu 1.31.1 (built for CUDA 13): what the image had before
    image_cuda, ort_version = dockerfile_chain(
        "FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04\nARG ONNXRUNTIME_GPU_VERSION=1.31.1\n"
    )
    assert wheel_cuda_major(ort_version) == 13 != image_cuda[0]


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
