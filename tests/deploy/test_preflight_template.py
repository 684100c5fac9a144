"""``alphacut deploy check`` against template.yaml read on its own: every reservation the template
makes with ``ReserveAsyncConcurrency=true`` and every queue mapping it creates is counted, on the CPU
path and with SegmentBackend=sagemaker (the check reads the translated template; this reads the SAM
source, so a function or mapping added to one is seen by both)."""

from __future__ import annotations

from alphacut.aws.preflight import StackShape
from alphacut_dev.template import load_sam, translate_template

SAM = load_sam()
DEFAULTS = {name: str(spec.get("Default", "")) for name, spec in SAM["Parameters"].items()}
SAGEMAKER = {"SegmentBackend": "sagemaker", "SageMakerImageUri": "1.dkr.ecr.us-east-1.amazonaws.com/a:1"}


def reserved_in_source(sagemaker: bool) -> dict[str, int]:
    """Each function's ``Fn::If [ReserveConcurrency, n, NoValue]`` true branch, at the defaults."""
    found = {}
    for name, resource in SAM["Resources"].items():
        reservation = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        if reservation is None or (resource.get("Condition") == "UseSageMaker" and not sagemaker):
            continue
        condition, amount, _ = reservation["Fn::If"]
        assert condition == "ReserveConcurrency", name
        found[name] = int(DEFAULTS[amount["Ref"]] if isinstance(amount, dict) else amount)
    return found


def mappings_in_source(sagemaker: bool) -> list[str]:
    return [
        name
        for name, resource in SAM["Resources"].items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and (resource.get("Condition") != "UseSageMaker" or sagemaker)
    ]


def test_the_deploy_check_counts_every_reservation_and_queue_mapping_the_template_makes():
    for sagemaker, parameters in ((False, {}), (True, SAGEMAKER)):
        shape = StackShape.from_parameters(parameters, translate_template(parameters=parameters))
        assert shape.needs.reserved == reserved_in_source(sagemaker)
        assert sorted(shape.needs.mappings) == sorted(mappings_in_source(sagemaker))
    cpu = StackShape.from_parameters({}, translate_template())
    small = {name: n for name, n in cpu.needs.reserved.items() if name != "SegmentFunction"}
    assert small["LowBalanceFunction"] == 2 and sum(small.values()) == 125
    assert cpu.reservations(reserve=True) == 225 and len(cpu.needs.mappings) == 7 and cpu.queue_peak == 14
    gpu = StackShape.from_parameters(SAGEMAKER, translate_template(parameters=SAGEMAKER))
    assert (
        gpu.reservations(reserve=True) == 240 and len(gpu.needs.mappings) == 8
    )  # + Compose 10, InferenceDone 5


def test_the_reservation_parameter_says_the_account_limit_the_check_counts():
    cpu = StackShape.from_parameters({}, translate_template())
    needed = 100 + cpu.reservations(reserve=True)
    small = cpu.reservations(reserve=True) - int(DEFAULTS["SegmentConcurrency"])
    description = SAM["Parameters"]["ReserveAsyncConcurrency"]["Description"]
    assert f"SegmentConcurrency + {small} in all" in description
    assert f"({needed} with the defaults)" in description
