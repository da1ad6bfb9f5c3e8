package dev.contextmemory.server.store;

import static dev.contextmemory.server.store.MemoryStore.COLUMNS;
import static dev.contextmemory.server.store.MemoryStore.MEMORY;

import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.Memory;
import dev.contextmemory.server.domain.MemoryBatch.Failure;
import dev.contextmemory.server.domain.MemoryBatch.Item;
import dev.contextmemory.server.domain.MemoryBatch.Result;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.function.Predicate;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;

/**
 * CreateMemories, UpsertMemories and ImportMemories' chunks: up to 1,000 memories in one
 * transaction of at most six statements whatever the size. The customers and conversations are
 * checked (and KEY SHARE locked, so an erase cannot remove them before the insert) with
 * {@code = ANY}, expired memories holding the items' keys or request ids are removed (for a create,
 * only when the insert refused items, and then those items are inserted again), and the rows are
 * written by one {@code INSERT ... SELECT FROM unnest(arrays)}, client vectors bound as one
 * binary {@code vector[]} ({@link VectorArray}) and staged outside the HNSW index (its per-row
 * insert would cost about 2 ms a row; {@code StagedVectorIndexer} moves them in, in the
 * background). An item that cannot be written (unknown customer or conversation, taken key) gets
 * its failure and the others go on (AIP-233 partial success); the history triggers record every
 * row the statements change.
 */
public final class MemoryBatchStore extends Store {
  private static final String RETURNING = COLUMNS.replace("m.", "");

  /** The unnest of the items' columns, as {@code u}; the parameters are bound by {@link #bindItems}. */
  private static final String ITEMS = """
      unnest(CAST(:ids AS uuid[]), CAST(:customers AS uuid[]), CAST(:conversations AS uuid[]), CAST(:kinds AS text[]),
             CAST(:keys AS text[]), CAST(:contents AS text[]), CAST(:metadata AS text[]), CAST(:embeddings AS vector[]),
             CAST(:importances AS real[]), CAST(:sources AS text[]), CAST(:expires AS text[]), CAST(:request_ids AS text[]),
             CAST(:embedding_models AS text[]), CAST(:embedding_states AS text[]))
        AS u(id, customer_id, conversation_id, kind, memory_key, content, metadata, embedding, importance, source,
             expires_at, request_id, embedding_model, embedding_state)""";

  /** Client vectors go to embedding_staged (state 'staged'): no HNSW insert in the batch's transaction. */
  private static final String INSERT = """
      INSERT INTO memories AS m (tenant_id, id, customer_id, conversation_id, kind, memory_key, content, metadata,
                                 embedding, importance, source, expires_at, create_request_id, embedding_model,
                                 embedding_state, embedding_queued_at, embedding_due_at, embedding_staged,
                                 embedding_staged_model)
      SELECT :tenant, u.id, u.customer_id, u.conversation_id, u.kind, u.memory_key, u.content,
             coalesce(CAST(u.metadata AS jsonb), '{}'),
             CASE WHEN u.embedding_state <> 'staged' THEN u.embedding END, coalesce(u.importance, 0.5),
             coalesce(u.source, ''), CAST(u.expires_at AS timestamptz), u.request_id,
             CASE WHEN u.embedding_state <> 'staged' THEN u.embedding_model END,
             u.embedding_state, CASE WHEN u.embedding_state = 'pending' THEN now() END,
             CASE WHEN u.embedding_state = 'pending' THEN now() END,
             CASE WHEN u.embedding_state = 'staged' THEN u.embedding END,
             CASE WHEN u.embedding_state = 'staged' THEN u.embedding_model END
        FROM %s, %s
      """;

  private final String model;
  private final boolean serverEmbeds;
  private final Runnable queued;
  private final Runnable staged;

  /**
   * As {@link MemoryStore}'s: {@code model} is recorded with every client vector, items without one
   * are queued for the embedding worker when {@code serverEmbeds}, and {@code queued} wakes this
   * server's worker after a batch that queued any committed. Unlike a single write, a batch stages
   * client vectors outside the HNSW index (version 13); {@code staged} wakes the indexer that moves
   * them in.
   */
  public MemoryBatchStore(Jdbi jdbi, String model, boolean serverEmbeds, Runnable queued, Runnable staged) {
    super(jdbi);
    this.model = model;
    this.serverEmbeds = serverEmbeds;
    this.queued = queued;
    this.staged = staged;
  }

  /** Wakes the embedding worker or the staged-vector indexer when written memories wait for them. */
  private List<Result> notifying(List<Result> results) {
    if (results.stream().anyMatch(r -> r.memory() != null && "pending".equals(r.memory().embeddingState()))) {
      queued.run();
    }
    if (results.stream().anyMatch(r -> r.memory() != null && "staged".equals(r.memory().embeddingState()))) {
      staged.run();
    }
    return results;
  }

