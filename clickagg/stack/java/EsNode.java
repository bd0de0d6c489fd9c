import com.carrotsearch.randomizedtesting.RandomizedRunner;
import com.carrotsearch.randomizedtesting.annotations.ThreadLeakScope;
import com.carrotsearch.randomizedtesting.annotations.TimeoutSuite;
import com.carrotsearch.randomizedtesting.annotations.Timeout;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.node.MockNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;
import org.junit.Test;
import org.junit.runner.JUnitCore;
import org.junit.runner.RunWith;

/**
 * Starts one real Elasticsearch node in this JVM from Maven Central jars (no distribution needed).
 * The test framework's MockNode expects a randomized-testing context, so the node runs inside one.
 */
@RunWith(RandomizedRunner.class)
@ThreadLeakScope(ThreadLeakScope.Scope.NONE)
@TimeoutSuite(millis = Integer.MAX_VALUE)
public class EsNode {
    public static void main(String[] args) throws Exception {
        productionSystemProperties();
        LogConfigurator.configureWithoutConfig(Settings.EMPTY);
        var result = JUnitCore.runClasses(EsNode.class);
        result.getFailures().forEach(f -> { System.err.println(f.getTrace()); });
        System.exit(result.wasSuccessful() ? 0 : 1);
    }

    /**
     * ESTestCase's static initializer (run when the test framework is first used) sets system
     * properties for ES's own test suites: Netty's "paranoid" leak detection (a stack trace recorded
     * on every buffer access) and, at random, java.time-only date parsing (ES's fast ISO-8601 parser
     * off). A served node must behave like a production one. The date formatters read their property
     * once, when their class initializes, and that can happen inside ESTestCase's initializer itself:
     * so they are initialized first, with the property absent; then ESTestCase; then Netty's level
     * is set back.
     */
    static void productionSystemProperties() throws ClassNotFoundException {
        ClassLoader loader = EsNode.class.getClassLoader();
        System.clearProperty("es.datetime.java_time_parsers");
        Class.forName("org.elasticsearch.common.time.DateFormatters", true, loader);
        Class.forName("org.elasticsearch.test.ESTestCase", true, loader);
        System.setProperty("io.netty.leakDetection.level", "disabled");
        io.netty.util.ResourceLeakDetector.setLevel(io.netty.util.ResourceLeakDetector.Level.DISABLED);
    }

    /** What the node really runs with, read back from the classes themselves (tests check it). */
    static String productionCheck() throws ReflectiveOperationException {
        var javaTimeOnly = Class.forName("org.elasticsearch.common.time.DateFormatters").getDeclaredField("JAVA_TIME_PARSERS_ONLY");
        javaTimeOnly.setAccessible(true);
        return "java_time_parsers_only=" + javaTimeOnly.getBoolean(null)
            + " netty_leak_detection=" + io.netty.util.ResourceLeakDetector.getLevel();
    }

    @Test
    @Timeout(millis = Integer.MAX_VALUE)
    public void serve() throws Exception {
        String home = System.getProperty("clickagg.es.home");
        Settings settings = Settings.builder()
            .put("cluster.name", "clickagg-local")
            .put("node.name", "clickagg-es")
            .put("path.home", home)
            .put("path.data", Path.of(home, "data").toString())
            .put("path.logs", Path.of(home, "logs").toString())
            .put("network.host", System.getProperty("clickagg.es.host", "127.0.0.1"))
            .put("http.port", System.getProperty("clickagg.es.http_port", "9200"))
            .put("transport.port", System.getProperty("clickagg.es.transport_port", "9300"))
            .put("discovery.type", "single-node")
            .put("http.type", Netty4Plugin.NETTY_HTTP_TRANSPORT_NAME)
            .put("transport.type", Netty4Plugin.NETTY_TRANSPORT_NAME)
            .put("action.destructive_requires_name", false)
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Node node = new MockNode(settings, List.of(Netty4Plugin.class), true, () -> {});
        node.start();
        System.out.println("clickagg-es started (" + productionCheck() + ")");
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { node.close(); } catch (Exception e) { e.printStackTrace(); }
            done.countDown();
        }));
        done.await();
    }
}
