package dev.contextmemory.server.observability;

import com.zaxxer.hikari.metrics.MetricsTrackerFactory;
import com.zaxxer.hikari.metrics.micrometer.MicrometerMetricsTrackerFactory;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.grpc.AccessLog;
import dev.contextmemory.server.grpc.CancelStatementOnCallEnd;
import dev.contextmemory.server.grpc.DatabaseHealth;
import dev.contextmemory.server.grpc.RequestAdmission;
import dev.contextmemory.server.grpc.RpcMetrics;
import dev.contextmemory.server.store.ExpirySweeper;
import dev.contextmemory.server.store.UsageRollup;
import io.grpc.ServerInterceptor;
import io.grpc.ServerStreamTracer;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.ExecutorServiceMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.util.List;
import java.util.Set;
import org.jdbi.v3.core.Jdbi;

/**
 * Metrics, traces and the access log of one server (docs/observability.md): the Prometheus
 * registry and its endpoint, the OpenTelemetry instance, and the hooks the server's parts are
 * instrumented through. Every server has a registry, served or not; tracing and the endpoint cost
 * nothing when they are off.
 */
public final class Observability implements AutoCloseable {
  private final Settings.Observability settings;
  private final PrometheusMeterRegistry registry;
  private final Telemetry telemetry;
  private final JvmGcMetrics gc;
  private MetricsEndpoint endpoint;

  private Observability(Settings.Observability settings, PrometheusMeterRegistry registry, Telemetry telemetry,
      JvmGcMetrics gc) {
    this.settings = settings;
    this.registry = registry;
    this.telemetry = telemetry;
    this.gc = gc;
  }

  /** The registry with the JVM's meters, and tracing as the OTEL_* variables say. */
  public static Observability create(Settings.Observability s) {
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ClassLoaderMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    JvmGcMetrics gc = new JvmGcMetrics();
    gc.bindTo(registry);
    return new Observability(s, registry, Telemetry.from(s.otel()), gc);
  }

  public MeterRegistry registry() {
    return registry;
  }

  public OpenTelemetry openTelemetry() {
    return telemetry.api();
  }

  /** HikariCP's own meters: hikaricp_connections{,_active,_idle,_pending,_timeout_total,_acquire_seconds}. */
  public MetricsTrackerFactory poolMetrics() {
    return new MicrometerMetricsTrackerFactory(registry);
  }

  /** SQL spans under the call's span, when tracing is on. */
  public void instrument(Jdbi jdbi) {
    if (telemetry.tracing()) {
      SqlSpans.install(jdbi, telemetry.api());
    }
  }

  /** Per-RPC metrics for the given full method names (others count as {@code other}). */
  public ServerStreamTracer.Factory rpcMetrics(Set<String> methods) {
    return new RpcMetrics(registry, methods);
  }

  /**
   * The outermost interceptor: the call's span, its parent taken from the W3C traceparent
   * metadata, made current while the call's code runs. Null when tracing is off.
   */
  public ServerInterceptor tracing() {
    if (!telemetry.tracing()) {
      return null;
    }
    return GrpcTelemetry.builder(telemetry.api()).setEmitMessageEvents(false).build().createServerInterceptor();
  }

  /** MDC, the span's tenant and the access-log line; runs inside the tenant interceptor. */
  public ServerInterceptor accessLog() {
    return new AccessLog(settings.accessLogLevel(), settings.accessLogSamplePercent());
  }

