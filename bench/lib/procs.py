"""Processes: start pinned (taskset), wait for a port, read CPU time and memory from /proc, stop.

Every process started here is remembered so `cleanup_all()` (bench/run calls it from a finally
block, which SIGINT and SIGTERM also reach) can kill what is still alive - by PID, never by name.
"""

import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
_LIVE = {}  # pid -> Popen


def set_autogroup_nice(pid, nice):
    """With kernel autogroups (sched_autogroup_enabled=1) each session is scheduled as one group,
    so `nice` only ranks processes inside their own session. Every process started here has its
    own session; giving that session the same nice value makes the priority count against other
    sessions' work (builds, test suites) too. Best effort: returns False if it could not."""
    if not nice:
        return True
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return True
    except OSError:
        return False


def taskset_prefix(cpu, nice=None):
    """`taskset -c CPU [nice -n N]`: pinning and, optionally, scheduling priority (both exec, so the
    PID Popen returns is the program's own)."""
    pre = [] if cpu is None else ["taskset", "-c", str(cpu)]
    if nice:
        pre += ["nice", "-n", str(nice)]
    return pre


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime+stime of the whole process (all threads) in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" : state is field 3, utime 14, stime 15 (1-based in proc(5))
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sched_seconds(pid):
    """Summed over the process's threads, from /proc/PID/task/*/schedstat: seconds on a CPU and
    seconds spent runnable but waiting for a CPU (run-queue wait). The wait is the direct measure
    of interference: on a quiet machine with one pinned process per CPU it stays near zero."""
    run = wait = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                r, w, _ = f.read().split()
            run += int(r)
            wait += int(w)
        except (OSError, ValueError):
            pass
    return {"run_s": run / 1e9, "wait_s": wait / 1e9}


def memory_kib(pid):
    """VmRSS and VmHWM (peak RSS) in KiB from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, val = line.split(":", 1)
                out[key] = int(val.split()[0])
    return {"rss_kib": out.get("VmRSS"), "rss_peak_kib": out.get("VmHWM")}


def cpu_times(cpus):
    """Per listed CPU, seconds since boot from /proc/stat: "task" (user+nice+system, i.e. processes),
    "irq" (irq+softirq - loopback TCP work lands here), "steal" (hypervisor) and "busy" (all non-idle)."""
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            name = line.split(" ", 1)[0]
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                v = [int(x) for x in line.split()[1:9]] + [0] * 8
                user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
                res[int(name[3:])] = {"task": (user + nice + system) / CLK_TCK,
                                      "irq": (irq + softirq) / CLK_TCK,
                                      "steal": steal / CLK_TCK,
                                      "busy": (user + nice + system + irq + softirq + steal) / CLK_TCK}
    return res


def cpu_times_delta(before, after):
    return {c: {k: round(after[c][k] - before[c][k], 3) for k in before[c]} for c in before}


class Proc:
    """A started process with its argv, log file and pinning."""

    def __init__(self, name, argv, cpu=None, log_path=None, cwd=None, env=None, nice=None):
        self.name = name
        self.argv = taskset_prefix(cpu, nice) + list(argv)
        self.cpu = cpu
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        # own session: Ctrl-C reaches only the harness, which then stops children in order
        self.popen = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
                                      start_new_session=True)
        self.pid = self.popen.pid  # taskset execs the program, so this is the server's own PID
        set_autogroup_nice(self.pid, nice)
        self.started = time.monotonic()
        _LIVE[self.pid] = self.popen
        self.returncode = None

    @property
    def command(self):
        return " ".join(_quote(a) for a in self.argv)

    def alive(self):
        return self.popen.poll() is None

    def log_text(self):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_port(self, host, port, timeout=15.0):
        """Poll until host:port accepts a connection; fail loudly if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} before listening on "
                                   f"{host}:{port}; log:\n{self.log_text()[-2000:]}")
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not listen on {host}:{port} within {timeout} s")

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

    def memory_kib(self):
        return memory_kib(self.pid)

    def sched_seconds(self):
        return sched_seconds(self.pid)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal the process, wait up to `timeout`, then SIGKILL. Returns its exit code."""
        if self.alive():
            try:
                self.popen.send_signal(sig)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.returncode = self.popen.returncode
        _LIVE.pop(self.pid, None)
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.returncode


def run_measured(argv, cpu=None, timeout=None, cwd=None, nice=None):
    """Run a command to completion (pinned), returning stdout, stderr, exit code, wall and CPU time.

    CPU time comes from wait4's rusage of the child, so it covers the load generator itself.
    """
    import tempfile
    full = taskset_prefix(cpu, nice) + list(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
                             start_new_session=True)
        _LIVE[p.pid] = p
        set_autogroup_nice(p.pid, nice)
        sched_last = None  # last schedstat sample before exit (at most ~10 ms missing)
        try:
            deadline = None if timeout is None else t0 + timeout
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                sched_last = sched_seconds(p.pid) or sched_last
                if deadline and time.monotonic() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    break
                time.sleep(0.01)
        finally:
            _LIVE.pop(p.pid, None)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "command": " ".join(_quote(a) for a in full),
            "returncode": p.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
            "wall_seconds": wall,
            "cpu_seconds": ru.ru_utime + ru.ru_stime,
            "runqueue_wait_seconds": sched_last["wait_s"] if sched_last else None,
        }


def cleanup_all():
    """Kill every process started here that is still alive (by PID)."""
    for pid, p in list(_LIVE.items()):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except OSError:
                pass
        _LIVE.pop(pid, None)


def _quote(arg):
    import shlex
    return shlex.quote(str(arg))


def wait_quiet(cpus, max_busy=0.10, window=1.0, sustain=3, timeout=120.0):
    """Wait until every CPU in `cpus` has been busy less than `max_busy` (fraction) for `sustain`
    consecutive windows of `window` seconds - i.e. other work on the box has stopped.

    Returns {"quiet": bool, "waited_s": float, "busy": {cpu: fraction of the last window}};
    never waits much past `timeout` (at least one window is always observed).
    """
    t0 = time.monotonic()
    streak = 0
    while True:
        b0 = cpu_times(cpus)
        time.sleep(window)
        d = cpu_times_delta(b0, cpu_times(cpus))
        busy = {c: round(d[c]["busy"] / window, 3) for c in d}
        waited = time.monotonic() - t0
        streak = streak + 1 if all(v <= max_busy for v in busy.values()) else 0
        if streak >= sustain:
            return {"quiet": True, "waited_s": round(waited, 1), "busy": busy}
        if waited >= timeout:
            return {"quiet": streak > 0, "waited_s": round(waited, 1), "busy": busy}


def wait_quiet_before_run(ctx, why):
    """What both benches do before a measured run: wait (within what is left of the run's
    --wait-quiet budget) until the server's and the client's CPUs are quiet, and note it in
    the results when they never were."""
    a = ctx.args
    budget = a.wait_quiet - ctx.quiet_waited
    if budget <= 0:
        return
    with ctx.phase("wait_quiet"):
        q = wait_quiet({a.server_cpu, a.client_cpu}, window=0.5, sustain=2, timeout=budget)
    ctx.quiet_waited += q["waited_s"]
    if not q["quiet"]:
        ctx.note(f"CPUs still busy with other work ({why}): {q['busy']}; measuring anyway")
