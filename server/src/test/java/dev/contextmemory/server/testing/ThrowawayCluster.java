package dev.contextmemory.server.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A PostgreSQL cluster of a test's own, for faults the shared cluster must never see: stopped,
 * started again, frozen with SIGSTOP. Uses the machine's PostgreSQL 15 binaries (the ones
 * scripts/dev-db installs, with pgvector); as root, it runs them as the {@code postgres} OS user,
 * as scripts/dev-db does. Durability is off (fsync): nothing here outlives the test.
 */
public final class ThrowawayCluster implements AutoCloseable {
  private static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
  private static final boolean ROOT = "root".equals(System.getProperty("user.name"));

  private final Path dir;
  private final int port;

  private ThrowawayCluster(Path dir, int port) {
    this.dir = dir;
    this.port = port;
  }

  /** initdb into a temp directory, start on a free port, create database {@code cm}. */
  public static ThrowawayCluster start() throws IOException, InterruptedException, SQLException {
    // scripts/dev-db installs these; a run against an external CONTEXT_MEMORY_DB_URL may lack them.
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(BIN.resolve("initdb")),
        "no PostgreSQL 15 binaries in " + BIN + " (scripts/dev-db start installs them)");
    Path dir = Files.createTempDirectory("cm-throwaway-pg");
    if (ROOT) {
      run(List.of("chown", "postgres:", dir.toString()));
    }
    Path data = dir.resolve("data");
    runAsPg(List.of(BIN.resolve("initdb").toString(), "-D", data.toString(), "-U", "postgres", "-E", "UTF8",
        "--locale=C.UTF-8", "--auth=trust", "--no-sync"));
    ThrowawayCluster c = new ThrowawayCluster(dir, freePort());
    c.pgStart();
    try (Connection conn = DriverManager.getConnection(c.url("postgres")); Statement st = conn.createStatement()) {
      st.execute("CREATE DATABASE cm");
    }
    return c;
  }

  /**
   * A streaming-replication standby of this cluster, on a free port: pg_basebackup -R (which
   * writes standby.signal and primary_conninfo) and start. The stock initdb configuration already
   * has what it needs (wal_level replica, wal senders, a trusted replication entry for 127.0.0.1).
   */
  public ThrowawayCluster standby() throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("cm-throwaway-standby");
    if (ROOT) {
      run(List.of("chown", "postgres:", dir.toString()));
    }
    runAsPg(List.of(BIN.resolve("pg_basebackup").toString(), "-h", "127.0.0.1", "-p", Integer.toString(port),
        "-U", "postgres", "-D", dir.resolve("data").toString(), "-R", "-X", "stream", "-c", "fast", "--no-sync"));
    ThrowawayCluster c = new ThrowawayCluster(dir, freePort());
    c.pgStart();
    return c;
  }

  /** JDBC URL of database {@code cm} on this cluster. */
  public String url() {
    return url("cm");
  }

  private String url(String db) {
    return "jdbc:postgresql://127.0.0.1:" + port + "/" + db + "?user=postgres";
  }

  /** Starts the postmaster (again) and waits until it accepts connections. */
  public void pgStart() throws IOException, InterruptedException {
    runAsPg(List.of(BIN.resolve("pg_ctl").toString(), "start", "-D", dir.resolve("data").toString(), "-w", "-t", "60",
        "-l", dir.resolve("log").toString(), "-o",
        "-c listen_addresses=127.0.0.1 -c port=" + port + " -c unix_socket_directories='' -c fsync=off"
            + " -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=60"));
  }

  /** A fast shutdown: sessions are terminated, the port stops answering. */
  public void pgStop() throws IOException, InterruptedException {
    runAsPg(List.of(BIN.resolve("pg_ctl").toString(), "stop", "-D", dir.resolve("data").toString(), "-m", "fast",
        "-w", "-t", "60"));
  }

  /** SIGSTOP to the postmaster and every backend: TCP still connects, nothing answers. */
  public void freeze() throws IOException, InterruptedException {
    signal("-STOP");
  }

  /** SIGCONT: the frozen cluster carries on where it stopped. */
  public void thaw() throws IOException, InterruptedException {
    signal("-CONT");
  }

  private void signal(String sig) throws IOException, InterruptedException {
    long postmaster = Long.parseLong(Files.readAllLines(dir.resolve("data/postmaster.pid")).get(0).trim());
    // The postmaster first: once stopped it forks no new backend, so the list below is complete.
    run(List.of("kill", sig, Long.toString(postmaster)));
    List<String> cmd = new ArrayList<>(List.of("kill", sig));
    ProcessHandle.of(postmaster).orElseThrow().descendants().forEach(p -> cmd.add(Long.toString(p.pid())));
    if (cmd.size() == 2) {
      return;
    }
    Exit exit = exec(cmd);
    // A backend that exited between the listing and the signal (CI saw one) needs no signal; kill
    // still signalled the others. Anything else is a real failure.
    if (exit.code() != 0 && !exit.output().lines().allMatch(l -> l.isBlank() || l.contains("No such process"))) {
      throw new IOException(cmd + " exited " + exit.code() + ": " + exit.output());
    }
  }

  @Override
  public void close() {
    try {
      thaw();
    } catch (Exception ignored) {
      // not running
    }
    try {
      runAsPg(List.of(BIN.resolve("pg_ctl").toString(), "stop", "-D", dir.resolve("data").toString(), "-m",
          "immediate", "-w", "-t", "60"));
    } catch (Exception ignored) {
      // already stopped
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // a temp directory left behind
    }
  }

  private static void runAsPg(List<String> cmd) throws IOException, InterruptedException {
    if (!ROOT) {
      run(cmd);
      return;
    }
    List<String> as = new ArrayList<>(List.of("runuser", "-u", "postgres", "--"));
    as.addAll(cmd);
    run(as);
  }

  private static void run(List<String> cmd) throws IOException, InterruptedException {
    Exit exit = exec(cmd);
    if (exit.code() != 0) {
      throw new IOException(cmd + " exited " + exit.code() + ": " + exit.output());
    }
  }

  private record Exit(int code, String output) {}

  private static Exit exec(List<String> cmd) throws IOException, InterruptedException {
    Path out = Files.createTempFile("cm-throwaway-cmd", ".log");
    try {
      Process p = new ProcessBuilder(cmd).directory(Path.of("/").toFile()).redirectErrorStream(true)
          .redirectOutput(out.toFile()).start();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException("timed out: " + cmd);
      }
      return new Exit(p.exitValue(), Files.readString(out));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
