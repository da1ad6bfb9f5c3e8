package dev.contextmemory.server.domain;

import java.util.List;
import java.util.Map;

/** The request is malformed; every offending field is listed. */
public final class InvalidArgumentException extends DomainException {
  private final List<FieldViolation> violations;

  public InvalidArgumentException(List<FieldViolation> violations) {
    super("INVALID_ARGUMENT", describe(violations), Map.of());
    if (violations.isEmpty()) {
      throw new IllegalArgumentException("at least one violation");
    }
    this.violations = List.copyOf(violations);
  }

  public static InvalidArgumentException of(String field, String description) {
    return new InvalidArgumentException(List.of(new FieldViolation(field, description)));
  }

  public List<FieldViolation> violations() {
    return violations;
  }

  private static String describe(List<FieldViolation> violations) {
    StringBuilder sb = new StringBuilder();
    for (FieldViolation v : violations) {
      if (!sb.isEmpty()) {
        sb.append("; ");
      }
      sb.append(v.field()).append(": ").append(v.description());
    }
    return sb.toString();
  }
}
