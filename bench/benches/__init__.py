"""Benchmark registry: every module in this package that defines NAME is a benchmark.

To add one, create bench/benches/<name>.py with:

    NAME = "evlog"                      # what `bench/run NAME` takes
    SUMMARY = "one line for --list"
    def add_arguments(parser): ...       # optional: its own options (argparse)
    def run(ctx): ...                    # measure; print tables; return the JSON payload (dict)

`ctx` is a bench.lib.report.Context (ctx.args, ctx.command(), ctx.phase(), ctx.note(),
ctx.work_dir); the runner writes bench/out/NAME.json from the returned dict plus the common
envelope (commit, date, machine, commands, durations). No edit of this file is needed.
"""

import importlib
import pkgutil


def discover():
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(mod, "NAME", None)
        if name:
            if name in found:
                raise SystemExit(f"bench: two modules register the benchmark name {name!r}")
            found[name] = mod
    return found
