"""evlog: durable appends of ~300-byte records, Docket's event log vs a local Apache Kafka broker.

Both sides fsync before acknowledging: Docket's evlog does one write + one fdatasync per group
commit; Kafka runs single-node KRaft with log.flush.interval.messages=1 (fsync after every
appended batch) and a producer with acks=all and idempotence (bench/kafka/kafka_peer.py).
Writers are closed loops on both sides: each waits for its acknowledgement before its next
record. Docket's writers live in the `docket log bench` process (the log is embedded: no network
hop); Kafka's in one producer JVM over loopback. Docket is pinned to one CPU (the loop, its
writers and its fsync thread share it); the broker gets CPU 0 and its producer CPU 1.
The disk's own limits (4 KiB write+fdatasync rate, 1 MiB write+fdatasync bandwidth) are measured
in the same run. Order: disk, Docket, Kafka, Docket (A B A); Docket's figure is the median.
"""

import importlib.util
import json
import os
import statistics

from bench.lib import env, procs, report

NAME = "evlog"
SUMMARY = "durable 300-byte appends at 1/16/256 writers: Docket evlog vs Kafka (flush.messages=1)"

_KAFKA_PEER = os.path.join(env.ROOT, "bench", "kafka", "kafka_peer.py")


def _kafka():
    spec = importlib.util.spec_from_file_location("kafka_peer", _KAFKA_PEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_arguments(p):
    p.add_argument("--writers", default="1,16,256", help="comma list of writer counts (default 1,16,256)")
    p.add_argument("--records", type=int, default=20000, help="records per measurement (default 20000)")
    p.add_argument("--record-bytes", type=int, default=300, help="value size (default 300)")
    p.add_argument("--docket-cpu", type=int, default=0, help="CPU for docket log bench (default 0)")


def _docket_run(ctx, binary, writers, records, record_bytes, cpu, run_id):
    data_dir = os.path.join(ctx.work_dir, f"docket-{run_id}-w{writers}")
    argv = [binary, "log", "bench", "--data-dir", data_dir, "--writers", str(writers),
            "--records", str(records), "--record-bytes", str(record_bytes)]
    result = procs.run_measured(argv, cpu=cpu, timeout=300)
    ctx.command(result["command"], f"docket log bench (run {run_id}, {writers} writers)")
    if result["returncode"] != 0:
        raise RuntimeError(f"docket log bench failed: {result['stderr'][-2000:]}")
    line = [l for l in result["stdout"].splitlines() if l.startswith("{")][-1]
    figures = json.loads(line)
    figures["cpu_seconds"] = round(result["cpu_seconds"], 3)
    figures["cpu_us_per_record"] = round(result["cpu_seconds"] * 1e6 / max(1, figures["records"]), 2)
    figures["records_per_fsync"] = round(figures["records"] / max(1, figures.get("fsyncs") or 1), 2)
    return figures


def _median_run(runs):
    """The run with the median throughput, so its latencies stay consistent with it."""
    ordered = sorted(runs, key=lambda r: r["records_per_second"])
    return ordered[len(ordered) // 2]


def run(ctx):
    args = ctx.args
    writer_counts = [int(w) for w in args.writers.split(",")]
    records = 5000 if args.quick else args.records
    binary = env.ensure_docket()
    kafka = _kafka()

    with ctx.phase("setup"):
        info = kafka.setup(quiet=True) if "quiet" in kafka.setup.__code__.co_varnames else kafka.setup()
    with ctx.phase("disk"):
        disk = kafka.disk_limits(ctx.work_dir)
    env.log(f"disk: {disk.get('fsyncs_per_second')} fsync/s (4 KiB), {disk.get('mb_per_second')} MB/s (1 MiB + fdatasync)")

    docket_runs = {w: [] for w in writer_counts}
    with ctx.phase("docket_a"):
        for w in writer_counts:
            docket_runs[w].append(_docket_run(ctx, binary, w, records, args.record_bytes, args.docket_cpu, "a"))

    kafka_runs = {}
    with ctx.phase("kafka"):
        broker = kafka.start_broker(os.path.join(ctx.work_dir, "kafka"))
        ctx.command(" ".join(broker.command) if hasattr(broker, "command") else "kafka broker (see bench/kafka)",
                    "Kafka broker, KRaft single node, log.flush.interval.messages=1")
        try:
            for w in writer_counts:
                kafka_runs[w] = kafka.run_producer(w, records, args.record_bytes, broker=broker,
                                                   warmup=min(5000, records))
        finally:
            kafka.stop_broker(broker)

    with ctx.phase("docket_b"):
        for w in writer_counts:
            docket_runs[w].append(_docket_run(ctx, binary, w, records, args.record_bytes, args.docket_cpu, "b"))

    rows, figures = [], {"disk": disk, "kafka_version": (info or {}).get("version") if isinstance(info, dict) else info,
                         "writers": {}}
    for w in writer_counts:
        ours = _median_run(docket_runs[w])
        peer = kafka_runs[w]
        peer_rps = peer.get("records_per_second") or peer.get("throughput_rps")
        ratio = ours["records_per_second"] / peer_rps if peer_rps else None
        figures["writers"][str(w)] = {"docket": ours, "docket_runs": docket_runs[w], "kafka": peer,
                                      "throughput_ratio": ratio}
        rows.append([w, report.fmt(ours["records_per_second"], 0), report.fmt(ours["p50_us"], 0),
                     report.fmt(ours["p99_us"], 0), report.fmt(ours["records_per_fsync"], 1),
                     report.fmt(peer_rps, 0), report.fmt(peer.get("p50_us"), 0), report.fmt(peer.get("p99_us"), 0),
                     report.fmt(ratio, 2)])
    print()
    report.table(["writers", "docket rec/s", "p50 µs", "p99 µs", "rec/fsync",
                  "kafka rec/s", "p50 µs", "p99 µs", "ratio"], rows)
    top = str(max(writer_counts))
    ours_top = figures["writers"][top]["docket"]
    disk_mb = disk.get("mb_per_second")
    ratios = {
        "evlog_vs_kafka_throughput_ratio": figures["writers"][top]["throughput_ratio"],
        "evlog_vs_kafka_writers": int(top),
        "evlog_disk_bandwidth_fraction": (ours_top["mb_per_second"] / disk_mb) if disk_mb else None,
        "convention": "throughput docket/kafka; > 1.0 = Docket better. Bandwidth fraction = Docket MB/s "
                      "at the top writer count / the disk's 1 MiB write+fdatasync MB/s",
    }
    if "1" in figures["writers"] and disk.get("fsyncs_per_second"):
        ratios["evlog_single_writer_vs_disk_fsync_rate"] = (
            figures["writers"]["1"]["docket"]["records_per_second"] / disk["fsyncs_per_second"])
    print(f"\nDocket/Kafka throughput at {top} writers: {report.fmt(ratios['evlog_vs_kafka_throughput_ratio'], 2)}x;"
          f" Docket at {report.fmt(ours_top['mb_per_second'], 1)} MB/s = "
          f"{report.fmt((ratios['evlog_disk_bandwidth_fraction'] or 0) * 100, 1)}% of the disk's "
          f"{report.fmt(disk_mb, 0)} MB/s; disk {report.fmt(disk.get('fsyncs_per_second'), 0)} fsync/s")
    return {"figures": figures, "ratios": ratios, "records": records, "record_bytes": args.record_bytes}
