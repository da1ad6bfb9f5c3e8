package dev.contextmemory.server.domain;

import java.util.Set;

/** Validated address values and which of them to write (all of them on add). */
public record AddressDraft(
    String label,
    String line1,
    String line2,
    String city,
    String region,
    String postalCode,
    String countryCode,
    boolean primary,
    String metadataJson,
    Set<AddressField> fields) {

  public AddressDraft {
    fields = Set.copyOf(fields);
  }

  public boolean writes(AddressField f) {
    return fields.contains(f);
  }
}
