#!/usr/bin/env python3
"""Apache Kafka peer for Docket's B1 event-log benchmark (durable append, max throughput).

Python 3 standard library only. Java 17+ and Maven are used to obtain and run Kafka:

  setup()            newest Kafka 4.x whose jars all resolve, via Maven (throwaway pom.xml +
                     dependency:copy-dependencies) into bench/work/kafka/libs; idempotent.
  start_broker()     single-node KRaft broker (process.roles=broker,controller), fsync after every
                     appended batch (log.flush.interval.messages=1), topic `bench` 1 partition RF=1.
  run_producer()     closed-loop producer (ClosedLoopProducer.java): N writer threads share one
                     KafkaProducer, each waits for its ack before sending its next record.
  run_producer_perf() Kafka's own ProducerPerformance (kafka-producer-perf-test) as an extra row.
  disk_limits()      4 KiB write+fdatasync rate and 1 MiB write+fdatasync bandwidth of the disk.

CLI:
  python3 bench/kafka/kafka_peer.py setup
  python3 bench/kafka/kafka_peer.py disk
  python3 bench/kafka/kafka_peer.py run --writers 1,16,256 --records 20000 --record-bytes 300

Everything downloaded or written lives under bench/work/kafka (git-ignored), on the repo's own
filesystem. Every process started here is tracked by PID and killed on exit / SIGINT / SIGTERM.
"""

import argparse
import atexit
import base64
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))            # bench/kafka
BENCH_DIR = os.path.dirname(HERE)                             # bench
ROOT = os.path.dirname(BENCH_DIR)                             # repo
WORK = os.path.join(BENCH_DIR, "work", "kafka")               # git-ignored
LIBS = os.path.join(WORK, "libs")
M2_REPO = os.path.join(WORK, "m2")                            # Maven local repository
MAVEN_DIR = os.path.join(WORK, "maven")                       # generated pom.xml files
CLASSES = os.path.join(WORK, "classes")
VERSION_FILE = os.path.join(WORK, "kafka-version.json")
RUNS_DIR = os.path.join(WORK, "runs")
JAVA_SRCS = [os.path.join(HERE, "ClosedLoopProducer.java"), os.path.join(HERE, "BrokerStatsAgent.java")]
AGENT_JAR = os.path.join(CLASSES, "stats-agent.jar")

# Artifacts that must all exist in the chosen version.
KAFKA_ARTIFACTS = ["kafka_2.13", "kafka-tools", "kafka-clients", "kafka-server", "kafka-raft", "kafka-storage"]
KAFKA_GROUP = "org.apache.kafka"
RELEASE_RE = re.compile(r"^4\.(\d+)\.(\d+)$")

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOPIC = "bench"

# JVM flags as in Kafka's kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS), heap set explicitly.
JVM_PERF_OPTS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                 "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]

# Broker settings (besides listeners / dirs). Durability matched to Docket: fsync after every
# appended batch before the produce response (acks=all, RF=1).
BROKER_PROPS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    "log.flush.interval.messages": "1",
    # log.flush.interval.ms left at its default (unset => log.flush.interval.messages governs).
}
TOPIC_CONFIGS = {"flush.messages": "1", "min.insync.replicas": "1"}

PRODUCER_PROPS = {"acks": "all", "enable.idempotence": "true", "linger.ms": "0"}


def log(msg):
    print(f"[kafka_peer] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- process tracking

_LIVE = {}  # pid -> Popen


def _track(proc):
    _LIVE[proc.pid] = proc
    return proc


def _kill(proc, grace=20.0):
    """SIGTERM, wait up to `grace` s, then SIGKILL; always reaps. By PID only."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
    _LIVE.pop(proc.pid, None)


def cleanup_all():
    for pid, proc in list(_LIVE.items()):
        try:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        except Exception:
            pass
        _LIVE.pop(pid, None)


atexit.register(cleanup_all)


def _on_signal(signum, _frame):
    cleanup_all()
    sys.exit(128 + signum)


def run(cmd, timeout, cwd=None, capture=True, env=None):
    """Run a command to completion, bounded in time; returns CompletedProcess."""
    proc = _track(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if capture else None,
                                   stderr=subprocess.STDOUT if capture else None, text=True))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        _LIVE.pop(proc.pid, None)
        raise RuntimeError(f"timed out after {timeout}s: {' '.join(cmd)}\n{(out or '')[-3000:]}")
    _LIVE.pop(proc.pid, None)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, None)


def taskset(cpu):
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- /proc readers

def cpu_times(pid):
    """(utime, stime) of all threads of a process, seconds (proc(5) fields 14, 15)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid):
    """utime+stime of all threads of a process, seconds."""
    t = cpu_times(pid)
    return None if t is None else t[0] + t[1]


