package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryField;
import dev.contextmemory.v1.MemoryKind;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/** Field checks of MemoryService's requests: memory drafts, kinds, limits and query text. */
final class MemoryRequests {
  static final int MAX_KEY_LENGTH = 256;
  static final int MAX_CONTENT_LENGTH = 8_192;
  static final int MAX_SOURCE_LENGTH = 256;
  static final int MAX_QUERY_LENGTH = 1_024;
  static final int DEFAULT_TOP_K = 10;
  static final int MAX_TOP_K = 100;

  private MemoryRequests() {}

  /**
   * The memory fields of a create, upsert or update. Create and upsert write every field (kind and
   * content required; upsert also needs the key); an update checks only what its mask names.
   */
  static Memory.Draft draft(Validator v, int embeddingDimension, dev.contextmemory.v1.Memory m,
      Set<MemoryField> fields, boolean upsert, Instant now) {
    boolean all = fields.size() == MemoryField.values().length;
    String kind = null;
    if (fields.contains(MemoryField.KIND)) {
      kind = MemoryMapping.kind(m.getKind());
      if (kind == null) {
        v.add("memory.kind", m.getKind() == MemoryKind.MEMORY_KIND_UNSPECIFIED ? "is required"
            : "unknown kind " + m.getKindValue());
      }
    }
    String key = m.getKey().isEmpty() ? null : v.raw("memory.key", m.getKey(), MAX_KEY_LENGTH);
    if (upsert && m.getKey().isEmpty()) {
      v.add("memory.key", "is required: UpsertMemory finds the memory by its key");
    }
    String content = fields.contains(MemoryField.CONTENT)
        ? v.requiredText("memory.content", m.getContent(), MAX_CONTENT_LENGTH) : null;
    float[] embedding = v.embedding("memory.embedding", m.getEmbeddingList(), embeddingDimension, false);
    Float importance = null;
    if (m.hasImportance()) {
      float x = m.getImportance();
      if (Float.isNaN(x) || x < 0 || x > 1) {
        v.add("memory.importance", "must be within [0, 1]");
      } else {
        importance = x;
      }
    }
    String source = v.text("memory.source", m.getSource(), MAX_SOURCE_LENGTH);
    Instant expires = v.timestamp("memory.expire_time", m.hasExpireTime(), m.getExpireTime());
    if (expires != null && !expires.isAfter(now) && (all || fields.contains(MemoryField.EXPIRE_TIME))) {
      v.add("memory.expire_time", "must be in the future");
    }
    UUID conversationId = m.getConversationId().isEmpty() ? null
        : v.id("memory.conversation_id", m.getConversationId());
    return new Memory.Draft(conversationId, kind, key, content, v.metadata("memory.metadata", m.getMetadata()),
        embedding, importance, source, expires, fields);
  }

  static List<String> kinds(Validator v, String field, List<Integer> values) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < values.size(); i++) {
      MemoryKind k = MemoryKind.forNumber(values.get(i));
      String stored = k == null ? null : MemoryMapping.kind(k);
      if (stored == null) {
        v.add(field + "[" + i + "]", k == MemoryKind.MEMORY_KIND_UNSPECIFIED
            ? "must not be MEMORY_KIND_UNSPECIFIED" : "unknown kind " + values.get(i));
      } else if (!out.contains(stored)) {
        out.add(stored);
      }
    }
    out.sort(null);
    return List.copyOf(out);
  }

  static int topK(Validator v, int requested) {
    if (requested < 0) {
      v.add("top_k", "must not be negative (0 means " + DEFAULT_TOP_K + ")");
      return DEFAULT_TOP_K;
    }
    return requested == 0 ? DEFAULT_TOP_K : Math.min(requested, MAX_TOP_K);
  }

  static int limit(Validator v, String field, boolean present, int value, int fallback, int max) {
    if (!present) {
      return fallback;
    }
    if (value < 0) {
      v.add(field, "must not be negative");
      return fallback;
    }
    return Math.min(value, max);
  }

  /** {@code as_of_time}: null when unset (now); a time in the future is INVALID_ARGUMENT. */
  static Instant asOf(Validator v, boolean present, com.google.protobuf.Timestamp t, Instant now) {
    Instant asOf = v.timestamp("as_of_time", present, t);
    if (asOf != null && asOf.isAfter(now)) {
      v.add("as_of_time", "must not be in the future");
      return null;
    }
    return asOf;
  }

  static String queryText(Validator v, String field, String s) {
    if (s.isBlank()) {
      return null;
    }
    return v.raw(field, s, MAX_QUERY_LENGTH);
  }
}
