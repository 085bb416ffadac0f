"""Builds a cfjax dataset (synthetic or real) as TFDS array_record.

    python -m experiments.prepare_data --dataset NAME[/CONFIG] --data_dir DIR \
        [--manual_dir DIR] [--fps F] [--short_side S] [--jpeg_quality Q|raw] [--set KEY=VALUE ...]

NAME is a builder name (``cfjax_charades``, ``cfjax_kinetics``, ``cfjax_ucf101``,
``cfjax_hmdb51``, ``cfjax_ucf101_24``, ``cfjax_jhmdb``, ``cfjax_ucfsports``,
``cfjax_synthetic``; the ``cfjax_`` prefix may be left out); CONFIG defaults to the builder's first
config. Real datasets need ``--manual_dir`` laid out as the builder's docstring
(and README) says. ``--set`` overrides any other config field
(``--set num_train=8`` for synthetic data, ``--set source=frames`` for Charades).
Options that differ from the config's defaults are spelled out in the built
config's name, so different builds never share a directory.

Shows TFDS's tqdm progress bars while examples are generated, then prints a
summary: examples per split, and the skipped (missing or corrupt) videos, which
are also listed in ``skipped.json`` next to the dataset.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys

__all__ = ["main", "parse_args"]


def _value(text: str):
    if text.lower() in ("none", "raw"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.prepare_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="NAME[/CONFIG], e.g. cfjax_kinetics/k400 or ucf101/split2")
    p.add_argument("--data_dir", required=True, help="where TFDS writes NAME/CONFIG/VERSION")
    p.add_argument("--manual_dir", default=None, help="the real dataset's files (layout: README / builder docstring)")
    # Left out = the config's default (argparse.SUPPRESS: no attribute unless given).
    p.add_argument("--fps", type=_value, default=argparse.SUPPRESS, help="output frame rate ('none': native)")
    p.add_argument("--short_side", type=_value, default=argparse.SUPPRESS, help="resize short side ('none': keep)")
    p.add_argument(
        "--jpeg_quality", type=_value, default=argparse.SUPPRESS, help="JPEG quality 1..95, or 'raw' for uint8 tensors"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--num_workers", type=int, default=1, help="decoding threads (real datasets)")
    p.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Builds the dataset; returns ``{"builder", "splits": {split: n}, "skipped": {split: [...]}}``."""
    args = parse_args(argv)
    import tensorflow_datasets as tfds

    from cfjax.data.builders import BUILDERS, build_dataset

    name, _, config = args.dataset.partition("/")
    if name not in BUILDERS and f"cfjax_{name}" in BUILDERS:
        name = f"cfjax_{name}"
    if name not in BUILDERS:
        raise SystemExit(f"--dataset: unknown dataset {name!r}; known: {sorted(BUILDERS)}")
    cls = BUILDERS[name]
    config = config or cls.BUILDER_CONFIGS[0].name
    base = {c.name: c for c in cls.BUILDER_CONFIGS}.get(config)
    if base is None:
        raise SystemExit(
            f"--dataset: unknown config {config!r} of {name}; known: {[c.name for c in cls.BUILDER_CONFIGS]}"
        )

    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--set: expected KEY=VALUE, got {item!r}")
        overrides[key.strip()] = _value(value.strip())
    for key in ("fps", "short_side", "jpeg_quality"):
        if hasattr(args, key):
            overrides[key] = getattr(args, key)
    if name == "cfjax_synthetic":
        for key in ("fps", "short_side", "jpeg_quality"):
            if key in overrides:
                raise SystemExit(f"--{key}: not an option of cfjax_synthetic (use --set height=... etc.)")
    elif args.manual_dir is None or not os.path.isdir(args.manual_dir):
        what = "required" if args.manual_dir is None else f"{args.manual_dir} is not a directory"
        raise SystemExit(f"--manual_dir: {what} for {name}; its layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    # Only options that change the config's defaults go into the name.
    overrides = {k: v for k, v in overrides.items() if not hasattr(base, k) or getattr(base, k) != v}

    tfds.display_progress_bar(not args.no_progress)
    builder = build_dataset(
        name, config, args.data_dir, manual_dir=args.manual_dir, num_workers=args.num_workers, **overrides
    )
    splits = {s: info.num_examples for s, info in builder.info.splits.items()}
    skipped = getattr(builder, "skipped", {}) if name != "cfjax_synthetic" else {}

    print(f"\n{name}/{builder.builder_config.name} -> {builder.data_path}")
    print(f"{'split':<12} {'examples':>9} {'skipped':>8}")
    for s in sorted(splits):
        print(f"{s:<12} {splits[s]:>9} {len(skipped.get(s, [])):>8}")
    total = sum(len(v) for v in skipped.values())
    if total:
        print(f"skipped {total} videos (listed in {builder.data_path}/skipped.json):")
        for s in sorted(skipped):
            for entry in skipped[s]:
                print(f"  {s}: {entry['video']}: {entry['reason']} ({entry['path']})")
    return {"builder": builder, "splits": splits, "skipped": skipped}


if __name__ == "__main__":
    from cfjax.data.builders import EmptySplitError

    try:
        main()
    except (FileNotFoundError, EmptySplitError, KeyError, ValueError) as e:
        sys.exit(f"prepare_data: error: {e}")
