package dev.contextmemory.mcp;

import static dev.contextmemory.mcp.Schema.array;
import static dev.contextmemory.mcp.Schema.bool;
import static dev.contextmemory.mcp.Schema.enumeration;
import static dev.contextmemory.mcp.Schema.integer;
import static dev.contextmemory.mcp.Schema.json;
import static dev.contextmemory.mcp.Schema.number;
import static dev.contextmemory.mcp.Schema.object;
import static dev.contextmemory.mcp.Schema.props;
import static dev.contextmemory.mcp.Schema.string;

import dev.contextmemory.v1.ConfirmMemoriesRequest;
import dev.contextmemory.v1.DeleteMemoryRequest;
import dev.contextmemory.v1.FetchContextRequest;
import dev.contextmemory.v1.SearchMemoriesRequest;
import dev.contextmemory.v1.UpsertMemoryRequest;
import java.util.List;

/**
 * The memory tools: MemoryService's FetchContext, UpsertMemory, ConfirmMemories, SearchMemories and
 * DeleteMemory. They take text, never vectors: memories are found by their words today, and by
 * meaning as well once the server embeds text itself.
 */
final class MemoryTools {
  private MemoryTools() {}

  static final String MEMORY_ID = "Id of the memory (memory.id from fetch_context, search_memories or remember).";
  static final String[] KINDS = {"MEMORY_KIND_FACT", "MEMORY_KIND_PREFERENCE", "MEMORY_KIND_SUMMARY",
      "MEMORY_KIND_INSTRUCTION", "MEMORY_KIND_OTHER"};

  static List<Tool<?, ?>> all() {
    return List.of(fetchContext(), remember(), confirmMemories(), searchMemories(), forget());
  }

  static Tool<FetchContextRequest, ?> fetchContext() {
    return new Tool<>("fetch_context", "Fetch context",
        "Gathers what you need before you answer the customer, in one call: their profile, their open"
            + " conversations, the latest messages of the conversation (the given one, else their most recent open"
            + " one) oldest first, and the memories about them that best fit what they just said, best first, each"
            + " with the scores that explain why it was picked (relevance to query_text, importance, recency,"
            + " confirmations). Call it on every turn, with key words of the person's current message as"
            + " query_text. Returns"
            + " {customer, open_conversations, conversation, recent_messages, memories: [{memory, breakdown}]}."
            + " Read-only. Afterwards, tell confirm_memories which memories you used.",
        object(null, props(
            "customer_id", string(CustomerTools.CUSTOMER_ID),
            "conversation_id", string("The conversation whose latest messages to return; the customer's most recent"
                + " open conversation when left out."),
            "query_text", string("Key words of the person's current message, to rank memories by (web-search"
                + " syntax as in search_memories: words are ANDed, so give the few that matter, e.g. \"parcel"
                + " delivery\").", 1024),
            "message_limit", integer("How many of the latest messages; default 20.", 0, 100),
            "memory_limit", integer("How many memories; default 10.", 0, 50),
            "memory_kinds", array("Only memories of these kinds; all when left out.",
                enumeration("A kind.", KINDS), 1, 5)),
            "customer_id"),
        Tool.Effect.READ, FetchContextRequest.getDefaultInstance(),
        (calls, request) -> calls.memories().fetchContext(request));
  }

  static Tool<UpsertMemoryRequest, ?> remember() {
    return new Tool<>("remember", "Remember",
        "Stores a note about the customer that should outlive this conversation: a fact (\"has two dogs\"), a"
            + " preference (\"prefers email over calls\"), an instruction (\"never call before 10am\"), a summary."
            + " The key names the note (\"preferred_contact_channel\"): remembering with a key the customer already"
            + " has replaces that note (same id, confirmations kept), so use the same key to correct a note and a"
            + " new key for a new one. Write content as a full sentence that makes sense on its own. Returns"
            + " {memory, created}. Changes stored state; calling it again with the same arguments changes nothing"
            + " more.",
        object(null, props(
            "customer_id", string(CustomerTools.CUSTOMER_ID),
            "memory", object("The note.", props(
                "key", string("The note's name, unique per customer, e.g. \"preferred_contact_channel\".", 256),
                "content", string("The note as a self-contained sentence.", 8192),
                "kind", enumeration("What kind of knowledge it is.", KINDS),
                "importance", number("How much it matters, 0 (trivial) to 1 (critical); 0.5 when left out on a new"
                    + " note, unchanged on an existing one.", 0, 1),
                "conversation_id", string("The conversation it was learned in, if any."),
                "source", string("Who wrote it; e.g. \"agent\".", 256),
                "expire_time", string("When it stops being true, as an RFC 3339 time in the future"
                    + " (\"2026-12-31T00:00:00Z\"); never when left out."),
                "metadata", json("Free-form JSON object about the note.")),
                "key", "content", "kind")),
            "customer_id", "memory"),
        Tool.Effect.IDEMPOTENT_WRITE, UpsertMemoryRequest.getDefaultInstance(),
        (calls, request) -> calls.memories().upsertMemory(request));
  }

