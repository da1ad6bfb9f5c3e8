package dev.contextmemory.server.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Deadline;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor.MethodType;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Bounds how long a call may run, as it starts on a request thread:
 * <ul>
 *   <li>a call whose deadline passed while it waited for a thread answers DEADLINE_EXCEEDED
 *       without running (nothing was done);
 *   <li>a unary call without a deadline, or with one further away than the server's maximum,
 *       gets the maximum: past it, its SQL is cancelled ({@link CancelStatementOnCallEnd}) and it
 *       answers DEADLINE_EXCEEDED, so no caller can pin a thread and a connection for longer.
 *       ImportMessages is client-paced and writes chunk by chunk, each under the statement
 *       timeout, so the client's own deadline governs it.
 * </ul>
 */
public final class CallDeadlines implements ServerInterceptor, AutoCloseable {
  private final Duration max;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "call-deadlines");
    t.setDaemon(true);
    return t;
  });

  public CallDeadlines(Duration max) {
    this.max = max;
  }

  /** Stops the deadline timer (after the server has terminated). */
  @Override
  public void close() {
    timer.shutdownNow();
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    Context current = Context.current();
    Deadline deadline = current.getDeadline();
    if (deadline != null && deadline.isExpired()) {
      StatusRuntimeException answer = ErrorMapper.deadlinePassedBeforeStart();
      call.close(answer.getStatus(), answer.getTrailers() == null ? new Metadata() : answer.getTrailers());
      return new ServerCall.Listener<>() {};
    }
    if (call.getMethodDescriptor().getType() != MethodType.UNARY
        || (deadline != null && deadline.timeRemaining(TimeUnit.MILLISECONDS) <= max.toMillis())) {
      return next.startCall(call, headers);
    }
    Context.CancellableContext bounded = current.withDeadlineAfter(max.toMillis(), TimeUnit.MILLISECONDS, timer);
    ServerCall.Listener<Q> listener = Contexts.interceptCall(bounded, call, headers, next);
    // Release the timer entry when the call ends, however it ends.
    return new SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onComplete() {
        try {
          super.onComplete();
        } finally {
          bounded.cancel(null);
        }
      }

      @Override
      public void onCancel() {
        try {
          super.onCancel();
        } finally {
          bounded.cancel(null);
        }
      }
    };
  }
}
