package dev.contextmemory.server.observability;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The OpenTelemetry instance the server traces with. Tracing is on only when the standard variables
 * name somewhere to send spans ({@code OTEL_EXPORTER_OTLP_ENDPOINT},
 * {@code OTEL_EXPORTER_OTLP_TRACES_ENDPOINT}) or an exporter ({@code OTEL_TRACES_EXPORTER}, where
 * {@code none} records spans but sends nothing); otherwise it is the no-op API, whose spans cost a
 * few allocations at most. When on, the SDK's own autoconfiguration reads every OTEL_* variable
 * (protocol, headers, sampler, resource), with these defaults: service name {@code context-memory},
 * OTLP over HTTP/protobuf, and no metric or log export (metrics are Prometheus's job, logs go to
 * stderr). Its batch span processor holds at most 2,048 spans and drops beyond that.
 */
public final class Telemetry implements AutoCloseable {
  private static final Map<String, String> DEFAULTS = Map.of(
      "otel.service.name", "context-memory",
      "otel.exporter.otlp.protocol", "http/protobuf",
      "otel.metrics.exporter", "none",
      "otel.logs.exporter", "none");

  private final OpenTelemetry api;
  private final OpenTelemetrySdk sdk;

  private Telemetry(OpenTelemetry api, OpenTelemetrySdk sdk) {
    this.api = api;
    this.sdk = sdk;
  }

  /** From the OTEL_* variables (names as in the environment). */
  public static Telemetry from(Map<String, String> otel) {
    boolean exporter = otel.containsKey("OTEL_EXPORTER_OTLP_ENDPOINT")
        || otel.containsKey("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || otel.containsKey("OTEL_TRACES_EXPORTER");
    if (!exporter || "true".equalsIgnoreCase(otel.get("OTEL_SDK_DISABLED"))) {
      return new Telemetry(OpenTelemetry.noop(), null);
    }
    // Autoconfiguration also reads the process environment; the map wins, so tests that start
    // several servers in one JVM can give each its own exporter.
    Map<String, String> properties = new HashMap<>();
    otel.forEach((k, v) -> properties.put(k.toLowerCase(Locale.ROOT).replace('_', '.'), v));
    OpenTelemetrySdk sdk = AutoConfiguredOpenTelemetrySdk.builder()
        .addPropertiesSupplier(() -> DEFAULTS)
        .addPropertiesCustomizer(config -> properties)
        .disableShutdownHook() // ContextMemoryServer.close() flushes, after the last call ended
        .build()
        .getOpenTelemetrySdk();
    return new Telemetry(sdk, sdk);
  }

  public OpenTelemetry api() {
    return api;
  }

  /** Whether spans are recorded (and maybe exported) at all. */
  public boolean tracing() {
    return sdk != null;
  }

  /** Sends the spans still buffered and stops the exporter. */
  @Override
  public void close() {
    if (sdk != null) {
      sdk.shutdown().join(5, TimeUnit.SECONDS);
    }
  }
}
