package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.dsl.Calls;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.ListCustomersRequest;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
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
  private int metricsPort;
  private final Path log;

  private ServerProcess(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  static ServerProcess start(Path jar, String dbUrl, List<String> javaOptions, Path log) throws IOException {
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
    pb.environment().put("CONTEXT_MEMORY_DB_URL", dbUrl);
    pb.environment().put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    pb.environment().put("CONTEXT_MEMORY_AUTH", "none");
    pb.environment().put("CONTEXT_MEMORY_PORT", Integer.toString(port));
    // Its own latency histograms, scraped around each scenario (report: "server side").
    int metricsPort = freePort();
    pb.environment().put("CONTEXT_MEMORY_METRICS_PORT", Integer.toString(metricsPort));
    ServerProcess server = new ServerProcess(pb.start(), port, log);
    server.metricsPort = metricsPort;
    try {
      server.awaitServing();
    } catch (RuntimeException e) {
      server.close();
      throw e;
    }
    return server;
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

  /** The server's Prometheus endpoint. */
  java.net.URI metricsUrl() {
    return java.net.URI.create("http://127.0.0.1:" + metricsPort + "/metrics");
  }

  /** Waits until the server answers a real call (migrations done, pool up), or fails with its log. */
  private void awaitServing() {
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
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
