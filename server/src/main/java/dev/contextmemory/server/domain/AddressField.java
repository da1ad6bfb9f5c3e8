package dev.contextmemory.server.domain;

/** The writable fields of an address, as named in update masks. */
public enum AddressField implements MaskField {
  LABEL("label"),
  LINE1("line1"),
  LINE2("line2"),
  CITY("city"),
  REGION("region"),
  POSTAL_CODE("postal_code"),
  COUNTRY_CODE("country_code"),
  PRIMARY("primary"),
  METADATA("metadata");

  private final String path;

  AddressField(String path) {
    this.path = path;
  }

  @Override
  public String path() {
    return path;
  }
}
