package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.ContactKey;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.ImportItem;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;

/**
 * ImportMessages' writes: one chunk of a bulk import per transaction, into the message aggregate
 * (it shares {@link MessageStore}'s many-row insert and its ordering and idempotency rules).
 */
public final class MessageImportStore extends Store {
  private final ConversationEvents events;

  public MessageImportStore(Jdbi jdbi, ConversationEvents events) {
    super(jdbi);
    this.events = events;
  }


  /**
   * Imports one chunk of validated items in one transaction: resolves customers, finds or creates
   * each (customer, channel, thread key)'s open conversation, skips items whose idempotency key is
   * already stored (or repeats one earlier in the chunk), and inserts the rest in one statement.
   * Items naming an unknown customer are reported, not imported.
   */
  public ImportItem.Outcome importChunk(String tenant, List<ImportItem> items) {
    ImportItem.Outcome outcome = write(h -> {
      List<ImportItem.Failure> failures = new ArrayList<>();
      Map<ImportItem, UUID> customerOf = resolveCustomers(h, tenant, items, failures);
      // The distinct threads of this chunk, with the metadata and earliest time of their first item.
      Map<Triple, ImportItem> firstOfThread = new LinkedHashMap<>();
      Map<Triple, Instant> earliest = new HashMap<>();
      for (ImportItem it : items) {
        UUID customer = customerOf.get(it);
        if (customer != null) {
          Triple t = new Triple(customer, it.channel(), it.threadKey());
          firstOfThread.putIfAbsent(t, it);
          earliest.merge(t, it.message().createdAt(), (a, b) -> a.isBefore(b) ? a : b);
        }
      }
      OpenThreads open = openThreads(h, tenant, firstOfThread, earliest);

      Map<UUID, Set<String>> storedKeys = storedKeys(h, tenant, items, customerOf, open.byThread());
      Map<UUID, Long> nextSequence = new HashMap<>(open.lastSequence());
      List<MessageStore.NewRow> rows = new ArrayList<>();
      long skipped = 0;
      for (ImportItem it : items) {
        UUID customer = customerOf.get(it);
        if (customer == null) {
          continue;
        }
        UUID conversation = open.byThread().get(new Triple(customer, it.channel(), it.threadKey()));
        if (!storedKeys.computeIfAbsent(conversation, c -> new HashSet<>()).add(it.message().idempotencyKey())) {
          skipped++;
          continue;
        }
        rows.add(new MessageStore.NewRow(Ids.newId(), conversation, nextSequence.merge(conversation, 1L, Long::sum),
            it.message()));
      }
      MessageStore.insertMany(h, tenant, rows);
      return new ImportItem.Outcome(open.created().size(), rows.size(), skipped, failures);
    });
    events.committed();
    return outcome;
  }

  private record Triple(UUID customerId, String channel, String threadKey) {}

  private record OpenThreads(Map<Triple, UUID> byThread, Map<UUID, Long> lastSequence, List<UUID> created) {}

  private static Map<ImportItem, UUID> resolveCustomers(Handle h, String tenant, List<ImportItem> items,
      List<ImportItem.Failure> failures) {
    Set<UUID> ids = new HashSet<>();
    Map<String, Set<String>> keysByColumn = new HashMap<>();
    for (ImportItem it : items) {
      if (it.customerId() != null) {
        ids.add(it.customerId());
      } else {
        keysByColumn.computeIfAbsent(column(it.contactKey()), c -> new HashSet<>()).add(it.contactKey().value());
      }
    }
    Set<UUID> knownIds = new HashSet<>();
    if (!ids.isEmpty()) {
      h.createQuery("SELECT id FROM customers WHERE tenant_id = :tenant AND id = ANY(CAST(:ids AS uuid[]))")
          .bind("tenant", tenant).bindArray("ids", UUID.class, ids)
          .mapTo(UUID.class).forEach(knownIds::add);
    }
    Map<String, UUID> byKey = new HashMap<>();
    keysByColumn.forEach((column, values) -> h.createQuery(
            "SELECT " + column + ", id FROM customers WHERE tenant_id = :tenant AND " + column
                + " = ANY(CAST(:values AS text[]))")
        .bind("tenant", tenant).bindArray("values", String.class, values)
        .map((rs, ctx) -> Map.entry(column + "|" + rs.getString(1), rs.getObject(2, UUID.class)))
        .forEach(e -> byKey.put(e.getKey(), e.getValue())));
    Map<ImportItem, UUID> out = new HashMap<>();
    for (ImportItem it : items) {
      UUID id = it.customerId() != null
          ? (knownIds.contains(it.customerId()) ? it.customerId() : null)
          : byKey.get(column(it.contactKey()) + "|" + it.contactKey().value());
      if (id == null) {
        String field = it.customerId() != null ? "customer_id" : "contact_key." + it.contactKey().field().path();
        failures.add(new ImportItem.Failure(it.index(), field, "CUSTOMER_NOT_FOUND",
            "no customer with " + field + " " + (it.customerId() != null ? it.customerId() : it.contactKey().value())));
      } else {
        out.put(it, id);
      }
    }
    return out;
  }

  private static String column(ContactKey key) {
    return switch (key.field()) {
      case PHONE -> "phone";
      case EMAIL -> "email";
      default -> "external_ref";
    };
  }

