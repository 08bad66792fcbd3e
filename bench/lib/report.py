"""The run context handed to every benchmark: records commands and durations, prints tables,
and writes bench/out/NAME.json with the common envelope (commit, date, machine, commands)."""

import datetime
import json
import os
import sys
import tempfile
import time

from . import env


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Context:
    def __init__(self, name, args, argv):
        self.name = name
        self.args = args
        self.argv = argv
        self.started_utc = utc_now()
        self._t0 = time.monotonic()
        self.commands = []       # every external command run, in order, with its purpose
        self.durations = {}      # phase -> seconds
        self.tools = {}          # tool -> version line
        self.notes = []          # warnings / anomalies found during the run
        self.git = env.git_info()
        self.machine = env.machine_info()
        self.loadavg_start = env.loadavg()
        os.makedirs(env.WORK_DIR, exist_ok=True)
        self.work_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=env.WORK_DIR)

    # ---- recording -------------------------------------------------------------------------
    def command(self, cmd, purpose):
        self.commands.append({"purpose": purpose, "command": cmd})

    def phase(self, name):
        """Context manager timing a phase into self.durations[name] (seconds)."""
        ctx = self

        class _Phase:
            def __enter__(self):
                self.t = time.monotonic()

            def __exit__(self, *exc):
                ctx.durations[name] = round(ctx.durations.get(name, 0) + time.monotonic() - self.t, 3)
        return _Phase()

    def note(self, msg):
        self.notes.append(msg)
        env.log(f"NOTE: {msg}")

    def elapsed(self):
        return time.monotonic() - self._t0

    # ---- output ----------------------------------------------------------------------------
    def write_json(self, payload):
        self.durations["total"] = round(self.elapsed(), 3)
        doc = {
            "benchmark": self.name,
            "schema": 1,
            "date_utc": self.started_utc,
            "finished_utc": utc_now(),
            "git": self.git,
            "machine": dict(self.machine, loadavg_start=self.loadavg_start, loadavg_end=env.loadavg()),
            "tools": self.tools,
            "invocation": "bench/run " + " ".join(self.argv),
            "settings": {k: v for k, v in vars(self.args).items() if not k.startswith("_")},
        }
        doc.update(payload)
        doc["notes"] = self.notes
        doc["commands"] = self.commands
        doc["durations_s"] = self.durations
        out_dir = self.args.out_dir or env.OUT_DIR
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{self.name}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
        return path


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 10000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(columns, rows, out=sys.stdout):
    """Print rows (lists of already formatted cells) under column headers, right-aligned numbers."""
    cells = [[str(c) for c in columns]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % w for i, w in enumerate(widths))
    print(line.format(*cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells[1:]:
        print(line.format(*r), file=out)
    out.flush()
