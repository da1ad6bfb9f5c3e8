package dev.contextmemory.server.auth;

import java.util.Set;

/**
 * Who a call acts for: the tenant, the actor recorded in the audit trail (the key's public prefix,
 * or "local" without authentication) and what it may do.
 */
public record Caller(String tenant, String actor, Set<Scope> scopes) {
  public Caller {
    scopes = Set.copyOf(scopes);
  }

  public boolean may(Scope scope) {
    return scopes.contains(scope);
  }
}
