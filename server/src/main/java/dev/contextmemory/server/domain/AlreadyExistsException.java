package dev.contextmemory.server.domain;

import java.util.Map;

/** A unique value given by the caller already belongs to another resource. */
public final class AlreadyExistsException extends DomainException {
  private final String field;

  public AlreadyExistsException(String reason, String field, String message) {
    super(reason, message, Map.of());
    this.field = field;
  }

  /** Path of the request field whose value is taken, e.g. "customer.phone". */
  public String field() {
    return field;
  }
}
