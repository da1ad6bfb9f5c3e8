package dev.contextmemory.server.grpc;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.contextmemory.server.auth.Caller;
import dev.contextmemory.server.domain.ResourceExhaustedException;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Per-caller limits, checked before a call does any work: a token bucket per API key (requests per
 * second with a burst, Bucket4j) and a cap on the calls a tenant has in flight. The cap is what
 * keeps one tenant's flood from taking every request thread and connection: past it the tenant's
 * own calls are refused at once, so other tenants' calls find threads free. Both answer
 * RESOURCE_EXHAUSTED with a RetryInfo.
 */
final class CallLimits {
  /** Buckets of keys unused for this long are dropped (a new bucket starts full). */
  private static final Duration IDLE_BUCKET = Duration.ofMinutes(10);
  private static final Duration CONCURRENCY_RETRY = Duration.ofMillis(100);

  private final double requestsPerSecond;
  private final int burst;
  private final int maxConcurrentPerTenant;
  private final Cache<String, Bucket> buckets;
  private final ConcurrentHashMap<String, Integer> inFlight = new ConcurrentHashMap<>();

  /** A slot held by one call; released exactly once, when the call ends. */
  static final class Permit {
    private final Runnable release;
    private final AtomicBoolean released = new AtomicBoolean();

    private Permit(Runnable release) {
      this.release = release;
    }

    void release() {
      if (released.compareAndSet(false, true)) {
        release.run();
      }
    }
  }

  /** @param requestsPerSecond 0 for no rate limit; @param maxConcurrentPerTenant 0 for no cap */
  CallLimits(double requestsPerSecond, int burst, int maxConcurrentPerTenant) {
    this.requestsPerSecond = requestsPerSecond;
    this.burst = burst;
    this.maxConcurrentPerTenant = maxConcurrentPerTenant;
    this.buckets = Caffeine.newBuilder().maximumSize(100_000).expireAfterAccess(IDLE_BUCKET).build();
  }

  Permit acquire(Caller caller) {
    if (requestsPerSecond > 0) {
      Bucket bucket = buckets.get(caller.actor(), k -> Bucket.builder()
          .addLimit(Bandwidth.builder().capacity(burst)
              .refillGreedy(Math.max(1, Math.round(requestsPerSecond)), Duration.ofSeconds(1)).build())
          .build());
      ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(1);
      if (!probe.isConsumed()) {
        throw new ResourceExhaustedException("RATE_LIMITED",
            "this API key is over its rate limit of " + Math.round(requestsPerSecond) + " calls/s; retry later",
            Duration.ofNanos(Math.max(probe.getNanosToWaitForRefill(), TimeUnit.MILLISECONDS.toNanos(1))));
      }
    }
    if (maxConcurrentPerTenant <= 0) {
      return new Permit(() -> {});
    }
    String tenant = caller.tenant();
    AtomicBoolean admitted = new AtomicBoolean();
    // compute() holds the entry's lock: the check and the increment are one step.
    inFlight.compute(tenant, (t, n) -> {
      int current = n == null ? 0 : n;
      if (current >= maxConcurrentPerTenant) {
        return n;
      }
      admitted.set(true);
      return current + 1;
    });
    if (!admitted.get()) {
      throw new ResourceExhaustedException("TOO_MANY_CONCURRENT_CALLS",
          "this tenant has " + maxConcurrentPerTenant + " calls in flight, its limit; retry later", CONCURRENCY_RETRY);
    }
    // At zero the entry goes: the map is as small as the set of tenants with calls in flight.
    return new Permit(() -> inFlight.compute(tenant, (t, n) -> n == null || n <= 1 ? null : n - 1));
  }
}
