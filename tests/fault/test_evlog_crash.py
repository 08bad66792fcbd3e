"""Black-box crash test of the event log: `docket log append` runs many
closed-loop writers with --ack-file and is killed with SIGKILL at random
moments. After every kill, `docket log verify` must pass and reading the
topic back with `docket log tail` must show every acknowledged record
present, intact (value checksum), at its offset, in order, with dense offsets
and no record twice; the next round's appends must continue after the cut.

The binary is DOCKET_BIN (default zig-out/bin/docket). Bounded to about a
minute: at least 20 rounds, more if time allows.
"""
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKET_BIN = Path(os.environ.get("DOCKET_BIN") or REPO / "zig-out" / "bin" / "docket")
if not DOCKET_BIN.is_absolute():
    DOCKET_BIN = (Path.cwd() / DOCKET_BIN).resolve()

ROUNDS_MIN = 20
TIME_BUDGET_S = 60.0
TOPIC = "crash"


def environment():
    """The caller's environment minus DOCKET_* (the binary rejects unknown ones)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def docket(*args, timeout=60):
    return subprocess.run([str(DOCKET_BIN), *args], capture_output=True, text=True,
                          env=environment(), timeout=timeout)


def read_acks(path: Path):
    """Complete ack lines; a line cut by the kill is removed so the next run
    appends after a newline."""
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(cut)
    acks = []
    for line in data[:cut].decode().splitlines():
        offset, key, checksum = line.split(" ")
        acks.append((int(offset), key, int(checksum, 16)))
    return acks


def read_topic(data_dir: Path, from_offset: int):
    result = docket("log", "tail", TOPIC, "--data-dir", str(data_dir), "--from",
                    str(from_offset), "--limit", "100000000")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_records(records, from_offset, acks, seen_keys):
    """Dense offsets from from_offset, no key twice, every ack at its offset intact."""
    by_offset = {}
    for position, record in enumerate(records):
        assert record["offset"] == from_offset + position, "offsets are not dense"
        assert record["key"] not in seen_keys, f"record {record['key']} appears twice"
        seen_keys.add(record["key"])
        by_offset[record["offset"]] = record
    for offset, key, checksum in acks:
        if offset < from_offset:
            continue
        record = by_offset.get(offset)
        assert record is not None, f"acknowledged offset {offset} ({key}) is missing"
        assert record["key"] == key, f"offset {offset} holds {record['key']}, acked {key}"
        assert fnv1a64(record["value"].encode()) == checksum, f"value of {key} damaged"


def append_process(data_dir: Path, ack_file: Path):
    return subprocess.Popen(
        [str(DOCKET_BIN), "log", "append", "--data-dir", str(data_dir), "--topic", TOPIC,
         "--writers", "32", "--records", "10000000", "--record-bytes", "120",
         "--ack-file", str(ack_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())


def test_acknowledged_appends_survive_kill_9(tmp_path):
    data_dir = tmp_path / "data"
    ack_file = tmp_path / "acks.txt"
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    started = time.monotonic()
    checked_end = 0
    seen_keys = set()
    rounds = 0
    acks_before = 0
    while rounds < ROUNDS_MIN or time.monotonic() - started < TIME_BUDGET_S / 2:
        if time.monotonic() - started > TIME_BUDGET_S:
            break
        size_before = ack_file.stat().st_size if ack_file.exists() else 0
        process = append_process(data_dir, ack_file)
        # Appends must resume after every restart: wait for the first new ack,
        # then kill at a random moment.
        deadline = time.monotonic() + 10
        while (not ack_file.exists() or ack_file.stat().st_size == size_before) and \
                time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
        process.stderr.close()
        verify = docket("log", "verify", "--data-dir", str(data_dir))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        acks = read_acks(ack_file)
        assert len(acks) > acks_before, "the restarted writer acknowledged nothing"
        acks_before = len(acks)
        records = read_topic(data_dir, checked_end)
        check_records(records, checked_end, acks, seen_keys)
        checked_end += len(records)
        assert all(offset < checked_end for offset, _, _ in acks)
        rounds += 1
    assert rounds >= ROUNDS_MIN
    # A clean run after the crashes: the log takes appends and stays whole.
    done = docket("log", "append", "--data-dir", str(data_dir), "--topic", TOPIC, "--writers",
                  "4", "--records", "200", "--record-bytes", "50", "--ack-file", str(ack_file))
    assert done.returncode == 0, done.stderr
    acks = read_acks(ack_file)
    check_records(read_topic(data_dir, checked_end), checked_end, acks, seen_keys)
    # And one full pass over everything ever acknowledged.
    check_records(read_topic(data_dir, 0), 0, acks, set())
