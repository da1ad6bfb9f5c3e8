package dev.contextmemory.server.embedding;

import java.time.Duration;

/**
 * An embedder could not embed a batch. {@link #retryable()} failures (timeouts, 429, 5xx, refused
 * connections) are tried again with backoff, no sooner than {@link #retryAfter()} when the endpoint
 * said so; others (a 400 for the input, a vector of the wrong length) fail the rows for good once
 * the attempts are spent. The message never quotes the texts (they are customers' data).
 */
public final class EmbeddingException extends RuntimeException {
  private final boolean retryable;
  private final Duration retryAfter;

  public EmbeddingException(String message, boolean retryable, Duration retryAfter, Throwable cause) {
    super(message, cause);
    this.retryable = retryable;
    this.retryAfter = retryAfter == null ? Duration.ZERO : retryAfter;
  }

  public boolean retryable() {
    return retryable;
  }

  /** The endpoint's Retry-After, or zero. */
  public Duration retryAfter() {
    return retryAfter;
  }
}