  /**
   * Creates the items; results in item order. An item whose request id is stored for its customer
   * answers that memory ({@code created = false}); one whose key a live memory holds fails with
   * MEMORY_KEY_ALREADY_EXISTS. {@code ON CONFLICT DO NOTHING} (no arbiter: any unique index) also
   * turns a concurrent writer's key or request id into such an item result instead of an abort.
   */
  public List<Result> create(String tenant, String actor, List<Item> items) {
    return notifying(write(h -> {
      Result[] results = new Result[items.size()];
      List<Integer> todo = resolve(h, tenant, items, results);
      if (todo.isEmpty()) {
        return List.of(results);
      }
      List<Integer> notInserted = insertNew(h, tenant, actor, items, todo, results);
      // Expired means absent: an item refused because an expired memory (not swept yet) holds its
      // key or request id takes it. Looked for only among the refused items, after the insert, so a
      // batch that conflicts with nothing (a backfill's usual case) pays no statement for it.
      if (!notInserted.isEmpty() && dropExpired(h, tenant, items, notInserted) > 0) {
        notInserted = insertNew(h, tenant, actor, items, notInserted, results);
      }
      replays(h, tenant, items, notInserted, results);
      for (int i : notInserted) {
        if (results[i] == null) {
          results[i] = Result.failed(new Failure("MEMORY_KEY_ALREADY_EXISTS", "memory.key",
              "the customer already has an unexpired memory with this key; use UpsertMemories to replace it"));
        }
      }
      return List.of(results);
    }));
  }

  /**
   * Inserts the items {@code which} with new ids ({@code ON CONFLICT DO NOTHING}, no arbiter: a
   * taken key or request id, even one a concurrent writer just took, leaves that item out instead of
   * aborting the batch), fills the results of those inserted and returns the indexes of the others.
   */
  private List<Integer> insertNew(Handle h, String tenant, String actor, List<Item> items, List<Integer> which,
      Result[] results) {
    Map<UUID, Integer> byId = new HashMap<>();
    List<UUID> ids = new ArrayList<>(which.size());
    for (int i : which) {
      UUID id = Ids.newId();
      ids.add(id);
      byId.put(id, i);
    }
    Query insert = h.createQuery(INSERT.formatted(MemoryHistoryStore.TAG, ITEMS)
        + " ON CONFLICT DO NOTHING RETURNING " + RETURNING);
    bindItems(MemoryHistoryStore.tag(insert, actor, "create"), tenant, items, which, ids, true)
        .map(MEMORY).forEach(m -> results[byId.get(m.id())] = new Result(m, true, null));
    return which.stream().filter(i -> results[i] == null).toList();
  }

  /**
   * Creates or replaces the items by key; results in item order. Importance is replaced only where
   * an item gives one, which is a different SET: items with and without importance are written by
   * one statement each. Keys must be distinct per customer (the caller validates that: one
   * statement cannot update a row twice).
   */
  public List<Result> upsert(String tenant, String actor, List<Item> items) {
    return notifying(write(h -> {
      Result[] results = new Result[items.size()];
      List<Integer> todo = resolve(h, tenant, items, results);
      if (todo.isEmpty()) {
        return List.of(results);
      }
      dropExpired(h, tenant, items, todo);
      for (boolean withImportance : new boolean[] {true, false}) {
        // In key order: two batches upserting overlapping keys then lock them in the same order
        // instead of deadlocking (40P01, ABORTED) when their orders cross.
        List<Integer> group = todo.stream()
            .filter(i -> (items.get(i).draft().importance() != null) == withImportance)
            .sorted(java.util.Comparator.comparing((Integer i) -> items.get(i).customerId())
                .thenComparing(i -> items.get(i).draft().key()))
            .toList();
        if (group.isEmpty()) {
          continue;
        }
        List<UUID> ids = group.stream().map(i -> Ids.newId()).toList();
        Map<String, Integer> byKey = new HashMap<>();
        for (int i : group) {
          byKey.put(items.get(i).customerId() + "|" + items.get(i).draft().key(), i);
        }
        Query upsert = h.createQuery(INSERT.formatted(MemoryHistoryStore.TAG, ITEMS) + """
             ON CONFLICT (tenant_id, customer_id, memory_key) DO UPDATE SET
               conversation_id = EXCLUDED.conversation_id, kind = EXCLUDED.kind, content = EXCLUDED.content,
               metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding, source = EXCLUDED.source,
               embedding_model = EXCLUDED.embedding_model, embedding_state = EXCLUDED.embedding_state,
               embedding_attempts = 0, embedding_queued_at = EXCLUDED.embedding_queued_at,
               embedding_due_at = EXCLUDED.embedding_due_at, embedding_staged = EXCLUDED.embedding_staged,
               embedding_staged_model = EXCLUDED.embedding_staged_model,
               expires_at = EXCLUDED.expires_at, importance = %s,
               valid_from = %s
            RETURNING %s, (xmax = 0) AS created""".formatted(withImportance ? "EXCLUDED.importance" : "m.importance",
            MemoryHistoryStore.NEW_VERSION_FROM_EXCLUDED, RETURNING));
        bindItems(MemoryHistoryStore.tag(upsert, actor, "upsert"), tenant, items, group, ids, false)
            .map((rs, ctx) -> new Result(MEMORY.map(rs, ctx), rs.getBoolean("created"), null))
            .forEach(r -> results[byKey.get(r.memory().customerId() + "|" + r.memory().key())] = r);
      }
      return List.of(results);
    }));
  }

