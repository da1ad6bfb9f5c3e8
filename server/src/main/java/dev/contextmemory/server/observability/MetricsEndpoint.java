package dev.contextmemory.server.observability;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Serves the registry in the Prometheus text format at {@code /metrics} on its own port, apart from
 * the gRPC port, so an operator can expose it only to the scraper (it binds 127.0.0.1 unless told
 * otherwise). Two threads and a queue of 16 scrapes: a flood of requests cannot take memory or CPU
 * from the RPCs; scrapes beyond that are refused.
 */
public final class MetricsEndpoint implements AutoCloseable {
  private final HTTPServer server;
  private final ThreadPoolExecutor executor;

  private MetricsEndpoint(HTTPServer server, ThreadPoolExecutor executor) {
    this.server = server;
    this.executor = executor;
  }

  public static MetricsEndpoint start(PrometheusMeterRegistry registry, String host, int port) {
    ThreadPoolExecutor executor = new ThreadPoolExecutor(2, 2, 0, TimeUnit.MILLISECONDS,
        new ArrayBlockingQueue<>(16), r -> {
          Thread t = new Thread(r, "metrics-http");
          t.setDaemon(true);
          return t;
        }, new ThreadPoolExecutor.AbortPolicy());
    try {
      HTTPServer server = HTTPServer.builder()
          .hostname(host)
          .port(port)
          .registry(registry.getPrometheusRegistry())
          .executorService(executor)
          .buildAndStart();
      return new MetricsEndpoint(server, executor);
    } catch (IOException e) {
      executor.shutdownNow();
      throw new UncheckedIOException("cannot serve metrics on " + host + ":" + port, e);
    }
  }

  /** The bound port (the chosen one when configured as 0). */
  public int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.close();
    executor.shutdownNow();
  }
}
