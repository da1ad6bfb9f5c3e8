package dev.contextmemory.server.domain;

/** A normalized contact key: which customer field it matches, and the value. */
public record ContactKey(CustomerField field, String value) {
  public ContactKey {
    if (field != CustomerField.PHONE && field != CustomerField.EMAIL && field != CustomerField.EXTERNAL_REF) {
      throw new IllegalArgumentException("not a contact field: " + field);
    }
  }
}
