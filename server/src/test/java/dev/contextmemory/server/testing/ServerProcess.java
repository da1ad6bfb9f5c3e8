package dev.contextmemory.server.testing;

import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real program ({@code dev.contextmemory.server.Main serve}) in a JVM of its own on a free TCP
 * port, configured only by the {@code CONTEXT_MEMORY_*} variables given: for tests of what only
 * processes show (several replicas on one database, a SIGKILL, a pooler in between). Loopback,
 * small pool, quick shutdown; its log goes to a temp file.
 */
public final class ServerProcess implements AutoCloseable {
  private final Process process;
  private final int port;
  private final Path log;
  private ManagedChannel channel;

  private ServerProcess(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /** Starts the server; {@code env} are variables without the CONTEXT_MEMORY_ prefix. */
  public static ServerProcess start(Map<String, String> env) throws IOException {
    return start(env, freePort());
  }

  /** Starts the server on {@code port} (a restart on the same address). */
  public static ServerProcess start(Map<String, String> env, int port) throws IOException {
    Path log = Files.createTempFile("context-memory-process", ".log");
    String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    // Small heap and C1 only: several of these share a 2-core machine with the test JVM.
    ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(javaBin, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        "-cp", classpath, "dev.contextmemory.server.Main", "serve")));
    pb.environment().keySet().removeIf(k -> k.startsWith("CONTEXT_MEMORY_") || k.startsWith("OTEL_"));
    pb.environment().put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    pb.environment().put("CONTEXT_MEMORY_PORT", Integer.toString(port));
    pb.environment().put("CONTEXT_MEMORY_DB_POOL_SIZE", "4");
    pb.environment().put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "2");
    env.forEach((k, v) -> pb.environment().put("CONTEXT_MEMORY_" + k, v));
    Process p = pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    return new ServerProcess(p, port, log);
  }

  /**
   * Waits until health says SERVING: up to 3 minutes, because a JVM start with migrations took
   * over a minute on a 2-core machine shared with other builds (load average 24).
   */
  public ServerProcess awaitServing() {
    var health = HealthGrpc.newBlockingStub(channel());
    long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
    while (true) {
      try {
        if (health.withDeadlineAfter(1, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance())
            .getStatus() == ServingStatus.SERVING) {
          return this;
        }
      } catch (RuntimeException notYet) {
        // not listening yet
      }
      if (!process.isAlive()) {
        throw new AssertionError("the server exited with " + process.exitValue() + ": " + log());
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the server did not report SERVING within 3 minutes: " + log());
      }
      sleep(50);
    }
  }

  /** Waits for the process to exit (it must, e.g. on a refused configuration) and returns its status. */
  public int awaitExit() throws InterruptedException {
    if (!process.waitFor(3, TimeUnit.MINUTES)) {
      throw new AssertionError("the server did not exit: " + log());
    }
    return process.exitValue();
  }

  public int port() {
    return port;
  }

  public String target() {
    return "127.0.0.1:" + port;
  }

  /** A plaintext channel to this process, made on first use and closed with it. */
  public synchronized ManagedChannel channel() {
    if (channel == null) {
      channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    }
    return channel;
  }

  public String log() {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** SIGKILL: no shutdown hook, connections cut mid-call, as in a crash. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  @Override
  public void close() {
    if (channel != null) {
      channel.shutdownNow();
    }
    process.destroy();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
