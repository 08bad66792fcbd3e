// Java agent loaded into the Kafka broker (-javaagent:stats-agent.jar=PORT) by kafka_peer.py.
//
// It answers one line of JSON with selected broker metrics (read from the in-process platform
// MBeanServer) to each connection on 127.0.0.1:PORT. This replaces the JDK's remote JMX agent,
// which always also exports a local connector on an ephemeral port bound to all interfaces.
// The broker's main class stays kafka.Kafka.
//
// Reported (Yammer metrics Kafka registers under these names):
//   log_flushes            kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs  Count (+ Mean/p50/p99/Max ms)
//   produce_requests       sum of kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,* Count
//   messages_in, bytes_in  kafka.server:type=BrokerTopicMetrics,name={MessagesInPerSec,BytesInPerSec} Count
//   produce_total_ms_*, produce_local_ms_*  RequestMetrics TotalTimeMs / LocalTimeMs for Produce (Mean/p50/p99/Max, Count)

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import javax.management.MBeanServer;
import javax.management.ObjectName;

public final class BrokerStatsAgent {

    public static void premain(String args) {
        start(args);
    }

    public static void agentmain(String args) {
        start(args);
    }

    static void start(String args) {
        final int port = Integer.parseInt(args.trim());
        Thread t = new Thread(() -> serve(port), "bench-stats-agent");
        t.setDaemon(true);
        t.start();
    }

    static void serve(int port) {
        try (ServerSocket ss = new ServerSocket(port, 8, InetAddress.getLoopbackAddress())) {
            while (true) {
                try (Socket s = ss.accept()) {
                    s.setSoTimeout(5000);
                    BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                    in.readLine();
                    OutputStream out = s.getOutputStream();
                    out.write((stats() + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                } catch (Exception e) {
                    // keep serving
                }
            }
        } catch (Exception e) {
            System.err.println("bench-stats-agent: cannot listen on 127.0.0.1:" + port + ": " + e);
        }
    }

    static Object attr(MBeanServer mbs, String name, String attribute) {
        try {
            return mbs.getAttribute(new ObjectName(name), attribute);
        } catch (Exception e) {
            return null;
        }
    }

    static void timer(MBeanServer mbs, Map<String, Object> m, String prefix, String name) {
        m.put(prefix + "_count", attr(mbs, name, "Count"));
        m.put(prefix + "_mean", attr(mbs, name, "Mean"));
        m.put(prefix + "_p50", attr(mbs, name, "50thPercentile"));
        m.put(prefix + "_p99", attr(mbs, name, "99thPercentile"));
        m.put(prefix + "_max", attr(mbs, name, "Max"));
    }

    static String stats() {
        MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("log_flushes", attr(mbs, "kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs", "Count"));
        long produce = 0;
        boolean any = false;
        try {
            for (ObjectName on : mbs.queryNames(new ObjectName(
                    "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,*"), null)) {
                Object v = mbs.getAttribute(on, "Count");
                if (v instanceof Number) {
                    produce += ((Number) v).longValue();
                    any = true;
                }
            }
        } catch (Exception e) {
            // leave null
        }
        m.put("produce_requests", any ? produce : null);
        m.put("messages_in", attr(mbs, "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec", "Count"));
        m.put("bytes_in", attr(mbs, "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec", "Count"));
        timer(mbs, m, "log_flush_ms", "kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs");
        timer(mbs, m, "produce_total_ms", "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce");
        timer(mbs, m, "produce_local_ms", "kafka.network:type=RequestMetrics,name=LocalTimeMs,request=Produce");
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, Object> e : m.entrySet()) {
            if (b.length() > 1) b.append(',');
            b.append('"').append(e.getKey()).append("\":");
            Object v = e.getValue();
            if (v instanceof Number) {
                double d = ((Number) v).doubleValue();
                b.append(Double.isNaN(d) || Double.isInfinite(d) ? "null" : v.toString());
            } else {
                b.append("null");
            }
        }
        return b.append('}').toString();
    }
}