  /**
   * Finds or creates the open conversation of every thread and locks them (in id order, so two
   * imports touching the same threads cannot deadlock). A thread whose conversation is closed
   * between the insert and the lock is simply created again on the next pass.
   */
  private static OpenThreads openThreads(Handle h, String tenant, Map<Triple, ImportItem> first,
      Map<Triple, Instant> earliest) {
    Map<Triple, UUID> byThread = new HashMap<>();
    Map<UUID, Long> last = new HashMap<>();
    List<UUID> created = new ArrayList<>();
    for (int pass = 0; byThread.size() < first.size(); pass++) {
      if (pass == 5) {
        throw new IllegalStateException("could not settle the open conversations of an import chunk");
      }
      List<Triple> missing = first.keySet().stream().filter(t -> !byThread.containsKey(t)).toList();
      List<UUID> inserted = h.createQuery("""
              INSERT INTO conversations (tenant_id, id, customer_id, channel, thread_key, metadata, started_at)
              SELECT :tenant, u.id, u.customer_id, u.channel, u.thread_key, coalesce(CAST(u.metadata AS jsonb), '{}'),
                     CAST(u.started_at AS timestamptz)
                FROM unnest(CAST(:ids AS uuid[]), CAST(:customers AS uuid[]), CAST(:channels AS text[]),
                            CAST(:thread_keys AS text[]), CAST(:metadata AS text[]), CAST(:started AS text[]))
                  AS u(id, customer_id, channel, thread_key, metadata, started_at)
              ON CONFLICT (tenant_id, customer_id, channel, thread_key) WHERE closed_at IS NULL AND deleted_at IS NULL
              DO NOTHING
              RETURNING id""")
          .bind("tenant", tenant)
          .bindArray("ids", UUID.class, missing.stream().map(t -> Ids.newId()).toList())
          .bindArray("customers", UUID.class, missing.stream().map(Triple::customerId).toList())
          .bindArray("channels", String.class, missing.stream().map(Triple::channel).toList())
          .bindArray("thread_keys", String.class, missing.stream().map(Triple::threadKey).toList())
          .bindArray("metadata", String.class, missing.stream().map(t -> first.get(t).conversationMetadataJson()).toList())
          .bindArray("started", String.class, missing.stream().map(t -> earliest.get(t).toString()).toList())
          .mapTo(UUID.class).list();
      created.addAll(inserted);
      // The new rows are this transaction's (locked until it commits): their OPENED events go first.
      ConversationEvents.recordAll(h, tenant, inserted, ConversationEvent.Kind.CONVERSATION_OPENED);
      h.createQuery("""
              SELECT c.id, c.customer_id, c.channel, c.thread_key, c.last_sequence
                FROM conversations c
                JOIN unnest(CAST(:customers AS uuid[]), CAST(:channels AS text[]), CAST(:thread_keys AS text[]))
                  AS u(customer_id, channel, thread_key)
                  ON c.customer_id = u.customer_id AND c.channel = u.channel AND c.thread_key = u.thread_key
               WHERE c.tenant_id = :tenant AND c.closed_at IS NULL AND c.deleted_at IS NULL
               ORDER BY c.id
                 FOR UPDATE OF c""")
          .bind("tenant", tenant)
          .bindArray("customers", UUID.class, missing.stream().map(Triple::customerId).toList())
          .bindArray("channels", String.class, missing.stream().map(Triple::channel).toList())
          .bindArray("thread_keys", String.class, missing.stream().map(Triple::threadKey).toList())
          .map((rs, ctx) -> {
            UUID id = rs.getObject(1, UUID.class);
            byThread.put(new Triple(rs.getObject(2, UUID.class), rs.getString(3), rs.getString(4)), id);
            last.put(id, rs.getLong(5));
            return id;
          })
          .list();
    }
    return new OpenThreads(byThread, last, created);
  }

  /** The idempotency keys of the chunk that are already stored, per conversation. */
  private static Map<UUID, Set<String>> storedKeys(Handle h, String tenant, List<ImportItem> items,
      Map<ImportItem, UUID> customerOf, Map<Triple, UUID> byThread) {
    List<UUID> conversations = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    for (ImportItem it : items) {
      UUID customer = customerOf.get(it);
      if (customer != null) {
        conversations.add(byThread.get(new Triple(customer, it.channel(), it.threadKey())));
        keys.add(it.message().idempotencyKey());
      }
    }
    Map<UUID, Set<String>> stored = new HashMap<>();
    if (keys.isEmpty()) {
      return stored;
    }
    h.createQuery("""
            SELECT m.conversation_id, m.idempotency_key FROM messages m
              JOIN unnest(CAST(:conversations AS uuid[]), CAST(:keys AS text[])) AS u(conversation_id, idempotency_key)
                ON m.conversation_id = u.conversation_id AND m.idempotency_key = u.idempotency_key
             WHERE m.tenant_id = :tenant""")
        .bind("tenant", tenant)
        .bindArray("conversations", UUID.class, conversations)
        .bindArray("keys", String.class, keys)
        .map((rs, ctx) -> Map.entry(rs.getObject(1, UUID.class), rs.getString(2)))
        .forEach(e -> stored.computeIfAbsent(e.getKey(), c -> new HashSet<>()).add(e.getValue()));
    return stored;
  }
}
