package dev.contextmemory.server.grpc;

import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.SQLException;

/**
 * Lets service methods simply throw: whatever escapes a handler is turned into a status by
 * {@link ErrorMapper} and closes the call, instead of grpc-java's bare UNKNOWN. Also answers the
 * requests {@link MalformedRequests} could not parse.
 */
public final class ExceptionInterceptor implements ServerInterceptor {
  private final MeterRegistry registry;

  /**
   * @param registry counts the SQL failures behind error statuses by SQLSTATE class
   *     ({@code contextmemory_db_errors_total{sqlstate_class}}; {@code none} for a pool timeout)
   */
  public ExceptionInterceptor(MeterRegistry registry) {
    this.registry = registry;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    ServerCall.Listener<Q> delegate;
    try {
      delegate = next.startCall(call, headers);
    } catch (RuntimeException e) {
      fail(call, e);
      return new ServerCall.Listener<>() {};
    }
    return new SimpleForwardingServerCallListener<>(delegate) {
      // Set once the call has been answered with an error: the handler hears nothing more.
      private boolean failed;

      @Override
      public void onMessage(Q message) {
        if (failed) {
          return;
        }
        if (message == null) { // bytes that are no valid message: see MalformedRequests
          failed = true;
          fail(call, ErrorMapper.malformedRequest());
          return;
        }
        try {
          super.onMessage(message);
        } catch (RuntimeException e) {
          failed = true;
          fail(call, e);
        }
      }

      @Override
      public void onHalfClose() {
        if (failed) {
          return;
        }
        try {
          super.onHalfClose();
        } catch (RuntimeException e) {
          failed = true;
          fail(call, e);
        }
      }

      @Override
      public void onReady() {
        if (failed) {
          return;
        }
        try {
          super.onReady();
        } catch (RuntimeException e) {
          failed = true;
          fail(call, e);
        }
      }
    };
  }

  /** Counts the SQLSTATE class of an SQL failure, then closes the call as {@link #close} does. */
  private <Q, R> void fail(ServerCall<Q, R> call, RuntimeException e) {
    SQLException sql = ErrorMapper.findSqlException(e);
    if (sql != null) {
      String state = sql.getSQLState();
      // The class (two characters) keeps the label's values few; the full code is in the span.
      registry.counter("contextmemory.db.errors", "sqlstate_class",
          state == null || state.length() < 2 ? "none" : state.substring(0, 2)).increment();
    }
    close(call, e);
  }

  static <Q, R> void close(ServerCall<Q, R> call, RuntimeException e) {
    StatusRuntimeException sre = ErrorMapper.toException(e);
    Metadata trailers = sre.getTrailers() != null ? sre.getTrailers() : new Metadata();
    try {
      call.close(sre.getStatus(), trailers);
    } catch (IllegalStateException alreadyClosed) {
      // The call was already closed (e.g. cancelled by the client): nobody is listening.
    }
  }
}
