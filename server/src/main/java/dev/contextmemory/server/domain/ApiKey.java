package dev.contextmemory.server.domain;

import dev.contextmemory.server.auth.Scope;
import java.time.Instant;
import java.util.Set;
import java.util.UUID;

/** An API key as stored, without its secret. {@code expiresAt}, {@code revokedAt}, {@code lastUsedAt} may be null. */
public record ApiKey(
    String tenant,
    UUID id,
    String name,
    String prefix,
    Set<Scope> scopes,
    Instant createdAt,
    Instant expiresAt,
    Instant revokedAt,
    Instant lastUsedAt) {}
