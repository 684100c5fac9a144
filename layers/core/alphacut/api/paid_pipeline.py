"""The pipeline every route runs: the same models and steps, with a credit-based call's price
reserved before the model runs (``alphacut.api.credits``). Imported at first use (numpy,
Pillow and onnxruntime come with it).

Usage::

    engine = PaidPipeline(models, limits)      # what services.pipeline() holds
    engine.run(data, options)                  # InsufficientCredits (402) before any model work
"""

from __future__ import annotations

import numpy as np

from alphacut.api.credits import current_gate
from alphacut.api.plan_model import with_plan_model
from alphacut.codec import DecodedImage
from alphacut.costume import CostumeParse, Garment
from alphacut.options import CutoutOptions
from alphacut.pipeline import CostumeResult, CutoutResult, MatteRequest, Pipeline, Timings


class PaidPipeline(Pipeline):
    """The pipeline, with the model of the key's plan where a call names none
    (``alphacut.api.plan_model``) and the call's credits reserved before the model runs (where a
    gate is open)."""

    def reserve(self, options: CutoutOptions, costume: bool = False) -> None:
        """Reserve the price of the call as asked (where a gate is open): a route calls it before it
        downloads any URL, so a balance that cannot pay for what was asked fetches nothing (402);
        ``run`` reserves again only where nothing was (a call pays once)."""
        gate = current_gate()
        if gate is not None:
            gate.reserve_call(options if costume else with_plan_model(options, self.runs_here), costume)

    def run(self, data: bytes, options: CutoutOptions | None = None) -> CutoutResult:
        options = with_plan_model(options or CutoutOptions(), self.runs_here)
        gate = current_gate()
        if gate is not None:
            gate.reserve_call(options)
        return super().run(data, options)

    def mattes(self, requests: list[MatteRequest], timings: Timings | None = None) -> list[np.ndarray]:
        mattes = super().mattes(requests, timings)
        _model_ran()
        return mattes

    def parse_costume(self, image: DecodedImage, timings: Timings | None = None) -> CostumeParse:
        parse = super().parse_costume(image, timings)
        _model_ran()
        return parse

    def cut_out_garments(
        self,
        data: bytes,
        options: CutoutOptions | None = None,
        garments: tuple[Garment, ...] = tuple(Garment),
    ) -> CostumeResult:
        gate = current_gate()
        if gate is not None:
            gate.reserve_call(options or CutoutOptions(), costume=True)
        return super().cut_out_garments(data, options, garments)


def _model_ran() -> None:
    """The call's model has run: charged if it delivers, counted as an unpaid run if it does not,
    whatever fails after it (an option the matte rules out refused after the model is no free run)."""
    gate = current_gate()
    if gate is not None:
        gate.model_ran = True
