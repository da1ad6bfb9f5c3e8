package dev.contextmemory.server.domain;

import java.util.Map;

/** The caller's key lacks the scope the call needs. Reason: SCOPE_MISSING, metadata required_scope. */
public final class PermissionDeniedException extends DomainException {
  private final String requiredScope;

  public PermissionDeniedException(String requiredScope, String what) {
    super("SCOPE_MISSING", what + " needs an API key with the '" + requiredScope + "' scope",
        Map.of("required_scope", requiredScope));
    this.requiredScope = requiredScope;
  }

  public String requiredScope() {
    return requiredScope;
  }
}
