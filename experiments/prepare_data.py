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

Tube datasets (``cfjax_ucf101_24``, ``cfjax_jhmdb``, ``cfjax_ucfsports``,
``cfjax_synthetic/tubes``) also get CFAD's six k-means anchor sizes of their
training boxes, in ``cfad_anchors.json`` next to the dataset
(:mod:`cfjax.train.anchors`); a CFAD config without ``model.anchor_sizes``
reads them. Run again on a prepared dataset (``--manual_dir`` is then not
needed), it only writes that file if it is missing.
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
    """Builds the dataset; returns ``{"builder", "splits": {split: n}, "skipped": {split: [...]},
    "anchors": path of CFAD's anchor file (tube datasets) or None}``."""
    args = parse_args(argv)
    import tensorflow_datasets as tfds

    from cfjax.data.builders import BUILDERS, build_dataset, dataset_builder

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
    # Only options that change the config's defaults go into the name.
    overrides = {k: v for k, v in overrides.items() if not hasattr(base, k) or getattr(base, k) != v}
    if name != "cfjax_synthetic" and (args.manual_dir is None or not os.path.isdir(args.manual_dir)):
        prepared = args.manual_dir is None and dataset_builder(name, config, args.data_dir, **overrides).is_prepared()
        if not prepared:  # a prepared dataset needs no manual directory
            what = "required" if args.manual_dir is None else f"{args.manual_dir} is not a directory"
            raise SystemExit(f"--manual_dir: {what} for {name}; its layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")

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
    anchors = _cfad_anchors(builder)
    return {"builder": builder, "splits": splits, "skipped": skipped, "anchors": anchors}


def _cfad_anchors(builder):
    """Writes CFAD's anchor file of a tube dataset if it is missing; returns its path (else ``None``)."""
    from pathlib import Path

    from cfjax.train.anchors import ANCHORS_FILE, write_anchor_file

    if "tube_boxes" not in builder.info.features:
        return None
    path = Path(builder.data_path) / ANCHORS_FILE
    if path.exists():
        print(f"CFAD anchors: {path} (exists, kept)")
        return path
    try:
        path, contents = write_anchor_file(builder)
    except ValueError as e:  # too few boxes to cluster (a tiny build)
        print(f"CFAD anchors: not written: {e}")
        return None
    sizes = ", ".join(f"{w:.3f}x{h:.3f}" for w, h in contents["per_short_side"])
    print(f"CFAD anchors: k-means of {contents['num_boxes']} training boxes, w x h per short side: {sizes} -> {path}")
    return path


if __name__ == "__main__":
    from cfjax.data.builders import EmptySplitError

    try:
        main()
    except (FileNotFoundError, EmptySplitError, KeyError, ValueError) as e:
        sys.exit(f"prepare_data: error: {e}")
