package dev.contextmemory.server.store;

import dev.contextmemory.server.auth.ApiKeySecrets;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.domain.ApiKey;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.NotFoundException;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.StatementContext;

/**
 * API keys: creation (the secret's hash only), lookup by public prefix for authentication, listing,
 * revocation and the batched last-use stamps. Creations and revocations write their audit row in
 * the same transaction.
 */
public final class ApiKeyStore extends Store {
  private static final String COLUMNS =
      "tenant_id, id, name, prefix, scopes, created_at, expires_at, revoked_at, last_used_at";

  public ApiKeyStore(Jdbi jdbi) {
    super(jdbi);
  }

  /** A new key: its stored description and the whole key, shown once. */
  public record Created(ApiKey apiKey, String key) {}

  /** A key found by prefix for authentication: its description and the secret's SHA-256. */
  public record Stored(ApiKey apiKey, byte[] secretSha256) {}

  /** One page of keys, newest first, and where the next page starts (null on the last page). */
  public record Page(List<ApiKey> keys, Cursor next) {}

  public record Cursor(Instant createdAt, UUID id) {}

  public Created create(String tenant, String name, Set<Scope> scopes, Instant expiresAt, String actor) {
    return write(h -> {
      // A 50-bit random prefix collides about once in 10^15 keys; the unique index decides.
      for (int attempt = 0; attempt < 5; attempt++) {
        ApiKeySecrets.NewKey k = ApiKeySecrets.generate();
        Optional<ApiKey> row = h.createQuery("""
                INSERT INTO api_keys (tenant_id, id, name, prefix, secret_sha256, scopes, expires_at)
                VALUES (:tenant, :id, :name, :prefix, :hash, :scopes, CAST(:expires AS timestamptz))
                ON CONFLICT (prefix) DO NOTHING
                RETURNING %s""".formatted(COLUMNS))
            .bind("tenant", tenant)
            .bind("id", Ids.newId())
            .bind("name", name)
            .bind("prefix", k.prefix())
            .bind("hash", k.secretSha256())
            .bind("scopes", scopes.stream().sorted().map(Scope::wireName).toArray(String[]::new))
            .bind("expires", Rows.timestamptz(expiresAt))
            .map(ApiKeyStore::apiKey)
            .findOne();
        if (row.isPresent()) {
          AuditLog.record(h, tenant, actor, "api_key.create", "api_key", k.prefix(), Map.of());
          return new Created(row.get(), k.key());
        }
      }
      throw new IllegalStateException("no free API key prefix after 5 attempts");
    });
  }

  /** The key with this prefix, of any tenant: authentication runs before the tenant is known. */
  public Optional<Stored> findByPrefix(String prefix) {
    return read(h -> h.createQuery("SELECT " + COLUMNS + ", secret_sha256 FROM api_keys WHERE prefix = :prefix")
        .bind("prefix", prefix)
        .map((rs, ctx) -> new Stored(apiKey(rs, ctx), rs.getBytes("secret_sha256")))
        .findOne());
  }

  public Page list(String tenant, int limit, Cursor after) {
    List<ApiKey> rows = read(h -> h.createQuery("""
            SELECT %s FROM api_keys
             WHERE tenant_id = :tenant
               AND (CAST(:after_time AS timestamptz) IS NULL
                    OR (created_at, id) < (CAST(:after_time AS timestamptz), :after_id))
             ORDER BY created_at DESC, id DESC
             LIMIT :limit""".formatted(COLUMNS))
        .bind("tenant", tenant)
        .bind("after_time", after == null ? null : Rows.timestamptz(after.createdAt()))
        .bind("after_id", after == null ? null : after.id())
        .bind("limit", limit + 1)
        .map(ApiKeyStore::apiKey)
        .list());
    if (rows.size() <= limit) {
      return new Page(rows, null);
    }
    List<ApiKey> page = List.copyOf(rows.subList(0, limit));
    ApiKey last = page.get(limit - 1);
    return new Page(page, new Cursor(last.createdAt(), last.id()));
  }

  /** Every key, or one tenant's (null: all tenants), for the operator's command line. */
  public List<ApiKey> listForOperator(String tenant, int limit) {
    return read(h -> h.createQuery("""
            SELECT %s FROM api_keys
             WHERE CAST(:tenant AS text) IS NULL OR tenant_id = :tenant
             ORDER BY tenant_id, created_at DESC, id DESC
             LIMIT :limit""".formatted(COLUMNS))
        .bind("tenant", tenant)
        .bind("limit", limit)
        .map(ApiKeyStore::apiKey)
        .list());
  }

  /**
   * Revokes the key with {@code prefix} of {@code tenant} (null: of any tenant, for the operator's
   * command line). Revoking a revoked key keeps its first revocation time and writes no audit row.
   */
  public ApiKey revoke(String tenant, String prefix, String actor) {
    return write(h -> {
      Optional<ApiKey> before = h.createQuery("""
              SELECT %s FROM api_keys
               WHERE prefix = :prefix AND (CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)
               FOR UPDATE""".formatted(COLUMNS))
          .bind("prefix", prefix).bind("tenant", tenant).map(ApiKeyStore::apiKey).findOne();
      if (before.isEmpty()) {
        throw new NotFoundException("api_key", prefix);
      }
      if (before.get().revokedAt() != null) {
        return before.get();
      }
      ApiKey revoked = h.createQuery("""
              UPDATE api_keys SET revoked_at = now()
               WHERE tenant_id = :tenant AND id = :id
              RETURNING %s""".formatted(COLUMNS))
          .bind("tenant", before.get().tenant()).bind("id", before.get().id())
          .map(ApiKeyStore::apiKey).one();
      AuditLog.record(h, revoked.tenant(), actor, "api_key.revoke", "api_key", prefix, Map.of());
      return revoked;
    });
  }

  /** Stamps last use for many keys in one statement; a stamp never moves back in time. */
  public void touchLastUsed(Map<String, Instant> lastUseByPrefix) {
    if (lastUseByPrefix.isEmpty()) {
      return;
    }
    String[] prefixes = lastUseByPrefix.keySet().toArray(String[]::new);
    String[] times = new String[prefixes.length];
    for (int i = 0; i < prefixes.length; i++) {
      times[i] = lastUseByPrefix.get(prefixes[i]).toString();
    }
    write(h -> h.createUpdate("""
            UPDATE api_keys k SET last_used_at = u.used_at
              FROM unnest(CAST(:prefixes AS text[]), CAST(CAST(:times AS text[]) AS timestamptz[])) AS u(prefix, used_at)
             WHERE k.prefix = u.prefix AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)""")
        .bind("prefixes", prefixes)
        .bind("times", times)
        .execute());
  }

  private static ApiKey apiKey(ResultSet rs, StatementContext ctx) throws SQLException {
    Set<Scope> scopes = EnumSet.noneOf(Scope.class);
    for (String s : (String[]) rs.getArray("scopes").getArray()) {
      Scope scope = Scope.parse(s);
      if (scope != null) {
        scopes.add(scope);
      }
    }
    return new ApiKey(rs.getString("tenant_id"), rs.getObject("id", UUID.class), rs.getString("name"),
        rs.getString("prefix"), Set.copyOf(scopes), Rows.instant(rs, "created_at"), Rows.instant(rs, "expires_at"),
        Rows.instant(rs, "revoked_at"), Rows.instant(rs, "last_used_at"));
  }
}
