package dev.contextmemory.server.grpc;

import dev.contextmemory.v1.EmbeddingState;

import dev.contextmemory.server.domain.Context;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.v1.ConfirmationEffect;
import dev.contextmemory.v1.FetchContextResponse;
import dev.contextmemory.v1.MemoryConfirmationResult;
import dev.contextmemory.v1.MemoryKind;
import dev.contextmemory.v1.MemorySearchHit;
import dev.contextmemory.v1.MemorySearchMode;
import dev.contextmemory.v1.ScoreBreakdown;
import dev.contextmemory.v1.ScoredMemory;
import dev.contextmemory.v1.SearchMemoriesResponse;
import java.util.List;

/** Memory domain objects to MemoryService's proto messages, and memory kinds both ways. */
final class MemoryMapping {
  private MemoryMapping() {}

  static dev.contextmemory.v1.Memory memory(Memory m) {
    var b = dev.contextmemory.v1.Memory.newBuilder()
        .setId(m.id().toString())
        .setCustomerId(m.customerId().toString())
        .setKind(kind(m.kind()))
        .setContent(m.content())
        .setMetadata(ProtoMapping.struct(m.metadataJson()))
        .setHasEmbedding(m.hasEmbedding())
        .setEmbeddingState(embeddingState(m.embeddingState()))
        .setEmbeddingModel(m.embeddingModel() == null ? "" : m.embeddingModel())
        .setImportance(m.importance())
        .setSource(m.source())
        .setConfirmCount(m.confirmCount())
        .setCreateTime(ProtoMapping.timestamp(m.createdAt()))
        .setUpdateTime(ProtoMapping.timestamp(m.updatedAt()));
    if (m.conversationId() != null) {
      b.setConversationId(m.conversationId().toString());
    }
    if (m.key() != null) {
      b.setKey(m.key());
    }
    if (m.embedding() != null) {
      for (float x : m.embedding()) {
        b.addEmbedding(x);
      }
    }
    if (m.expiresAt() != null) {
      b.setExpireTime(ProtoMapping.timestamp(m.expiresAt()));
    }
    if (m.lastConfirmedAt() != null) {
      b.setLastConfirmTime(ProtoMapping.timestamp(m.lastConfirmedAt()));
    }
    return b.build();
  }

  static SearchMemoriesResponse searchResponse(Memory.Mode mode, List<Memory.Hit> hits) {
    SearchMemoriesResponse.Builder b = SearchMemoriesResponse.newBuilder().setMode(switch (mode) {
      case VECTOR -> MemorySearchMode.MEMORY_SEARCH_MODE_VECTOR;
      case TEXT -> MemorySearchMode.MEMORY_SEARCH_MODE_TEXT;
      case HYBRID -> MemorySearchMode.MEMORY_SEARCH_MODE_HYBRID;
    });
    for (Memory.Hit h : hits) {
      b.addHits(MemorySearchHit.newBuilder().setMemory(memory(h.memory())).setScore(h.score())
          .setVectorSimilarity(h.vectorSimilarity()).setVectorRank(h.vectorRank())
          .setTextScore(h.textScore()).setTextRank(h.textRank()));
    }
    return b.build();
  }

  static FetchContextResponse fetchContextResponse(Context c) {
    FetchContextResponse.Builder b = FetchContextResponse.newBuilder().setCustomer(ProtoMapping.customer(c.customer()));
    c.openConversations().forEach(o -> b.addOpenConversations(ConversationMapping.conversation(o)));
    if (c.conversation() != null) {
      b.setConversation(ConversationMapping.conversation(c.conversation()));
    }
    c.recentMessages().forEach(m -> b.addRecentMessages(ConversationMapping.message(m)));
    for (Memory.Scored s : c.memories()) {
      b.addMemories(ScoredMemory.newBuilder().setMemory(memory(s.memory())).setBreakdown(ScoreBreakdown.newBuilder()
          .setFinalScore(s.finalScore()).setRelevance(s.relevance()).setVectorSimilarity(s.vectorSimilarity())
          .setTextScore(s.textScore()).setImportance(s.importance()).setRecency(s.recency())
          .setConfirmation(s.confirmation())));
    }
    return b.build();
  }

  static MemoryConfirmationResult confirmationResult(Memory.ConfirmationResult r) {
    MemoryConfirmationResult.Builder rb = MemoryConfirmationResult.newBuilder().setMemoryId(r.memoryId().toString())
        .setEffect(switch (r.effect()) {
          case CONFIRMED -> ConfirmationEffect.CONFIRMATION_EFFECT_CONFIRMED;
          case DEMOTED -> ConfirmationEffect.CONFIRMATION_EFFECT_DEMOTED;
          case DELETED -> ConfirmationEffect.CONFIRMATION_EFFECT_DELETED;
          case NOT_FOUND -> ConfirmationEffect.CONFIRMATION_EFFECT_NOT_FOUND;
        });
    if (r.memory() != null) {
      rb.setMemory(memory(r.memory()));
    }
    return rb.build();
  }

  static String kind(MemoryKind k) {
    return switch (k) {
      case MEMORY_KIND_FACT -> "fact";
      case MEMORY_KIND_PREFERENCE -> "preference";
      case MEMORY_KIND_SUMMARY -> "summary";
      case MEMORY_KIND_INSTRUCTION -> "instruction";
      case MEMORY_KIND_OTHER -> "other";
      case MEMORY_KIND_UNSPECIFIED, UNRECOGNIZED -> null;
    };
  }

  static MemoryKind kind(String stored) {
    return switch (stored) {
      case "fact" -> MemoryKind.MEMORY_KIND_FACT;
      case "preference" -> MemoryKind.MEMORY_KIND_PREFERENCE;
      case "summary" -> MemoryKind.MEMORY_KIND_SUMMARY;
      case "instruction" -> MemoryKind.MEMORY_KIND_INSTRUCTION;
      default -> MemoryKind.MEMORY_KIND_OTHER;
    };
  }

  static EmbeddingState embeddingState(String stored) {
    return switch (stored) {
      case "none" -> EmbeddingState.EMBEDDING_STATE_NONE;
      // A bulk write's vector waiting for the index is, to a reader, a vector on its way.
      case "pending", "staged" -> EmbeddingState.EMBEDDING_STATE_PENDING;
      case "ready" -> EmbeddingState.EMBEDDING_STATE_READY;
      case "failed" -> EmbeddingState.EMBEDDING_STATE_FAILED;
      default -> throw new IllegalStateException("unknown embedding state " + stored);
    };
  }
}
