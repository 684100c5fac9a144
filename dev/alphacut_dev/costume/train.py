"""Train one member of the costume head on cached feature maps (PyTorch, CPU) and export it to ONNX.

Run in the training venv (Python 3.11, torch 2.13.0+cpu; ``make costume-train`` runs
``alphacut_dev.costume.ensemble``, which calls this once per member)::

    PYTHONPATH=dev:layers/core .cache/train-venv/bin/python -m alphacut_dev.costume.train --out head.onnx

Data: the caches made by ``alphacut_dev.costume.features`` from the pixel-labelled Clothing
Co-Parsing photos (``alphacut_dev.data.TRAIN_CCP``): ISNet's maps, and EfficientNet-Lite0's in a
folder of their own. Every tenth image (sorted by name) is held out for validation; nothing from
the eval photos is read here. Deterministic: fixed seeds, deterministic algorithms and one thread
(float sums depend on the thread count), so a rerun on the same cache gives the same weights and
the same printed metrics.
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

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "layers" / "core" / "alphacut" / "models" / "costume_head.onnx"
FEATURE_NAMES = tuple(FEATURE_INPUTS)  # ISNet's maps: f128 f64 f32 f16
BACKBONE_NAMES = tuple(BACKBONE_INPUTS)  # EfficientNet-Lite0's: b64 b32 b16 bhead
# the exported graph's inputs, in this order
INPUT_NAMES = (*FEATURE_NAMES, "picture", *BACKBONE_NAMES)
SEED_CLASSES = (1, 2, 4, 5, 6, 7, 8)  # tops coat skirt pants shoes bag hat (the seeds' classes)


def conv_bn(c_in: int, c_out: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CostumeHead(nn.Module):
    """Decoder maps fused coarse to fine: context at 32x32 (ISNet's 16/32/64 px maps and
    EfficientNet-Lite0's 16 and 32 px maps), a 64x64 stage with both sources' 64 px maps, then detail
    at 128x128 with ISNet's 128 px map, the picture and the matte. Input frame: ISNet's 1024 square.
    ISNet says where the subject is, the ImageNet maps what the garment is. ~1.7 GMAC a forward pass.
    """

    def __init__(
        self,
        classes: int = len(CLASS_NAMES),
        width: int = 96,
        dropout: float = 0.0,
        global_context: bool = False,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        # 1x1 projections of the backbone's maps: stride 32 (stage 7 + the 1280-channel head), 16, 8
        self.q16, self.q32, self.q64 = conv_bn(320 + 1280, width), conv_bn(112, width), conv_bn(40, 32)
        # whole feature channels dropped in training: 716 photos are few for 3,000 input channels
        self.input_dropout = nn.Dropout2d(input_dropout) if input_dropout > 0 else None
        # the whole picture's summary added to every position: a skirt vs a dress, a coat vs a top
        # depends on what the rest of the outfit is
        self.summary = (
            nn.Sequential(nn.Conv2d(128, 128, 1), nn.ReLU(inplace=True)) if global_context else None
        )
        self.p16, self.p32, self.p64 = conv_bn(512, width), conv_bn(512, width), conv_bn(256, width)
        context = [conv_bn(5 * width, 128, 3), conv_bn(128, 128, 3, dilation=2)]
        if dropout > 0:  # only then: a run without it keeps the exact module list (and weights)
            context.append(nn.Dropout2d(dropout))
        self.context = nn.Sequential(*context)
        self.middle = conv_bn(128 + width + 32, 64, 3)
        self.p128 = conv_bn(128, 32)
        self.detail = nn.Sequential(conv_bn(64 + 32 + 4, 32, 3), nn.Conv2d(32, classes, 1))

    def forward(self, f128, f64, f32, f16, picture, b64, b32, b16, bhead):
        """``picture``: RGB and matte at 128 x 128; ``f*``: ISNet's maps; ``b*``: the backbone's."""
        # a no-op on four channels; the committed members' graphs carry this Slice (their training
        # cache had a fifth channel), so it stays for a retrained member to match them byte for byte
        picture = picture[:, :4]
        if self.input_dropout is not None:
            f128, f64, f32, f16 = (self.input_dropout(f) for f in (f128, f64, f32, f16))
            b64, b32, b16, bhead = (self.input_dropout(f) for f in (b64, b32, b16, bhead))
        f64 = self.p64(f64)
        size32 = f32.shape[-2:]
        parts = [
            F.interpolate(self.p16(f16), size=size32, mode="bilinear", align_corners=False),
            self.p32(f32),
            F.avg_pool2d(f64, 2),
            F.interpolate(
                self.q16(torch.cat([b16, bhead], 1)), size=size32, mode="bilinear", align_corners=False
            ),
            self.q32(b32),
        ]
        x = self.context(torch.cat(parts, 1))
        if self.summary is not None:
            x = x + self.summary(x.mean(dim=(2, 3), keepdim=True))
        x = F.interpolate(x, size=f64.shape[-2:], mode="bilinear", align_corners=False)
        x = F.interpolate(
            self.middle(torch.cat([x, f64, self.q64(b64)], 1)),
            size=f128.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        hidden = self.detail[0](torch.cat([x, self.p128(f128), picture], 1))
        return self.detail[1](hidden)


class WholeFrame(nn.Module):
    """What is written to ONNX: the head on the run-time inputs (the whole 128 grid), under the name
    ``head``, as the committed members were exported (so a retrained member's graph is the same)."""

    def __init__(self, head: CostumeHead):
        super().__init__()
        self.head = head

    def forward(self, *inputs):
        return self.head(*inputs)


def _cached(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.npz") if not p.stem.endswith(".tmp"))


def _photo_row(path: Path, backbone: Path) -> dict[str, np.ndarray]:
    """One cached photo as the head's inputs (fp16) and its labels (uint8)."""
    with np.load(path) as data:
        rgb = (data["rgb"].astype(np.float32) / 255.0 - 0.5) / 0.25
        picture = np.concatenate([rgb.transpose(2, 0, 1), data["matte"][None].astype(np.float32)])
        row = {name: data[name] for name in FEATURE_NAMES}
        row["picture"] = picture.astype(np.float16)
        row["labels"] = data["labels"].astype(np.uint8)
    with np.load(backbone / path.name) as maps:
        row.update({name: maps[name] for name in BACKBONE_NAMES})
    return row


def load_cache(
    folder: Path, backbone: Path, stack: Path | None = None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every cached photo's inputs and labels, stacked (numpy, fp16 / uint8 labels): ISNet's maps from
    ``folder``, the backbone's from ``backbone``. Returns the stems and the arrays.

    With ``stack`` (a folder) the arrays are written there once as .npy files and memory-mapped: two
    trainers side by side then share one copy in the page cache (795 photos are ~7 GB)."""
    files = _cached(folder)
    if not files:
        raise SystemExit(f"no cached features in {folder}: run python -m alphacut_dev.costume.features")
    missing = [p.name for p in files if not (backbone / p.name).exists()]
    if missing:
        raise SystemExit(
            f"{len(missing)} photos have no backbone maps (first {missing[0]}): "
            "run python -m alphacut_dev.costume.features"
        )
    stems = [p.stem for p in files]
    if stack is not None and _holds(stack, stems):
        return stems, _mapped(stack)
    columns: dict[str, np.ndarray] = {}
    for number, path in enumerate(files):
        for name, value in _photo_row(path, backbone).items():
            if name not in columns:  # filled in place: stacking lists would need the memory twice
                shape = (len(files), *value.shape)
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
        return stems, _mapped(stack)
    return stems, columns


def _holds(stack: Path, stems: list[str]) -> bool:
    """Whether ``stack`` already holds these photos' arrays, stacked in this order."""
    listed = stack / "stems.json"
    return listed.exists() and json.loads(listed.read_text()) == stems


def _mapped(stack: Path) -> dict[str, np.ndarray]:
    """The stacked arrays in ``stack``, memory-mapped read-only."""
    return {p.stem: np.load(p, mmap_mode="r") for p in stack.glob("*.npy")}


def class_weights(labels: np.ndarray, classes: int) -> torch.Tensor:
    """Square root of median-frequency balancing, so hats and bags count without drowning tops."""
    counts = torch.from_numpy(np.bincount(labels.ravel(), minlength=256)[:classes]).double()
    frequency = counts / counts.sum()
    weights = (frequency[frequency > 0].median() / frequency.clamp_min(1e-6)).sqrt()
    return weights.clamp(0.2, 5.0).float()


SCALES = {"f128": 1, "f64": 2, "f32": 4, "f16": 8, "picture": 1, "b64": 2, "b32": 4, "b16": 8, "bhead": 8}


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
    names = INPUT_NAMES
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


def export(model: nn.Module, path: Path, sample: list[torch.Tensor]) -> float:
    """Write the ONNX file and return its largest difference from PyTorch on ``sample``."""
    import onnxruntime as ort

    model.eval()
    sample = [x[:1] for x in sample]
    whole = WholeFrame(model).eval()
    torch.onnx.export(
        whole,
        tuple(sample),
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = whole(*sample).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {n: x.numpy() for n, x in zip(INPUT_NAMES, sample)})[0]
    return float(np.abs(got - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "costume" / "features")
    parser.add_argument("--backbone-cache", type=Path, default=ROOT / ".cache" / "costume" / "backbone")
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
    parser.add_argument("--all", action="store_true", help="train on every image (no held-out tenth)")
    parser.add_argument(
        "--stack",
        type=Path,
        default=None,
        help="keep the stacked arrays here, memory-mapped (two trainers share them)",
    )
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--report", type=Path, default=ROOT / ".cache" / "costume" / "train_report.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    if args.stack is not None:
        args.stack.mkdir(parents=True, exist_ok=True)
    stems, data = load_cache(args.cache, args.backbone_cache, args.stack)
    held_out = [] if args.all else [i for i in range(len(stems)) if i % 10 == 9]
    training = [i for i in range(len(stems)) if args.all or i % 10 != 9]
    print(
        f"{len(stems)} images cached ({len(training)} train, {len(held_out)} held out), "
        f"loaded in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    classes = len(CLASS_NAMES)
    weights = class_weights(_rows(data["labels"], torch.tensor(training)), classes)
    model = CostumeHead(classes, args.width, args.dropout, args.global_context, args.input_dropout)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * ((len(training) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[args.lr], total_steps=steps, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(args.seed)
    held_out_labels = torch.from_numpy(
        _rows(data["labels"], torch.tensor(held_out, dtype=torch.long)).astype(np.int64)
    )
    train_started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total = train_epoch(model, data, training, args, generator, weights, optimiser, schedule)
        line = f"epoch {epoch:3d} loss {total:.4f} {time.perf_counter() - train_started:6.0f} s"
        if held_out and (epoch % 5 == 0 or epoch == args.epochs):
            table = iou_table(predict(model, data, held_out), held_out_labels, classes)
            line += f"  held-out seed-class mIoU {np.mean([table[c] or 0.0 for c in SEED_CLASSES]):.3f}"
        print(line, flush=True)

    report = {
        **{key: value for key, value in vars(args).items() if key in REPORTED},
        "train_images": len(training),
        "held_out_images": len(held_out),
        "train_seconds": round(time.perf_counter() - train_started),
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
    report["onnx_max_difference"] = export(model, args.out, sample)
    report["onnx_bytes"] = args.out.stat().st_size
    print(f"ONNX vs PyTorch max difference {report['onnx_max_difference']:.2e}")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1))
    print(
        f"wrote {args.out} ({report['onnx_bytes'] / 1e6:.2f} MB) in {report['train_seconds']} s of training"
    )
    return 0


REPORTED = (  # the settings a report repeats
    "epochs",
    "seed",
    "width",
    "lr",
    "crop",
    "dropout",
    "input_dropout",
    "scale_jitter",
    "weight_decay",
    "global_context",
    "threads",
)


def train_epoch(model, data, training, args, generator, weights, optimiser, schedule) -> float:
    """One pass over the training photos in a random order, in random mirrored crops; the mean loss.
    The random numbers are drawn in a fixed order from ``generator`` (a rerun draws the same)."""
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
        logits = F.interpolate(model(*inputs), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        loss = F.cross_entropy(logits, labels, weight=weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        total += loss.item() * len(index)
    return total / len(order)


if __name__ == "__main__":
    sys.exit(main())
