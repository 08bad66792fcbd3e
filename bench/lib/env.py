"""Repository paths, git state, machine description and tool installation."""

import os
import platform
import shutil
import subprocess
import sys

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH_DIR)
OUT_DIR = os.path.join(BENCH_DIR, "out")
WORK_DIR = os.path.join(BENCH_DIR, "work")  # git-ignored; same ext4 filesystem as the repo
DOCKET_BIN = os.path.join(ROOT, "zig-out", "bin", "docket")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info():
    """HEAD, and whether tracked files differ from it ("dirty") or untracked files exist."""
    status = _git("status", "--porcelain")
    lines = status.splitlines() if status else []
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": any(not l.startswith("??") for l in lines) if status is not None else None,
        "untracked_files": sum(1 for l in lines if l.startswith("??")),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
    }


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def loadavg():
    parts = _read("/proc/loadavg").split()
    return [float(x) for x in parts[:3]] if len(parts) >= 3 else None


def machine_info():
    model = None
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = None
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_kib": mem_kib,
        "mem_total_gib": round(mem_kib / 1048576, 1) if mem_kib else None,
        "kernel": platform.release(),
        "arch": platform.machine(),
        "hostname": platform.node(),
        "python": platform.python_version(),
    }


def dpkg_installed(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return out.returncode == 0 and "ok installed" in out.stdout


def ensure_apt(packages, commands=None):
    """Install Debian packages with apt-get when missing.

    `commands` maps package -> executable that proves it is present (checked on PATH and in /usr/sbin).
    """
    missing = []
    for pkg in packages:
        exe = (commands or {}).get(pkg)
        if exe and (shutil.which(exe) or os.path.exists(os.path.join("/usr/sbin", exe))):
            continue
        if not exe and dpkg_installed(pkg):
            continue
        missing.append(pkg)
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"==> installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env)


def ensure_docket():
    """Build zig-out/bin/docket with .ci/do build when it is missing; return its path."""
    if not os.access(DOCKET_BIN, os.X_OK):
        log("==> zig-out/bin/docket missing: running .ci/do build")
        subprocess.run([os.path.join(ROOT, ".ci", "do"), "build"], check=True, cwd=ROOT)
    if not os.access(DOCKET_BIN, os.X_OK):
        raise SystemExit(f"bench: {DOCKET_BIN} still missing after .ci/do build")
    return DOCKET_BIN


def build_ref(ref, work_dir):
    """Build Docket from a clean export of git REF (e.g. HEAD) inside work_dir; return the binary.

    Uncommitted work of other people in the tree is left out: `git archive REF` is unpacked into
    work_dir/src-REF, vendor/src is linked from the main tree (run .ci/do build once if missing),
    and the pinned zig in .tools/bin builds it there (ReleaseFast, static musl as build.zig says).
    """
    commit = _git("rev-parse", ref)
    if not commit:
        raise SystemExit(f"bench: unknown git ref {ref!r}")
    src = os.path.join(work_dir, f"src-{commit[:10]}")
    os.makedirs(src, exist_ok=True)
    log(f"==> building docket from a clean export of {ref} ({commit[:10]}) in {os.path.relpath(src, ROOT)}")
    archive = subprocess.Popen(["git", "-C", ROOT, "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"bench: git archive {ref} failed")
    vendor_src = os.path.join(ROOT, "vendor", "src")
    zig = os.path.join(ROOT, ".tools", "bin", "zig")
    if not os.path.isdir(vendor_src) or not os.access(zig, os.X_OK):
        subprocess.run([os.path.join(ROOT, ".ci", "do"), "build"], check=True, cwd=ROOT)
    os.symlink(vendor_src, os.path.join(src, "vendor", "src"))
    subprocess.run([zig, "build"], check=True, cwd=src)
    return os.path.join(src, "zig-out", "bin", "docket"), commit


def snapshot_docket(work_dir, build=False, ref=None, binary=None):
    """Copy the Docket binary under test into the run's scratch dir and describe it.

    Default: zig-out/bin/docket (built with .ci/do build when missing, or always with build=True).
    With ref: built from a clean `git archive ref` (see build_ref). With binary: that file. Others rebuild zig-out/ while
    a benchmark runs; the copy keeps one binary for the whole run. Returns {"path", "source",
    "sha256", "version", "built_from", "matches_head"} (matches_head: the commit baked into
    --version is HEAD's).
    """
    import hashlib
    if binary:
        src_bin, source = os.path.abspath(binary), os.path.abspath(binary)
    elif ref:
        src_bin, commit = build_ref(ref, work_dir)
        source = f"clean build of git {ref} ({commit})"
    else:
        if build:
            log("==> --build: running .ci/do build")
            subprocess.run([os.path.join(ROOT, ".ci", "do"), "build"], check=True, cwd=ROOT)
        src_bin = ensure_docket()
        source = os.path.relpath(DOCKET_BIN, ROOT)
    dst = os.path.join(work_dir, "docket")
    shutil.copy2(src_bin, dst)
    with open(dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    version = tool_version([dst, "--version"])
    head = _git("rev-parse", "HEAD") or ""
    baked = version.rsplit("+", 1)[-1].split()[0] if version and "+" in version else None
    return {"path": dst, "source": source, "sha256": digest, "version": version,
            "built_from": baked, "matches_head": bool(baked and head.startswith(baked))}


def tool_version(argv):
    """First line of a tool's version output (stdout or stderr), or None."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def which(name):
    return shutil.which(name) or (os.path.join("/usr/sbin", name)
                                  if os.access(os.path.join("/usr/sbin", name), os.X_OK) else None)
