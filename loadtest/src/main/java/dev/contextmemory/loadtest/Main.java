package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.report.RunReport;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Command line entry point (see {@link Options#USAGE}); scripts/loadtest is the usual way in.
 * Exit status 0 when every target held, 1 when one was missed, 2 on a usage or set-up error.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    int status;
    try {
      status = run(Options.parse(args));
    } catch (Options.UsageException e) {
      if (!e.getMessage().isEmpty()) {
        System.err.println("loadtest: " + e.getMessage());
      }
      System.err.print(Options.USAGE);
      status = 2;
    } catch (Exception e) {
      System.err.println("loadtest: error: " + e.getMessage());
      e.printStackTrace(System.err);
      status = 2;
    }
    System.exit(status);
  }

  static int run(Options o) throws Exception {
    Profile profile = Profile.named(o.profile());
    Targets targets = Targets.adjusted(o.targetScale(), o.overrides());
    Files.createDirectories(o.out());
    LoadTest test = new LoadTest(profile, targets, o.only(), o.seed(), System.out);
    if (o.target() != null) {
      String host = o.target().substring(0, o.target().lastIndexOf(':'));
      int port = Integer.parseInt(o.target().substring(o.target().lastIndexOf(':') + 1));
      ManagedChannel ch = channel(host, port);
      try {
        RunReport r = test.run(new LoadTest.Environment(ch, o.dbUrl(), false, o.tenant(), "--target " + o.target()
            + (o.dbUrl() == null ? " (no --db-url: no SQL baselines)" : ""), null));
        return finish(r, o.out());
      } finally {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    Path jar = o.serverJar() != null ? o.serverJar() : ServerProcess.defaultJar();
    try (FreshDatabase db = FreshDatabase.create(o.dbUrl(), o.keepDatabase())) {
      Runtime.getRuntime().addShutdownHook(new Thread(db::close)); // also on Ctrl-C
      System.out.println("loadtest: fresh database " + db.name() + (o.keepDatabase() ? " (kept)" : "")
          + "; starting " + jar.getFileName() + " (log: " + o.out().resolve("server.log") + ")");
      long t0 = System.nanoTime();
      try (ServerProcess server = ServerProcess.start(jar, db.url(), o.serverJavaOptions(), o.out().resolve("server.log"))) {
        Runtime.getRuntime().addShutdownHook(new Thread(server::close)); // also when the harness is killed
        System.out.printf("loadtest: server up on 127.0.0.1:%d in %.1f s%n", server.port(), (System.nanoTime() - t0) / 1e9);
        ManagedChannel ch = channel("127.0.0.1", server.port());
        try {
          RunReport r = test.run(new LoadTest.Environment(ch, db.url(), true, "default",
              "started here: " + jar.getFileName() + " on 127.0.0.1:" + server.port() + ", fresh database " + db.name(),
              server.metricsUrl()));
          return finish(r, o.out());
        } finally {
          ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      }
    }
  }

  private static int finish(RunReport r, Path out) throws Exception {
    LoadTest.writeReports(r, out, System.out);
    return r.passed() ? 0 : 1;
  }

  /**
   * Plaintext HTTP/2 to the server; callbacks run on the transport threads (directExecutor) since
   * the engine's callbacks only record and start the next call, never block.
   */
  static ManagedChannel channel(String host, int port) {
    return NettyChannelBuilder.forAddress(host, port).usePlaintext().directExecutor()
        .maxInboundMessageSize(64 * 1024 * 1024).build();
  }
}