  /**
   * Checks every item's customer and conversation in two statements and returns the indexes of the
   * items that can be written; the others get their failure in {@code results}.
   */
  private static List<Integer> resolve(Handle h, String tenant, List<Item> items, Result[] results) {
    Set<UUID> customers = new HashSet<>(h.createQuery("""
            SELECT id FROM customers WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[])) FOR KEY SHARE""")
        .bind("tenant", tenant)
        .bindArray("ids", UUID.class, items.stream().map(Item::customerId).distinct().toList())
        .mapTo(UUID.class).list());
    List<UUID> wanted = items.stream().map(i -> i.draft().conversationId()).filter(Objects::nonNull).distinct().toList();
    Map<UUID, UUID> ownerOf = new HashMap<>();
    if (!wanted.isEmpty()) {
      h.createQuery("""
              SELECT id, customer_id FROM conversations
               WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[])) AND deleted_at IS NULL FOR KEY SHARE""")
          .bind("tenant", tenant).bindArray("ids", UUID.class, wanted)
          .map((rs, ctx) -> Map.entry(rs.getObject(1, UUID.class), rs.getObject(2, UUID.class)))
          .forEach(e -> ownerOf.put(e.getKey(), e.getValue()));
    }
    List<Integer> todo = new ArrayList<>(items.size());
    for (int i = 0; i < items.size(); i++) {
      Item item = items.get(i);
      UUID conversation = item.draft().conversationId();
      if (!customers.contains(item.customerId())) {
        results[i] = Result.failed(new Failure("CUSTOMER_NOT_FOUND", "customer_id", "no such customer"));
      } else if (conversation != null && !ownerOf.containsKey(conversation)) {
        results[i] = Result.failed(new Failure("CONVERSATION_NOT_FOUND", "memory.conversation_id",
            "no such conversation (or it was deleted)"));
      } else if (conversation != null && !ownerOf.get(conversation).equals(item.customerId())) {
        results[i] = Result.failed(new Failure("INVALID_FIELD", "memory.conversation_id", "belongs to another customer"));
      } else {
        todo.add(i);
      }
    }
    return todo;
  }

  /**
   * Expired means absent: deletes the expired memories holding the items' keys or request ids and
   * returns how many went. Per item, one probe of the unique index on its key and one on its
   * request id, each skipped when the item has none (the {@code LATERAL} subqueries, whose {@code IS
   * NOT NULL} becomes a one-time filter; the ids gathered into an array, so the delete itself looks
   * each up by primary key). That holds while the table has statistics: on a fresh table that a
   * backfill grows faster than autovacuum analyzes it, the planner may read the request-id probe as
   * a walk of the customer's memories through the key index (both estimate one row), which is why a
   * create runs this only for the items its insert refused. An upsert's items have keys and no
   * request ids, so its probes stay on the key index. (The join on customer_id with {@code key OR
   * request id} it replaces, run before every create's insert, took 21.6 to 60 ms per batch of
   * 1,000 on such a table, up to 0.83 s, and 0.27 ms where it was planned from the expiry index.)
   */
  private static int dropExpired(Handle h, String tenant, List<Item> items, List<Integer> which) {
    Predicate<Item> names = i -> i.draft().key() != null || i.requestId() != null;
    List<Integer> named = which.stream().filter(i -> names.test(items.get(i))).toList();
    if (named.isEmpty()) {
      return 0;
    }
    return h.createUpdate("""
            DELETE FROM memories m
             WHERE m.tenant_id = :tenant AND m.expires_at <= now() AND m.id = ANY(ARRAY(
               SELECT x.id
                 FROM unnest(CAST(:customers AS uuid[]), CAST(:keys AS text[]), CAST(:request_ids AS text[]))
                        AS u(customer_id, memory_key, request_id)
                CROSS JOIN LATERAL (
                  SELECT k.id FROM memories k
                   WHERE u.memory_key IS NOT NULL AND k.tenant_id = :tenant AND k.customer_id = u.customer_id
                     AND k.memory_key = u.memory_key AND k.expires_at <= now()
                  UNION ALL
                  SELECT r.id FROM memories r
                   WHERE u.request_id IS NOT NULL AND r.tenant_id = :tenant AND r.customer_id = u.customer_id
                     AND r.create_request_id = u.request_id AND r.expires_at <= now()) x))""")
        .bind("tenant", tenant)
        .bindArray("customers", UUID.class, named.stream().map(i -> items.get(i).customerId()).toList())
        .bindArray("keys", String.class, named.stream().map(i -> items.get(i).draft().key()).toList())
        .bindArray("request_ids", String.class, named.stream().map(i -> items.get(i).requestId()).toList())
        .execute();
  }

