package dev.contextmemory.server.testing;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real PgBouncer (Debian's package, which scripts/test installs) of a test's own, on a free port
 * in front of the test cluster: one pooled database per entry of {@code modes} (alias name to
 * {@code transaction} or {@code session}), each pointing at a test database of the same name. The
 * configuration is stock apart from what a JDBC client needs ({@code ignore_startup_parameters =
 * extra_float_digits}, which pgjdbc sends) and trust authentication (the dev cluster's).
 * As root it runs as the {@code postgres} OS user: PgBouncer refuses to run as root.
 */
public final class PgBouncer implements AutoCloseable {
  public static final Path BINARY = Path.of("/usr/sbin/pgbouncer");
  private static final boolean ROOT = "root".equals(System.getProperty("user.name"));

  private final Path dir;
  private final int port;
  private final Process process;

  private PgBouncer(Path dir, int port, Process process) {
    this.dir = dir;
    this.port = port;
    this.process = process;
  }

  /** {@code databases}: test database name to pool mode. */
  public static PgBouncer start(Map<String, String> databases) throws IOException, InterruptedException {
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(BINARY),
        "no " + BINARY + " (scripts/test installs Debian's pgbouncer package)");
    URI base = URI.create(TestDatabase.baseUrl().substring("jdbc:".length()));
    Path dir = Files.createTempDirectory("cm-pgbouncer");
    int port = freePort();
    StringBuilder ini = new StringBuilder("[databases]\n");
    new LinkedHashMap<>(databases).forEach((db, mode) -> ini.append(db).append(" = host=").append(base.getHost())
        .append(" port=").append(base.getPort()).append(" dbname=").append(db).append(" pool_mode=").append(mode)
        .append('\n'));
    ini.append("""
        [pgbouncer]
        listen_addr = 127.0.0.1
        listen_port = %d
        unix_socket_dir =
        auth_type = trust
        auth_file = %s
        admin_users = postgres
        pool_mode = transaction
        max_client_conn = 500
        default_pool_size = 20
        ignore_startup_parameters = extra_float_digits
        logfile = %s
        """.formatted(port, dir.resolve("users.txt"), dir.resolve("pgbouncer.log")));
    Files.writeString(dir.resolve("users.txt"), "\"postgres\" \"\"\n");
    Files.writeString(dir.resolve("pgbouncer.ini"), ini);
    List<String> cmd = new ArrayList<>();
    if (ROOT) {
      new ProcessBuilder("chown", "-R", "postgres:", dir.toString()).start().waitFor();
      cmd.addAll(List.of("runuser", "-u", "postgres", "--"));
    }
    cmd.addAll(List.of(BINARY.toString(), dir.resolve("pgbouncer.ini").toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("stdout.log").toFile())).start();
    PgBouncer b = new PgBouncer(dir, port, p);
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!accepts(port)) {
      if (!p.isAlive() || System.nanoTime() > until) {
        String log = b.log();
        b.close();
        throw new IOException("pgbouncer did not start: " + log);
      }
      Thread.sleep(50);
    }
    return b;
  }

  /** The JDBC URL of pooled database {@code db}. */
  public String url(String db) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=postgres";
  }

  public String log() {
    try {
      return Files.readString(dir.resolve("stdout.log")) + (Files.exists(dir.resolve("pgbouncer.log"))
          ? Files.readString(dir.resolve("pgbouncer.log")) : "");
    } catch (IOException e) {
      return e.toString();
    }
  }

  private static boolean accepts(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 200);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static int freePort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() {
    process.descendants().forEach(ProcessHandle::destroy);
    process.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
