package dev.contextmemory.mcp;

import static dev.contextmemory.mcp.Schema.array;
import static dev.contextmemory.mcp.Schema.enumeration;
import static dev.contextmemory.mcp.Schema.integer;
import static dev.contextmemory.mcp.Schema.json;
import static dev.contextmemory.mcp.Schema.object;
import static dev.contextmemory.mcp.Schema.props;
import static dev.contextmemory.mcp.Schema.string;

import dev.contextmemory.v1.AppendMessagesRequest;
import dev.contextmemory.v1.GetOrCreateOpenConversationRequest;
import dev.contextmemory.v1.ListMessagesRequest;
import dev.contextmemory.v1.RequestHandoffRequest;
import dev.contextmemory.v1.SearchMessagesRequest;
import java.util.List;
import java.util.Map;

/**
 * The conversation tools: ConversationService's get-or-create, batch append, list, search and
 * handoff request.
 */
final class ConversationTools {
  private ConversationTools() {}

  static final String CONVERSATION_ID = "Id of the conversation (conversation.id from open_conversation).";
  static final String[] CHANNELS = {"CHANNEL_SMS", "CHANNEL_MESSENGER", "CHANNEL_WEB", "CHANNEL_VOICE",
      "CHANNEL_EMAIL", "CHANNEL_OTHER"};
  static final String[] ROLES = {"MESSAGE_ROLE_USER", "MESSAGE_ROLE_ASSISTANT", "MESSAGE_ROLE_SYSTEM",
      "MESSAGE_ROLE_TOOL"};

  static List<Tool<?, ?>> all() {
    return List.of(openConversation(), appendMessages(), recentMessages(), searchMessages(), requestHandoff());
  }

  static Tool<GetOrCreateOpenConversationRequest, ?> openConversation() {
    return new Tool<>("open_conversation", "Open conversation",
        "Returns the customer's open conversation on a channel and thread, creating it when there is none: the"
            + " thread is the channel's own conversation key (for SMS, the person's phone number; for a web chat,"
            + " the chat session id). Call it once per incoming thread, after upsert_customer_profile, to get the"
            + " conversation.id that append_messages, recent_messages and fetch_context take. Returns"
            + " {conversation, created}. Creates state only when no conversation is open; calling it again returns"
            + " the same conversation.",
        object(null, props(
            "customer_id", string(CustomerTools.CUSTOMER_ID),
            "channel", enumeration("The channel the conversation takes place on.", CHANNELS),
            "thread_key", string("The channel's key for this thread (phone number, chat or email thread id).", 256),
            "metadata", json("Free-form JSON object stored on a newly created conversation.")),
            "customer_id", "channel", "thread_key"),
        Tool.Effect.IDEMPOTENT_WRITE, GetOrCreateOpenConversationRequest.getDefaultInstance(),
        (calls, request) -> calls.conversations().getOrCreateOpenConversation(request));
  }

  private static Map<String, Object> message() {
    return object(null, props(
        "role", enumeration("Who the message is from.", ROLES),
        "content", string("The text of the message.", 32_768),
        "idempotency_key", string("A key unique within the conversation, e.g. the channel's message id or a UUID"
            + " you make up once per message. A message whose key is already stored is not stored again.", 128),
        "tool_call_id", string("For MESSAGE_ROLE_TOOL only: the id of the tool call this message answers.", 256),
        "metadata", json("Free-form JSON object about the message (the source system's message id, ...).")),
        "role", "content");
  }

  static Tool<AppendMessagesRequest, ?> appendMessages() {
    return new Tool<>("append_messages", "Append messages",
        "Appends messages to an open conversation, in order: the person's message as soon as it arrives, your"
            + " reply once you have sent it. Give every message an idempotency_key (the channel's message id, or a"
            + " UUID you make up once per message): calling again with the same keys, e.g. after an error, stores"
            + " nothing twice and reports those messages as replayed. Returns {results: [{message_id, sequence,"
            + " create_time, replayed}], created_count}. Changes stored state. Fails with CONVERSATION_CLOSED when"
            + " the conversation was closed: call open_conversation for the current one.",
        object(null, props(
            "conversation_id", string(CONVERSATION_ID),
            "messages", array("The messages in conversation order, 1 to 100.", message(), 1, 100)),
            "conversation_id", "messages"),
        Tool.Effect.IDEMPOTENT_WRITE, AppendMessagesRequest.getDefaultInstance(),
        (calls, request) -> calls.conversations().appendMessages(request));
  }

