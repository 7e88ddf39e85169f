"""``superposition sweep``: run an experiment over a grid of parameters and seeds, cached.

Usage::

    superposition sweep CONFIG.yaml [--executor local|processes|dask] [--workers N]
                        [--scheduler ADDRESS] [--store DIR | --no-store] [--json]
                        [--allow-import]
    superposition sweep --experiment uand --grid n_features=64,128 --grid width=32,64 \\
                        --param sparsity=3 --seeds 3
    superposition sweep --list
    superposition sweep --prune [--store DIR]

Every point is stored as one file under ``--store`` (default: ``$SUPERPOSITION_STORE``, else
``_build/sweeps``), so a sweep that is stopped (Ctrl-C, ``kill -9``, a lost worker) is resumed
by running the same command again; finished points are read back, not recomputed. Results of
other library versions are never reused; ``--prune`` deletes them from the store.

A config is code: the workers call the experiment it names. By default only the registered
experiments (``--list``) run; naming any importable ``package.module:function`` needs
``--allow-import``.

Config file (YAML)::

    experiment: uand          # a name from `superposition sweep --list` (or, with
                              # --allow-import, "package.module:function")
    params:                   # fixed keyword arguments of the experiment (optional)
      sparsity: 3
      n_inputs: 200
    grid:                     # every combination of these values; the first name varies slowest
      n_features: [64, 128, 256]
      width: [64, 128]
    grids:                    # or instead: a list of such grids, run in turn (their union)
      - {n_features: [64], width: [32, 64]}
      - {n_features: [1024], width: [512]}
    seeds: 3                  # N (seeds 0..N-1) or a list of seeds; default 1
    threshold:                # optional: the width bisection instead of the full grid
      param: width            #   integer parameter searched (not in grid or params)
      low: 8                  #   search range
      high: 4096
      metric: max_abs_error   #   a metric of the experiment ("a.b" for nested ones)
      at_most: 0.5            #   a seed passes if metric <= 0.5 (or at_least: ...)
      fraction: 0.9           #   a value passes if at least this fraction of seeds pass
      resolution: 0.05        #   relative resolution of the answer
      find: smallest          #   or largest
    store: _build/sweeps      # optional; the command-line flags override these three
    executor: processes
    workers: 2
    scheduler: tcp://10.0.0.5:8786

Command-line ``--experiment``, ``--grid NAME=V1,V2,...`` (or ``NAME=[V1, V2]``), ``--param
NAME=VALUE`` and ``--seeds`` add to or override the config file. Values are YAML scalars
(``64``, ``0.5``, ``1e-3``, ``gaussian``, ``null``). On Dask, ``--scheduler`` (or the
environment variable ``SUPERPOSITION_SCHEDULER``) names an existing scheduler; without one a
local cluster is started. Results are the same bits on every executor.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .cli import positive_int, require_memory
from .executors import EXECUTORS
from .experiments import EXPERIMENTS, experiment_bytes
from .store import STORE_ENV, Store, default_store, function_name
from .sweep import grid_points, sweep, threshold_sweep

CONFIG_KEYS = (
    "experiment",
    "params",
    "grid",
    "grids",
    "seeds",
    "threshold",
    "store",
    "executor",
    "workers",
    "scheduler",
)
THRESHOLD_KEYS = (
    "param",
    "low",
    "high",
    "metric",
    "at_most",
    "at_least",
    "fraction",
    "resolution",
    "find",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run an experiment over a grid of parameters and seeds (cached, resumable, Dask)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="sweep configuration file")
    p.add_argument(
        "--experiment",
        help="experiment name (see --list), or package.module:function with --allow-import",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="grid values of one parameter (repeat for more)",
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a fixed parameter"
    )
    p.add_argument("--seeds", metavar="N|S1,S2,...", help="N seeds (0..N-1) or a list")
    p.add_argument("--executor", choices=EXECUTORS, help="where points run (default local)")
    p.add_argument(
        "--workers", type=positive_int, help="processes for processes/local Dask (default: cores)"
    )
    p.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (implies dask)"
    )
    p.add_argument(
        "--store", metavar="DIR", help=f"result store (default ${STORE_ENV}, else _build/sweeps)"
    )
    p.add_argument("--no-store", action="store_true", help="keep no results on disk")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument(
        "--allow-import",
        action="store_true",
        help="let the experiment be any importable package.module:function (configs are code)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete the store's results of other library versions and exit",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    p.set_defaults(run=run)


# ---------------------------------------------------------------- config


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads ``1e-3`` as a float (YAML 1.2)."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def _yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{where}: invalid YAML{at}: {problem}") from None


def load_config(path: str) -> dict[str, Any]:
    """Read and check a sweep config file (see the module docstring)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"config {path!r}: {exc.strerror or exc}") from None
    cfg = _yaml(text, f"config {path!r}")
    if not isinstance(cfg, dict):
        raise ValueError(f"config {path!r}: expected a mapping of {', '.join(CONFIG_KEYS)}")
    return cfg


