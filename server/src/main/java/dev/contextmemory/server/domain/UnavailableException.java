package dev.contextmemory.server.domain;

import java.time.Duration;
import java.util.Map;

/**
 * Something the call needs outside the database is failing for now; retrying after
 * {@link #retryAfter()} may succeed. Reason: EMBEDDER_UNAVAILABLE (the embedding endpoint that had
 * to embed a query text failed or timed out).
 */
public final class UnavailableException extends DomainException {
  private final Duration retryAfter;

  public UnavailableException(String reason, String message, Duration retryAfter) {
    super(reason, message, Map.of());
    this.retryAfter = retryAfter;
  }

  public Duration retryAfter() {
    return retryAfter;
  }
}
