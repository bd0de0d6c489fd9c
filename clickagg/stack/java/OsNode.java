import java.nio.file.Path;
import java.time.temporal.WeekFields;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import org.opensearch.common.Randomness;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.MockNode;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * Starts one real OpenSearch node in this JVM from Maven Central jars (no distribution needed), through
 * the test framework's MockNode (a Node that, given only the Netty plugin, uses every production service).
 *
 * Unlike the Elasticsearch launcher this one runs outside a randomized-testing context, and the runner
 * is not even on the class path (opensearch-pom.xml excludes it). That matters:
 * - OpenSearchTestCase, whose static initializer sets Netty's "paranoid" leak detection and installs
 *   the test security manager (BootstrapForTesting), extends Lucene's test case, which needs the runner:
 *   it cannot initialize here, so nothing of the test suites' JVM set-up happens.
 * - The server's Randomness looks for the runner: present, it hands out the suite's seeded Random (and
 *   fails outside a runner context); absent, production's ThreadLocalRandom / SecureRandom.
 * The start line says what the node really runs with, read back from the classes (tests check it).
 */
public class OsNode {
    public static void main(String[] args) throws Exception {
        LogConfigurator.configureWithoutConfig(Settings.builder().put("logger.level", "INFO").build());
        String home = System.getProperty("clickagg.os.home");
        Settings settings = Settings.builder()
            .put("cluster.name", "clickagg-local-os")
            .put("node.name", "clickagg-os")
            .put("path.home", home)
            .put("path.data", Path.of(home, "data").toString())
            .put("path.logs", Path.of(home, "logs").toString())
            .put("network.host", System.getProperty("clickagg.os.host", "127.0.0.1"))
            .put("http.port", System.getProperty("clickagg.os.http_port", "9201"))
            .put("transport.port", System.getProperty("clickagg.os.transport_port", "9301"))
            .put("discovery.type", "single-node")
            .put("http.type", Netty4Plugin.NETTY_HTTP_TRANSPORT_NAME)
            .put("transport.type", Netty4Plugin.NETTY_TRANSPORT_NAME)
            .put("action.destructive_requires_name", false)
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Node node = new MockNode(settings, List.of(Netty4Plugin.class), true);
        node.start();
        System.out.println("clickagg-os started (" + productionCheck() + ")");
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { node.close(); } catch (Exception e) { e.printStackTrace(); }
            done.countDown();
        }));
        done.await();
    }

    /** What the node really runs with; production OpenSearch 2.19 on Java 17 gives the values the test expects. */
    @SuppressWarnings("removal")
    static String productionCheck() {
        boolean runnerPresent;
        try {
            Class.forName("com.carrotsearch.randomizedtesting.RandomizedContext", false, OsNode.class.getClassLoader());
            runnerPresent = true;
        } catch (ClassNotFoundException e) {
            runnerPresent = false;
        }
        boolean productionRandom = !runnerPresent && Randomness.get() instanceof ThreadLocalRandom;
        return "netty_leak_detection=" + io.netty.util.ResourceLeakDetector.getLevel()
            + " randomness=" + (productionRandom ? "production" : "test-seeded")
            + " assertions=" + org.opensearch.core.Assertions.ENABLED
            + " locale_providers=" + System.getProperty("java.locale.providers", "default")
            + " week_start=" + WeekFields.of(Locale.ROOT).getFirstDayOfWeek()
            + " security_manager=" + (System.getSecurityManager() == null ? "none" : System.getSecurityManager().getClass().getSimpleName());
    }
}
