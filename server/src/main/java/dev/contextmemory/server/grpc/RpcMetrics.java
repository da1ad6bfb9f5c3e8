package dev.contextmemory.server.grpc;

import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Per-RPC metrics, taken by a stream tracer so that every call counts, including those the
 * transport or an interceptor ends before a handler runs (too large, unauthenticated, shed):
 * <ul>
 *   <li>{@code contextmemory_rpc_server_duration_seconds{method,code}}: a histogram from the call's
 *       headers to its status, with buckets from 0.25 ms to 10 s (fine from 0.5 to 100 ms, where this
 *       server's targets are); its {@code _count} is the call count by status code;
 *   <li>{@code contextmemory_rpc_server_in_flight{method}}: calls started and not yet closed;
 *   <li>{@code contextmemory_rpc_server_request_bytes} and {@code _response_bytes{method}}: the
 *       uncompressed size of all of a call's messages (not reported by the in-process transport).
 * </ul>
 * {@code method} is the full gRPC method name when this server implements it and {@code other}
 * otherwise, so a client cannot add label values; {@code code} is the gRPC status code name.
 */
public final class RpcMetrics extends ServerStreamTracer.Factory {
  static final String OTHER = "other";
  private static final Duration[] BUCKETS = buckets(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50,
      75, 100, 150, 250, 500, 1000, 2500, 5000, 10000);

  private final MeterRegistry registry;
  private final Set<String> methods;
  private final Map<String, Method> byName = new ConcurrentHashMap<>();

  public RpcMetrics(MeterRegistry registry, Set<String> methods) {
    this.registry = registry;
    this.methods = Set.copyOf(methods);
  }

  @Override
  public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
    String name = methods.contains(fullMethodName) ? fullMethodName : OTHER;
    Method m = byName.computeIfAbsent(name, Method::new);
    m.inFlight.incrementAndGet();
    return new Call(m, System.nanoTime());
  }

  /** The meters of one method, created once; the timers per status code on first use. */
  private final class Method {
    final String name;
    final AtomicInteger inFlight = new AtomicInteger();
    final Timer[] byCode = new Timer[Status.Code.values().length];
    final DistributionSummary requestBytes;
    final DistributionSummary responseBytes;

    Method(String name) {
      this.name = name;
      registry.gauge("contextmemory.rpc.server.in.flight", Tags.of("method", name), inFlight);
      requestBytes = size("contextmemory.rpc.server.request", "request");
      responseBytes = size("contextmemory.rpc.server.response", "response");
    }

    private DistributionSummary size(String meter, String what) {
      return DistributionSummary.builder(meter).baseUnit("bytes").tag("method", name)
          .description("Uncompressed size of all " + what + " messages of a call")
          .serviceLevelObjectives(64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
          .register(registry);
    }

    Timer timer(Status.Code code) {
      Timer t = byCode[code.ordinal()];
      if (t == null) {
        t = Timer.builder("contextmemory.rpc.server.duration").tag("method", name).tag("code", code.name())
            .description("Server-side latency of a call, from its headers to its status")
            .serviceLevelObjectives(BUCKETS).register(registry);
        byCode[code.ordinal()] = t; // a benign race: register() returns the one meter
      }
      return t;
    }
  }

  private static final class Call extends ServerStreamTracer {
    private final Method method;
    private final long start;
    private final AtomicLong in = new AtomicLong();
    private final AtomicLong out = new AtomicLong();

    Call(Method method, long start) {
      this.method = method;
      this.start = start;
    }

    @Override
    public void inboundUncompressedSize(long bytes) {
      if (bytes > 0) {
        in.addAndGet(bytes);
      }
    }

    @Override
    public void outboundUncompressedSize(long bytes) {
      if (bytes > 0) {
        out.addAndGet(bytes);
      }
    }

    @Override
    public void streamClosed(Status status) {
      method.timer(status.getCode()).record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
      method.inFlight.decrementAndGet();
      if (in.get() > 0) {
        method.requestBytes.record(in.get());
      }
      if (out.get() > 0) {
        method.responseBytes.record(out.get());
      }
    }
  }

  private static Duration[] buckets(double... millis) {
    Duration[] d = new Duration[millis.length];
    for (int i = 0; i < millis.length; i++) {
      d[i] = Duration.ofNanos((long) (millis[i] * 1_000_000));
    }
    return d;
  }
}
