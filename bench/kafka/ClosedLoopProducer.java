// Closed-loop Kafka producer for Docket's B1 event-log benchmark (bench/kafka/kafka_peer.py).
//
// N writer threads share ONE KafkaProducer; each thread does producer.send(record).get() and only
// then sends its next record, i.e. every writer has exactly one record outstanding, like Docket's
// closed-loop writers. Ack latency = System.nanoTime() around send().get().
//
// Modes (all output is line-oriented on stdout; the last line is one JSON object):
//   create-topic <bootstrap> <topic> <partitions> <rf> <timeoutMs> [key=value topic configs...]
//       creates the topic with the Admin API (retrying until the broker answers), waits until it has a
//       leader, prints {"created":...}.
//   session <bootstrap> <topic> <recordBytes> [key=value producer props...]
//       creates ONE KafkaProducer, then reads commands from stdin, one per line:
//         run <writers> <records> <warmupRecords> <warmupMaxMs> <maxMs>
//             warm-up with that writer count (warmupRecords or warmupMaxMs, whichever ends first),
//             print "READY", wait for a line on stdin (the harness snapshots broker CPU time, broker
//             flush counters and disk counters), measure (records, or until maxMs has passed:
//             writers then stop starting new sends; "time_capped" tells; maxMs <= 0: no cap),
//             print "DONE", then print one JSON line with the result.
//         quit
//       One JVM serves every writer count of a run, so its JIT warm-up is shared.
//
// Compiled at run time by kafka_peer.py with javac against the Kafka jars (bench/work/kafka/libs).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ClosedLoopProducer {

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: create-topic ... | session ...");
            System.exit(2);
        }
        switch (args[0]) {
            case "create-topic": createTopic(Arrays.copyOfRange(args, 1, args.length)); break;
            case "session": session(Arrays.copyOfRange(args, 1, args.length)); break;
            default:
                System.err.println("unknown mode " + args[0]);
                System.exit(2);
        }
    }

    // ---------------------------------------------------------------- create-topic

    static void createTopic(String[] a) throws Exception {
        String bootstrap = a[0], topic = a[1];
        int partitions = Integer.parseInt(a[2]);
        short rf = Short.parseShort(a[3]);
        long timeoutMs = Long.parseLong(a[4]);
        Map<String, String> configs = new HashMap<>();
        for (int i = 5; i < a.length; i++) {
            String[] kv = a[i].split("=", 2);
            configs.put(kv[0], kv[1]);
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        long deadline = System.currentTimeMillis() + timeoutMs;
        boolean created = false;
        int attempts = 0;
        Exception last = null;
        try (Admin admin = Admin.create(p)) {
            while (System.currentTimeMillis() < deadline) {
                attempts++;
                try {
                    NewTopic nt = new NewTopic(topic, partitions, rf).configs(configs);
                    admin.createTopics(Collections.singleton(nt)).all().get(10, TimeUnit.SECONDS);
                    created = true;
                    break;
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof TopicExistsException) break;
                    last = e;
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(250);
            }
            if (!created && last != null && System.currentTimeMillis() >= deadline) {
                throw new RuntimeException("topic creation timed out after " + attempts + " attempts", last);
            }
            // wait for a leader
            String leader = null;
            while (System.currentTimeMillis() < deadline) {
                try {
                    TopicDescription d = admin.describeTopics(Collections.singleton(topic))
                            .allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
                    if (d.partitions().stream().allMatch(pi -> pi.leader() != null && !pi.leader().isEmpty())) {
                        leader = d.partitions().get(0).leader().idString();
                        break;
                    }
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(100);
            }
            if (leader == null) throw new RuntimeException("topic has no leader before timeout", last);
            System.out.println("{\"created\":" + created + ",\"attempts\":" + attempts + ",\"leader\":" + leader + "}");
        }
    }

    // ---------------------------------------------------------------- produce

    static void session(String[] a) throws Exception {
        String bootstrap = a[0], topic = a[1];
        final int recordBytes = Integer.parseInt(a[2]);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        for (int i = 3; i < a.length; i++) {
            String[] kv = a[i].split("=", 2);
            p.put(kv[0], kv[1]);
        }
        Map<String, String> effective = new LinkedHashMap<>();
        for (String k : p.stringPropertyNames()) effective.put(k, p.getProperty(k));

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            System.out.println("SESSION");
            System.out.flush();
            String line;
            while ((line = in.readLine()) != null) {
                String[] c = line.trim().split("\\s+");
                if (c[0].equals("quit")) break;
                if (!c[0].equals("run")) {
                    System.out.println("{\"error\":\"unknown command\"}");
                    System.out.flush();
                    continue;
                }
                final int writers = Integer.parseInt(c[1]);
                final long records = Long.parseLong(c[2]);
                final long warmup = Long.parseLong(c[3]);
                final long warmupMaxMs = Long.parseLong(c[4]);
                final long maxMs = Long.parseLong(c[5]);
                runOne(producer, topic, writers, records, recordBytes, warmup, warmupMaxMs, maxMs, effective, in);
            }
        }
    }

    static void runOne(KafkaProducer<byte[], byte[]> producer, String topic, int writers, long records,
                       int recordBytes, long warmup, long warmupMaxMs, long maxMs,
                       Map<String, String> effective, BufferedReader in) throws Exception {
        final byte[][] payloads = new byte[writers][];
        Random rnd = new Random(42);
        for (int i = 0; i < writers; i++) {
            payloads[i] = new byte[recordBytes];
            // printable, incompressible-ish content (compression is off anyway)
            for (int j = 0; j < recordBytes; j++) payloads[i][j] = (byte) ('a' + rnd.nextInt(26));
        }
        // warm-up: same writer count, not measured
        if (warmup > 0 && warmupMaxMs != 0) {
            Phase w = runPhase(producer, topic, writers, warmup, payloads, warmupMaxMs);
            if (w.errors.get() > 0) System.err.println("warm-up errors: " + w.errors.get() + " first: " + w.firstError);
        }
        Map<String, Double> m0 = producerMetrics(producer);
        System.out.println("READY");
        System.out.flush();
        String go = in.readLine();
        if (go == null) throw new RuntimeException("stdin closed before GO");

        Phase ph = runPhase(producer, topic, writers, records, payloads, maxMs);

        System.out.println("DONE");
        System.out.flush();
        Map<String, Double> m1 = producerMetrics(producer);

        long[] lat = ph.mergedLatencies();
        Arrays.sort(lat);
        double secs = ph.elapsedNanos / 1e9;
        long ok = lat.length;
        StringBuilder sb = new StringBuilder();
        sb.append('{');
        kv(sb, "mode", "closed-loop");
        kv(sb, "writers", writers);
        kv(sb, "records", records);
        kv(sb, "acked", ok);
        sb.append("\"time_capped\":").append(ph.capped).append(',');
        kv(sb, "max_seconds", maxMs > 0 ? maxMs / 1000.0 : null);
        kv(sb, "errors", ph.errors.get());
        kv(sb, "first_error", ph.firstError);
        kv(sb, "record_bytes", recordBytes);
        kv(sb, "warmup_records", warmup);
        kv(sb, "seconds", secs);
        kv(sb, "records_per_second", ok / secs);
        kv(sb, "mb_per_second", ok * (double) recordBytes / 1e6 / secs);
        kv(sb, "latency_us_mean", mean(lat) / 1000.0);
        kv(sb, "latency_us_p50", pct(lat, 50) / 1000.0);
        kv(sb, "latency_us_p90", pct(lat, 90) / 1000.0);
        kv(sb, "latency_us_p99", pct(lat, 99) / 1000.0);
        kv(sb, "latency_us_p999", pct(lat, 99.9) / 1000.0);
        kv(sb, "latency_us_max", lat.length == 0 ? 0 : lat[lat.length - 1] / 1000.0);
        // producer-side averages over the producer's lifetime (warm-up included) and request deltas
        sb.append("\"producer_metrics_end\":").append(mapJson(m1)).append(',');
        Map<String, Double> d = new LinkedHashMap<>();
        for (String k : new String[]{"record-send-total", "request-total"}) {
            if (m0.containsKey(k) && m1.containsKey(k)) d.put(k, m1.get(k) - m0.get(k));
        }
        sb.append("\"producer_metrics_delta\":").append(mapJson(d)).append(',');
        sb.append("\"producer_config\":").append(strMapJson(effective));
        sb.append('}');
        System.out.println(sb);
        System.out.flush();
    }

    static final class Phase {
        final long[][] lat;
        final int[] n;
        final AtomicLong errors = new AtomicLong();
        volatile String firstError;
        volatile boolean capped;
        long elapsedNanos;

        Phase(int writers, long records) {
            lat = new long[writers][];
            n = new int[writers];
            int per = (int) Math.min(1 << 16, records / writers + 2);  // grows on demand
            for (int i = 0; i < writers; i++) lat[i] = new long[per];
        }

        void add(int w, long v) {
            if (n[w] == lat[w].length) lat[w] = Arrays.copyOf(lat[w], lat[w].length * 2);
            lat[w][n[w]++] = v;
        }

        long[] mergedLatencies() {
            int total = 0;
            for (int x : n) total += x;
            long[] out = new long[total];
            int o = 0;
            for (int i = 0; i < lat.length; i++) {
                System.arraycopy(lat[i], 0, out, o, n[i]);
                o += n[i];
            }
            return out;
        }
    }

    static Phase runPhase(KafkaProducer<byte[], byte[]> producer, String topic, int writers, long records,
                          byte[][] payloads, long maxMs) throws InterruptedException {
        final Phase ph = new Phase(writers, records);
        final AtomicLong next = new AtomicLong();
        final CountDownLatch start = new CountDownLatch(1);
        final CountDownLatch done = new CountDownLatch(writers);
        final long[] startNanos = new long[1];
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            final int id = w;
            Thread t = new Thread(() -> {
                try {
                    start.await();
                    final long deadline = maxMs > 0 ? startNanos[0] + maxMs * 1_000_000L : Long.MAX_VALUE;
                    while (next.getAndIncrement() < records) {
                        if (maxMs > 0 && System.nanoTime() - deadline > 0) {
                            ph.capped = true;
                            break;
                        }
                        long t0 = System.nanoTime();
                        try {
                            producer.send(new ProducerRecord<>(topic, null, payloads[id])).get();
                            ph.add(id, System.nanoTime() - t0);
                        } catch (Exception e) {
                            if (ph.errors.incrementAndGet() == 1) ph.firstError = String.valueOf(e);
                        }
                    }
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                } finally {
                    done.countDown();
                }
            }, "writer-" + w);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        long t0 = System.nanoTime();
        startNanos[0] = t0;
        start.countDown();
        done.await();
        ph.elapsedNanos = System.nanoTime() - t0;
        return ph;
    }

    static Map<String, Double> producerMetrics(KafkaProducer<byte[], byte[]> producer) {
        String[] wanted = {"record-send-total", "request-total", "batch-size-avg", "records-per-request-avg",
                "request-latency-avg", "request-latency-max", "record-queue-time-avg", "produce-throttle-time-avg"};
        Map<String, Double> out = new LinkedHashMap<>();
        for (Map.Entry<MetricName, ? extends Metric> e : producer.metrics().entrySet()) {
            MetricName mn = e.getKey();
            if (!"producer-metrics".equals(mn.group())) continue;
            for (String w : wanted) {
                if (w.equals(mn.name())) {
                    Object v = e.getValue().metricValue();
                    if (v instanceof Number) out.put(w, ((Number) v).doubleValue());
                }
            }
        }
        return out;
    }

    static long pct(long[] sorted, double p) {
        if (sorted.length == 0) return 0;
        int idx = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, idx))];
    }

    static double mean(long[] v) {
        if (v.length == 0) return 0;
        double s = 0;
        for (long x : v) s += x;
        return s / v.length;
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static String num(double d) {
        return (Double.isNaN(d) || Double.isInfinite(d)) ? "null" : Double.toString(d);
    }

    static void kv(StringBuilder sb, String k, Object v) {
        sb.append(esc(k)).append(':');
        if (v == null) sb.append("null");
        else if (v instanceof Double) sb.append(num((Double) v));
        else if (v instanceof Number) sb.append(v);
        else sb.append(esc(String.valueOf(v)));
        sb.append(',');
    }

    static String mapJson(Map<String, Double> m) {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, Double> e : m.entrySet()) {
            if (b.length() > 1) b.append(',');
            b.append(esc(e.getKey())).append(':').append(e.getValue() == null ? "null" : num(e.getValue()));
        }
        return b.append('}').toString();
    }

    static String strMapJson(Map<String, String> m) {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, String> e : m.entrySet()) {
            if (b.length() > 1) b.append(',');
            b.append(esc(e.getKey())).append(':').append(esc(e.getValue()));
        }
        return b.append('}').toString();
    }
}
