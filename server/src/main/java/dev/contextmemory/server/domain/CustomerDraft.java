package dev.contextmemory.server.domain;

import java.util.Set;

/**
 * Validated, normalized values to write to a customer, and which of them to write. A field not in
 * {@code fields} is left as stored; a field in it with a null value is cleared. {@code mergeMetadata}
 * merges top-level metadata keys into the stored object instead of replacing it.
 */
public record CustomerDraft(
    String displayName,
    String phone,
    String email,
    String externalRef,
    String metadataJson,
    Set<CustomerField> fields,
    boolean mergeMetadata) {

  public CustomerDraft {
    fields = Set.copyOf(fields);
  }
}
