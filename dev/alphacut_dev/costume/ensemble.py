"""Train the costume head's members and join them into the one committed ONNX file.

The committed ``costume_head.onnx`` is the mean of the logits of two heads trained by
``alphacut_dev.costume.train`` with different settings (``MEMBERS``): heads trained on 716 photos
make different mistakes, and their mean beats each of them on the held-out tenth (see the model
card). One file, one session: the members share the inputs, their logits are averaged in the graph.

    # in make costume-train:
    PYTHONPATH=dev:layers/core .cache/train-venv/bin/python -m alphacut_dev.costume.ensemble
    ... -m alphacut_dev.costume.ensemble --join-only     # members already trained: only join them

Members land in ``.cache/costume/members/<name>.onnx`` (a member already there is not retrained).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "layers" / "core" / "alphacut" / "models" / "costume_head.onnx"
MEMBER_DIR = ROOT / ".cache" / "costume" / "members"

# name -> train.py arguments (everything else at train.py's defaults); the recipes tried and not
# shipped are in docs/models.md ("The costume head: what was tried")
MEMBERS: dict[str, list[str]] = {
    # global context, dropout 0.1, weight decay 1e-3, feature-channel dropout, crops rescaled
    "bb-jitter": ["--input-dropout", "0.2", "--scale-jitter", "0.25"],
    # no global context, no dropout, lighter weight decay
    "bb-plain": ["--no-global-context", "--dropout", "0", "--weight-decay", "1e-4"],
}
SHIPPED = ["bb-jitter", "bb-plain"]


def halve_weights(model) -> int:
    """Store every float32 weight of more than 1,024 values as float16 behind a Cast (onnxruntime
    folds the casts once, at session creation): half the file in the layer. Returns how many."""
    from onnx import TensorProto, numpy_helper

    from alphacut_dev.onnx_fp16 import fp16_behind_cast

    graph, halved = model.graph, 0
    for index, tensor in enumerate(list(graph.initializer)):
        if tensor.data_type != TensorProto.FLOAT or np.prod(tensor.dims) <= 1024:
            continue
        # ``tensor`` is the message replaced next: read it first
        initializer, cast = fp16_behind_cast(tensor.name, numpy_helper.to_array(tensor))
        graph.initializer[index].CopyFrom(initializer)
        graph.node.insert(0, cast)
        halved += 1
    return halved


def join(members: list[Path], output: Path, fp16: bool = False) -> float:
    """One graph: every member on the same inputs, ``logits`` = their mean (``fp16``: weights stored
    as float16). Returns the largest difference between the joined file and the members' mean on a
    random input."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, compose, helper

    models = [
        compose.add_prefix(onnx.load(str(path)), f"m{i}_", rename_inputs=False, rename_outputs=True)
        for i, path in enumerate(members)
    ]
    graph = models[0].graph
    for model in models[1:]:
        # members may read different inputs (with or without the backbone's maps): the union
        known = {i.name for i in graph.input}
        graph.input.extend(i for i in model.graph.input if i.name not in known)
        graph.node.extend(model.graph.node)
        graph.initializer.extend(model.graph.initializer)
        graph.value_info.extend(model.graph.value_info)
    outputs = [f"m{i}_logits" for i in range(len(models))]
    scale = helper.make_tensor("ensemble_scale", TensorProto.FLOAT, [], [1.0 / len(models)])
    graph.initializer.append(scale)
    graph.node.extend(
        [
            helper.make_node("Sum", outputs, ["ensemble_sum"]),
            helper.make_node("Mul", ["ensemble_sum", "ensemble_scale"], ["logits"]),
        ]
    )
    template = graph.output[0]
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(
            "logits",
            TensorProto.FLOAT,
            [d.dim_value or d.dim_param for d in template.type.tensor_type.shape.dim],
        )
    )
    graph.name = "alphacut_costume_head"
    if fp16:
        halve_weights(models[0])
    onnx.checker.check_model(models[0])
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(models[0], str(output))

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {
        i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
        for i in session.get_inputs()
    }
    expected = []
    for path in members:
        member = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in member.get_inputs()}
        expected.append(member.run(["logits"], {k: v for k, v in feeds.items() if k in wanted})[0])
    expected = np.mean(expected, axis=0)
    return float(np.abs(session.run(["logits"], feeds)[0] - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--join-only", action="store_true", help="do not train missing members")
    parser.add_argument("--members", nargs="+", default=SHIPPED, choices=list(MEMBERS))
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--fp32", action="store_true", help="keep the weights float32 (twice the file)")
    args = parser.parse_args(argv)
    paths = [MEMBER_DIR / f"{name}.onnx" for name in args.members]
    for name, path in zip(args.members, paths):
        if path.exists():
            print(f"member {name}: {path} (kept)")
            continue
        if args.join_only:
            raise SystemExit(f"member {name} missing at {path}")
        from alphacut_dev.costume import train

        print(f"member {name}: training with {' '.join(MEMBERS[name]) or 'the defaults'}", flush=True)
        train.main([*MEMBERS[name], "--out", str(path), "--report", str(path.with_suffix(".json"))])
    difference = join(paths, args.out, fp16=not args.fp32)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): mean of {len(paths)} heads, "
        f"max difference from the members' mean {difference:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