  /** Fills the results of the items whose request id is already stored: the memory it created. */
  private static void replays(Handle h, String tenant, List<Item> items, List<Integer> notInserted, Result[] results) {
    List<Integer> withId = notInserted.stream().filter(i -> items.get(i).requestId() != null).toList();
    if (withId.isEmpty()) {
      return;
    }
    Map<String, Integer> byRequest = new HashMap<>();
    for (int i : withId) {
      byRequest.put(items.get(i).customerId() + "|" + items.get(i).requestId(), i);
    }
    h.createQuery("SELECT " + COLUMNS + ", m.create_request_id FROM memories m"
            + " JOIN unnest(CAST(:customers AS uuid[]), CAST(:request_ids AS text[])) AS u(customer_id, request_id)"
            + " ON m.customer_id = u.customer_id AND m.create_request_id = u.request_id WHERE m.tenant_id = :tenant")
        .bind("tenant", tenant)
        .bindArray("customers", UUID.class, withId.stream().map(i -> items.get(i).customerId()).toList())
        .bindArray("request_ids", String.class, withId.stream().map(i -> items.get(i).requestId()).toList())
        .map((rs, ctx) -> Map.entry(rs.getString("create_request_id"), MEMORY.map(rs, ctx)))
        .forEach(e -> results[byRequest.get(e.getValue().customerId() + "|" + e.getKey())] =
            new Result(e.getValue(), false, null));
  }

  private Query bindItems(Query q, String tenant, List<Item> items, List<Integer> which, List<UUID> ids,
      boolean withRequestIds) {
    int n = which.size();
    float[][] embeddings = new float[n][];
    String[] expires = new String[n];
    Float[] importances = new Float[n];
    String[] models = new String[n];
    String[] states = new String[n];
    for (int j = 0; j < n; j++) {
      Memory.Draft d = items.get(which.get(j)).draft();
      embeddings[j] = d.embedding();
      expires[j] = d.expiresAt() == null ? null : d.expiresAt().toString();
      importances[j] = d.importance();
      // As MemoryStore: a client's vector is the active model's (MemoryRequests checked it).
      models[j] = d.embedding() == null ? null : model;
      states[j] = d.embedding() != null ? "staged" : serverEmbeds ? "pending" : "none";
    }
    return q.bind("tenant", tenant)
        .bindArray("ids", UUID.class, ids)
        .bindArray("customers", UUID.class, which.stream().map(i -> items.get(i).customerId()).toList())
        .bindArray("conversations", UUID.class, which.stream().map(i -> items.get(i).draft().conversationId()).toList())
        .bindArray("kinds", String.class, which.stream().map(i -> items.get(i).draft().kind()).toList())
        .bindArray("keys", String.class, which.stream().map(i -> items.get(i).draft().key()).toList())
        .bindArray("contents", String.class, which.stream().map(i -> items.get(i).draft().content()).toList())
        .bindArray("metadata", String.class, which.stream().map(i -> items.get(i).draft().metadataJson()).toList())
        .bind("embeddings", (position, statement, ctx) ->
            statement.setObject(position, VectorArray.of(statement.getConnection(), embeddings)))
        .bindArray("importances", Float.class, Arrays.asList(importances))
        .bindArray("sources", String.class, which.stream().map(i -> items.get(i).draft().source()).toList())
        .bindArray("expires", String.class, Arrays.asList(expires))
        .bindArray("embedding_models", String.class, Arrays.asList(models))
        .bindArray("embedding_states", String.class, Arrays.asList(states))
        .bindArray("request_ids", String.class,
            which.stream().map(i -> withRequestIds ? items.get(i).requestId() : null).toList());
  }
}
