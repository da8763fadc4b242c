"""What the medical figure scripts (Figures 1 and 5) share: the simulated MRI task, their common options, the
defaults of a ``--quick`` run, and where and how they write their results."""

from __future__ import annotations

import os

import jax

from dipjax.report import write_json
from dipjax.tasks import task_config
from dipjax.tasks.mri import center_fraction_for

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def add_common_arguments(ap, name: str) -> None:
    """``--coils``, ``--maps``, ``--mri-image``, ``--seed``, ``--out``, ``--overwrite``, ``--quick``."""
    ap.add_argument("--quick", action="store_true", help="a small run of minutes (see the module docstring)")
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--maps", choices=("birdcage", "espirit"), default="birdcage",
                    help="coil maps of the reconstruction: the simulating ones (default) or ESPIRiT from the data")
    ap.add_argument("--mri-image", default="mr_abdomen", help="MRI magnitude image: bundled name or file (mr_abdomen)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help=f"results/{name}[_quick]")
    ap.add_argument("--overwrite", action="store_true")


def mri_task(args, size: int):
    """4× multi-coil MRI as the scripts simulate it (8 % centre columns, at least ESPIRiT's 8)."""
    return task_config("mri", coils=args.coils, maps=args.maps, center_fraction=center_fraction_for(size))


def resolve_defaults(args, defaults) -> None:
    """Set every option left at ``None`` from ``defaults``: ``(name, full-run value, --quick value)`` rows."""
    for k, full, quick in defaults:
        if getattr(args, k) is None:
            setattr(args, k, quick if args.quick else full)


def output_paths(ap, args, name: str) -> tuple[str, str]:
    """``(figure.png, metrics.json)`` in ``--out`` (default results/<name>[_quick]); refuses to replace results
    unless ``--overwrite``."""
    out = args.out or os.path.join(RESULTS, name + ("_quick" if args.quick else ""))
    png, js = os.path.join(out, "figure.png"), os.path.join(out, "metrics.json")
    if not args.overwrite and (os.path.exists(png) or os.path.exists(js)):
        ap.error(f"{out} already holds results; pass --overwrite to replace them")
    os.makedirs(out, exist_ok=True)
    return png, js


def write_results(path: str, args, rows: dict, checks: dict) -> None:
    """The run's options, its per-row records and checks, and the device, as strict JSON."""
    write_json(path, {"config": {k: v for k, v in vars(args).items() if k not in ("out", "overwrite")},
                      "rows": rows, "checks": checks, "device": str(jax.devices()[0].device_kind)})
