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

  /** The message names the first few violations; the details carry more (ErrorMapper bounds both). */
  private static String describe(List<FieldViolation> violations) {
    StringBuilder sb = new StringBuilder();
    int shown = 0;
    for (FieldViolation v : violations) {
      if (shown == MESSAGE_VIOLATIONS) {
        sb.append("; and ").append(violations.size() - shown).append(" more");
        break;
      }
      if (!sb.isEmpty()) {
        sb.append("; ");
      }
      sb.append(v.field()).append(": ").append(v.description());
      shown++;
    }
    return sb.length() <= MAX_MESSAGE_CHARS ? sb.toString() : sb.substring(0, MAX_MESSAGE_CHARS - 1) + "…";
  }

  private static final int MESSAGE_VIOLATIONS = 5;
  private static final int MAX_MESSAGE_CHARS = 1_000;
}
