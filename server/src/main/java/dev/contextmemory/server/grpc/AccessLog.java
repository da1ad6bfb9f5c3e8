package dev.contextmemory.server.grpc;

import com.google.rpc.ErrorInfo;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.slf4j.event.Level;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * Ties a call's log lines and span to the call, and writes one access-log line when it ends.
 * While the call's code runs, MDC carries {@code tenant} and {@code rpc_method} (and, from the
 * OpenTelemetry appender, the trace and span ids), so every log line it causes says whose call it
 * was. The tenant also goes on the call's span. The access-log line (logger
 * {@code dev.contextmemory.access}) carries the method, status code, duration, tenant and, for a
 * failed call, the ErrorInfo reason and error id returned to the caller; never the status
 * message, which may quote the caller's input (a phone number that does not parse). Successful
 * calls are sampled; failed ones are always logged.
 */
public final class AccessLog implements ServerInterceptor {
  static final AttributeKey<String> TENANT_ATTRIBUTE = AttributeKey.stringKey("contextmemory.tenant");
  private static final Logger log = LoggerFactory.getLogger("dev.contextmemory.access");

  private final Level level; // null: no access-log lines
  private final int samplePercent;

  /**
   * @param level an SLF4J level name, or OFF
   * @param samplePercent the share of successful calls logged, 0..100
   */
  public AccessLog(String level, int samplePercent) {
    this.level = "OFF".equals(level) ? null : Level.valueOf(level);
    this.samplePercent = samplePercent;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    long start = System.nanoTime();
    String method = call.getMethodDescriptor().getFullMethodName();
    String tenant = Tenants.currentOrNull();
    if (tenant != null) {
      Span.current().setAttribute(TENANT_ATTRIBUTE, tenant);
    }
    ServerCall<Q, R> logged = new SimpleForwardingServerCall<>(call) {
      @Override
      public void close(Status status, Metadata trailers) {
        write(method, tenant, status, trailers, System.nanoTime() - start);
        super.close(status, trailers);
      }
    };
    ServerCall.Listener<Q> delegate;
    try (var ignored = scope(tenant, method)) {
      delegate = next.startCall(logged, headers);
    }
    return new SimpleForwardingServerCallListener<>(delegate) {
      @Override
      public void onMessage(Q message) {
        try (var ignored = scope(tenant, method)) {
          super.onMessage(message);
        }
      }

      @Override
      public void onHalfClose() {
        try (var ignored = scope(tenant, method)) {
          super.onHalfClose();
        }
      }

      @Override
      public void onCancel() {
        try (var ignored = scope(tenant, method)) {
          super.onCancel();
        }
      }

      @Override
      public void onComplete() {
        try (var ignored = scope(tenant, method)) {
          super.onComplete();
        }
      }

      @Override
      public void onReady() {
        try (var ignored = scope(tenant, method)) {
          super.onReady();
        }
      }
    };
  }

  private static MdcScope scope(String tenant, String method) {
    if (tenant != null) {
      MDC.put("tenant", tenant);
    }
    MDC.put("rpc_method", method);
    return MdcScope.INSTANCE;
  }

  /** Removes what {@link #scope} put, on the same thread. */
  private enum MdcScope implements AutoCloseable {
    INSTANCE;

    @Override
    public void close() {
      MDC.remove("tenant");
      MDC.remove("rpc_method");
    }
  }

  private void write(String method, String tenant, Status status, Metadata trailers, long nanos) {
    if (level == null || !log.isEnabledForLevel(level)) {
      return;
    }
    boolean ok = status.isOk();
    if (ok && samplePercent < 100 && ThreadLocalRandom.current().nextInt(100) >= samplePercent) {
      return;
    }
    double millis = Math.round(nanos / 10_000.0) / 100.0;
    LoggingEventBuilder e = log.atLevel(level)
        .addKeyValue("grpc_code", status.getCode().name())
        .addKeyValue("duration_ms", millis);
    String reason = null;
    if (!ok) {
      ErrorInfo info = errorInfo(status, trailers);
      if (info != null) {
        reason = info.getReason();
        e = e.addKeyValue("error_reason", reason);
        String errorId = info.getMetadataMap().get("error_id");
        if (errorId != null) {
          e = e.addKeyValue("error_id", errorId);
        }
      }
    }
    // The method and tenant come from the MDC, as on every line the call logs (close() may run
    // outside the listener's callbacks, on a transport thread).
    try (var ignored = scope(tenant, method)) {
      e.log("{} {}{} in {} ms", method, status.getCode(), reason == null ? "" : " " + reason, millis);
    }
  }

  private static ErrorInfo errorInfo(Status status, Metadata trailers) {
    try {
      com.google.rpc.Status details = StatusProto.fromStatusAndTrailers(status, trailers);
      for (com.google.protobuf.Any any : details.getDetailsList()) {
        if (any.is(ErrorInfo.class)) {
          return any.unpack(ErrorInfo.class);
        }
      }
    } catch (com.google.protobuf.InvalidProtocolBufferException | RuntimeException unreadable) {
      // No details we can read: the line has the status code alone.
    }
    return null;
  }
}
