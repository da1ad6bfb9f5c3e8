package dev.contextmemory.loadtest.dsl;

import io.grpc.Channel;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * Runs scenarios against a gRPC channel with the async call API (what async stubs use), so one
 * scheduler thread can keep thousands of calls in flight.
 *
 * <p><b>No coordinated omission.</b> In an open injection each session has an intended start time
 * from the {@link Schedule}; the scheduler starts it then (or at once, if it is already late) and
 * its latency is measured from the intended time, not from when the call actually went out. A
 * server that stalls for a second therefore shows every session that arrived during the stall
 * with its queueing delay, as its users would have seen it, instead of one slow call (Gil Tene,
 * "How NOT to Measure Latency"). Steps after the first are measured from their own start; the
 * scenario's figure is intended start to last completion.
 *
 * <p>A call that answers UNIMPLEMENTED stops the run: the scenario needs a service that has not
 * landed, and the report shows it as skipped rather than failed.
 */
public final class Engine implements AutoCloseable {
  /** Time between timeline points. */
  private static final long TICK_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final Channel channel;
  private final Duration callTimeout;
  private final int maxInFlight;
  private final long seed;
  /**
   * Numbers sessions across every run of this engine, so the warm-up, the measured run and each
   * capacity step draw different conversations, queries and vectors instead of replaying the same
   * ones (which caches would flatter).
   */
  private final AtomicLong sessions = new AtomicLong();
  private final ScheduledExecutorService ticker = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "lt-ticker"));
  // Closed users start their next session here rather than on the callback thread, so calls that
  // fail synchronously cannot recurse.
  private final ExecutorService loop = Executors.newSingleThreadExecutor(r -> daemon(r, "lt-users"));

  /**
   * @param callTimeout deadline of every call; a call past it counts as DEADLINE_EXCEEDED
   * @param maxInFlight sessions in flight at most; a session due beyond it is dropped and counted
   *     as an error (the server is hopelessly behind; the harness must not run out of memory)
   */
  public Engine(Channel channel, Duration callTimeout, int maxInFlight, long seed) {
    this.channel = channel;
    this.callTimeout = callTimeout;
    this.maxInFlight = maxInFlight;
    this.seed = seed;
  }

  /** Runs the warm-up (unrecorded), then the measured injection. */
  public RunResult run(Scenario scenario) {
    return run(scenario, () -> {});
  }

  /**
   * Runs the warm-up (unrecorded), then {@code beforeMeasured} (a look at the system under test
   * that should cover the measured injection alone), then the measured injection.
   */
  public RunResult run(Scenario scenario, Runnable beforeMeasured) {
    if (scenario.warmUp().isPresent()) {
      RunResult warm = run(scenario, scenario.warmUp().get());
      if (warm.unimplemented().isPresent()) {
        return warm;
      }
    }
    beforeMeasured.run();
    return run(scenario, scenario.injection());
  }

  /** Runs one injection of the scenario and returns what it measured. */
  public RunResult run(Scenario scenario, Injection injection) {
    Run run = new Run(scenario, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(5));
    ScheduledFuture<?> ticks = ticker.scheduleAtFixedRate(run::sample, TICK_NANOS, TICK_NANOS, TimeUnit.NANOSECONDS);
    try {
      switch (injection) {
        case Injection.Open open -> runOpen(run, open);
        case Injection.Closed closed -> runClosed(run, closed);
      }
      run.awaitDrain(callTimeout.plusSeconds(5));
    } finally {
      ticks.cancel(false);
    }
    long end = System.nanoTime();
    run.sample();
    double seconds = (end - run.start) / 1e9;
    List<Summary> steps = new ArrayList<>();
    run.stepStats.values().forEach(s -> steps.add(s.summary(seconds)));
    return new RunResult(scenario.name(), injection.describe(), run.total.summary(seconds), steps,
        Optional.ofNullable(run.unimplemented.get()), run.dropped.get());
  }

  private void runOpen(Run run, Injection.Open open) {
    Schedule schedule = new Schedule(open);
    long offset;
    while ((offset = schedule.nextOffsetNanos()) >= 0 && run.unimplemented.get() == null) {
      long intended = run.start + offset;
      sleepUntil(intended);
      if (run.inFlight.get() >= maxInFlight) {
        run.dropped.incrementAndGet();
        run.total.failure("DROPPED", "more than " + maxInFlight + " sessions in flight");
        continue;
      }
      run.inFlight.incrementAndGet();
      startSession(run, sessions.getAndIncrement(), intended, run::sessionDone);
    }
  }

  private void runClosed(Run run, Injection.Closed closed) {
    long end = run.start + closed.duration().toNanos();
    AtomicLong index = sessions;
    sleepUntil(run.start);
    for (int u = 0; u < closed.users(); u++) {
      run.inFlight.incrementAndGet();
      loop.execute(() -> userLoop(run, index, end));
    }
    sleepUntil(end);
  }

  private void userLoop(Run run, AtomicLong index, long end) {
    if (System.nanoTime() >= end || run.unimplemented.get() != null) {
      run.sessionDone();
      return;
    }
    startSession(run, index.getAndIncrement(), System.nanoTime(), () -> loop.execute(() -> userLoop(run, index, end)));
  }

  private void startSession(Run run, long index, long intendedNanos, Runnable done) {
    Session session = new Session(index, seed);
    try {
      run.scenario.feed(session);
    } catch (RuntimeException e) {
      run.total.failure("HARNESS", "feeder: " + e);
      done.run();
      return;
    }
    runStep(run, session, 0, intendedNanos, intendedNanos, done);
  }

  /** Runs step {@code i} and, when it succeeds, the next; records each step and, at the end, the session. */
  private void runStep(Run run, Session session, int i, long sessionStart, long stepStart, Runnable done) {
    List<Step<?, ?>> steps = run.scenario.steps();
    while (i < steps.size() && !steps.get(i).when().test(session)) {
      i++;
    }
    if (i == steps.size()) {
      run.total.success(System.nanoTime() - sessionStart);
      done.run();
      return;
    }
    final int current = i;
    call(steps.get(i), session, new Outcome() {
      @Override
      public void ok() {
        long now = System.nanoTime();
        run.stepStats.get(current).success(now - stepStart);
        runStep(run, session, current + 1, sessionStart, now, done);
      }

      @Override
      public void failed(String code, String detail, String method) {
        run.stepStats.get(current).failure(code, detail);
        run.total.failure(code, steps.get(current).name() + ": " + detail);
        if (code.equals(Status.Code.UNIMPLEMENTED.name())) {
          run.unimplemented.compareAndSet(null, method);
        }
        done.run();
      }
    });
  }

  private interface Outcome {
    void ok();

    void failed(String code, String detail, String method);
  }

  private <Q, R> void call(Step<Q, R> step, Session session, Outcome outcome) {
    String method = step.method().getFullMethodName();
    Q request;
    try {
      request = step.request().apply(session);
    } catch (RuntimeException e) {
      outcome.failed("HARNESS", "request: " + e, method);
      return;
    }
    Calls.unary(channel, step.method(), request, callTimeout).whenComplete((response, error) -> {
      if (error != null) {
        Status s = Status.fromThrowable(error);
        outcome.failed(s.getCode().name(), String.valueOf(s.getDescription()), method);
        return;
      }
      try {
        step.save().accept(session, response);
      } catch (RuntimeException e) {
        outcome.failed("HARNESS", "saving the response: " + e, method);
        return;
      }
      outcome.ok();
    });
  }

  /** Parks until {@code deadline} (System.nanoTime()); returns at once when it has passed. */
  static void sleepUntil(long deadline) {
    long left;
    while ((left = deadline - System.nanoTime()) > 0) {
      LockSupport.parkNanos(left);
    }
  }

  @Override
  public void close() {
    ticker.shutdownNow();
    loop.shutdownNow();
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /** The mutable state of one run. */
  private static final class Run {
    final Scenario scenario;
    final long start;
    final Stats total;
    final Map<Integer, Stats> stepStats = new LinkedHashMap<>();
    final AtomicInteger inFlight = new AtomicInteger();
    final AtomicLong dropped = new AtomicLong();
    final AtomicReference<String> unimplemented = new AtomicReference<>();

    Run(Scenario scenario, long start) {
      this.scenario = scenario;
      this.start = start;
      this.total = new Stats(scenario.name(), start);
      Map<String, Integer> seen = new java.util.HashMap<>();
      for (int i = 0; i < scenario.steps().size(); i++) {
        String name = scenario.steps().get(i).name();
        int n = seen.merge(name, 1, Integer::sum);
        stepStats.put(i, new Stats(n == 1 ? name : name + " #" + n, start));
      }
    }

    void sessionDone() {
      inFlight.decrementAndGet();
    }

    void sample() {
      long now = System.nanoTime();
      total.sample(now);
      stepStats.values().forEach(s -> s.sample(now));
    }

    void awaitDrain(Duration max) {
      long deadline = System.nanoTime() + max.toNanos();
      while (inFlight.get() > 0 && System.nanoTime() < deadline) {
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
      }
      int left = inFlight.get();
      for (int i = 0; i < left; i++) {
        total.failure("HARNESS", "session still in flight after the drain timeout");
      }
    }
  }
}
