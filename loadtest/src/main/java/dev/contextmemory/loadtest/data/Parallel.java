package dev.contextmemory.loadtest.data;

import dev.contextmemory.loadtest.dsl.Calls;
import io.grpc.Status;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;
import java.util.function.Supplier;

/** Bounded-concurrency loops over async calls, with retries of the codes the API calls retryable. */
final class Parallel {
  private static final Set<Status.Code> RETRYABLE = Set.of(Status.Code.UNAVAILABLE, Status.Code.RESOURCE_EXHAUSTED,
      Status.Code.ABORTED, Status.Code.DEADLINE_EXCEEDED);
  /**
   * Up to about 16 s of backoff in all: on a shared machine whose load average is several times
   * its cores, the full profile's bulk load filled the server's request queue for longer than the
   * 1.4 s that four attempts waited, and the whole run ended at set-up.
   */
  private static final int ATTEMPTS = 8;
  private static final long MAX_DELAY_MS = 5_000;

  private Parallel() {}

  /** Runs task(0..n-1) with at most {@code concurrency} in flight; fails with the first failure. */
  static void forEach(int n, int concurrency, IntFunction<CompletableFuture<?>> task) {
    Semaphore permits = new Semaphore(concurrency);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    try {
      for (int i = 0; i < n && failure.get() == null; i++) {
        permits.acquire();
        CompletableFuture<?> f;
        try {
          f = task.apply(i);
        } catch (RuntimeException e) {
          permits.release();
          throw e;
        }
        f.whenComplete((r, t) -> {
          if (t != null) {
            failure.compareAndSet(null, t);
          }
          permits.release();
        });
      }
      permits.acquire(concurrency);
      permits.release(concurrency);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
    if (failure.get() != null) {
      throw Calls.asStatus(failure.get());
    }
  }

  /** The call, retried with exponential backoff (and jitter) on the codes the API says to retry. */
  static <T> CompletableFuture<T> retrying(Supplier<CompletableFuture<T>> call) {
    return attempt(call, 1);
  }

  private static <T> CompletableFuture<T> attempt(Supplier<CompletableFuture<T>> call, int n) {
    return call.get().handle((r, t) -> {
      if (t == null) {
        return CompletableFuture.completedFuture(r);
      }
      Status.Code code = Calls.asStatus(t).getStatus().getCode();
      if (n >= ATTEMPTS || !RETRYABLE.contains(code)) {
        return CompletableFuture.<T>failedFuture(t);
      }
      long delay = Math.min(MAX_DELAY_MS, 100L << n) + ThreadLocalRandom.current().nextLong(100);
      return CompletableFuture.supplyAsync(() -> null,
              CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS))
          .thenCompose(x -> attempt(call, n + 1));
    }).thenCompose(f -> f);
  }
}
