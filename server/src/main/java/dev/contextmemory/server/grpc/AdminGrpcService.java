package dev.contextmemory.server.grpc;

import dev.contextmemory.server.auth.KeyVerifier;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.auth.ApiKeySecrets;
import dev.contextmemory.server.domain.ApiKey;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.v1.AdminServiceGrpc;
import dev.contextmemory.v1.ApiKeyScope;
import dev.contextmemory.v1.CreateApiKeyRequest;
import dev.contextmemory.v1.CreateApiKeyResponse;
import dev.contextmemory.v1.ListApiKeysRequest;
import dev.contextmemory.v1.ListApiKeysResponse;
import dev.contextmemory.v1.RevokeApiKeyRequest;
import dev.contextmemory.v1.RevokeApiKeyResponse;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.Set;

/**
 * AdminService over gRPC: key management for the calling key's own tenant. The tenant comes from
 * the caller, never from the request, so no request can reach another tenant's keys.
 */
public final class AdminGrpcService extends AdminServiceGrpc.AdminServiceImplBase {
  static final int MAX_NAME_LENGTH = 200;
  static final Duration MAX_TTL = Duration.ofDays(3650);

  private final ApiKeyStore store;
  private final KeyVerifier verifier; // null when authentication is off
  private final PageTokens tokens;

  public AdminGrpcService(ApiKeyStore store, KeyVerifier verifier, PageTokens tokens) {
    this.store = store;
    this.verifier = verifier;
    this.tokens = tokens;
  }

  @Override
  public void createApiKey(CreateApiKeyRequest req, StreamObserver<CreateApiKeyResponse> out) {
    Validator v = new Validator();
    String name = v.requiredText("name", req.getName(), MAX_NAME_LENGTH);
    Set<Scope> scopes = EnumSet.noneOf(Scope.class);
    if (req.getScopesCount() == 0) {
      v.add("scopes", "must name at least one scope");
    }
    for (int i = 0; i < req.getScopesCount(); i++) {
      Scope s = AdminMapping.scope(req.getScopes(i));
      if (s == null) {
        v.add("scopes[" + i + "]", "must be READ, WRITE, ERASE or ADMIN");
      } else if (!scopes.add(s)) {
        v.add("scopes[" + i + "]", "repeats " + req.getScopes(i).name());
      }
    }
    Instant expiresAt = null;
    if (req.hasTtl()) {
      Duration ttl = Duration.ofSeconds(req.getTtl().getSeconds(), req.getTtl().getNanos());
      if (ttl.isNegative() || ttl.isZero() || ttl.compareTo(MAX_TTL) > 0) {
        v.add("ttl", "must be positive and at most 3650 days");
      } else {
        expiresAt = Instant.now().plus(ttl);
      }
    }
    v.throwIfInvalid();
    var caller = Tenants.caller();
    ApiKeyStore.Created created = store.create(caller.tenant(), name, scopes, expiresAt, caller.actor());
    reply(out, CreateApiKeyResponse.newBuilder()
        .setApiKey(AdminMapping.apiKey(created.apiKey())).setKey(created.key()).build());
  }

  @Override
  public void listApiKeys(ListApiKeysRequest req, StreamObserver<ListApiKeysResponse> out) {
    Validator v = new Validator();
    int pageSize = v.pageSize("page_size", req.getPageSize());
    String filterKey = "api_keys";
    ApiKeyStore.Cursor after = v.ok() ? v.check(() -> tokens.decode(Tenants.current(), req.getPageToken(), filterKey,
        "page_token", 2, p -> new ApiKeyStore.Cursor(PageTokens.instant(p[0]), PageTokens.uuid(p[1])))) : null;
    v.throwIfInvalid();
    ApiKeyStore.Page page = store.list(Tenants.current(), pageSize, after);
    ListApiKeysResponse.Builder b = ListApiKeysResponse.newBuilder();
    page.keys().forEach(k -> b.addApiKeys(AdminMapping.apiKey(k)));
    if (page.next() != null) {
      b.setNextPageToken(tokens.encode(Tenants.current(), filterKey, PageTokens.micros(page.next().createdAt()),
          page.next().id().toString()));
    }
    reply(out, b.build());
  }

  @Override
  public void revokeApiKey(RevokeApiKeyRequest req, StreamObserver<RevokeApiKeyResponse> out) {
    Validator v = new Validator();
    String prefix = req.getPrefix().strip();
    if (!ApiKeySecrets.isPrefix(prefix)) {
      v.add("prefix", "must be the 10 characters after cm_ in the key (a-z, 2-7)");
    }
    v.throwIfInvalid();
    var caller = Tenants.caller();
    ApiKey revoked = store.revoke(caller.tenant(), prefix, caller.actor());
    if (verifier != null) {
      verifier.forget(prefix); // at once on this server; others within the cache TTL
    }
    reply(out, RevokeApiKeyResponse.newBuilder().setApiKey(AdminMapping.apiKey(revoked)).build());
  }

  private static <T> void reply(StreamObserver<T> out, T response) {
    out.onNext(response);
    out.onCompleted();
  }
}
