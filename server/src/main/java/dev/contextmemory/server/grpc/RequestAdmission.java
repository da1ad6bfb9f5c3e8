package dev.contextmemory.server.grpc;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.ServerBuilder;
import io.grpc.ServerCall;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Decides, on the transport thread as a call arrives and before it waits anywhere, where it runs:
 * <ul>
 *   <li>the health and reflection services on a small control executor of their own, so a
 *       Health/Check is never queued behind API calls (it answers from the last probe, see
 *       {@link DatabaseHealth});
 *   <li>an API call on the fixed request executor, unless {@code queue} calls already wait there
 *       for a thread, or the oldest of them has waited {@code maxWait}: then the threads are all
 *       held by something slow (a row lock, an exhausted pool) and it is shed at once with
 *       RESOURCE_EXHAUSTED (SERVER_OVERLOADED, with RetryInfo) instead of queueing unseen. A call
 *       whose deadline has already
 *       passed answers DEADLINE_EXCEEDED. Neither runs its handler or touches the pool.
 * </ul>
 * The request executor's queue holds at most one entry per call (grpc-java serializes a call's
 * callbacks), and new calls join only below {@code queue}; what else can queue is callbacks of
 * calls already admitted, bounded by the streams open at once.
 *
 * <p>Install with {@link #install}; its interceptor must be the outermost one, so a shed call
 * costs nothing more.
 */
public final class RequestAdmission implements ServerCallExecutorSupplier, ServerInterceptor, AutoCloseable {
  /** Set on the call's headers by the supplier, read by the interceptor; never taken from a client. */
  private static final Metadata.Key<String> VERDICT =
      Metadata.Key.of("x-contextmemory-admission", Metadata.ASCII_STRING_MARSHALLER);
  private static final String SHED = "shed";
  private static final String EXPIRED = "expired";

  private final ThreadPoolExecutor requests;
  private final ThreadPoolExecutor control;
  private final int queue;
  private final long maxWaitNanos;
  private final AtomicLong shed = new AtomicLong();
  // What grpc-java is handed: each task stamped with the time it joined the queue.
  private final Executor stamped = task -> requests().execute(new Queued(task, System.nanoTime()));

  private record Queued(Runnable task, long since) implements Runnable {
    @Override
    public void run() {
      task.run();
    }
  }

  public RequestAdmission(int threads, int queue, Duration maxWait) {
    this.queue = queue;
    this.maxWaitNanos = maxWait.toNanos();
    // Fixed, not grpc-java's unbounded cached pool: threads beyond what the connection pool can
    // feed would only wait on it. Its queue is bounded by admission, above.
    this.requests = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
        new LinkedBlockingQueue<>(), named("grpc-request"));
    // Health checks, reflection and the answers to shed calls: microseconds each. When even this
    // queue is full the transport thread runs the task itself, which bounds it without dropping.
    this.control = new ThreadPoolExecutor(2, 2, 0, TimeUnit.MILLISECONDS,
        new ArrayBlockingQueue<>(1024), named("grpc-control"), new ThreadPoolExecutor.CallerRunsPolicy());
  }

  /**
   * Routes every call through this admission: calls start on the transport thread (a direct
   * executor), which hands each to {@link #getExecutor}.
   */
  public void install(ServerBuilder<?> transport) {
    transport.directExecutor().callExecutor(this);
  }

  @Override
  public <Q, R> Executor getExecutor(ServerCall<Q, R> call, Metadata headers) {
    headers.discardAll(VERDICT);
    if (call.getMethodDescriptor().getServiceName().startsWith("grpc.")) {
      return control; // grpc.health.v1.Health, grpc.reflection.*
    }
    Deadline deadline = Context.current().getDeadline();
    if (deadline != null && deadline.isExpired()) {
      headers.put(VERDICT, EXPIRED);
      return control;
    }
    if (overloaded()) {
      shed.incrementAndGet();
      headers.put(VERDICT, SHED);
      return control;
    }
    return stamped;
  }

  private boolean overloaded() {
    var waiting = requests.getQueue();
    int n = waiting.size();
    if (n == 0) {
      return false;
    }
    if (n >= queue) {
      return true;
    }
    return waiting.peek() instanceof Queued oldest && System.nanoTime() - oldest.since() >= maxWaitNanos;
  }

  private ThreadPoolExecutor requests() {
    return requests;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String verdict = headers.get(VERDICT);
    if (verdict == null) {
      return next.startCall(call, headers);
    }
    StatusRuntimeException answer = verdict.equals(EXPIRED)
        ? ErrorMapper.deadlinePassedBeforeStart() : ErrorMapper.overloaded();
    call.close(answer.getStatus(), answer.getTrailers() == null ? new Metadata() : answer.getTrailers());
    return new ServerCall.Listener<>() {};
  }

  /** The request executor, for its metrics (queue, active threads, completed tasks). */
  public ThreadPoolExecutor executor() {
    return requests;
  }

  /** Calls shed since start. */
  public long shedTotal() {
    return shed.get();
  }

  /** Calls waiting for a request thread now. */
  public int queued() {
    return requests.getQueue().size();
  }

  /** Stops both executors, waiting up to {@code seconds} for the tasks they still run. */
  public void shutdown(long seconds) throws InterruptedException {
    requests.shutdown();
    control.shutdown();
    requests.awaitTermination(seconds, TimeUnit.SECONDS);
    control.awaitTermination(seconds, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    requests.shutdownNow();
    control.shutdownNow();
  }

  private static java.util.concurrent.ThreadFactory named(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