  /** The database side: health, statement cancels and the expiry sweeper. */
  public void monitor(DatabaseHealth health, CancelStatementOnCallEnd canceller, ExpirySweeper sweeper) {
    Gauge.builder("contextmemory.db.health.serving", health, h -> h.serving() ? 1 : 0)
        .description("1 while health reports SERVING (the database answers), else 0").register(registry);
    FunctionCounter.builder("contextmemory.db.health.transitions", health, DatabaseHealth::transitions)
        .description("Flips between SERVING and NOT_SERVING").register(registry);
    FunctionCounter.builder("contextmemory.db.statement.cancels", canceller, CancelStatementOnCallEnd::cancelledTotal)
        .tag("when", "running").description("Statements cancelled because their call ended (deadline, client cancel)")
        .register(registry);
    FunctionCounter.builder("contextmemory.db.statement.cancels", canceller, CancelStatementOnCallEnd::refusedTotal)
        .tag("when", "before_start").description("Statements refused because their call had already ended")
        .register(registry);
    FunctionCounter.builder("contextmemory.sweeper.rounds", sweeper, ExpirySweeper::roundsTotal)
        .description("Expiry sweep rounds started").register(registry);
    FunctionCounter.builder("contextmemory.sweeper.failures", sweeper, ExpirySweeper::failuresTotal)
        .description("Expiry sweeps and retention purges that failed").register(registry);
    FunctionCounter.builder("contextmemory.sweeper.deleted", sweeper, ExpirySweeper::deletedTotal)
        .description("Expired memories deleted").register(registry);
    FunctionCounter.builder("contextmemory.sweeper.purged", sweeper, ExpirySweeper::purgedTotal)
        .description("Rows of soft-deleted conversations (messages, conversations) purged after the retention")
        .register(registry);
  }

  /** WatchConversations: open streams, events delivered, background failures, event purge. */
  public void monitor(dev.contextmemory.server.watch.WatchHub watch, dev.contextmemory.server.watch.EventPurger purger) {
    Gauge.builder("contextmemory.watch.streams", watch, dev.contextmemory.server.watch.WatchHub::streams)
        .description("Open WatchConversations streams").register(registry);
    FunctionCounter.builder("contextmemory.watch.delivered", watch, dev.contextmemory.server.watch.WatchHub::deliveredTotal)
        .description("Events handed to WatchConversations streams").register(registry);
    FunctionCounter.builder("contextmemory.watch.failures", watch, dev.contextmemory.server.watch.WatchHub::failuresTotal)
        .description("Failed sequencer passes, polls and catch-up reads (retried)").register(registry);
    FunctionCounter.builder("contextmemory.watch.sequencer.passes", watch,
            dev.contextmemory.server.watch.WatchHub::sequencerPasses)
        .description("Sequencer passes (each one transaction numbering the events committed since the last)")
        .register(registry);
    FunctionCounter.builder("contextmemory.watch.listener.reconnects", watch,
            dev.contextmemory.server.watch.WatchHub::listenerReconnects)
        .description("Times the LISTEN connection was lost and reopened").register(registry);
    FunctionCounter.builder("contextmemory.watch.purged", purger, dev.contextmemory.server.watch.EventPurger::purgedTotal)
        .description("Watch events deleted by the retention purge").register(registry);
  }

  /** The usage rollup's refreshes (GetUsageMetrics' figures are as fresh as the last one). */
  public void monitor(UsageRollup rollup) {
    FunctionCounter.builder("contextmemory.usage.rollup.refreshes", rollup, UsageRollup::refreshesTotal)
        .description("Refreshes of the usage rollup done by this server").register(registry);
    FunctionCounter.builder("contextmemory.usage.rollup.failures", rollup, UsageRollup::failuresTotal)
        .description("Refreshes of the usage rollup that failed").register(registry);
  }

  /**
   * The request executor's queue and threads ({@code executor_queued_tasks{name="grpc-request"}},
   * {@code executor_active_threads}, ...) and the calls admission shed
   * ({@code contextmemory_executor_rejected_total{name="grpc-request"}}).
   */
  public void monitor(RequestAdmission admission) {
    new ExecutorServiceMetrics(admission.executor(), "grpc-request", List.of()).bindTo(registry);
    FunctionCounter.builder("contextmemory.executor.rejected", admission, RequestAdmission::shedTotal)
        .tag("name", "grpc-request").description("Calls shed (RESOURCE_EXHAUSTED) instead of queued")
        .register(registry);
  }

  /** Serves /metrics when CONTEXT_MEMORY_METRICS_PORT is set. */
  public void serve() {
    if (settings.metricsPort() >= 0) {
      endpoint = MetricsEndpoint.start(registry, settings.metricsHost(), settings.metricsPort());
    }
  }

  /** The metrics endpoint's port, or -1 when it is off. */
  public int metricsPort() {
    return endpoint == null ? -1 : endpoint.port();
  }

  /** Last, after the server stopped: flushes spans, stops the endpoint. */
  @Override
  public void close() {
    if (endpoint != null) {
      endpoint.close();
    }
    telemetry.close();
    gc.close();
    registry.close();
  }
}
