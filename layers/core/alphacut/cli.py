"""The ``alphacut`` command: cut out files and folders, and measure quality.

Usage::

    alphacut remove photos/ shoe.jpg -o out/ --type object --format webp --crop
    alphacut remove selfie.jpg -o out/ --output mask          # out/selfie.png, one channel
    alphacut remove shoe.jpg -o out/ --size preview --bg-image beach.jpg --scale 80% --format zip
    alphacut remove --preset amazon --shadow contact photos/ -o out/   # 2000 px square jpg on white
                              # each file's verdict printed and in out/checks.jsonl; exit 3 if any failed
    alphacut eval eval/person --type person
    alphacut remove look.jpg -o out/ --type costume --output mask   # class map: 0 bg, 1 tops .. 9 person
    alphacut eval eval/clothing --type costume            # IoU per class
    alphacut keys --stack alphacut create --customer acme --plan starter   # admin, on AWS
    alphacut deploy check --parameter ReserveAsyncConcurrency=true   # what the account lacks, and the fix
    alphacut deploy prune --stack alphacut --dry-run                 # old SnapStart versions
    alphacut remove photos/ -o out/ --api https://...amazonaws.com/Prod --key KEY --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alphacut.errors import AlphacutError, InvalidOption
from alphacut.evaluate import IMAGE_SUFFIXES, SPLITS, evaluate, evaluate_costume
from alphacut.options import CutoutOptions, OptionField, OutputKind, Quality, SubjectType, option_rows
from alphacut.pipeline import Pipeline
from alphacut.settings import EngineSettings, ImageLimits, ServiceSettings, SettingError

if TYPE_CHECKING:
    from alphacut_client import BatchItem

    from alphacut.aws.keys.admin import KeyAdmin


class ProgressBar:
    """A one-line bar on a terminal; silent when the stream is not one (logs, pipes)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30):
        self.total, self.stream, self.width = total, stream, width
        self.enabled = total > 1 and stream.isatty()

    def update(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        filled = self.width * done // self.total
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {label[:40]:<40}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded to the images in them (recursively); and what is missing."""
    files, missing = [], []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append(raw)
    return files, missing


def output_paths(source: Path, outdir: Path, options: CutoutOptions) -> tuple[Path, Path]:
    """``<stem>.<ext>`` for the image; the mask is ``<stem>.png`` alone, ``<stem>_mask.png`` beside one."""
    image_path = outdir / f"{source.stem}.{options.format.value}"
    if options.output is OutputKind.MASK:
        return image_path, outdir / f"{source.stem}.png"
    return image_path, outdir / f"{source.stem}_mask.png"


CHECK_FAILED = 3  # the exit status when a result failed its preset's check (1: a file was not cut out)


class CheckLog:
    """Each file's report. With ``--preset``: the check on stderr (its failed rules, measured
    against required; a pass the verdict doubts says so) and in ``OUTDIR/checks.jsonl``, one JSON
    object per input (``file``, the check's ``preset``, ``passed``, ``unsure``, ``rules``, and the
    verdict's ``confidence``, ``unsure``, ``reasons`` as ``verdict``). Without a preset only the
    results the verdict doubts are said on stderr (``unsure``, the confidence and the reasons)."""

    def __init__(self, outdir: Path, preset: str | None, stream: TextIO = sys.stderr):
        self.path = outdir / "checks.jsonl" if preset else None
        self.stream, self.preset, self.passed, self.failed, self.unsure = stream, preset, 0, 0, 0
        if self.path is not None:
            self.path.write_text("")

    def record(
        self, source: Path, check: dict[str, Any] | None, verdict: dict[str, Any] | None = None
    ) -> None:
        doubt = _doubt(verdict)
        self.unsure += bool(doubt)
        if self.path is None or check is None:
            if doubt:
                print(f"{source}: {doubt}", file=self.stream)
            return
        with self.path.open("a") as lines:
            lines.write(json.dumps({"file": str(source), **check, "verdict": verdict}) + "\n")
        if check["passed"]:
            self.passed += 1
            print(f"{source}: {check['preset']} passed{', ' + doubt if doubt else ''}", file=self.stream)
            return
        self.failed += 1
        failed = [rule for rule in check["rules"] if not rule["passed"]]
        said = ", ".join(
            f"{r['rule']} ({_shown(r['measured'])}; needs {_shown(r['required'])})" for r in failed
        )
        print(f"{source}: {check['preset']} failed: {said}", file=self.stream)

    def status(self, errors: int) -> int:
        """1 when a file was not cut out, else 3 when a result failed its check, else 0."""
        return 1 if errors else CHECK_FAILED if self.failed else 0

    def summary(self) -> str:
        unsure = f"; {self.unsure} unsure" if self.unsure else ""
        if self.path is None:
            return unsure
        return f"; {self.preset} check: {self.passed} passed, {self.failed} failed ({self.path}){unsure}"


def _doubt(verdict: dict[str, Any] | None) -> str:
    """``unsure (confidence 0.41: little_contrast)`` for a doubted result, else ``""``."""
    if not verdict or not verdict.get("unsure"):
        return ""
    reasons = ", ".join(verdict.get("reasons") or ())
    return f"unsure (confidence {verdict['confidence']:.2f}{': ' + reasons if reasons else ''})"


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def read_background(source: str | None) -> bytes | None:
    """``--bg-image``: a file, or an http(s) URL fetched once under the service's URL rules."""
    if source is None:
        return None
    if "://" in source:
        from alphacut.urlfetch import fetch_image

        return fetch_image(source, ImageLimits().max_bytes, field="bg_image")
    try:
        return Path(source).read_bytes()
    except OSError as error:
        raise InvalidOption(f"{source}: {error.strerror or error}", field="bg_image") from None


def _remove(args: argparse.Namespace) -> int:
    try:
        background = read_background(args.bg_image_url)
        given = {row.name: getattr(args, row.name) for row in option_rows() if row.flag is not None}
        # --bg-image is a file or a URL: a URL is also the option (it says where the picture is from)
        given["bg_image_url"] = (
            args.bg_image_url if background is not None and "://" in args.bg_image_url else None
        )
        # only what was given: a preset fills the rest
        options = CutoutOptions.from_mapping(
            {name: value for name, value in given.items() if value is not None}, bg_image=background
        )
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    files, missing = collect_inputs(args.inputs)
    failed = 0
    for raw in missing:
        print(f"alphacut: {raw}: no such file or folder", file=sys.stderr)
        failed += 1
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if args.api:
        return _remove_remote(args, options, files, outdir, failed)
    pipeline = Pipeline.from_settings(place=None)  # this machine: any model
    bar = ProgressBar(len(files))
    checks = CheckLog(outdir, options.preset)
    for done, path in enumerate(files, start=1):
        try:
            result = pipeline.run(path.read_bytes(), options)
            image_path, mask_path = output_paths(path, outdir, options)
            if result.image is not None:
                image_path.write_bytes(result.image)
            if result.mask is not None:
                mask_path.write_bytes(result.mask)
            checks.record(
                path,
                result.check.to_dict() if result.check is not None else None,
                result.verdict.to_dict() if result.verdict is not None else None,
            )
        except AlphacutError as error:
            failed += 1
            bar.close() if bar.enabled else None
            print(f"alphacut: {path}: {error}", file=sys.stderr)
        except OSError as error:
            failed += 1
            print(f"alphacut: {path}: {error.strerror or error}", file=sys.stderr)
        bar.update(done, path.name)
    bar.close()
    written = len(files) - (failed - len(missing))
    print(f"{written} written to {outdir}, {failed} failed{checks.summary()}", file=sys.stderr)
    return checks.status(failed)


def remote_parameters(options: CutoutOptions) -> dict[str, str]:
    """The options as request fields for a deployed API (what differs from its defaults)."""
    defaults = CutoutOptions().to_dict()
    return {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in options.to_dict().items()
        if v is not None and v != defaults[k]
    }


def _remove_remote(
    args: argparse.Namespace, options: CutoutOptions, files: list[Path], outdir: Path, failed: int
) -> int:
    """``--api URL --key KEY``: the same files and outputs, cut out by a deployed stack through the
    Python client (retries, one Idempotency-Key per image, ``--concurrency`` at a time)."""
    from alphacut_client import Client

    key = args.key or os.environ.get("ALPHACUT_API_KEY", "")
    if not key or options.type is SubjectType.COSTUME:
        problem = "--type costume is local only" if key else "--api needs --key (or ALPHACUT_API_KEY)"
        print(f"alphacut: {problem}", file=sys.stderr)
        return 2
    client = Client(args.api, key)
    bar = ProgressBar(len(files))
    checks = CheckLog(outdir, options.preset)
    errors = [0]

    def progress(done: int, total: int, item: BatchItem) -> None:
        if item.error is not None:
            errors[0] += 1
            print(f"alphacut: {item.path}: {item.error}", file=sys.stderr)
        else:
            image_path, mask_path = output_paths(item.path, outdir, options)
            if item.result.image is not None:
                image_path.write_bytes(item.result.image)
            if item.result.mask is not None:
                mask_path.write_bytes(item.result.mask)
            checks.record(item.path, item.result.check)
        bar.update(done, item.path.name)

    extra = (
        {"bg_image": options.bg_image} if options.bg_image is not None and not options.bg_image_url else {}
    )
    client.batch(
        files,
        concurrency=args.concurrency,
        progress=progress,
        deadline=args.deadline,
        **remote_parameters(options),
        **extra,
    )
    bar.close()
    failed += errors[0]
    written = len(files) - errors[0]
    print(f"{written} written to {outdir} by {args.api}, {failed} failed{checks.summary()}", file=sys.stderr)
    return checks.status(failed)


def _eval(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    subject = SubjectType(args.type)
    truth = args.truth or ("gt_coarse" if subject is SubjectType.COSTUME else "gt")
    if not (directory / "images").is_dir() or not (directory / truth).is_dir():
        print(f"alphacut: {directory} needs images/ and {truth}/ folders", file=sys.stderr)
        return 2
    pipeline = Pipeline.from_settings(place=None)  # this machine: any model
    bar = ProgressBar(len(list((directory / "images").iterdir())))
    if subject is SubjectType.COSTUME:
        costume = evaluate_costume(directory, pipeline, args.split, truth, lambda done, _: bar.update(done))
        bar.close()
        print(costume.table())
        return 0
    report = evaluate(
        directory,
        pipeline,
        subject,
        args.split,
        progress=lambda done, _: bar.update(done),
        truth=truth,
        options=CutoutOptions(quality=args.quality, model=args.model),
    )
    bar.close()
    if args.per_image:
        for s in report.scores:
            print(
                f"{s.stem:<28} IoU {s.iou:.3f}  MAE {s.mae:.4f}  boundary F {s.boundary_f:.3f}  "
                f"ghost {s.ghost_share:.2%}"
            )
    print(report.table())
    return 0


def _stack_output(stack: str, name: str) -> str | None:
    """One of the stack's outputs (None: the stack cannot be read or has no such output)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError):
        return None
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return next((str(o["OutputValue"]) for o in outputs if o["OutputKey"] == name), None)


def _usage_table(stack: str, named: str | None) -> str | None:
    """The stack's usage table: ``--usage-table``, else USAGE_TABLE, else the stack's output (None:
    none of them can be read)."""
    if named or os.environ.get("USAGE_TABLE"):
        return str(named or os.environ["USAGE_TABLE"])
    return _stack_output(stack, "UsageTableName")


def _admin(args: argparse.Namespace, needs_table: bool = False) -> KeyAdmin:
    """The keys admin on the stack's usage table and key-hash secret (KEY_HASH_SECRET_ARN, else the
    stack's output), which ``needs_table`` requires."""
    from alphacut.aws.keys.admin import KeyAdmin
    from alphacut.aws.keys.store import KeyStore
    from alphacut.aws.ledger.credits import CreditLedger
    from alphacut.aws.secrets import secret_bytes

    stack = args.stack or os.environ.get("ALPHACUT_STACK", "alphacut")
    table = _usage_table(stack, args.usage_table)
    secret = os.environ.get("KEY_HASH_SECRET_ARN") or (
        _stack_output(stack, "KeyHashSecretArn") if table else None
    )
    if (table is None or secret is None) and needs_table:
        missing = (
            "usage table (--usage-table or USAGE_TABLE)"
            if table is None
            else "key-hash secret (KEY_HASH_SECRET_ARN)"
        )
        raise InvalidOption(f"the {missing} of stack {stack!r} is not known", field="usage_table")
    store = KeyStore(table, secret_bytes(secret)) if table and secret else None
    return KeyAdmin(stack=stack, ledger=CreditLedger(table) if table else None, store=store)


def _models(args: argparse.Namespace) -> int:
    """The registry (the models layer's manifest): one line per matting model."""
    from alphacut.models import load_manifest
    from alphacut.models.registry import DEFAULT_MODEL, matting_specs

    try:
        specs = matting_specs(load_manifest(EngineSettings.from_env().models_dir))
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    print(f"{'model':<12} {'input':<10} {'runs on':<12} {'licence':<48} figures")
    for name, spec in sorted(specs.items()):
        shown = name + (" *" if name == DEFAULT_MODEL else "")
        figures = ", ".join(f"{k} {v}" for k, v in spec.figures.items()) or "-"
        size = f"{spec.width}x{spec.height}"
        print(f"{shown:<12} {size:<10} {', '.join(spec.runs_on):<12} {spec.licence:<48} {figures}")
    print("* the default (model= unset)")
    return 0


def _models_add(args: argparse.Namespace) -> int:
    """Check the file, add it to the models layer (or, too large for Lambda or ``--gpu-only``,
    to the GPU endpoint's model data), measure it on the eval folder's test half."""
    from alphacut.models.intake import add_model, check_model_file, fits_lambda, gpu_only, record_figures
    from alphacut.models.registry import MattingSpec
    from alphacut.options import parse_model_name

    settings = EngineSettings.from_env()
    models_dir, model_data_dir = settings.models_dir, Path(args.model_data or settings.model_data_dir)
    try:
        spec = MattingSpec(
            name=parse_model_name(args.name, "name"),
            file=f"{args.name}.onnx",
            width=_side(args.size, 0),
            height=_side(args.size, 1),
            mean=_three(args.mean, "mean"),
            std=_three(args.std, "std"),
            colour=args.colour,
            resize=args.resize,
            output=args.output,
            values=args.values,
            rescale=args.rescale,
            licence=args.licence,
        )
        check = check_model_file(Path(args.file), spec, _check_photo())
        print(
            f"{args.file}: {check.outputs} outputs; the matte {list(check.matte_shape)}, "
            f"values {check.low:.3g}..{check.high:.3g}; {check.seconds:.2f} s a photo (onnxruntime CPU)"
        )
        if args.gpu_only or not fits_lambda(models_dir, Path(args.file), spec.name):
            spec = gpu_only(spec)
            print(
                f"{spec.name} goes to the GPU endpoint's model data ({model_data_dir}): "
                "`alphacut models pack` packs it"
            )
        add_model(models_dir, Path(args.file), spec, again=args.replace, model_data_dir=model_data_dir)
        figures = _measure(args.eval, spec.name) if args.eval else {}
        if figures:
            record_figures(models_dir, spec.name, figures, model_data_dir)
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"alphacut: {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(
        f"added {spec.name} to {models_dir if spec.runs_at('lambda') else model_data_dir}; "
        f"model={spec.name} chooses it" + "".join(f"; {k} {v}" for k, v in figures.items())
    )
    return 0


def _models_pack(args: argparse.Namespace) -> int:
    """The GPU endpoint's model data as the model.tar.gz SageMaker reads, and how to deploy it."""
    from alphacut.models.intake import pack_model_data

    settings = EngineSettings.from_env()
    try:
        packed = pack_model_data(Path(args.model_data or settings.model_data_dir), Path(args.output))
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    print(f"packed {packed} ({packed.stat().st_size / 2**20:.1f} MB); deploy it with")
    print(f"  aws s3 cp {packed} s3://BUCKET/alphacut/model.tar.gz")
    print("  sam deploy --parameter-overrides GpuModelDataUrl=s3://BUCKET/alphacut/model.tar.gz ...")
    return 0


def _side(size: str, axis: int) -> int:
    parts = size.lower().split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or not all(16 <= side <= 4096 for side in sides):
        raise InvalidOption(
            f"must be a side (1024) or WIDTHxHEIGHT from 16 to 4096, not {size!r}", field="size"
        )
    return sides[axis % len(sides)]


def _three(text: str, name: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(-10 < v < 10 for v in values) or (name == "std" and min(values) <= 0):
        raise InvalidOption(f"must be three numbers (red, green, blue), not {text!r}", field=name)
    return values[0], values[1], values[2]


def _check_photo() -> Any:
    """A photo to run a model on: a warm-coloured disc on a graded background."""
    import numpy as np

    y, x = np.mgrid[0:480, 0:640]
    photo = np.stack([x * 255 // 640, y * 255 // 480, np.full_like(x, 128)], -1).astype(np.uint8)
    photo[(x - 320) ** 2 + (y - 240) ** 2 < 150**2] = (200, 60, 40)
    return photo


def _measure(folder: str, name: str) -> dict[str, Any]:
    """The model's figures on the eval folder's test half: IoU and ghosted photos per set."""
    figures: dict[str, Any] = {}
    pipeline = Pipeline.from_settings(place=None)  # this machine: any model
    for subset, subject in (("general", SubjectType.OBJECT), ("person", SubjectType.PERSON)):
        if (Path(folder) / subset / "images").is_dir():
            report = evaluate(
                Path(folder) / subset, pipeline, subject, "test", options=CutoutOptions(model=name)
            )
            figures[f"{subset} IoU"] = round(report.mean_iou, 4)
            figures[f"{subset} ghosts"] = len(report.ghosted)
    return figures


def _keys(args: argparse.Namespace) -> int:
    """Admin: the service's API keys on the stack's plans (the AWS account and region boto3 is given)."""
    try:
        admin = _admin(args, needs_table=True)
        if args.action == "create":
            from alphacut.scopes import checked_scopes

            key = _create_key(admin, args, checked_scopes(args.scopes))
            print(
                f"created key {key.id} for {key.customer} on plan {key.plan}, scopes "
                f"{', '.join(key.scopes)} (shown once: keep it)"
            )
            print(f"x-api-key: {key.value}")
        elif args.action == "import":
            return _import_keys(admin, args.file)
        elif args.action == "rotate":
            key = admin.rotate(args.key_id, args.grace)
            print(
                f"rotated key {key.id} ({key.customer}): the old value works {args.grace} s more (shown once)"
            )
            print(f"x-api-key: {key.value}")
        elif args.action == "revoke":
            key = admin.revoke(args.key_id)
            print(
                f"revoked key {key.id} ({key.customer}, plan {key.plan}): "
                "refused once the authorizer's cache of it ends"
            )
        elif args.action == "migrate" and args.accounts:
            print(f"{admin.migrate_accounts()} keys made the owners of their own accounts (the rest had one)")
        elif args.action == "migrate":
            migrated = admin.migrate()
            for key in migrated:
                print(f"migrated {key.id} ({key.customer}, plan {key.plan})")
            print(f"{len(migrated)} API Gateway keys now in the key store, their values unchanged")
        elif args.action == "credit":
            _credit(admin, args)
        elif args.action == "suspend":
            key = admin.suspend(args.key_id, args.reason)
            print(f"suspended key {key.id} ({key.customer}): refused until reinstated ({args.reason})")
        elif args.action == "reinstate":
            key = admin.reinstate(args.key_id)
            print(f"reinstated key {key.id} ({key.customer}, plan {key.plan})")
        elif args.action == "suspend-account":
            stopped = admin.suspend_account(args.account, args.reason)
            print(f"suspended account {args.account} and its {len(stopped)} live keys ({args.reason})")
        elif args.action == "reinstate-account":
            back = admin.reinstate_account(args.account)
            print(f"reinstated account {args.account} and {len(back)} of its keys")
        elif args.action == "callback-secret":
            print(_callback_secret(admin, args.key, args.rotate, args.grace))
        else:
            _list_keys(admin, args.customer, args.limit)
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    return 0


def _create_key(admin: KeyAdmin, args: argparse.Namespace, scopes: tuple[str, ...]) -> Any:
    """A key for a customer on a plan (its own account), or with --account one more key of an
    account, named, maybe a test key or with a daily limit."""
    if not args.account:
        if not args.customer or not args.plan:
            raise InvalidOption("a new account's key needs --customer and --plan", field="customer")
        return admin.create(args.customer, args.plan, scopes)
    from alphacut.aws.keys.accounts import KeyRequest
    from alphacut.pricing import millicredits

    limit = millicredits(args.daily_credits) if args.daily_credits is not None else None
    return admin.create_in_account(args.account, KeyRequest(args.name or "", scopes, args.test, limit))


def _callback_secret(admin: KeyAdmin, key_id: str, rotate: bool = False, grace: int = 86400) -> str:
    """The secret key ``key_id``'s callbacks are signed with (``cbk_…``, derived from the stack's
    key master, KEY_CALLBACK_SECRET_ARN else the stack's output): what its customer verifies with.
    ``rotate``: a new one, the old one signing ``grace`` seconds more."""
    from alphacut.aws.callbacks.secrets import CallbackSecrets
    from alphacut.aws.secrets import secret_bytes

    key = admin.get(key_id)  # NotFound for a key that is not the stack's
    arn = os.environ.get("KEY_CALLBACK_SECRET_ARN") or _stack_output(admin.stack, "KeyCallbackSecretArn")
    table = admin.store.table_name if admin.store is not None else None
    if not arn or not table:
        raise InvalidOption(
            f"the callback secrets of stack {admin.stack!r} are not known (KEY_CALLBACK_SECRET_ARN)",
            field="stack",
        )
    secrets = CallbackSecrets(table, secret_bytes(arn))
    return secrets.rotate(key.id, grace) if rotate else secrets.secret(key.id)


def _import_keys(admin: KeyAdmin, source: str) -> int:
    """CSV ``customer,plan`` in (a header line optional); CSV ``key_id,customer,plan,key`` out."""
    import csv

    stream = sys.stdin if source == "-" else open(source, newline="")  # noqa: SIM115 - closed below
    try:
        rows = [row for row in csv.reader(stream) if row and any(cell.strip() for cell in row)]
    finally:
        if stream is not sys.stdin:
            stream.close()
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["customer", "plan"]:
        rows = rows[1:]
    for number, row in enumerate(rows, 1):
        if len(row) < 2:
            raise InvalidOption(
                f"line {number} has {len(row)} field(s); each line is customer,plan", field="file"
            )
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["key_id", "customer", "plan", "key"])
    made = 0
    for key in admin.create_many((row[0].strip(), row[1].strip()) for row in rows):
        out.writerow([key.id, key.customer, key.plan, key.value])
        made += 1
    print(f"imported {made} keys", file=sys.stderr)
    return 0


def _credit(admin: KeyAdmin, args: argparse.Namespace) -> None:
    from alphacut.pricing import credits, millicredits

    try:
        amount = millicredits(args.add)
    except ValueError as error:
        raise InvalidOption(str(error), field="add") from None
    reference = args.reference
    if not reference and admin.ledger is not None:  # shown first: a retry with it adds nothing
        reference = admin.ledger.new_reference()
        print(f"top-up {reference} (if this fails, retry with --reference {reference})", file=sys.stderr)
    top_up, balance = admin.credit(args.key, amount, reference or "", args.note or "")
    print(
        f"added {credits(top_up.amount)} credits to key {args.key} (top-up {top_up.reference}, "
        f"{top_up.at}); balance {credits(balance)}"
    )


def _list_keys(admin: KeyAdmin, customer: str = "", limit: int = 1000) -> None:
    from alphacut.pricing import credits

    plans = admin.plans()
    for plan in plans.values():
        terms = "credits" if plan.credit_based else f"quota {plan.quota}/day"
        print(f"plan {plan.name:<10} rate {plan.rate_limit}/s burst {plan.burst} {terms}")
    print(
        f"{'key id':<14} {'customer':<24} {'plan':<10} {'enabled':<8} {'balance':<10} "
        f"{'last used':<10} created"
    )
    keys = admin.list(customer, limit)
    for key in keys:
        balance = None
        if admin.ledger is not None and plans.get(key.plan) and plans[key.plan].credit_based:
            balance = admin.ledger.balance(key.id)
        shown = "-" if balance is None else str(credits(balance))
        print(
            f"{key.id:<14} {key.customer:<24} {key.plan:<10} "
            f"{str(key.enabled).lower():<8} {shown:<10} {key.last_used or '-':<10} {key.created}"
        )
    if len(keys) == limit:
        print(f"(the first {limit} keys: --customer or --limit for others)")


def _billing(args: argparse.Namespace) -> int:
    """Admin: a card payment refunded through Stripe, its credits taken back (never below zero:
    what was spent stays owed, on the statement). Stripe's keys: ALPHACUT_STRIPE_SECRET_KEY, else
    STRIPE_SECRET_ARN, else the stack's StripeKeysArn output."""
    from alphacut.aws.billing.payments import PaymentRecords
    from alphacut.aws.ledger.credits import CreditLedger
    from alphacut.billing.settings import BillingSettings
    from alphacut.billing.stripe_account import StripeAccount
    from alphacut.billing.stripe_events import StripeEvents

    try:
        admin = _admin(args, needs_table=True)
        assert admin.ledger is not None and admin.store is not None
        environ = dict(os.environ)
        if not environ.get("ALPHACUT_STRIPE_SECRET_KEY") and not environ.get("STRIPE_SECRET_ARN"):
            environ["STRIPE_SECRET_ARN"] = _stack_output(admin.stack, "StripeKeysArn") or ""
        account = StripeAccount(BillingSettings.from_env(environ))
        table = admin.ledger.table_name
        done = StripeEvents(account, PaymentRecords(table), CreditLedger(table), admin.store).refund(
            args.payment
        )
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    print(
        f"refunded {done['payment']} (key {done['key_id']}): {done['credits_taken_back']} credits "
        f"taken back, {done['credits_owed']} already spent stay owed"
    )
    return 0


def _usage(args: argparse.Namespace) -> int:
    """Admin: the month's statement, per customer, as CSV or JSON."""
    from alphacut.aws.billing.payments import PaymentRecords
    from alphacut.aws.billing.statements import Statement
    from alphacut.aws.ledger.usage import UsageMeter

    price = args.price_per_credit
    if price is None:
        price = float(os.environ.get("PRICE_PER_CREDIT") or ServiceSettings().price_per_credit)
    try:
        admin = _admin(args, needs_table=True)
        assert admin.ledger is not None
        statement = Statement.build(
            args.month,
            admin.every_key(),
            UsageMeter(admin.ledger.table_name),
            price,
            args.currency,
            PaymentRecords(admin.ledger.table_name),
        )
    except AlphacutError as error:
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    print(statement.to_json() if args.format == "json" else statement.to_csv(), end="")
    return 0


# where the help has always listed these two (the documents list channels after output, the
# preset after the shadow): flag -> the flag it follows
HELP_MOVES = {"channels": "quality", "preset": "upscale"}


def help_order(rows: list[OptionField]) -> list[OptionField]:
    """The option table's rows that have a flag, in the order ``alphacut remove --help`` lists them."""
    ordered = [row for row in rows if row.flag is not None and row.name not in HELP_MOVES]
    for name, after in HELP_MOVES.items():
        place = next(i for i, row in enumerate(ordered) if row.name == after)
        ordered.insert(place + 1, next(row for row in rows if row.name == name))
    return ordered


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alphacut", description="Background removal on CPU ONNX models.")
    commands = parser.add_subparsers(dest="command", required=True)

    remove = commands.add_parser("remove", help="cut the subject out of images")
    remove.add_argument("inputs", nargs="+", help="image files and/or folders")
    remove.add_argument("-o", "--outdir", required=True, help="folder for the results")
    for row in help_order(option_rows()):
        assert row.flag is not None
        remove.add_argument(row.flag.flag_for(row.name), **row.flag.arguments(row.name))
    remove.add_argument(
        "--api", default=None, help="a deployed stack's ApiUrl: cut out there (pip install clients/python)"
    )
    remove.add_argument("--key", default=None, help="the API key for --api (default: ALPHACUT_API_KEY)")
    remove.add_argument("--concurrency", type=int, default=4, help="images in flight at once with --api")
    remove.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="with --api: no image is sent after this many seconds (the rest fail with deadline_exceeded); "
        "within it, the key's rate limits are waited out, paced for every image at once",
    )
    remove.set_defaults(handler=_remove)

    measure = commands.add_parser(
        "eval", help="IoU, MAE, boundary F and ghosted photos on images/ + gt/ (IoU per class for costume)"
    )
    measure.add_argument("directory")
    measure.add_argument("--type", default="auto", choices=[t.value for t in SubjectType])
    measure.add_argument("--split", default="all", choices=SPLITS)
    measure.add_argument(
        "--truth", default=None, help="ground-truth folder (default gt; gt_coarse for --type costume)"
    )
    measure.add_argument(
        "--quality", default="auto", choices=[q.value for q in Quality], help="as the API's quality option"
    )
    measure.add_argument("--model", default=None, help="the matting model (alphacut models list)")
    measure.add_argument("--per-image", action="store_true", help="also print each image's scores")
    measure.set_defaults(handler=_eval)

    models = commands.add_parser("models", help="the matting models this installation has")
    model_actions = models.add_subparsers(dest="action", required=True)
    model_actions.add_parser("list", help="every model: its input, where it may run, licence, figures")
    add = model_actions.add_parser("add", help="check an ONNX matting model and add it to the models layer")
    add.add_argument("name", help="its name (the model option's value): a-z, 0-9, . _ -")
    add.add_argument("file", help="the ONNX file (one picture in, one matte map out)")
    add.add_argument("--size", required=True, help="its input: 1024, or WIDTHxHEIGHT")
    add.add_argument("--mean", default="0.485,0.456,0.406", help="per red, green, blue on 0..1 (ImageNet's)")
    add.add_argument("--std", default="0.229,0.224,0.225", help="per red, green, blue on 0..1 (ImageNet's)")
    add.add_argument("--colour", default="RGB", choices=["RGB", "BGR"], help="the channel order it takes")
    add.add_argument("--resize", default="bilinear", choices=["bilinear", "lanczos"])
    add.add_argument("--output", type=int, default=0, help="which output is the matte (default 0)")
    add.add_argument("--values", default="logits", choices=["logits", "probabilities"])
    add.add_argument("--rescale", default="clip", choices=["clip", "minmax"])
    add.add_argument("--licence", default="", help="its licence, shown by models list")
    add.add_argument("--eval", default=None, help="an eval folder (general/, person/): its figures recorded")
    add.add_argument("--replace", action="store_true", help="replace a model added before")
    add.add_argument(
        "--gpu-only", action="store_true", help="for the GPU endpoint only (a model too large for Lambda is)"
    )
    add.add_argument("--model-data", default=None, help="the GPU endpoint's model data folder")
    pack = model_actions.add_parser("pack", help="the GPU-only models as the model.tar.gz SageMaker reads")
    pack.add_argument(
        "-o", "--output", default="build/model.tar.gz", help="where (default build/model.tar.gz)"
    )
    pack.add_argument("--model-data", default=None, help="the GPU endpoint's model data folder")
    models.set_defaults(handler=_models)
    add.set_defaults(handler=_models_add)
    pack.set_defaults(handler=_models_pack)

    keys = commands.add_parser(
        "keys",
        help="admin: create, import, rotate, revoke, suspend, reinstate, list, migrate, credit API keys; "
        "callback secrets",
    )
    _stack_arguments(keys)
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key for a customer on a plan (its value shown once)")
    create.add_argument("--customer", help="a new account's customer (not with --account)")
    create.add_argument("--plan", help="free, starter, business or credits (template.yaml)")
    create.add_argument("--account", help="one more key of this account (its owner key's id)")
    create.add_argument("--name", help="with --account: the key's name, as the store sees it")
    create.add_argument("--test", action="store_true", help="with --account: a test key (never charged)")
    create.add_argument("--daily-credits", help="with --account: credits a UTC day the key may spend")
    create.add_argument(
        "--scopes",
        default="images,usage,billing,keys",
        help="what the key may do, comma-separated: images, usage, billing, keys (default all)",
    )
    imported = actions.add_parser(
        "import", help="keys in bulk: CSV customer,plan in; CSV key_id,customer,plan,key out"
    )
    imported.add_argument("file", help="the CSV file (- : standard input)")
    rotate = actions.add_parser("rotate", help="a new value for a key; the old one works for --grace seconds")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--grace", type=int, default=86400, help="seconds the old value keeps working (default a day)"
    )
    listed = actions.add_parser("list", help="plans, and keys (with their balance and last use)")
    listed.add_argument("--customer", default="", help="only customers whose name starts with this")
    listed.add_argument("--limit", type=int, default=1000, help="at most this many keys (default 1000)")
    revoke = actions.add_parser(
        "revoke", help="refuse a key (within the authorizer's cache, KeyCacheSeconds)"
    )
    revoke.add_argument("key_id")
    migrate = actions.add_parser(
        "migrate", help="the stack's API Gateway keys into the key store (their values keep working)"
    )
    migrate.add_argument(
        "--accounts", action="store_true", help="instead: every key made before accounts the owner of its own"
    )
    suspend = actions.add_parser(
        "suspend", help="refuse a key until it is reinstated (a disputed payment does this)"
    )
    suspend.add_argument("key_id")
    suspend.add_argument("--reason", default="suspended by the operator")
    reinstate = actions.add_parser("reinstate", help="let a suspended key in again")
    reinstate.add_argument("key_id")
    suspend_account = actions.add_parser(
        "suspend-account",
        help="refuse every key of an account until reinstated (a disputed payment does this)",
    )
    suspend_account.add_argument("account", help="the account's id (its owner key's)")
    suspend_account.add_argument("--reason", default="suspended by the operator")
    reinstate_account = actions.add_parser(
        "reinstate-account", help="the operator's decision on a dispute: the account's keys let in again"
    )
    reinstate_account.add_argument("account")
    credit = actions.add_parser("credit", help="top a credit-based key up (kept as an audit item)")
    credit.add_argument("--key", required=True, help="the key's id")
    credit.add_argument("--add", required=True, help="credits to add (up to 3 decimals)")
    credit.add_argument("--reference", help="the payment's reference: a top-up is made once per reference")
    credit.add_argument("--note", help="a note kept with the top-up")
    secret = actions.add_parser(
        "callback-secret", help="the secret a key's callbacks are signed with (give it to its customer)"
    )
    secret.add_argument("--key", required=True, help="the key's id")
    secret.add_argument(
        "--rotate", action="store_true", help="a new secret; the old one keeps signing for --grace seconds"
    )
    secret.add_argument(
        "--grace", type=int, default=86400, help="seconds the old secret signs after --rotate"
    )
    keys.set_defaults(handler=_keys)

    usage = commands.add_parser("usage", help="admin: monthly statements per customer")
    _stack_arguments(usage)
    reports = usage.add_subparsers(dest="report", required=True)
    statement = reports.add_parser("statement", help="calls, deliveries, credits and amount per customer")
    statement.add_argument("--month", required=True, help="YYYY-MM (UTC)")
    statement.add_argument("--format", choices=["csv", "json"], default="csv")
    statement.add_argument(
        "--price-per-credit",
        type=float,
        default=None,
        help="money per credit (default: PRICE_PER_CREDIT or 0.20)",
    )
    statement.add_argument("--currency", default="USD")
    usage.set_defaults(handler=_usage)

    billing = commands.add_parser("billing", help="admin: card payments (refunds)")
    _stack_arguments(billing)
    payments = billing.add_subparsers(dest="billing_action", required=True)
    refund = payments.add_parser(
        "refund", help="refund a card payment through Stripe and take its unspent credits back"
    )
    refund.add_argument("--payment", required=True, help="the PaymentIntent's id (pi_...)")
    billing.set_defaults(handler=_billing)

    deploy = commands.add_parser("deploy", help="admin: what the AWS account needs before and after a deploy")
    steps = deploy.add_subparsers(dest="step", required=True)
    check = steps.add_parser(
        "check", help="the account's Lambda and API Gateway settings against what the stack needs"
    )
    check.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter as you will deploy it (as sam deploy's --parameter-overrides)",
    )
    check.add_argument(
        "--template", default=None, help="the SAM template to deploy (default: the checkout's template.yaml)"
    )
    prune = steps.add_parser(
        "prune", help="delete SnapStart versions no alias points at (each costs a month)"
    )
    prune.add_argument("--stack", default=None, help="stack name (default: ALPHACUT_STACK or alphacut)")
    prune.add_argument("--keep", type=int, default=1, help="newest versions kept besides the aliased ones")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    deploy.set_defaults(handler=_deploy)
    return parser


def _deploy(args: argparse.Namespace) -> int:
    import boto3

    from alphacut.aws import preflight

    if args.step == "check":
        # the dev tools' translation (as sam deploy's): what it reserves is read from it, not restated
        from alphacut_dev.template import TEMPLATE, translate_template

        parameters = dict(item.split("=", 1) for item in args.parameter if "=" in item)
        template = translate_template(Path(args.template) if args.template else TEMPLATE, parameters)
        shape = preflight.StackShape.from_parameters(parameters, template)
        findings = preflight.check(
            boto3.client("lambda"), boto3.client("service-quotas"), boto3.client("apigateway"), shape
        )
        print(preflight.render(findings))
        blocking = [f for f in findings if f.verdict == "blocks"]
        lacking = [f for f in findings if f.verdict == "lacks"]
        if blocking:
            print(
                f"{len(blocking)} setting(s) the account refuses: sam deploy would roll back; fix them first"
            )
        else:
            print(
                "the account can take the stack"
                + (f"; it lacks {len(lacking)} thing(s) above" if lacking else "")
            )
        return 1 if blocking else 0
    stack = args.stack or os.environ.get("ALPHACUT_STACK", "alphacut")
    functions = [
        item["PhysicalResourceId"]
        for page in boto3.client("cloudformation")
        .get_paginator("list_stack_resources")
        .paginate(StackName=stack)
        for item in page["StackResourceSummaries"]
        if item["ResourceType"] == "AWS::Lambda::Function"
    ]
    gone = preflight.prune_versions(boto3.client("lambda"), functions, args.keep, args.dry_run)
    for version in gone:
        print(f"{'would delete' if args.dry_run else 'deleted'} {version.function}:{version.version}")
    cost = preflight.monthly_cache_cost(gone)
    dry = " (dry run)" if args.dry_run else ""
    print(f"{len(gone)} version(s), ${cost:.2f} a month of SnapStart cache{dry}")
    return 0


def _stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default=None, help="stack name (default: ALPHACUT_STACK or alphacut)")
    parser.add_argument(
        "--usage-table",
        default=None,
        help="the stack's usage table (default: USAGE_TABLE or the stack's output)",
    )


def say_engine(stream: TextIO = sys.stderr) -> None:
    """The engine choice (``alphacut.models.engines`` logs it once) on stderr, as the CLI's own lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("alphacut: %(message)s"))
    logger = logging.getLogger("alphacut.engines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    say_engine()
    try:
        status: int = args.handler(args)
    except SettingError as error:  # a wrong ALPHACUT_* variable: its message names it
        print(f"alphacut: {error}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
