"""Where the photos for tests, evaluation, benchmarks and training live, in one place.

``ALPHACUT_DATA`` names the folder (default: ``shared`` beside the checkout). It holds
``eval/{general,person,clothing}`` (photos and people-made ground truth; measured, never trained
on) and ``train/{ccp,ccp_tags}`` (Clothing Co-Parsing: pixel-labelled and tag-only photos).

Usage::

    from alphacut_dev.data import EVAL, TRAIN_CCP

    photos = sorted((EVAL / "general" / "images").iterdir())
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ALPHACUT_DATA") or REPOSITORY.parent / "shared")
EVAL = DATA / "eval"
TRAIN_CCP = DATA / "train" / "ccp"
TRAIN_CCP_TAGS = DATA / "train" / "ccp_tags"
