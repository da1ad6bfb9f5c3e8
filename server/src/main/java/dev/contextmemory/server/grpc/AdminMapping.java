package dev.contextmemory.server.grpc;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.domain.ApiKey;
import dev.contextmemory.v1.ApiKeyScope;

/** API keys and scopes between the domain and proto. */
final class AdminMapping {
  private AdminMapping() {}

  static dev.contextmemory.v1.ApiKey apiKey(ApiKey k) {
    var b = dev.contextmemory.v1.ApiKey.newBuilder()
        .setId(k.id().toString())
        .setName(k.name())
        .setPrefix(k.prefix())
        .setCreateTime(ProtoMapping.timestamp(k.createdAt()));
    k.scopes().stream().sorted().forEach(s -> b.addScopes(scope(s)));
    if (k.expiresAt() != null) {
      b.setExpireTime(ProtoMapping.timestamp(k.expiresAt()));
    }
    if (k.revokedAt() != null) {
      b.setRevokeTime(ProtoMapping.timestamp(k.revokedAt()));
    }
    if (k.lastUsedAt() != null) {
      b.setLastUseTime(ProtoMapping.timestamp(k.lastUsedAt()));
    }
    return b.build();
  }

  static ApiKeyScope scope(Scope s) {
    return switch (s) {
      case READ -> ApiKeyScope.API_KEY_SCOPE_READ;
      case WRITE -> ApiKeyScope.API_KEY_SCOPE_WRITE;
      case ERASE -> ApiKeyScope.API_KEY_SCOPE_ERASE;
      case ADMIN -> ApiKeyScope.API_KEY_SCOPE_ADMIN;
    };
  }

  /** The domain scope, or null for UNSPECIFIED and unknown values. */
  static Scope scope(ApiKeyScope s) {
    return switch (s) {
      case API_KEY_SCOPE_READ -> Scope.READ;
      case API_KEY_SCOPE_WRITE -> Scope.WRITE;
      case API_KEY_SCOPE_ERASE -> Scope.ERASE;
      case API_KEY_SCOPE_ADMIN -> Scope.ADMIN;
      default -> null;
    };
  }
}
