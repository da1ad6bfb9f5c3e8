package dev.contextmemory.server.domain;

import java.util.Map;

/** The request is well-formed but the system is not in a state that allows it. */
public final class FailedPreconditionException extends DomainException {
  public FailedPreconditionException(String reason, String message, Map<String, String> metadata) {
    super(reason, message, metadata);
  }
}
