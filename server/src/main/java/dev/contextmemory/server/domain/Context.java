package dev.contextmemory.server.domain;

import java.util.List;
import java.util.UUID;

/** FetchContext: what an agent needs before it answers. */
public record Context(Customer customer, List<Conversation> openConversations, Conversation conversation,
    List<Message> recentMessages, List<Memory.Scored> memories) {

  /** The request: sizes already defaulted and clamped; query parts may be null. */
  public record Request(UUID customerId, UUID conversationId, String text, float[] embedding, int messageLimit,
      int memoryLimit, List<String> kinds) {}
}
