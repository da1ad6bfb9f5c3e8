package dev.contextmemory.server.domain;

/** The writable fields of a memory, as named in update masks. */
public enum MemoryField implements MaskField {
  KIND("kind"),
  KEY("key"),
  CONTENT("content"),
  EMBEDDING("embedding"),
  IMPORTANCE("importance"),
  METADATA("metadata"),
  SOURCE("source"),
  EXPIRE_TIME("expire_time"),
  CONVERSATION_ID("conversation_id");

  private final String path;

  MemoryField(String path) {
    this.path = path;
  }

  @Override
  public String path() {
    return path;
  }
}