def memory_kib(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def system_busy_seconds():
    """CPU time spent non-idle by the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is included in user)
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK


def wait_quiet(max_wait=0.0, max_busy_cores=0.25, sample=1.0):
    """Wait (up to max_wait s) until the machine's non-idle CPU over `sample` s is below
    `max_busy_cores`. Returns what was observed; the benchmark shares the box with others."""
    t0 = time.monotonic()
    while True:
        a = system_busy_seconds()
        time.sleep(sample)
        busy = (system_busy_seconds() - a) / sample
        waited = time.monotonic() - t0
        if busy <= max_busy_cores or waited >= max_wait:
            return {"busy_cores": round(busy, 2), "waited_seconds": round(waited, 1),
                    "quiet": busy <= max_busy_cores}


def block_device_of(path):
    """Name of the /proc/diskstats device holding `path` (whole disk preferred, e.g. 'vda')."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    sysdir = f"/sys/dev/block/{major}:{minor}"
    name = None
    try:
        real = os.path.realpath(sysdir)
        name = os.path.basename(real)
        # a partition: use the parent disk (flushes are issued to the whole device)
        if os.path.exists(os.path.join(real, "partition")):
            name = os.path.basename(os.path.dirname(real))
    except OSError:
        pass
    if name is None:
        with open("/proc/diskstats") as f:
            for line in f:
                p = line.split()
                if int(p[0]) == major and int(p[1]) == minor:
                    name = p[2]
    return name


def diskstats(dev):
    """Selected counters of one /proc/diskstats line (kernel >= 5.5 has 17 stat fields)."""
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if len(p) > 3 and p[2] == dev:
                v = [int(x) for x in p[3:]]
                return {
                    "writes_completed": v[4],
                    "sectors_written": v[6],
                    "flushes": v[14] if len(v) >= 16 else None,
                    "flush_ms": v[15] if len(v) >= 16 else None,
                }
    return None


def _delta(a, b):
    if a is None or b is None:
        return {}
    return {k: (b[k] - a[k]) if a.get(k) is not None and b.get(k) is not None else None for k in a}


# --------------------------------------------------------------------------- setup (Maven)

def _mvn(args, timeout=900):
    cmd = ["mvn", "-B", "-q", f"-Dmaven.repo.local={M2_REPO}"] + args
    return run(cmd, timeout=timeout)


def _write_pom(path, deps):
    """deps: list of (group, artifact, version)."""
    body = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.docket.bench</groupId>
  <artifactId>{os.path.basename(os.path.dirname(path))}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
""")


def _metadata_versions(artifact):
    """Versions listed in the Maven metadata files the local repository holds for an artifact."""
    versions = set()
    for p in glob.glob(os.path.join(M2_REPO, *KAFKA_GROUP.split("."), artifact, "maven-metadata*.xml")):
        with open(p) as f:
            versions.update(re.findall(r"<version>([^<]+)</version>", f.read()))
    return versions


def _vkey(v):
    m = RELEASE_RE.match(v)
    return (int(m.group(1)), int(m.group(2)))


def candidate_versions():
    """4.x releases for which every artifact in KAFKA_ARTIFACTS is listed, newest first.

    A throwaway pom with a version range per artifact makes Maven fetch each artifact's metadata."""
    pom = os.path.join(MAVEN_DIR, "probe", "pom.xml")
    _write_pom(pom, [(KAFKA_GROUP, a, "[4.0.0,5.0.0)") for a in KAFKA_ARTIFACTS])
    r = _mvn(["-f", pom, "-U", "dependency:list", "-DexcludeTransitive=true",
              "-DoutputFile=" + os.path.join(MAVEN_DIR, "probe", "deps.txt")])
    if r.returncode != 0:
        log("range probe did not fully resolve (metadata is still used):\n" + r.stdout[-1500:])
    common = None
    newest = {}
    for a in KAFKA_ARTIFACTS:
        vs = {v for v in _metadata_versions(a) if RELEASE_RE.match(v)}
        newest[a] = max(vs, key=_vkey) if vs else None
        common = vs if common is None else common & vs
    return sorted(common or [], key=_vkey, reverse=True), newest


def _read_version_file():
    try:
        with open(VERSION_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def java_version():
    r = run(["java", "-version"], timeout=60)
    m = re.search(r'version "([^"]+)"', r.stdout)
    return m.group(1) if m else r.stdout.strip()


def setup(version=None, force=False, quiet=False):
    """Obtain Kafka jars into bench/work/kafka/libs. No-op when already present (same version)."""
    info = _read_version_file()
    if (not force and info
            and os.path.exists(os.path.join(LIBS, f"kafka_2.13-{info.get('kafka_version')}.jar"))
            and (version is None or info.get("kafka_version") == version)):
        if not quiet:
            log(f"Kafka {info['kafka_version']} already in {LIBS}")
        compile_helper()
        return info
    for tool in ("mvn", "java", "javac"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found on PATH")
    jv = java_version()
    if int(jv.split(".")[0]) < 17:
        raise RuntimeError(f"Kafka 4.x needs Java 17+, found {jv}")
    os.makedirs(WORK, exist_ok=True)
    t0 = time.time()
    skipped = []
    newest = None
    if version:
        candidates = [version]
    else:
        log("resolving the newest Kafka 4.x release (Maven version-range metadata)...")
        candidates, newest = candidate_versions()
        log("newest 4.x listed per artifact: " + json.dumps(newest))
        if not candidates:
            raise RuntimeError("no Kafka 4.x release found for all of " + ", ".join(KAFKA_ARTIFACTS))
        log("candidate versions (newest first): " + ", ".join(candidates))
    staging = LIBS + ".tmp"
    chosen = None
    for v in candidates:
        pom = os.path.join(MAVEN_DIR, "kafka-" + v, "pom.xml")
        _write_pom(pom, [(KAFKA_GROUP, a, v) for a in KAFKA_ARTIFACTS])
        shutil.rmtree(staging, ignore_errors=True)
        log(f"trying Kafka {v}: mvn dependency:copy-dependencies ...")
        r = _mvn(["-f", pom, "dependency:copy-dependencies", "-DincludeScope=runtime",
                  "-DoutputDirectory=" + staging])
        if r.returncode == 0:
            chosen = v
            break
        reason = (re.findall(r"Could not (?:find|resolve)[^\n]*", r.stdout) or [r.stdout.strip()[-300:]])[0]
        log(f"Kafka {v} not usable: {reason}")
        skipped.append({"version": v, "reason": reason})
    if chosen is None:
        raise RuntimeError("no candidate Kafka version could be resolved: " + json.dumps(skipped))

    # slf4j -> log4j2 binding (Kafka's distribution ships one; the Maven artifacts do not pull it in)
    jars = os.listdir(staging)
    slf4j = [j for j in jars if re.match(r"slf4j-api-\d", j)]
    log4j = [j for j in jars if re.match(r"log4j-core-\d", j)]
    binding = None
    if slf4j and log4j:
        log4j_v = re.match(r"log4j-core-(.+)\.jar", log4j[0]).group(1)
        art = "log4j-slf4j2-impl" if re.match(r"slf4j-api-2", slf4j[0]) else "log4j-slf4j-impl"
        binding = f"org.apache.logging.log4j:{art}:{log4j_v}"
        pom = os.path.join(MAVEN_DIR, "binding", "pom.xml")
        _write_pom(pom, [("org.apache.logging.log4j", art, log4j_v)])
        r = _mvn(["-f", pom, "dependency:copy-dependencies", "-DexcludeTransitive=true",
                  "-DoutputDirectory=" + staging])
        if r.returncode != 0:
            log("could not fetch slf4j binding (logging will be off): " + r.stdout[-500:])
            binding = None
    shutil.rmtree(LIBS, ignore_errors=True)
    os.rename(staging, LIBS)
    jars = sorted(os.listdir(LIBS))
    r = run(["mvn", "-B", "-v"], timeout=60)
    info = {
        "kafka_version": chosen,
        "artifacts": [f"{KAFKA_GROUP}:{a}:{chosen}" for a in KAFKA_ARTIFACTS],
        "slf4j_binding": binding,
        "newest_4x_listed_per_artifact": newest,
        "newer_versions_skipped": skipped,
        "jar_count": len(jars),
        "libs_bytes": sum(os.path.getsize(os.path.join(LIBS, j)) for j in jars),
        "java_version": jv,
        "maven_version": (re.search(r"Apache Maven (\S+)", r.stdout) or [None, None])[1],
        "setup_seconds": round(time.time() - t0, 1),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(VERSION_FILE, "w") as f:
        json.dump(info, f, indent=2)
    log(f"Kafka {chosen}: {len(jars)} jars in {LIBS}")
    compile_helper()
    return info


def classpath():
    return f"{CLASSES}:{LIBS}/*"


def compile_helper():
    """javac the Java helpers into bench/work/kafka/classes and package the broker stats agent
    (skipped when the sources are unchanged)."""
    h = hashlib.sha256()
    for src in JAVA_SRCS:
        with open(src, "rb") as f:
            h.update(f.read())
    digest = h.hexdigest()
    stamp = os.path.join(CLASSES, ".source-sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest and os.path.exists(AGENT_JAR):
                return
    except OSError:
        pass
    shutil.rmtree(CLASSES, ignore_errors=True)
    os.makedirs(CLASSES)
    r = run(["javac", "-nowarn", "-d", CLASSES, "-cp", f"{LIBS}/*"] + JAVA_SRCS, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("javac failed:\n" + r.stdout)
    manifest = os.path.join(CLASSES, "agent-manifest.txt")
    with open(manifest, "w") as f:
        f.write("Premain-Class: BrokerStatsAgent\nAgent-Class: BrokerStatsAgent\n")
    r = run(["jar", "--create", "--file", AGENT_JAR, "--manifest", manifest, "-C", CLASSES,
             "BrokerStatsAgent.class"], timeout=120)
    if r.returncode != 0:
        raise RuntimeError("jar failed:\n" + r.stdout)
    with open(stamp, "w") as f:
        f.write(digest)


def _log4j_config(path, file_name=None, level="INFO"):
    if file_name:
        text = f"""status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {file_name}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
"""
    else:
        text = f"""status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.err.ref = ERR
"""
    with open(path, "w") as f:
        f.write(text)
    return path


# --------------------------------------------------------------------------- broker

class Broker:
    def __init__(self, proc, data_dir, port, controller_port, stats_port, props, cpu, heap, started_s):
        self.proc = proc
        self.pid = proc.pid
        self.data_dir = data_dir
        self.port = port
        self.controller_port = controller_port
        self.stats_port = stats_port
        self.props = props
        self.cpu = cpu
        self.heap = heap
        self.startup_seconds = started_s

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stats(self):
        """Broker metrics from the in-process stats agent (log flushes, produce requests, ...)."""
        if not self.stats_port:
            return None
        try:
            with socket.create_connection(("127.0.0.1", self.stats_port), timeout=5) as s:
                s.sendall(b"stats\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            return json.loads(buf.decode())
        except (OSError, ValueError):
            return None


_BROKER = None


def _random_cluster_id():
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _wait_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start_broker(data_dir, port=None, controller_port=None, cpu=0, heap="1g", stats_agent=True,
                 flush_messages=1, extra_props=None, timeout=120):
    """Format a fresh KRaft storage dir, start a combined broker+controller, create topic `bench`."""
    global _BROKER
    if _BROKER is not None:
        raise RuntimeError("a broker is already running; stop_broker() first")
    setup(quiet=True)
    port = port or free_port()
    controller_port = controller_port or free_port()
    stats_port = free_port() if stats_agent else None
    data_dir = os.path.abspath(data_dir)
    if os.path.exists(data_dir):
        shutil.rmtree(data_dir)
    log_dir = os.path.join(data_dir, "log")
    os.makedirs(log_dir)
    props = dict(BROKER_PROPS)
    props.update({
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "log.dirs": log_dir,
    })
    if flush_messages is None:
        props.pop("log.flush.interval.messages", None)
    else:
        props["log.flush.interval.messages"] = str(flush_messages)
    props.update(extra_props or {})
    cfg = os.path.join(data_dir, "server.properties")
    with open(cfg, "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in props.items()))
    log4j = _log4j_config(os.path.join(data_dir, "log4j2.properties"), os.path.join(data_dir, "server.log"))

    t0 = time.time()
    cid = _random_cluster_id()
    fmt = run(["java", "-Xmx256m", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath(),
               "kafka.tools.StorageTool", "format", "-t", cid, "-c", cfg], timeout=120)
    if fmt.returncode != 0:
        raise RuntimeError("StorageTool format failed:\n" + fmt.stdout[-3000:])

    cmd = taskset(cpu) + ["java", f"-Xmx{heap}", f"-Xms{heap}"] + JVM_PERF_OPTS + [
        f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={data_dir}"]
    if stats_port:
        # in-process metrics reader on 127.0.0.1:stats_port (the JDK's remote JMX agent would also
        # open a listener on all interfaces)
        cmd += [f"-javaagent:{AGENT_JAR}={stats_port}"]
    cmd += ["-cp", classpath(), "kafka.Kafka", cfg]
    out = open(os.path.join(data_dir, "broker.stdout"), "w")
    proc = _track(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    out.close()
    broker = Broker(proc, data_dir, port, controller_port, stats_port, props, cpu, heap, None)
    _BROKER = broker
    try:
        if not _wait_port(port, proc, timeout):
            raise RuntimeError("broker did not open its port; log tail:\n" + _tail(os.path.join(data_dir, "server.log"))
                               + _tail(os.path.join(data_dir, "broker.stdout")))
        tcfg = dict(TOPIC_CONFIGS)
        if flush_messages is None:
            tcfg.pop("flush.messages")
        else:
            tcfg["flush.messages"] = str(flush_messages)
        broker.topic_configs = tcfg
        topic_args = [f"{k}={v}" for k, v in tcfg.items()]
        r = run(["java", "-Xmx256m", "-cp", classpath(),
                 f"-Dlog4j2.configurationFile={_log4j_config(os.path.join(data_dir, 'log4j2-client.properties'), level='WARN')}",
                 "ClosedLoopProducer", "create-topic", broker.bootstrap, TOPIC, "1", "1", str(int(timeout * 1000))]
                + topic_args, timeout=timeout + 30)
        if r.returncode != 0:
            raise RuntimeError("topic creation failed:\n" + r.stdout[-3000:])
        broker.topic_created = r.stdout.strip().splitlines()[-1]
    except BaseException:
        stop_broker()
        raise
    broker.startup_seconds = round(time.time() - t0, 2)
    log(f"broker pid {proc.pid} on 127.0.0.1:{port} (controller {controller_port}, stats {stats_port}) "
        f"ready in {broker.startup_seconds}s, data {data_dir}")
    return broker


def stop_broker(broker=None, grace=20.0):
    """SIGTERM the broker (controlled shutdown), SIGKILL after `grace` s; waits for it to exit."""
    global _BROKER
    broker = broker or _BROKER
    if broker is None:
        return None
    _kill(broker.proc, grace=grace)
    if broker is _BROKER:
        _BROKER = None
    return broker.proc.returncode


# --------------------------------------------------------------------------- producers

def _snapshot(broker, dev, producer_pid=None):
    return {
        "t": time.monotonic(),
        "broker_cpu": cpu_seconds(broker.pid),
        "broker_cpu_split": cpu_times(broker.pid),
        "producer_cpu": cpu_seconds(producer_pid) if producer_pid else None,
        "disk": diskstats(dev) if dev else None,
        "system_busy": system_busy_seconds(),
        "broker_stats": broker.stats(),
    }


def _derive(res, s0, s1, records):
    d = _delta(s0["disk"], s1["disk"])
    res["broker_cpu_seconds"] = _sub(s1["broker_cpu"], s0["broker_cpu"])
    if s0.get("producer_cpu") is not None:
        res["producer_cpu_seconds"] = _sub(s1["producer_cpu"], s0["producer_cpu"])
    res["disk_flushes"] = d.get("flushes")
    res["disk_writes"] = d.get("writes_completed")
    res["disk_mb_written"] = round(d["sectors_written"] * 512 / 1e6, 3) if d.get("sectors_written") is not None else None
    res["records_per_disk_flush"] = round(records / d["flushes"], 2) if d.get("flushes") else None
    busy = _sub(s1["system_busy"], s0["system_busy"])
    own = (res["broker_cpu_seconds"] or 0) + (res.get("producer_cpu_seconds") or 0)
    el = s1["t"] - s0["t"]
    # CPU used by anything other than broker + producer during the measured phase (other
    # benchmarks/tests sharing the box, kernel threads); large values mean a contaminated run.
    res["other_cpu_seconds"] = round(max(0.0, busy - own), 2) if busy is not None else None
    res["other_cpu_cores"] = round(max(0.0, busy - own) / el, 2) if busy is not None and el > 0 else None
    if s0.get("broker_cpu_split") and s1.get("broker_cpu_split"):
        res["broker_cpu_user_seconds"] = _sub(s1["broker_cpu_split"][0], s0["broker_cpu_split"][0])
        res["broker_cpu_sys_seconds"] = _sub(s1["broker_cpu_split"][1], s0["broker_cpu_split"][1])
    if el > 0:
        res["broker_cpu_cores"] = round(res["broker_cpu_seconds"] / el, 2) if res["broker_cpu_seconds"] is not None else None
        if res.get("producer_cpu_seconds") is not None:
            res["producer_cpu_cores"] = round(res["producer_cpu_seconds"] / el, 2)
    bc = res["broker_cpu_seconds"]
    res["broker_cpu_us_per_record"] = round(bc * 1e6 / records, 2) if bc is not None and records else None
    b0, b1 = s0.get("broker_stats"), s1.get("broker_stats")
    jd = {}
    if b0 and b1:
        for k in ("log_flushes", "produce_requests", "messages_in", "bytes_in"):
            jd[k] = (b1[k] - b0[k]) if b0.get(k) is not None and b1.get(k) is not None else None
        # mean broker-side times over exactly this phase, from (mean * count) differences
        for name in ("log_flush_ms", "produce_total_ms", "produce_local_ms"):
            c0, c1 = b0.get(name + "_count"), b1.get(name + "_count")
            m0, m1 = b0.get(name + "_mean"), b1.get(name + "_mean")
            if None not in (c0, c1, m0, m1) and c1 > c0:
                jd[name + "_mean"] = round((m1 * c1 - m0 * c0) / (c1 - c0), 3)
        res["broker_metrics_delta"] = jd
        res["broker_metrics_end"] = {k: v for k, v in b1.items() if k.endswith(("_p50", "_p99", "_max"))}
    if jd.get("log_flushes"):
        res["records_per_log_flush"] = round(records / jd["log_flushes"], 2)
    if jd.get("produce_requests"):
        res["records_per_produce_request"] = round(records / jd["produce_requests"], 2)
    return res


def _sub(b, a):
    return None if a is None or b is None else round(b - a, 3)


def _client_jvm(cpu, data_dir, heap="512m"):
    cfg = _log4j_config(os.path.join(data_dir, "log4j2-client.properties"), level="WARN")
    return taskset(cpu) + ["java", f"-Xmx{heap}", f"-Xms{heap}"] + JVM_PERF_OPTS + [
        f"-Dlog4j2.configurationFile={cfg}", "-cp", classpath()]


class ProducerSession:
    """One closed-loop producer JVM (ClosedLoopProducer session, pinned with taskset) holding ONE
    KafkaProducer; `run()` measures one writer count. Sharing the JVM across writer counts shares
    its JIT warm-up (in trials a fresh client JVM used ~1 ms CPU per record after a 5 s warm-up
    and ~0.2 ms after 20 s)."""

    def __init__(self, broker, record_bytes, linger_ms=0, cpu=1, extra_props=None, timeout=900):
        compile_helper()
        self.broker = broker
        self.record_bytes = record_bytes
        self.linger_ms = linger_ms
        self.props = dict(PRODUCER_PROPS)
        self.props["linger.ms"] = str(linger_ms)
        self.props.update(extra_props or {})
        self.dev = block_device_of(broker.data_dir)
        cmd = _client_jvm(cpu, broker.data_dir) + [
            "ClosedLoopProducer", "session", broker.bootstrap, TOPIC, str(record_bytes)] + [
            f"{k}={v}" for k, v in self.props.items()]
        self.errname = os.path.join(broker.data_dir, f"producer-linger{linger_ms}-{int(time.time())}.stderr")
        with open(self.errname, "w") as errf:
            self.proc = _track(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=errf, text=True))
        self.timer = threading.Timer(timeout, self.proc.kill)  # hard bound on the session's life
        self.timer.daemon = True
        self.timer.start()
        self._lines = []
        self._until("SESSION")

    def _until(self, marker):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"producer exited before {marker}; stdout: {''.join(self._lines)[-2000:]}\n"
                                   f"stderr: {_tail(self.errname)}")
            self._lines.append(line)
            if line.strip() == marker:
                return

    def _send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def run(self, writers, records, warmup=5000, warmup_max_seconds=5.0, max_seconds=30.0,
            wait_quiet_s=0.0, quiet_cores=0.3):
        t_start = time.monotonic()
        self._send(f"run {writers} {records} {warmup} {int(warmup_max_seconds * 1000)} "
                   f"{int((max_seconds or 0) * 1000)}")
        self._until("READY")
        warm_s = time.monotonic() - t_start
        quiet = wait_quiet(wait_quiet_s, quiet_cores) if wait_quiet_s else None
        s0 = _snapshot(self.broker, self.dev, self.proc.pid)
        self._send("GO")
        self._until("DONE")
        s1 = _snapshot(self.broker, self.dev, self.proc.pid)
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"unexpected producer output {line!r}; stderr: {_tail(self.errname)}")
        res = json.loads(line)
        res["warmup_seconds"] = round(warm_s, 2)
        res["pre_measure_quiet_check"] = quiet
        res["linger_ms"] = self.linger_ms
        res["harness_seconds"] = round(s1["t"] - s0["t"], 4)
        res["device"] = self.dev
        return _derive(res, s0, s1, res["acked"])

    def close(self):
        try:
            if self.proc.poll() is None:
                self._send("quit")
                self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        finally:
            self.timer.cancel()
            _kill(self.proc, grace=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_producer(writers, records, record_bytes, broker=None, linger_ms=0, warmup=5000, cpu=1,
                 extra_props=None, timeout=600, wait_quiet_s=0.0, quiet_cores=0.3, max_seconds=30.0,
                 warmup_max_seconds=5.0):
    """Closed loop: `writers` threads, one shared KafkaProducer, send().get() per record, in a
    fresh producer JVM (use ProducerSession to measure several writer counts in one JVM).

    Warm-up (`warmup` records or `warmup_max_seconds`, same writer count) runs first; broker CPU
    time, disk counters and the broker's flush counters are snapshotted exactly around the
    measured phase, which ends after `records` acks or `max_seconds` (0 = no cap)."""
    broker = broker or _BROKER
    if broker is None:
        raise RuntimeError("no broker running")
    with ProducerSession(broker, record_bytes, linger_ms=linger_ms, cpu=cpu, extra_props=extra_props,
                         timeout=timeout) as sess:
        return sess.run(writers, records, warmup=warmup, warmup_max_seconds=warmup_max_seconds,
                        max_seconds=max_seconds, wait_quiet_s=wait_quiet_s, quiet_cores=quiet_cores)


_PP_RE = re.compile(
    r"(\d+) (?:steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency"
    r"(?:, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th)?")


def run_producer_perf(records, record_bytes, broker=None, linger_ms=0, warmup=5000, cpu=1, max_in_flight=5,
                      extra_props=None, timeout=600, wait_quiet_s=0.0, quiet_cores=0.3):
    """Kafka's ProducerPerformance (kafka-producer-perf-test): one async producer, up to
    `max_in_flight` requests in flight (capped at 5 with idempotence), --throughput -1.

    Broker CPU / disk flushes cover the whole tool run (JVM start + warm-up + measured records), so
    per-record figures use warm-up + measured records."""
    broker = broker or _BROKER
    props = dict(PRODUCER_PROPS)
    props.update({"linger.ms": str(linger_ms), "max.in.flight.requests.per.connection": str(max_in_flight),
                  "bootstrap.servers": broker.bootstrap})
    props.update(extra_props or {})
    total = records + warmup
    cmd = _client_jvm(cpu, broker.data_dir) + [
        "org.apache.kafka.tools.ProducerPerformance", "--topic", TOPIC, "--num-records", str(total),
        "--record-size", str(record_bytes), "--throughput", "-1"]
    if warmup:
        cmd += ["--warmup-records", str(warmup)]
    cmd += ["--producer-props"] + [f"{k}={v}" for k, v in props.items()]
    dev = block_device_of(broker.data_dir)
    quiet = wait_quiet(wait_quiet_s, quiet_cores) if wait_quiet_s else None
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = _snapshot(broker, dev)
    r = run(cmd, timeout=timeout)
    s1 = _snapshot(broker, dev)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError("ProducerPerformance failed:\n" + r.stdout[-3000:])
    summary = [l for l in r.stdout.splitlines() if _PP_RE.search(l)]
    res = {"mode": "ProducerPerformance", "writers": f"1 producer, max.in.flight={max_in_flight}",
           "records": records, "warmup_records": warmup, "record_bytes": record_bytes, "linger_ms": linger_ms,
           "producer_config": props, "raw_output_tail": r.stdout.strip().splitlines()[-3:]}
    steady = [l for l in summary if "steady state" in l]
    overall = [l for l in summary if "steady state" not in l]
    line = (steady or overall or [None])[-1]
    m = _PP_RE.search(line) if line else None
    if overall:
        res["overall_line"] = overall[-1].strip()
    if m:
        res.update({
            "summary_line": line.strip(),
            "steady_state": bool(steady),
            "acked": int(m.group(1)),
            "records_per_second": float(m.group(2)),
            "mb_per_second": float(m.group(2)) * record_bytes / 1e6,
            "tool_mb_per_second": float(m.group(3)),
            "latency_us_mean": float(m.group(4)) * 1000,
            "latency_us_max": float(m.group(5)) * 1000,
        })
        if m.group(6):
            res.update({"latency_us_p50": int(m.group(6)) * 1000, "latency_us_p95": int(m.group(7)) * 1000,
                        "latency_us_p99": int(m.group(8)) * 1000, "latency_us_p999": int(m.group(9)) * 1000})
        res["seconds"] = round(res["acked"] / res["records_per_second"], 3) if res["records_per_second"] else None
    res["process_seconds"] = round(s1["t"] - s0["t"], 3)
    res["pre_measure_quiet_check"] = quiet
    # the tool is the only child reaped in this window
    res["producer_cpu_seconds"] = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 3)
    res["device"] = dev
    res["note"] = "latencies have 1 ms resolution; broker CPU/flushes span the whole tool run incl. warm-up"
    return _derive(res, s0, s1, total)


# --------------------------------------------------------------------------- disk limits

def _pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = max(0, min(len(sorted_vals) - 1, int(-(-p / 100.0 * len(sorted_vals) // 1)) - 1))
    return sorted_vals[i]


def disk_limits(path, seconds=3.0, small=4096, large=1 << 20):
    """The disk's own limits, measured with a file in `path` (same filesystem as the data dir).

    (a) append `small` bytes + fdatasync in a loop for `seconds`: syncs/s and latency percentiles;
    (b) append `large` bytes + fdatasync in a loop for `seconds`: MB/s (1e6 bytes)."""
    os.makedirs(path, exist_ok=True)
    dev = block_device_of(path)
    fname = os.path.join(path, f".disk-probe-{os.getpid()}")
    out = {"path": os.path.abspath(path), "device": dev, "seconds_per_test": seconds}
    try:
        fd = os.open(fname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            buf = os.urandom(small)
            lat = []
            d0 = diskstats(dev)
            t_end = time.monotonic() + seconds
            t0 = time.monotonic()
            while True:
                a = time.perf_counter_ns()
                os.write(fd, buf)
                os.fdatasync(fd)
                lat.append(time.perf_counter_ns() - a)
                if time.monotonic() >= t_end:
                    break
            el = time.monotonic() - t0
            d1 = diskstats(dev)
            lat.sort()
            dd = _delta(d0, d1)
            out.update({
                "fsync_write_bytes": small,
                "fsyncs": len(lat),
                "fsyncs_per_second": round(len(lat) / el, 1),
                "fsync_us_p50": round(_pct(lat, 50) / 1000, 1),
                "fsync_us_p90": round(_pct(lat, 90) / 1000, 1),
                "fsync_us_p99": round(_pct(lat, 99) / 1000, 1),
                "fsync_us_max": round(lat[-1] / 1000, 1),
                "fsync_us_mean": round(statistics.fmean(lat) / 1000, 1),
                "disk_flushes_per_fdatasync": round(dd["flushes"] / len(lat), 3) if dd.get("flushes") is not None else None,
                "disk_writes_per_fdatasync": round(dd["writes_completed"] / len(lat), 2),
            })
        finally:
            os.close(fd)
        os.unlink(fname)
        fd = os.open(fname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            buf = os.urandom(large)
            n = 0
            lat = []
            t_end = time.monotonic() + seconds
            t0 = time.monotonic()
            while True:
                a = time.perf_counter_ns()
                w = os.write(fd, buf)
                os.fdatasync(fd)
                lat.append(time.perf_counter_ns() - a)
                n += w
                if time.monotonic() >= t_end:
                    break
            el = time.monotonic() - t0
            lat.sort()
            out.update({
                "large_write_bytes": large,
                "mb_per_second": round(n / 1e6 / el, 1),
                "large_write_fsync_us_p50": round(_pct(lat, 50) / 1000, 1),
                "large_write_fsync_us_p99": round(_pct(lat, 99) / 1000, 1),
            })
        finally:
            os.close(fd)
    finally:
        try:
            os.unlink(fname)
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------- reporting

def machine_info():
    info = {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            info["cpu_model"] = m.group(1).strip() if m else None
        with open("/proc/meminfo") as f:
            info["mem_kib"] = int(f.readline().split()[1])
    except OSError:
        pass
    try:
        r = subprocess.run(["findmnt", "-no", "FSTYPE,SOURCE", "-T", WORK if os.path.exists(WORK) else ROOT],
                           capture_output=True, text=True, timeout=10)
        info["work_fs"] = r.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def _fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_disk_table(d, stream=sys.stdout):
    print(f"Disk limits ({d['device']}, {d['path']}):", file=stream)
    print(f"  4 KiB append+fdatasync: {_fmt(d['fsyncs_per_second'], 0)}/s  p50 {d['fsync_us_p50']} us  "
          f"p99 {d['fsync_us_p99']} us  max {d['fsync_us_max']} us  "
          f"(device flushes per fdatasync {d.get('disk_flushes_per_fdatasync')})", file=stream)
    print(f"  1 MiB append+fdatasync: {d['mb_per_second']} MB/s  (p50 {d['large_write_fsync_us_p50']} us per MiB)",
          file=stream)


def print_run_table(rows, stream=sys.stdout):
    hdr = ["mode", "writers", "linger", "records", "rec/s", "MB/s", "p50 us", "p99 us", "max us", "secs",
           "brk CPU s", "brk cores", "prod cores", "brk us/rec", "log flushes", "rec/logflush", "rec/req", "dev flushes", "rec/devflush",
           "dev wr/rec", "others"]
    table = [hdr]
    for r in rows:
        jd = r.get("broker_metrics_delta") or {}
        cl = r.get("mode") == "closed-loop"
        dw = r.get("disk_writes")
        n = r.get("acked") if cl else (r.get("acked") or 0) + (r.get("warmup_records") or 0)
        table.append([
            "closed-loop" if cl else "perf-test",
            str(r["writers"]) if cl else "1 (5 infl.)",
            str(r.get("linger_ms")), _fmt(r.get("acked")), _fmt(r.get("records_per_second"), 0),
            _fmt(r.get("mb_per_second"), 2), _fmt(r.get("latency_us_p50"), 0), _fmt(r.get("latency_us_p99"), 0),
            _fmt(r.get("latency_us_max"), 0), _fmt(r.get("seconds"), 2), _fmt(r.get("broker_cpu_seconds"), 2),
            _fmt(r.get("broker_cpu_cores"), 2), _fmt(r.get("producer_cpu_cores"), 2),
            _fmt(r.get("broker_cpu_us_per_record"), 0), _fmt(jd.get("log_flushes")),
            _fmt(r.get("records_per_log_flush"), 1), _fmt(r.get("records_per_produce_request"), 1),
            _fmt(r.get("disk_flushes")), _fmt(r.get("records_per_disk_flush"), 1),
            _fmt(dw / n, 2) if dw is not None and n else "-",
            _fmt(r.get("other_cpu_cores"), 2),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    for i, row in enumerate(table):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)), file=stream)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=stream)
    print("  perf-test rows: broker CPU/flush/disk columns cover warm-up + measured records; latencies 1 ms "
          "resolution.\n  others = CPU cores used by other processes on the box during the phase "
          "(contamination).\n  dev flushes = /proc/diskstats flush field (does not count fdatasync-issued "
          "flushes on this virtio disk; see README).", file=stream)


# --------------------------------------------------------------------------- CLI

def _ints(s):
    return [int(x) for x in str(s).split(",") if x.strip()]


def _kv(items):
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        out[k] = v
    return out


def cmd_setup(args):
    info = setup(version=args.kafka_version, force=args.force)
    print(json.dumps(info, indent=2))


def cmd_disk(args):
    path = args.path or os.path.join(WORK, "disk")
    d = disk_limits(path, seconds=args.seconds)
    print_disk_table(d)
    print(json.dumps({"disk": d}, indent=2))


def cmd_run(args):
    t_wall = time.monotonic()
    info = setup(version=args.kafka_version)
    broker_cpu = None if args.no_pin else 0
    client_cpu = None if args.no_pin else 1
    doc = {
        "benchmark": "B1 durable append (Kafka peer)",
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kafka": info,
        "machine": machine_info(),
        "pinning": {"broker_cpu": broker_cpu, "producer_cpu": client_cpu},
        "params": {"writers": args.writers, "records": args.records, "record_bytes": args.record_bytes,
                   "warmup_records": args.warmup, "warmup_max_seconds": args.warmup_max_seconds,
                   "max_seconds": args.max_seconds, "broker_warmup_seconds": args.broker_warmup_seconds,
                   "broker_warmup_writers": args.broker_warmup_writers, "linger_ms": args.linger_ms,
                   "perf_test": not args.no_perf_test, "wait_quiet_seconds": args.wait_quiet,
                   "quiet_cores": args.quiet_cores},
    }
    os.makedirs(RUNS_DIR, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    data_dir = os.path.join(RUNS_DIR, f"run-{stamp}-{os.getpid()}")
    if not args.no_disk:
        log("measuring disk limits ...")
        doc["disk"] = disk_limits(os.path.join(RUNS_DIR, "disk-probe"), seconds=args.disk_seconds)
        shutil.rmtree(os.path.join(RUNS_DIR, "disk-probe"), ignore_errors=True)
    if args.drop_caches:
        subprocess.run(["sync"], timeout=120)
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            doc["dropped_caches"] = True
        except OSError as e:
            doc["dropped_caches"] = f"failed: {e}"
    extra_broker = _kv(args.broker_prop)
    extra_prod = _kv(args.producer_prop)
    rows = []
    broker = start_broker(data_dir, cpu=broker_cpu, heap=args.heap,
                          flush_messages=None if args.relaxed else 1, extra_props=extra_broker)
    try:
        doc["broker"] = {"pid": broker.pid, "bootstrap": broker.bootstrap, "data_dir": data_dir,
                         "device": block_device_of(data_dir), "startup_seconds": broker.startup_seconds,
                         "heap": args.heap, "jvm_opts": JVM_PERF_OPTS, "server_properties": broker.props,
                         "topic": TOPIC, "topic_configs": broker.topic_configs,
                         "durability": "relaxed (Kafka default, no fsync)" if args.relaxed
                         else "fsync after every appended batch, before the acks=all response"}
        for li, linger in enumerate(_ints(args.linger_ms)):
            with ProducerSession(broker, args.record_bytes, linger_ms=linger, cpu=client_cpu,
                                 extra_props=extra_prod, timeout=args.timeout) as sess:
                if args.broker_warmup_seconds > 0 and li == 0:
                    # JIT-warm the broker and the producer JVM: a JVM broker taking a few hundred
                    # produce requests/s needs tens of seconds before its request path is compiled
                    # (single-writer rec/s rose ~5x over the first ~40 s in trial runs). Not measured.
                    log(f"warm-up: {args.broker_warmup_writers} writers for {args.broker_warmup_seconds:.0f} s")
                    wu = sess.run(args.broker_warmup_writers, 10 ** 9, warmup=0, warmup_max_seconds=0,
                                  max_seconds=args.broker_warmup_seconds)
                    doc["broker_warmup"] = {k: wu.get(k) for k in (
                        "writers", "acked", "seconds", "records_per_second", "latency_us_p50",
                        "broker_cpu_seconds", "producer_cpu_seconds", "other_cpu_cores")}
                    log(f"  -> {wu['acked']} records, {wu['records_per_second']:.0f} rec/s")
                for w in _ints(args.writers):
                    log(f"closed-loop: writers={w} records={args.records} linger.ms={linger} "
                        f"(+{args.warmup} warm-up)")
                    r = sess.run(w, args.records, warmup=args.warmup, warmup_max_seconds=args.warmup_max_seconds,
                                 max_seconds=args.max_seconds, wait_quiet_s=args.wait_quiet,
                                 quiet_cores=args.quiet_cores)
                    log(f"  -> {r['acked']} records{' (time-capped)' if r.get('time_capped') else ''}, "
                        f"{r['records_per_second']:.0f} rec/s, p50 {r['latency_us_p50']:.0f} us, "
                        f"p99 {r['latency_us_p99']:.0f} us, broker {r.get('broker_cpu_cores')} cores, "
                        f"producer {r.get('producer_cpu_cores')} cores, others {r.get('other_cpu_cores')}")
                    rows.append(r)
            if not args.no_perf_test:
                log(f"ProducerPerformance: records={args.records} linger.ms={linger}")
                r = run_producer_perf(args.records, args.record_bytes, broker, linger_ms=linger,
                                      warmup=args.warmup, cpu=client_cpu, extra_props=extra_prod,
                                      timeout=args.timeout, wait_quiet_s=args.wait_quiet,
                                      quiet_cores=args.quiet_cores)
                log(f"  -> {r.get('records_per_second')} rec/s")
                rows.append(r)
        doc["broker"]["rss_kib"] = memory_kib(broker.pid)
    finally:
        rc = stop_broker(broker)
        doc.setdefault("broker", {})["exit_code"] = rc
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    doc["runs"] = rows
    doc["wall_seconds"] = round(time.monotonic() - t_wall, 1)
    print(f"Kafka {info['kafka_version']} (KRaft single node), Java {info['java_version']}, "
          f"pinning broker={broker_cpu} producer={client_cpu}, "
          f"{'RELAXED (no fsync)' if args.relaxed else 'durable: log.flush.interval.messages=1, acks=all, idempotence'}")
    if doc.get("disk"):
        print_disk_table(doc["disk"])
    print()
    print_run_table(rows)
    print(f"\nwall time {doc['wall_seconds']} s")
    print(json.dumps(doc, indent=2))


def main(argv=None):
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kafka-version", help="pin a Kafka version instead of the newest 4.x")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="download Kafka jars with Maven (idempotent)")
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=cmd_setup)
    d = sub.add_parser("disk", help="measure the disk's fsync rate and durable bandwidth")
    d.add_argument("--path", help="directory on the filesystem to test (default bench/work/kafka/disk)")
    d.add_argument("--seconds", type=float, default=3.0)
    d.set_defaults(func=cmd_disk)
    r = sub.add_parser("run", help="start a broker, measure closed-loop producers (+ perf-test), stop")
    r.add_argument("--writers", default="1,16,256", help="comma-separated closed-loop writer counts")
    r.add_argument("--records", type=int, default=20000, help="measured records per writer count")
    r.add_argument("--record-bytes", type=int, default=300)
    r.add_argument("--warmup", type=int, default=5000, help="warm-up records before each measurement")
    r.add_argument("--warmup-max-seconds", type=float, default=5.0, help="cap on each closed-loop warm-up")
    r.add_argument("--broker-warmup-seconds", type=float, default=20.0,
                   help="unmeasured closed-loop traffic right after broker start (JIT warm-up; 0 = off)")
    r.add_argument("--broker-warmup-writers", type=int, default=64)
    r.add_argument("--max-seconds", type=float, default=30.0,
                   help="cap on each closed-loop measured phase (stops early; 0 = no cap)")
    r.add_argument("--linger-ms", default="0", help="comma-separated linger.ms values, e.g. 0,5")
    r.add_argument("--no-perf-test", action="store_true", help="skip the ProducerPerformance row")
    r.add_argument("--no-disk", action="store_true", help="skip the disk-limits measurement")
    r.add_argument("--disk-seconds", type=float, default=3.0)
    r.add_argument("--no-pin", action="store_true", help="do not taskset broker to CPU 0 / producer to CPU 1")
    r.add_argument("--heap", default="1g", help="broker heap (-Xms/-Xmx)")
    r.add_argument("--relaxed", action="store_true",
                   help="Kafka default durability (no log.flush.interval.messages; topic without flush.messages)")
    r.add_argument("--broker-prop", action="append", metavar="K=V", help="extra server.properties entry")
    r.add_argument("--producer-prop", action="append", metavar="K=V", help="extra producer property")
    r.add_argument("--drop-caches", action="store_true", help="sync; echo 3 > /proc/sys/vm/drop_caches first")
    r.add_argument("--keep", action="store_true", help="keep the broker data dir")
    r.add_argument("--timeout", type=float, default=600, help="time limit per producer JVM, s")
    r.add_argument("--wait-quiet", type=float, default=5.0,
                   help="before each measured phase wait up to this many s for the box to be idle (0 = off)")
    r.add_argument("--quiet-cores", type=float, default=0.3,
                   help="'idle' = machine-wide non-idle CPU below this many cores (broker idle included)")
    r.set_defaults(func=cmd_run)
    args = ap.parse_args(argv)
    try:
        args.func(args)
    finally:
        cleanup_all()


if __name__ == "__main__":
    main()
