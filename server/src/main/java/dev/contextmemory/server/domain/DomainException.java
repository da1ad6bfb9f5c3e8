package dev.contextmemory.server.domain;

import java.util.Map;

/**
 * A failure the caller can act on. Subclasses name the category; {@link #reason()} is the stable
 * UPPER_SNAKE code clients switch on (sent as google.rpc.ErrorInfo.reason); {@link #getMessage()} is
 * for humans. The one mapper in the grpc package turns these into statuses.
 */
public abstract sealed class DomainException extends RuntimeException
    permits InvalidArgumentException, NotFoundException, AlreadyExistsException,
        FailedPreconditionException, UnauthenticatedException, PermissionDeniedException,
        ResourceExhaustedException, UnavailableException {

  private final String reason;
  private final Map<String, String> metadata;

  protected DomainException(String reason, String message, Map<String, String> metadata) {
    super(message, null, false, false); // no stack trace: these are expected outcomes, not bugs
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  public String reason() {
    return reason;
  }

  public Map<String, String> metadata() {
    return metadata;
  }
}