def _check_config(cfg: Mapping[str, Any]) -> None:
    unknown = sorted(set(cfg) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config: unknown key {unknown[0]!r}; allowed: {', '.join(CONFIG_KEYS)}")
    if not cfg.get("experiment"):
        raise ValueError("config: 'experiment' is required (or --experiment NAME)")
    for key in ("params", "grid", "threshold"):
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise ValueError(f"config: {key!r} must be a mapping, got {cfg[key]!r}")
    for name, values in (cfg.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"config: grid {name!r} must be a non-empty list, got {values!r}")
    grids = cfg.get("grids")
    if grids is not None:
        if cfg.get("grid") is not None:
            raise ValueError("config: give 'grid' or 'grids', not both")
        if cfg.get("threshold") is not None:
            raise ValueError("config: 'grids' runs a sweep, not a threshold search")
        if not isinstance(grids, list) or not grids:
            raise ValueError(f"config: grids must be a non-empty list of grids, got {grids!r}")
        for sub in grids:
            if not isinstance(sub, dict) or not sub:
                raise ValueError(
                    f"config: every entry of grids must be a grid mapping, got {sub!r}"
                )
            for name, values in sub.items():
                if not isinstance(values, list) or not values:
                    raise ValueError(
                        f"config: grids entry {name!r} must be a non-empty list, got {values!r}"
                    )
    seeds = cfg.get("seeds", 1)
    if isinstance(seeds, bool) or not (
        (isinstance(seeds, int) and seeds >= 1)
        or (isinstance(seeds, list) and seeds and all(_seed_ok(s) for s in seeds))
    ):
        raise ValueError(
            f"config: seeds must be an integer >= 1 or a list of integers >= 0, got {seeds!r}"
        )
    if cfg.get("executor") is not None and cfg["executor"] not in EXECUTORS:
        raise ValueError(
            f"config: executor must be one of {', '.join(EXECUTORS)}, got {cfg['executor']!r}"
        )
    workers = cfg.get("workers")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"config: workers must be an integer >= 1, got {workers!r}")
    for key in ("store", "scheduler"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            raise ValueError(f"config: {key} must be a string, got {cfg[key]!r}")
    th = cfg.get("threshold")
    if th is not None:
        unknown = sorted(set(th) - set(THRESHOLD_KEYS))
        if unknown:
            raise ValueError(
                f"config: unknown threshold key {unknown[0]!r}; allowed: {', '.join(THRESHOLD_KEYS)}"
            )
        for key in ("param", "low", "high", "metric"):
            if key not in th:
                raise ValueError(f"config: threshold needs {key!r}")
        if ("at_most" in th) == ("at_least" in th):
            raise ValueError("config: threshold needs exactly one of 'at_most' and 'at_least'")


def _seed_ok(s: Any) -> bool:
    return isinstance(s, int) and not isinstance(s, bool) and s >= 0


def resolve_experiment(name: str, allow_import: bool = False) -> Callable[..., Any]:
    """A function from :data:`~superposition.experiments.EXPERIMENTS`, or (``allow_import``)
    any importable ``package.module:function``."""
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    names = ", ".join(map(repr, EXPERIMENTS))
    if not allow_import:
        hint = (
            " (a config naming package.module:function needs --allow-import)" if ":" in name else ""
        )
        raise ValueError(f"experiment must be one of {names}, got {name!r}{hint}")
    if ":" not in name:
        raise ValueError(
            f"experiment must be one of {names} or 'package.module:function', got {name!r}"
        )
    module_name, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"experiment {name!r}: cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"experiment {name!r}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"experiment {name!r} is not callable")
    return obj


