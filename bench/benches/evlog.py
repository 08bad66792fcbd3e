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

import json
import os
import statistics

from bench.lib import env, procs, report

NAME = "evlog"
SUMMARY = "durable 300-byte appends at 1/16/256 writers: Docket evlog vs Kafka (flush.messages=1)"

_KAFKA_PEER = os.path.join(env.ROOT, "bench", "kafka", "kafka_peer.py")


def _kafka_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("kafka_peer", _KAFKA_PEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kafka_run(ctx, writer_counts, records, record_bytes):
    """Runs bench/kafka/kafka_peer.py (its own warm-up, one producer JVM for all writer counts,
    disk limits in the same run) and returns its JSON document."""
    argv = ["python3", _KAFKA_PEER, "run", "--writers", ",".join(str(w) for w in writer_counts),
            "--records", str(records), "--record-bytes", str(record_bytes), "--no-perf-test"]
    result = procs.run_measured(argv, timeout=900)
    ctx.command(result["command"], "Kafka broker (KRaft, log.flush.interval.messages=1) + closed-loop producer")
    if result["returncode"] != 0:
        raise RuntimeError(f"kafka peer failed: {result['stderr'][-3000:]}")
    lines = result["stdout"].splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    return json.loads("\n".join(lines[start:]))


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

    docket_runs = {w: [] for w in writer_counts}
    with ctx.phase("docket_a"):
        for w in writer_counts:
            docket_runs[w].append(_docket_run(ctx, binary, w, records, args.record_bytes, args.docket_cpu, "a"))
    with ctx.phase("kafka"):
        kafka_doc = _kafka_run(ctx, writer_counts, records, args.record_bytes)
    with ctx.phase("docket_b"):
        for w in writer_counts:
            docket_runs[w].append(_docket_run(ctx, binary, w, records, args.record_bytes, args.docket_cpu, "b"))

    disk = kafka_doc.get("disk", {})
    kafka_rows = {row["writers"]: row for row in kafka_doc["runs"] if "writers" in row}
    figures = {"disk": disk, "kafka_version": kafka_doc.get("kafka", kafka_doc.get("kafka_version")),
               "kafka_broker": kafka_doc.get("broker"), "writers": {}}
    rows = []
    for w in writer_counts:
        ours = _median_run(docket_runs[w])
        peer = kafka_rows[w]
        ratio = ours["records_per_second"] / peer["records_per_second"]
        figures["writers"][str(w)] = {"docket": ours, "docket_runs": docket_runs[w], "kafka": peer,
                                      "throughput_ratio": ratio}
        rows.append([w, report.fmt(ours["records_per_second"], 0), report.fmt(ours["p50_us"], 0),
                     report.fmt(ours["p99_us"], 0), report.fmt(ours["records_per_fsync"], 1),
                     report.fmt(peer["records_per_second"], 0), report.fmt(peer["latency_us_p50"], 0),
                     report.fmt(peer["latency_us_p99"], 0), report.fmt(ratio, 2)])
    print()
    report.table(["writers", "docket rec/s", "p50 us", "p99 us", "rec/fsync",
                  "kafka rec/s", "p50 us", "p99 us", "ratio"], rows)
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
    # Context for the fraction above: the disk's write+fdatasync bandwidth at the write size
    # Docket's batches actually had at the top writer count (a closed loop of N writers cannot
    # batch more than N records, so 1 MiB writes are out of its reach by construction).
    batch_bytes = int(ours_top["mb_per_second"] * 1e6 / max(1.0, ours_top["records_per_second"])
                      * ours_top["records_per_fsync"])
    if batch_bytes > 0:
        with ctx.phase("disk_at_batch_size"):
            probe = _kafka_module().disk_limits(os.path.join(ctx.work_dir, "disk-batch"), large=batch_bytes)
        figures["disk_at_batch_size"] = {"write_bytes": batch_bytes, "mb_per_second": probe.get("mb_per_second")}
        if probe.get("mb_per_second"):
            ratios["evlog_disk_bandwidth_fraction_at_batch_size"] = ours_top["mb_per_second"] / probe["mb_per_second"]
    if "1" in figures["writers"] and disk.get("fsyncs_per_second"):
        ratios["evlog_single_writer_vs_disk_fsync_rate"] = (
            figures["writers"]["1"]["docket"]["records_per_second"] / disk["fsyncs_per_second"])
    print(f"\nDocket/Kafka throughput at {top} writers: {report.fmt(ratios['evlog_vs_kafka_throughput_ratio'], 2)}x;"
          f" Docket at {report.fmt(ours_top['mb_per_second'], 1)} MB/s = "
          f"{report.fmt((ratios['evlog_disk_bandwidth_fraction'] or 0) * 100, 1)}% of the disk's "
          f"{report.fmt(disk_mb, 0)} MB/s (1 MiB writes); disk {report.fmt(disk.get('fsyncs_per_second'), 0)} "
          f"fsync/s (4 KiB)")
    if ratios.get("evlog_disk_bandwidth_fraction_at_batch_size") is not None:
        print(f"At Docket's own batch size ({batch_bytes} B per fdatasync) the disk gives "
              f"{report.fmt(figures['disk_at_batch_size']['mb_per_second'], 1)} MB/s: Docket reaches "
              f"{report.fmt(ratios['evlog_disk_bandwidth_fraction_at_batch_size'] * 100, 1)}% of it")
    return {"figures": figures, "ratios": ratios, "records": records, "record_bytes": args.record_bytes}
