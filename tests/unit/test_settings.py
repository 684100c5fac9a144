"""Every setting comes from one typed source, read once; what is missing or wrong is named by its
environment variable."""

import pytest
from alphacut.settings import EngineSettings, ServiceSettings, SettingError, SettingMissing


def test_the_service_settings_read_each_resource_from_its_variable():
    settings = ServiceSettings.from_env(
        {
            "TASKS_TABLE": "tasks",
            "RESULTS_BUCKET": "results",
            "IMAGE_URL_ALLOWED_PORTS": "8080, 9000",
            "ALPHACUT_WARM_MODELS": "isnet,selfie",
        }
    )
    assert settings.tasks_table == "tasks" and settings.results_bucket == "results"
    assert settings.url_allowed_ports == (8080, 9000) and settings.warm_models == ("isnet", "selfie")
    assert settings.usage_table == "" and settings.result_url_ttl == 3600


def test_a_resource_a_function_needs_and_was_not_given_is_named():
    with pytest.raises(SettingMissing, match="TASKS_TABLE is not set"):
        ServiceSettings.from_env({}).require("tasks_table")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RESULT_URL_TTL", "an hour"), ("IMAGE_URL_TIMEOUT", "soon"), ("IMAGE_URL_ALLOWED_PORTS", "80,http")],
)
def test_a_wrong_service_value_is_named_by_its_variable(variable, value):
    with pytest.raises(SettingError, match=variable):
        ServiceSettings.from_env({variable: value})


@pytest.mark.parametrize(
    ("variable", "value"), [("ALPHACUT_MAX_BYTES", "15MB"), ("ALPHACUT_MEMORY_ARENA", "off")]
)
def test_a_wrong_engine_value_is_named_by_its_variable(variable, value):
    with pytest.raises(SettingError, match=variable):
        EngineSettings.from_env({variable: value})


def test_the_memory_arena_is_on_unless_turned_off():
    assert EngineSettings.from_env({}).memory_arena is True
    assert EngineSettings.from_env({"ALPHACUT_MEMORY_ARENA": "0"}).memory_arena is False


def test_every_model_the_template_warms_is_one_the_pipeline_can_warm():
    from alphacut.pipeline import WARMABLE
    from alphacut_dev.template import load_sam

    functions = load_sam()["Resources"]
    warmed = {
        name: props["Properties"].get("Environment", {}).get("Variables", {}).get("ALPHACUT_WARM_MODELS")
        for name, props in functions.items()
        if props["Type"] == "AWS::Serverless::Function"
    }
    named = {name: value.split(",") for name, value in warmed.items() if value}
    assert set(named) >= {"CutoutFunction", "SelfieFunction", "CostumeFunction"}
    assert all(set(models) <= set(WARMABLE) for models in named.values()), named
    assert {"isnet_features", "backbone", "costume"} <= set(named["CostumeFunction"])
