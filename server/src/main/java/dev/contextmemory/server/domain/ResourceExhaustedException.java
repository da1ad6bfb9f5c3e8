package dev.contextmemory.server.domain;

import java.time.Duration;
import java.util.Map;

/**
 * The caller is over one of its limits; retrying after {@link #retryAfter()} may succeed. Reasons:
 * RATE_LIMITED (the key's requests per second), TOO_MANY_CONCURRENT_CALLS (the tenant's calls in
 * flight).
 */
public final class ResourceExhaustedException extends DomainException {
  private final Duration retryAfter;

  public ResourceExhaustedException(String reason, String message, Duration retryAfter) {
    super(reason, message, Map.of());
    this.retryAfter = retryAfter;
  }

  public Duration retryAfter() {
    return retryAfter;
  }
}