def _assignment(text: str, flag: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not name.strip().isidentifier():
        raise ValueError(f"{flag} expects NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _grid_values(text: str) -> list[Any]:
    name, value = _assignment(text, "--grid")
    if value.startswith("["):
        values = _yaml(value, f"--grid {name}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"--grid {name}: expected a non-empty list, got {value!r}")
        return values
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise ValueError(f"--grid {name}: expected V1,V2,..., got {value!r}")
    return [_yaml(v, f"--grid {name}") for v in items]


def _merge(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(load_config(args.config)) if args.config else {}
    if args.experiment:
        cfg["experiment"] = args.experiment
    if args.grid:
        grid = dict(cfg.get("grid") or {})
        for text in args.grid:
            grid[_assignment(text, "--grid")[0]] = _grid_values(text)
        cfg["grid"] = grid
    if args.param:
        params = dict(cfg.get("params") or {})
        for text in args.param:
            name, value = _assignment(text, "--param")
            params[name] = _yaml(value, f"--param {name}")
        cfg["params"] = params
    if args.seeds is not None:
        if re.fullmatch(r"\d+", args.seeds.strip()):
            cfg["seeds"] = int(args.seeds)
        elif re.fullmatch(r"\d+(\s*,\s*\d+)*", args.seeds.strip()):
            cfg["seeds"] = [int(s) for s in args.seeds.split(",")]
        else:
            raise ValueError(f"--seeds expects N or S1,S2,... (integers >= 0), got {args.seeds!r}")
        if cfg["seeds"] == 0:
            raise ValueError("--seeds must be >= 1")
    for key in ("executor", "workers", "scheduler", "store"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if cfg.get("scheduler") and not cfg.get("executor"):
        cfg["executor"] = "dask"
    return cfg


# ---------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args.json)
    if args.prune:
        if args.no_store:
            raise ValueError("--prune needs a store, not --no-store")
        store = Store(args.store or default_store())
        removed = store.prune()
        if args.json:
            print(json.dumps({"store": str(store.root), "removed": removed}))
        else:
            print(f"{store.root}: removed {removed} results of other library versions")
        return 0
    if not args.config and not args.experiment:
        raise ValueError("give a CONFIG.yaml or --experiment NAME (see --list)")
    if args.no_store and args.store:
        raise ValueError("--store and --no-store exclude each other")
    cfg = _merge(args)
    _check_config(cfg)
    fn = resolve_experiment(cfg["experiment"], allow_import=args.allow_import)
    store = None if args.no_store else cfg.get("store", default_store())
    common = {
        "params": cfg.get("params") or {},
        "store": store,
        "executor": cfg.get("executor"),
        "workers": cfg.get("workers"),
        "scheduler": cfg.get("scheduler"),
        "progress": False if args.json else None,
    }
    grid = cfg.get("grid") or {}
    seeds = cfg.get("seeds", 1)
    th = cfg.get("threshold")
    _check_memory(fn, cfg, grid, th)
    if cfg.get("grids") is not None:  # the union of several grids, in order
        points = [pt for sub in cfg["grids"] for pt in grid_points(sub)]
        names = dict.fromkeys(name for sub in cfg["grids"] for name in sub)
        grid = {name: list({repr(pt.get(name)): 0 for pt in points}) for name in names}
        table = sweep(fn, points, seeds, **common)
    elif th is None:
        table = sweep(fn, grid, seeds, **common)
    else:
        metric, bound = th["metric"], th.get("at_most", th.get("at_least"))
        at_most = "at_most" in th
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise ValueError(f"config: threshold bound must be a number, got {bound!r}")
        table = threshold_sweep(
            fn,
            grid,
            seeds,
            param=th["param"],
            low=th["low"],
            high=th["high"],
            passes=_criterion(metric, float(bound), at_most),
            find=th.get("find", "smallest"),
            fraction=th.get("fraction", 0.9),
            resolution=th.get("resolution", 0.02),
            **common,
        )
    out = {
        "experiment": cfg["experiment"],
        "function": function_name(fn),
        "store": store,
        "executor": cfg.get("executor") or "local",
        "info": table.info,
        "records": list(table),
    }
    if args.json:
        print(json.dumps(out))
    else:
        _print_table(table, grid, th)
        info = table.info
        print(
            f"\n{info['points']} points: {info['computed']} computed, {info['cached']} from the "
            f"store{_corrupt(info)} in {info['wall_time']:.3g} s; store: {store or '(none)'}"
        )
    return 0


def _check_memory(
    fn: Callable[..., Any],
    cfg: Mapping[str, Any],
    grid: Mapping[str, Any],
    th: Mapping[str, Any] | None,
) -> None:
    """Refuse, before any point runs, a sweep whose largest point would not fit in memory.

    A threshold search is checked at its first trial (``low``), as ``superposition width`` is.
    Experiments without an estimate are not checked.
    """
    params = dict(cfg.get("params") or {})
    if th is not None:
        params[th["param"]] = th["low"]
    if cfg.get("grids") is not None:
        points = [pt for sub in cfg["grids"] for pt in grid_points(sub, params)]
    else:
        points = grid_points(grid, params)
    worst: tuple[float, dict[str, Any]] | None = None
    for pt in points:
        try:
            nbytes = experiment_bytes(fn, pt)
        except ValueError:  # parameters that do not fit: the sweep reports them as it starts
            continue
        if nbytes is not None and (worst is None or nbytes > worst[0]):
            worst = (nbytes, pt)
    if worst is not None:
        at = ", ".join(f"{k}={v}" for k, v in worst[1].items())
        require_memory(worst[0], f"sweep {cfg['experiment']} at {at}")


def _corrupt(info: Mapping[str, Any]) -> str:
    n = info.get("corrupt", 0)
    return f" ({n} damaged file{'s' * (n != 1)} recomputed)" if n else ""


def _criterion(metric: str, bound: float, at_most: bool) -> Callable[[Mapping[str, Any]], bool]:
    def passes(metrics: Mapping[str, Any]) -> bool:
        value: Any = metrics
        for part in metric.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise ValueError(
                    f"threshold metric {metric!r} is not among the metrics: {', '.join(metrics)}"
                )
            value = value[part]
        if value is None:
            return False
        return value <= bound if at_most else value >= bound

    return passes


def _list(as_json: bool) -> int:
    rows = {}
    for name, fn in EXPERIMENTS.items():
        sig = inspect.signature(fn)
        rows[name] = {
            "function": function_name(fn),
            "params": [p for p in sig.parameters if p != "seed"],
            "summary": (inspect.getdoc(fn) or "").splitlines()[0],
        }
    if as_json:
        print(json.dumps(rows))
        return 0
    for name, row in rows.items():
        print(f"{name:<8} {row['summary']}")
        print(f"{'':<8} parameters: {', '.join(row['params'])}")
    return 0


def _print_table(table: list, grid: Mapping[str, Any], th: Mapping[str, Any] | None) -> None:
    varied = [name for name, values in grid.items() if len(values) > 1] or list(grid)
    if th is not None:
        cols = [*varied, th["param"], "tried", "time"]
        rows = [
            [
                *(r["params"].get(v) for v in varied),
                r["threshold"],
                len(r["passing"]),
                r["wall_time"],
            ]
            for r in table
        ]
    else:
        scalars = [
            k
            for k, v in (table[0]["metrics"] if table else {}).items()
            if isinstance(v, (int, float, str)) or v is None
        ][:6]
        cols = [*varied, "seed", *scalars, "time"]
        rows = [
            [
                *(r["params"].get(v) for v in varied),
                r["seed"],
                *(r["metrics"][k] for k in scalars),
                r["wall_time"],
            ]
            for r in table
        ]
    text = [[_fmt(v) for v in row] for row in rows]
    widths = [
        max(len(c), *(len(t[i]) for t in text)) if text else len(c) for i, c in enumerate(cols)
    ]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for t in text:
        print("  ".join(v.rjust(w) for v, w in zip(t, widths, strict=True)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
