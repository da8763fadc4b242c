"""Where the test suite's time goes: a pytest plugin that adds up JAX's compile events per test.

    PYTHONPATH=experiments python -m pytest -p suite_compile_events   # the README's test command, recorded
    python experiments/suite_compile_events.py                         # totals, the costliest tests and functions

Every pytest process (the controller and each pytest-xdist worker) listens to JAX's duration events
(``jax.monitoring``): backend compilation, tracing to a jaxpr and lowering to MLIR, and charges each to the test
running at the time, and each backend compilation also to the name of the function compiled (``jit(step_one)``,
``jit(multiply)``: the engine's programs against eager operations). At the end each process writes ``<pid>.json``
(per test) and ``<pid>.functions.json`` (per function) into ``$DIPJAX_COMPILE_EVENTS`` (default
``experiments/results/suite_compile_events/``). CLI runs the tests start in subprocesses are not counted. Measured
with it: backend compilation is about two-thirds of the suite's worker time (README, the paragraph under the test command).
"""

from __future__ import annotations

import glob
import json
import os

OUT = os.environ.get("DIPJAX_COMPILE_EVENTS",
                     os.path.join(os.path.dirname(__file__), "results", "suite_compile_events"))
EVENTS = {"/jax/core/compile/backend_compile_duration": "compile", "/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower"}
FUNCTIONS = ".functions.json"
_STATS: dict[str, dict[str, float]] = {}
_BY_FUNCTION: dict[str, dict[str, float]] = {}
_CURRENT = ["(collection)"]


def _add(stats: dict, key: str, kind: str, duration: float) -> None:
    s = stats.setdefault(key, {})
    s[kind] = s.get(kind, 0.0) + duration
    s[kind + "_n"] = s.get(kind + "_n", 0) + 1


def _listener(event, duration, fun_name=None, **_):
    kind = EVENTS.get(event)
    if kind:
        _add(_STATS, _CURRENT[0], kind, duration)
        if kind == "compile":
            _add(_BY_FUNCTION, str(fun_name), kind, duration)


def pytest_configure(config):
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(_listener)


def pytest_runtest_setup(item):
    _CURRENT[0] = item.nodeid


def pytest_sessionfinish(session):
    os.makedirs(OUT, exist_ok=True)
    for suffix, stats in ((".json", _STATS), (FUNCTIONS, _BY_FUNCTION)):
        with open(os.path.join(OUT, f"{os.getpid()}{suffix}"), "w") as f:
            json.dump(stats, f, indent=0, sort_keys=True)


def _merged(paths) -> dict[str, dict[str, float]]:
    """One file per process, added up (every worker records its own collection, for one)."""
    stats: dict[str, dict[str, float]] = {}
    for path in sorted(paths):
        with open(path) as f:
            for key, counts in json.load(f).items():
                merged = stats.setdefault(key, {})
                for k, v in counts.items():
                    merged[k] = merged.get(k, 0) + v
    return stats


def main() -> None:
    paths = glob.glob(os.path.join(OUT, "*.json"))
    stats = _merged(p for p in paths if not p.endswith(FUNCTIONS))
    functions = _merged(p for p in paths if p.endswith(FUNCTIONS))
    if not stats:
        raise SystemExit(f"no recorded run in {OUT}; record one with: PYTHONPATH=experiments python -m pytest -p "
                         "suite_compile_events")
    totals = {k: sum(s.get(k, 0) for s in stats.values()) for k in ("compile", "compile_n", "trace", "lower")}
    print(f"{len(stats)} tests: {totals['compile_n']:.0f} backend compilations in {totals['compile']:.0f} s, tracing "
          f"{totals['trace']:.0f} s, lowering {totals['lower']:.0f} s")
    for test, s in sorted(stats.items(), key=lambda kv: -kv[1].get("compile", 0))[:30]:
        print(f"{s.get('compile', 0):7.1f} s  {s.get('compile_n', 0):4.0f} compilations  {test}")
    if functions:  # recorded since the per-function split was added
        print("\nby function compiled (the 20 costliest):")
        for name, s in sorted(functions.items(), key=lambda kv: -kv[1]["compile"])[:20]:
            print(f"{s['compile']:7.1f} s  {s['compile_n']:4.0f} compilations  {name}")


if __name__ == "__main__":
    main()