  static Tool<ConfirmMemoriesRequest, ?> confirmMemories() {
    return new Tool<>("confirm_memories", "Confirm memories",
        "Tells the memory which notes from fetch_context or search_memories were right and which were wrong, after"
            + " you answered: CONFIRMED counts a confirmation (confirmed notes rank higher later; extend_expiry"
            + " pushes out the expiry of a note that has one), REJECTED halves the note's importance, or deletes it"
            + " with delete_on_reject. Call it once per turn for the notes you used or found wrong. Returns {results:"
            + " [{memory_id, effect, memory}]}; a note that no longer exists is reported as"
            + " CONFIRMATION_EFFECT_NOT_FOUND without failing the call. Changes stored state, and not idempotent:"
            + " calling again counts the confirmations again.",
        object(null, props(
            "confirmations", array("One verdict per note, 1 to 100, each for a different note.", object(null, props(
                "memory_id", string(MEMORY_ID),
                "outcome", enumeration("Your verdict.", "CONFIRMATION_OUTCOME_CONFIRMED", "CONFIRMATION_OUTCOME_REJECTED"),
                "extend_expiry", string("CONFIRMED only: keep the note at least this long from now, in seconds with"
                    + " an s suffix (\"2592000s\" is 30 days)."),
                "delete_on_reject", bool("REJECTED only: delete the note instead of halving its importance.")),
                "memory_id", "outcome"), 1, 100)),
            "confirmations"),
        Tool.Effect.WRITE, ConfirmMemoriesRequest.getDefaultInstance(),
        (calls, request) -> calls.memories().confirmMemories(request));
  }

  static Tool<SearchMemoriesRequest, ?> searchMemories() {
    return new Tool<>("search_memories", "Search memories",
        "Searches the notes about one customer (or, without customer_id, about every customer) for a topic, best"
            + " match first, when fetch_context's selection did not cover what you need. query_text is web-search"
            + " syntax: words are ANDed, \"a phrase\" in quotes, OR between alternatives, -word to exclude. Returns"
            + " {hits: [{memory, score, ...}], mode}. Read-only.",
        object(null, props(
            "customer_id", string(CustomerTools.CUSTOMER_ID + " Leave out to search every customer."),
            "query_text", string("What to look for.", 1024),
            "top_k", integer("How many hits, 1 to 100; default 10.", 1, 100),
            "kinds", array("Only notes of these kinds; all when left out.", enumeration("A kind.", KINDS), 1, 5),
            "metadata_filter", json("Only notes whose metadata contains this JSON object.")),
            "query_text"),
        Tool.Effect.READ, SearchMemoriesRequest.getDefaultInstance(),
        (calls, request) -> calls.memories().searchMemories(request));
  }

  static Tool<DeleteMemoryRequest, ?> forget() {
    return new Tool<>("forget", "Forget",
        "Deletes one note about a customer for good, when the person asks you to forget it or it is plainly wrong"
            + " (to correct a note, call remember with its key instead). Returns {}. Changes stored state and cannot"
            + " be undone; a second call for the same note fails with MEMORY_NOT_FOUND.",
        object(null, props("memory_id", string(MEMORY_ID)), "memory_id"),
        Tool.Effect.DELETE, DeleteMemoryRequest.getDefaultInstance(),
        (calls, request) -> calls.memories().deleteMemory(request));
  }
}
