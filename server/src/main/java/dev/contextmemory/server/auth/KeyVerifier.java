package dev.contextmemory.server.auth;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.LoadingCache;
import dev.contextmemory.server.domain.ApiKey;
import dev.contextmemory.server.domain.UnauthenticatedException;
import dev.contextmemory.server.store.ApiKeyStore;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Turns an {@code authorization} header into a {@link Caller}, with no database round trip on the
 * hot path: keys found by prefix are cached for the TTL (refreshed in the background after half
 * of it, so a busy key never waits on the database), unknown prefixes in a cache of their own, so
 * a flood of made-up keys cannot evict the real ones. The cache is why a revoked key works on for
 * at most the TTL. The secret is checked on every call against the stored SHA-256, in constant time;
 * expiry is checked on every call against the clock, so it takes effect to the millisecond.
 */
public final class KeyVerifier implements AutoCloseable {
  private static final int MAX_CACHED_KEYS = 10_000;

  private final LoadingCache<String, ApiKeyStore.Stored> known;
  private final Cache<String, Boolean> unknown;
  private final ExecutorService refresher;
  private final LastUseRecorder lastUse;
  private final Clock clock;

  public KeyVerifier(ApiKeyStore store, Duration ttl, Duration lastUseFlush, Clock clock) {
    this.clock = clock;
    this.refresher = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "api-key-refresh");
      t.setDaemon(true);
      return t;
    });
    // A loader that returns null caches nothing (and a refresh that finds nothing drops the entry).
    this.known = Caffeine.newBuilder()
        .maximumSize(MAX_CACHED_KEYS)
        .expireAfterWrite(ttl)
        .refreshAfterWrite(ttl.dividedBy(2))
        .executor(refresher)
        .build(prefix -> store.findByPrefix(prefix).orElse(null));
    this.unknown = Caffeine.newBuilder().maximumSize(MAX_CACHED_KEYS).expireAfterWrite(ttl).build();
    this.lastUse = new LastUseRecorder(store, lastUseFlush);
  }

  /** The caller the header names; throws {@link UnauthenticatedException} for anything else. */
  public Caller verify(String authorization) {
    if (authorization == null || authorization.isBlank()) {
      throw UnauthenticatedException.missing();
    }
    String value = authorization.strip();
    if (value.length() < 7 || !value.substring(0, 7).toLowerCase(Locale.ROOT).equals("bearer ")) {
      throw UnauthenticatedException.malformed();
    }
    ApiKeySecrets.Presented presented = ApiKeySecrets.parse(value.substring(7).strip());
    if (presented == null) {
      throw UnauthenticatedException.malformed();
    }
    if (unknown.getIfPresent(presented.prefix()) != null) {
      throw UnauthenticatedException.invalid();
    }
    ApiKeyStore.Stored stored = known.get(presented.prefix());
    if (stored == null) {
      unknown.put(presented.prefix(), Boolean.TRUE);
      throw UnauthenticatedException.invalid();
    }
    if (!ApiKeySecrets.matches(presented, stored.secretSha256())) {
      throw UnauthenticatedException.invalid();
    }
    ApiKey key = stored.apiKey();
    Instant now = clock.instant();
    if (key.revokedAt() != null || (key.expiresAt() != null && !now.isBefore(key.expiresAt()))) {
      throw UnauthenticatedException.invalid();
    }
    lastUse.noteUse(key.prefix(), now);
    return new Caller(key.tenant(), key.prefix(), key.scopes());
  }

  /** Drops a key from this server's cache at once (used after this server revokes it). */
  public void forget(String prefix) {
    known.invalidate(prefix);
  }

  @Override
  public void close() {
    lastUse.close();
    refresher.shutdownNow();
  }
}
