package dev.contextmemory.server.domain;

/** The writable fields of a customer, as named in update masks. */
public enum CustomerField implements MaskField {
  DISPLAY_NAME("display_name"),
  PHONE("phone"),
  EMAIL("email"),
  EXTERNAL_REF("external_ref"),
  METADATA("metadata");

  private final String path;

  CustomerField(String path) {
    this.path = path;
  }

  @Override
  public String path() {
    return path;
  }
}
