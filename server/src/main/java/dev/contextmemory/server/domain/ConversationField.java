package dev.contextmemory.server.domain;

/** The writable fields of a conversation, as named in update masks. */
public enum ConversationField implements MaskField {
  SUMMARY("summary"),
  SUMMARY_EMBEDDING("summary_embedding"),
  METADATA("metadata");

  private final String path;

  ConversationField(String path) {
    this.path = path;
  }

  @Override
  public String path() {
    return path;
  }
}
