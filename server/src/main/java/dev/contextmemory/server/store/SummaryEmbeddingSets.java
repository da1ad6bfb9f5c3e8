package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.ConversationField;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** UpdateConversation's SET items for the summary's vector and its embedding queue state. */
final class SummaryEmbeddingSets {
  private SummaryEmbeddingSets() {}

  /**
   * The SET items for the summary's vector and its queue state (version 13). A client vector is
   * stored as the active model's, READY. Without one, on a deployment with an embedder, a written
   * summary (or a cleared vector) queues the summary: the old vector stays, searchable, until the
   * worker's replaces it; an empty summary has nothing to embed and drops the vector. Without an
   * embedder a new summary leaves the vector as it was (the caller's to send).
   */
  static List<String> of(Set<ConversationField> fields, boolean serverEmbeds, VectorSpace space) {
    boolean summary = fields.contains(ConversationField.SUMMARY);
    boolean vector = fields.contains(ConversationField.SUMMARY_EMBEDDING);
    if (!vector && !(summary && serverEmbeds)) {
      return List.of();
    }
    String newSummary = summary ? ":summary" : "summary";
    String hasVector = vector ? "CAST(:summary_embedding AS vector) IS NOT NULL" : "false";
    String queue = serverEmbeds ? newSummary + " <> ''" : "false";
    String state = "CASE WHEN " + hasVector + " THEN 'ready' WHEN " + queue + " THEN 'pending' ELSE 'none' END";
    // The old vector stays while queued; it goes when nothing will replace it.
    String keep = "CASE WHEN " + queue + " THEN %s END";
    List<String> sets = new ArrayList<>();
    if (vector) {
      sets.add("summary_embedding = coalesce(CAST(:summary_embedding AS vector), " + keep.formatted("summary_embedding")
          + ")");
      sets.add("summary_embedding_model = CASE WHEN " + hasVector + " THEN '" + space.model() + "' ELSE "
          + keep.formatted("summary_embedding_model") + " END");
    } else {
      sets.add("summary_embedding = " + keep.formatted("summary_embedding"));
      sets.add("summary_embedding_model = " + keep.formatted("summary_embedding_model"));
    }
    sets.add("summary_embedding_state = " + state);
    sets.add("summary_embedding_attempts = 0");
    sets.add("summary_embedding_failed_model = NULL");
    sets.add("summary_embedding_queued_at = CASE WHEN " + state + " = 'pending' THEN now() END");
    sets.add("summary_embedding_due_at = CASE WHEN " + state + " = 'pending' THEN now() END");
    return sets;
  }
}
