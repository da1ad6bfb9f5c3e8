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
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides, on the transport thread as a call arrives and before it waits anywhere, where it runs:
 * <ul>
 *   <li>the health and reflection services on a small control executor of their own, so a
 *       Health/Check is never queued behind API calls (it answers from the last probe, see
 *       {@link DatabaseHealth});
 *   <li>an API call on the fixed request executor, unless {@code queue} calls already wait there
 *       for a thread, or the next of them to run has waited {@code maxWait}: then the threads are all
 *       held by something slow (a row lock, an exhausted pool) and it is shed at once with
 *       RESOURCE_EXHAUSTED (SERVER_OVERLOADED, with RetryInfo) instead of queueing unseen. A call
 *       whose deadline has already
 *       passed answers DEADLINE_EXCEEDED. Neither runs its handler or touches the pool.
 * </ul>
 * Waiting calls get a thread earliest deadline first (a call without one counts as due at the
 * server's maximum): a 3 s read queued behind appends that may each hold a thread for seconds
 * (waiting for a connection, then for a row lock) goes first, so it is answered before its
 * deadline instead of timing out in the queue. Absolute deadlines starve no one: a call that has
 * waited long is due before any newcomer. Among equal deadlines the order is arrival.
 *
 * <p>The request executor's queue holds at most one entry per call (grpc-java serializes a call's
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
  private static final Logger log = LoggerFactory.getLogger(RequestAdmission.class);
  private static final String SHED = "shed";
  private static final String EXPIRED = "expired";

  private final ThreadPoolExecutor requests;
  private final ThreadPoolExecutor control;
  private final int queue;
  private final long maxWaitNanos;
  private final long maxDeadlineNanos;
  private final AtomicLong shed = new AtomicLong();
  private final AtomicLong arrivals = new AtomicLong();
  /**
   * Sheds are logged as one line per interval at most: a line per shed call would add work to a
   * saturated server and bury the log, and the access log never sees them (this interceptor answers
   * before it). The metrics count each one.
   */
  private static final long SHED_LOG_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);
  private final AtomicLong shedLoggedAt = new AtomicLong(System.nanoTime() - SHED_LOG_INTERVAL_NANOS);
  private final AtomicLong shedLogged = new AtomicLong();

  /** A call's task in the queue: when it joined, when its call is due (System.nanoTime), arrival order. */
  private record Queued(Runnable task, long since, long due, long order) implements Runnable, Comparable<Queued> {
    @Override
    public void run() {
      task.run();
    }

    @Override
    public int compareTo(Queued o) {
      int byDeadline = Long.compare(due - o.due, 0); // nanoTime values: compare their difference
      return byDeadline != 0 ? byDeadline : Long.compare(order, o.order);
    }
  }

  /**
   * @param threads request threads
   * @param queue calls that may wait for one
   * @param maxWait how long the next call to run may have waited before new calls are shed
   * @param maxDeadline the server's maximum call deadline (the due time of calls without one)
   */
  public RequestAdmission(int threads, int queue, Duration maxWait, Duration maxDeadline) {
    this.queue = queue;
    this.maxWaitNanos = maxWait.toNanos();
    this.maxDeadlineNanos = maxDeadline.toNanos();
    // Fixed, not grpc-java's unbounded cached pool: threads beyond what the connection pool can
    // feed would only wait on it. Its queue is bounded by admission, above, and ordered by deadline.
    this.requests = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS,
        new PriorityBlockingQueue<>(), named("grpc-request"));
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
    long now = System.nanoTime();
    long due = now + (deadline == null ? maxDeadlineNanos
        : Math.min(maxDeadlineNanos, deadline.timeRemaining(TimeUnit.NANOSECONDS)));
    long order = arrivals.incrementAndGet();
    return task -> requests.execute(new Queued(task, System.nanoTime(), due, order));
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
    // The call that runs next (the most urgent) has waited this long: the threads are stuck.
    return waiting.peek() instanceof Queued next && System.nanoTime() - next.since() >= maxWaitNanos;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String verdict = headers.get(VERDICT);
    if (verdict == null) {
      return next.startCall(call, headers);
    }
    if (verdict.equals(SHED)) {
      logShedding(call.getMethodDescriptor().getFullMethodName());
    }
    StatusRuntimeException answer = verdict.equals(EXPIRED)
        ? ErrorMapper.deadlinePassedBeforeStart() : ErrorMapper.overloaded();
    call.close(answer.getStatus(), answer.getTrailers() == null ? new Metadata() : answer.getTrailers());
    return new ServerCall.Listener<>() {};
  }

  private void logShedding(String method) {
    long now = System.nanoTime();
    long last = shedLoggedAt.get();
    if (now - last < SHED_LOG_INTERVAL_NANOS || !shedLoggedAt.compareAndSet(last, now)) {
      return;
    }
    long total = shed.get();
    long since = total - shedLogged.getAndSet(total);
    log.warn("overloaded: {} call(s) shed with RESOURCE_EXHAUSTED SERVER_OVERLOADED since the last such line,"
        + " {} waiting for a request thread (this one: {}); contextmemory_executor_rejected_total counts each",
        since, queued(), method);
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
