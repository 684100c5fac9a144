"""A plan's model: the model a key's calls run when they name none."""

from __future__ import annotations

from alphacut.api.plan_model import plan_model, with_plan_model
from alphacut.options import CutoutOptions
from alphacut.pricing import CreditPrices


def test_a_call_that_names_no_model_runs_its_plans_and_pays_that_models_price():
    prices = CreditPrices.parse("full=1,full@u2netp=0.5")
    with plan_model("u2netp"):
        options = with_plan_model(CutoutOptions(), lambda name: True)
    assert options.model == "u2netp" and prices.for_options(options) == 500


def test_a_named_model_wins_and_without_a_plan_nothing_changes():
    with plan_model("u2netp"):
        assert with_plan_model(CutoutOptions(model="isnet")).model == "isnet"
    assert with_plan_model(CutoutOptions()).model is None
    with plan_model(None):
        assert with_plan_model(CutoutOptions()).model is None


def test_a_plans_model_that_cannot_run_here_or_a_costume_keeps_the_default():
    with plan_model("big"):
        assert with_plan_model(CutoutOptions(), lambda name: name != "big").model is None
        assert with_plan_model(CutoutOptions.from_mapping({"type": "costume"})).model is None
        assert with_plan_model(CutoutOptions()).model == "big"  # a task: decided where it runs
