package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.dsl.Calls;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.ListCustomersRequest;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The server, started here as its own JVM from the runnable jar (as in production: a separate
 * process over real TCP), on a free port against the given database. Its log goes to a file.
 */
final class ServerProcess implements AutoCloseable {
  private static final Duration START_TIMEOUT = Duration.ofSeconds(120);

  private final Process process;
  private final int port;
  private final Path log;

  private ServerProcess(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /**
   * @param env extra environment of the server (e.g. CONTEXT_MEMORY_AUTH=api-key), set after the
   *     harness's own CONTEXT_MEMORY_* variables are cleared and before the database, host and port
   * @param apiKey the key the start-up probe sends, or null
   */
  static ServerProcess start(Path jar, String dbUrl, List<String> javaOptions, java.util.Map<String, String> env,
      String apiKey, Path log) throws IOException {
    int port = freePort();
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    cmd.add("-XX:+ExitOnOutOfMemoryError");
    if (Runtime.version().feature() >= 24) {
      // As scripts/run does: protobuf and Netty use sun.misc.Unsafe and native access.
      cmd.add("--sun-misc-unsafe-memory-access=allow");
      cmd.add("--enable-native-access=ALL-UNNAMED");
    }
    cmd.addAll(javaOptions);
    cmd.add("-jar");
    cmd.add(jar.toString());
    cmd.add("serve");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("CONTEXT_MEMORY_"));
    pb.environment().put("CONTEXT_MEMORY_AUTH", "none"); // unless env says api-key
    pb.environment().putAll(env);
    pb.environment().put("CONTEXT_MEMORY_DB_URL", dbUrl);
    pb.environment().put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    pb.environment().put("CONTEXT_MEMORY_PORT", Integer.toString(port));
    ServerProcess server = new ServerProcess(pb.start(), port, log);
    try {
      server.awaitServing(apiKey);
    } catch (RuntimeException e) {
      server.close();
      throw e;
    }
    return server;
  }

  /**
   * Creates an API key of {@code tenant} with the read and write scopes in the database at
   * {@code dbUrl}, through the server jar's {@code keys create} (which migrates the database
   * first), as an operator would. Returns the key; it is never printed.
   */
  static String createKey(Path jar, List<String> javaOptions, String dbUrl, String tenant) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    if (Runtime.version().feature() >= 24) {
      cmd.add("--sun-misc-unsafe-memory-access=allow");
      cmd.add("--enable-native-access=ALL-UNNAMED");
    }
    cmd.addAll(javaOptions);
    cmd.addAll(List.of("-jar", jar.toString(), "keys", "create", "--tenant", tenant, "--name", "loadtest",
        "--scopes", "read,write"));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD);
    pb.environment().keySet().removeIf(k -> k.startsWith("CONTEXT_MEMORY_"));
    pb.environment().put("CONTEXT_MEMORY_DB_URL", dbUrl);
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII).strip();
    try {
      if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0 || !out.startsWith("cm_")) {
        throw new IllegalStateException("`keys create` failed (status " + (p.isAlive() ? "running" : p.exitValue()) + ")");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
    return out;
  }

  /** The newest runnable jar under server/target, relative to the working directory. */
  static Path defaultJar() throws IOException {
    Path dir = Path.of("server", "target");
    Path best = null;
    if (Files.isDirectory(dir)) {
      try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "context-memory-server-*-all.jar")) {
        for (Path p : s) {
          if (best == null || Files.getLastModifiedTime(p).compareTo(Files.getLastModifiedTime(best)) > 0) {
            best = p;
          }
        }
      }
    }
    if (best == null) {
      throw new IllegalStateException("no server/target/context-memory-server-*-all.jar: build it (mvn package)"
          + " or pass --server-jar");
    }
    return best;
  }

  int port() {
    return port;
  }

  /** Waits until the server answers a real call (migrations done, pool up), or fails with its log. */
  private void awaitServing(String apiKey) {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    ManagedChannel ch = HarnessChannel.open("127.0.0.1", port, apiKey);
    try {
      while (true) {
        if (!process.isAlive()) {
          throw new IllegalStateException("the server exited with status " + process.exitValue() + " while starting;"
              + " its log (" + log + ") ends:\n" + tail());
        }
        try {
          Calls.blocking(ch, CustomerServiceGrpc.getListCustomersMethod(),
              ListCustomersRequest.newBuilder().setPageSize(1).build(), Duration.ofSeconds(2));
          return;
        } catch (StatusRuntimeException e) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("the server did not answer within " + START_TIMEOUT.toSeconds()
                + " s (last: " + e.getStatus() + "); its log (" + log + ") ends:\n" + tail());
          }
        }
        sleep(200);
      }
    } finally {
      ch.shutdownNow();
    }
  }

  private String tail() {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    } catch (IOException e) {
      return "(unreadable: " + e.getMessage() + ")";
    }
  }

  /** SIGTERM (the server drains its calls), then SIGKILL if it has not exited after 30 s. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }

  private static int freePort() {
    try (ServerSocket s = new ServerSocket(0)) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
