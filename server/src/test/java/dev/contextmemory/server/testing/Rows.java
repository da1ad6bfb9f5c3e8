package dev.contextmemory.server.testing;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.UUID;

/**
 * Plain JDBC behind the API, for what the API cannot do (yet): seed conversations and messages
 * until ConversationService lands, move a memory's expiry into the past, count rows.
 */
public final class Rows implements AutoCloseable {
  public static final String TENANT = "default";

  private final Connection c;

  public Rows(String dbUrl) {
    try {
      this.c = DriverManager.getConnection(dbUrl);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Inserts a conversation; {@code summaryEmbedding} is a pgvector literal or null, of the model
   * 'client' (the default deployment's, EMBEDDER=none).
   */
  public UUID conversation(String customerId, String channel, String threadKey, boolean open, String summary,
      String summaryEmbedding, Instant lastMessageAt) {
    UUID id = UUID.randomUUID();
    update("""
        INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, closed_at, summary,
                                   summary_embedding, summary_embedding_model, last_message_at)
        VALUES (?, ?, ?::uuid, ?, ?, ?, ?, ?::vector, ?, ?)""",
        TENANT, id, customerId, channel, threadKey, open ? null : Timestamp.from(Instant.now()), summary,
        summaryEmbedding, summaryEmbedding == null ? null : "client", lastMessageAt == null ? null : Timestamp.from(lastMessageAt));
    return id;
  }

  /** Appends a message with the next sequence, as ConversationService would. */
  public UUID message(UUID conversationId, String role, String content, String toolCallsJson, String attachmentsJson) {
    UUID id = UUID.randomUUID();
    update("""
        WITH c AS (UPDATE conversations SET last_sequence = last_sequence + 1, message_count = message_count + 1,
                                            last_message_at = now()
                   WHERE tenant_id = ? AND id = ? RETURNING last_sequence)
        INSERT INTO messages (tenant_id, id, conversation_id, sequence, role, content, tool_calls, attachments)
        SELECT ?, ?, ?, c.last_sequence, ?, ?, ?::jsonb, ?::jsonb FROM c""",
        TENANT, conversationId, TENANT, id, conversationId, role, content, toolCallsJson, attachmentsJson);
    return id;
  }

  public void deleteConversation(UUID conversationId) {
    update("UPDATE conversations SET deleted_at = now() WHERE tenant_id = ? AND id = ?", TENANT, conversationId);
  }

  /** Moves a memory's expiry into the past, as if time had passed. */
  public void expireMemory(String memoryId) {
    update("UPDATE memories SET expires_at = now() - interval '1 second' WHERE id = ?::uuid", memoryId);
  }

  public long count(String sql, Object... args) {
    try (PreparedStatement st = prepare(sql, args); ResultSet rs = st.executeQuery()) {
      rs.next();
      return rs.getLong(1);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  public int update(String sql, Object... args) {
    try (PreparedStatement st = prepare(sql, args)) {
      return st.executeUpdate();
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  public Connection connection() {
    return c;
  }

  private PreparedStatement prepare(String sql, Object... args) throws SQLException {
    PreparedStatement st = c.prepareStatement(sql);
    for (int i = 0; i < args.length; i++) {
      st.setObject(i + 1, args[i]);
    }
    return st;
  }

  @Override
  public void close() {
    try {
      c.close();
    } catch (SQLException ignored) {
      // closing anyway
    }
  }
}
