package dev.contextmemory.loadtest.scenarios;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import javax.sql.DataSource;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Runs one unit of JDBC work at a fixed arrival rate (open model, like the gRPC engine) on a
 * fixed pool of threads that borrow connections from a pool, and measures each from its
 * intended start: a backlog on the threads or the pool counts against the floor as it would
 * against the server. Bounded: at most {@link #MAX_QUEUED} arrivals wait for a thread; beyond
 * that an arrival is dropped and counted.
 */
final class PacedJdbc {
  /** A unit of work: runs its statements on the borrowed connection. */
  interface Work {
    void run(Connection c) throws SQLException;
  }

  /** What a paced run measured (microsecond histogram of the measured phase only). */
  record Result(Histogram latencyMicros, long errors, long dropped, String firstError) {}

  static final int MAX_QUEUED = 10_000;

  private PacedJdbc() {}

  static Result run(DataSource pool, int threads, double rate, Duration warmUp, Duration measure, Work work) {
    ThreadPoolExecutor executor = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.SECONDS,
        new ArrayBlockingQueue<>(MAX_QUEUED), Thread.ofPlatform().name("sql-floor-", 0).daemon().factory());
    Recorder recorder = new Recorder(3);
    AtomicLong errors = new AtomicLong();
    AtomicLong dropped = new AtomicLong();
    String[] firstError = {null};
    long period = (long) (1e9 / rate);
    long start = System.nanoTime();
    long measureFrom = start + warmUp.toNanos();
    long end = measureFrom + measure.toNanos();
    try {
      for (long i = 0; ; i++) {
        long intended = start + i * period;
        if (intended >= end) {
          break;
        }
        long wait = intended - System.nanoTime();
        if (wait > 0) {
          LockSupport.parkNanos(wait);
        }
        boolean measured = intended >= measureFrom;
        try {
          executor.execute(() -> {
            try (Connection c = pool.getConnection()) {
              work.run(c);
              if (measured) {
                recorder.recordValue(Math.max(1, (System.nanoTime() - intended) / 1000));
              }
            } catch (SQLException | RuntimeException e) {
              if (measured) {
                errors.incrementAndGet();
              }
              synchronized (firstError) {
                if (firstError[0] == null) {
                  firstError[0] = e.getClass().getSimpleName() + ": " + e.getMessage();
                }
              }
            }
          });
        } catch (RejectedExecutionException e) {
          if (measured) {
            dropped.incrementAndGet();
          }
        }
      }
    } finally {
      executor.shutdown();
      try {
        if (!executor.awaitTermination(60, TimeUnit.SECONDS)) {
          executor.shutdownNow();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        executor.shutdownNow();
      }
    }
    return new Result(recorder.getIntervalHistogram(), errors.get(), dropped.get(), firstError[0]);
  }
}