  static Tool<ListMessagesRequest, ?> recentMessages() {
    return new Tool<>("recent_messages", "Recent messages",
        "Returns the latest messages of a conversation, newest first (page_size of them, default 20), and a"
            + " next_page_token when older ones exist (pass it back as page_token for the page before). Use it to"
            + " read more history than fetch_context gave you. Returns {messages, next_page_token}. Read-only.",
        object(null, props(
            "conversation_id", string(CONVERSATION_ID),
            "page_size", integer("How many messages, 1 to 100; default 20.", 1, 100),
            "page_token", string("next_page_token of the previous call, for the page of older messages."),
            "roles", array("Only messages from these roles; all when left out.", enumeration("A role.", ROLES), 1, 4)),
            "conversation_id"),
        Tool.Effect.READ, ListMessagesRequest.newBuilder().setPageSize(20).build(),
        (calls, request) -> calls.conversations().listMessages(request));
  }

  static Tool<SearchMessagesRequest, ?> searchMessages() {
    return new Tool<>("search_messages", "Search messages",
        "Finds past messages by their words (full-text search, best match first) in one conversation, in all of"
            + " one customer's conversations, or, with neither id, in every conversation. Use it when the person"
            + " refers to something said before (\"the order I mentioned last week\"). The query is web-search"
            + " syntax: words are ANDed, \"a phrase\" in quotes, OR between alternatives, -word to exclude. Returns"
            + " {hits: [{message, customer_id, score, snippet}], next_page_token}. Read-only.",
        object(null, props(
            "query", string("The words to look for.", 1024),
            "conversation_id", string("Only this conversation. Leave out to search more widely."),
            "customer_id", string("Only this customer's conversations. Do not give both ids."),
            "roles", array("Only messages from these roles; all when left out.", enumeration("A role.", ROLES), 1, 4),
            "page_size", integer("How many hits, 1 to 100; default 20.", 1, 100),
            "page_token", string("next_page_token of the previous call, for more hits.")),
            "query"),
        Tool.Effect.READ, SearchMessagesRequest.getDefaultInstance(),
        (calls, request) -> calls.conversations().searchMessages(request));
  }

  static Tool<RequestHandoffRequest, ?> requestHandoff() {
    return new Tool<>("request_handoff", "Request a human",
        "Hands the conversation to a human agent: call it when you cannot help (the person asks for a human, is"
            + " upset, or needs something you are not allowed to do), after telling the person a human will take"
            + " over. The conversation goes into the human agents' queue (higher priority first, then oldest), and"
            + " keeps accepting messages meanwhile. Returns {handoff: {id, state, ...}, replayed}; state"
            + " HANDOFF_STATE_REQUESTED until a human accepts. Changes stored state. Give a request_id (a UUID you"
            + " make up once) so that calling again after an error requests nothing twice. Fails with"
            + " HANDOFF_ALREADY_REQUESTED (already waiting in the queue: nothing to do) or HANDOFF_ALREADY_ACCEPTED"
            + " (a human already handles it), and CONVERSATION_CLOSED.",
        object(null, props(
            "conversation_id", string(CONVERSATION_ID),
            "reason", string("Why a human is needed, in a sentence for the human agent (no secrets).", 1024),
            "priority", integer("0 (normal) to 100 (most urgent); default 0.", 0, 100),
            "request_id", string("A UUID you make up once per handoff request; a repeated id returns the same"
                + " handoff.", 128)),
            "conversation_id", "reason"),
        Tool.Effect.IDEMPOTENT_WRITE, RequestHandoffRequest.getDefaultInstance(),
        (calls, request) -> calls.conversations().requestHandoff(request));
  }
}
