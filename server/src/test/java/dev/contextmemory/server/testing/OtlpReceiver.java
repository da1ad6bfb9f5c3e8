package dev.contextmemory.server.testing;

import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.trace.v1.Span;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * A stand-in OpenTelemetry collector: OTLP/HTTP with protobuf bodies is a plain POST to
 * {@code /v1/traces} of an {@code ExportTraceServiceRequest}, which this server decodes and keeps.
 * Point a server at it with {@code OTEL_EXPORTER_OTLP_ENDPOINT=}{@link #endpoint()}.
 */
public final class OtlpReceiver implements AutoCloseable {
  private final HttpServer http;
  private final List<Span> spans = new CopyOnWriteArrayList<>();

  public OtlpReceiver() {
    try {
      http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    http.createContext("/v1/traces", exchange -> {
      try (InputStream body = exchange.getRequestBody()) {
        ExportTraceServiceRequest request = ExportTraceServiceRequest.parseFrom(body);
        request.getResourceSpansList().forEach(rs -> rs.getScopeSpansList()
            .forEach(ss -> spans.addAll(ss.getSpansList())));
        byte[] ok = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
        exchange.getResponseHeaders().set("Content-Type", "application/x-protobuf");
        exchange.sendResponseHeaders(200, ok.length);
        exchange.getResponseBody().write(ok);
      } catch (IOException | RuntimeException e) {
        exchange.sendResponseHeaders(400, -1);
      } finally {
        exchange.close();
      }
    });
    http.start();
  }

  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT wants it. */
  public String endpoint() {
    return "http://127.0.0.1:" + http.getAddress().getPort();
  }

  public List<Span> spans() {
    return new ArrayList<>(spans);
  }

  /** Waits until a received span matches, up to {@code timeout}. */
  public Span await(Predicate<Span> matching, Duration timeout) throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < end) {
      for (Span s : spans) {
        if (matching.test(s)) {
          return s;
        }
      }
      Thread.sleep(20);
    }
    throw new AssertionError("no matching span within " + timeout + "; received " + spans.stream().map(Span::getName).toList());
  }

  @Override
  public void close() {
    http.stop(0);
  }
}
