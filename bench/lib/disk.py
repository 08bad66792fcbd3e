"""The block device under a path and its flush (fsync) counter from /proc/diskstats, so a run
can report how many durable writes per device flush a server achieved (perf.md section 6.4)."""

import os


def device_of(path):
    """(major, minor, name) of the whole disk holding `path` (a partition maps to its disk)."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    sys_dev = f"/sys/dev/block/{major}:{minor}"
    try:
        real = os.path.realpath(sys_dev)
        if os.path.exists(os.path.join(real, "partition")):
            real = os.path.dirname(real)
        name = os.path.basename(real)
        with open(os.path.join(real, "dev")) as f:
            major, minor = (int(x) for x in f.read().strip().split(":"))
        return major, minor, name
    except OSError:
        return major, minor, None


def counters(path):
    """{"device", "flushes", "writes", "sectors_written"} for the disk under `path`, or None when
    /proc/diskstats has no flush fields (kernels before 5.5) or the device is not listed."""
    major, minor, name = device_of(path)
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                parts = line.split()
                if int(parts[0]) == major and int(parts[1]) == minor and len(parts) >= 20:
                    # fields after the name: 1 reads, ... 5 writes, 7 sectors written, ... 16 flushes
                    return {"device": parts[2], "writes": int(parts[7]), "sectors_written": int(parts[9]),
                            "flushes": int(parts[18])}
    except (OSError, ValueError):
        pass
    return None


def delta(before, after):
    if not before or not after:
        return None
    return {k: after[k] - before[k] for k in ("flushes", "writes", "sectors_written")}


def process_io(pid):
    """Bytes the process (all its threads) caused to be read from / written to storage, from
    /proc/PID/io (write_bytes counts page-cache writes when they are made, i.e. what will reach
    the disk; WAL and log rewrites included). None if unreadable."""
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":", 1)
                out[k.strip()] = int(v)
    except (OSError, ValueError):
        return None
    return {"read_bytes": out.get("read_bytes"), "write_bytes": out.get("write_bytes"),
            "syscw": out.get("syscw")}
