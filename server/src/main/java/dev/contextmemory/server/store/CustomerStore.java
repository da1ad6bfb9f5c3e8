package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.ContactKey;
import dev.contextmemory.server.domain.Customer;
import dev.contextmemory.server.domain.CustomerDraft;
import dev.contextmemory.server.domain.CustomerField;
import dev.contextmemory.server.domain.CustomerFilter;
import dev.contextmemory.server.domain.CustomerPage;
import dev.contextmemory.server.domain.ConversationEvent;
import dev.contextmemory.server.domain.ErasedCounts;
import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.InvalidArgumentException;
import dev.contextmemory.server.domain.NotFoundException;
import dev.contextmemory.server.domain.UpsertResult;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;
import org.jdbi.v3.core.statement.Query;

/** The customer aggregate: customers and their addresses. */
public final class CustomerStore extends Store {
  /** A customer has at most this many addresses. */
  /** The metadata size limit of a request (Validator's), which a merge must not exceed either. */
  static final int MAX_METADATA_BYTES = 16 * 1024;

  static final String CUSTOMER_COLUMNS =
      "id, display_name, phone, email, external_ref, metadata::text AS metadata, created_at, updated_at";

  static final RowMapper<Customer> CUSTOMER = (rs, ctx) -> new Customer(
      rs.getObject("id", UUID.class),
      rs.getString("display_name"),
      rs.getString("phone"),
      rs.getString("email"),
      rs.getString("external_ref"),
      rs.getString("metadata"),
      rs.getTimestamp("created_at").toInstant(),
      rs.getTimestamp("updated_at").toInstant());

  private final ConversationEvents events;

  public CustomerStore(Jdbi jdbi, ConversationEvents events) {
    super(jdbi);
    this.events = events;
  }

  // ---------------------------------------------------------------------------------------------
  // Customers

  /**
   * Inserts a customer. With a request id, a repeat of the same create returns the first row: the
   * request-id index is the ON CONFLICT arbiter, checked before the contact-key indexes, so a retry
   * is never mistaken for a phone or email conflict.
   */
  public Customer create(String tenant, CustomerDraft d, String requestId) {
    return write(h -> {
      Optional<Customer> inserted = h.createQuery("""
              INSERT INTO customers (tenant_id, id, display_name, phone, email, external_ref, metadata, create_request_id)
              VALUES (:tenant, :id, :display_name, :phone, :email, :external_ref, CAST(:metadata AS jsonb), :request_id)
              ON CONFLICT (tenant_id, create_request_id) DO NOTHING
              RETURNING\s""" + CUSTOMER_COLUMNS)
          .bind("tenant", tenant)
          .bind("id", Ids.newId())
          .bindMap(customerValues(d))
          .bind("request_id", requestId)
          .map(CUSTOMER)
          .findOne();
      if (inserted.isPresent()) {
        return inserted.get();
      }
      return h.createQuery("SELECT " + CUSTOMER_COLUMNS
              + " FROM customers WHERE tenant_id = :tenant AND create_request_id = :request_id")
          .bind("tenant", tenant)
          .bind("request_id", requestId)
          .map(CUSTOMER)
          .one();
    });
  }

  public Customer get(String tenant, UUID id) {
    return read(h -> findCustomer(h, tenant, id))
        .orElseThrow(() -> new NotFoundException("customer", id.toString()));
  }

  public Customer lookup(String tenant, ContactKey key) {
    return read(h -> h.createQuery("SELECT " + CUSTOMER_COLUMNS + " FROM customers WHERE tenant_id = :tenant AND "
                + column(key.field()) + " = :value")
            .bind("tenant", tenant)
            .bind("value", key.value())
            .map(CUSTOMER)
            .findOne())
        .orElseThrow(() -> new NotFoundException("customer", key.field().path() + " " + key.value()));
  }

  /**
   * Creates the customer owning {@code key}, or updates the one that does, in one statement: the
   * key's unique index is the ON CONFLICT arbiter, so concurrent upserts of one new key serialize
   * on that index entry and exactly one inserts. {@code xmax = 0} holds only for a freshly inserted
   * row version, which tells the caller which of the two happened.
   */
  public UpsertResult upsert(String tenant, ContactKey key, CustomerDraft d) {
    List<String> sets = new ArrayList<>();
    for (CustomerField f : d.fields()) {
      if (f == key.field()) {
        continue; // the key's own column already equals the conflicting value
      }
      String col = column(f);
      if (f == CustomerField.METADATA && d.mergeMetadata()) {
        sets.add("metadata = customers.metadata || EXCLUDED.metadata");
      } else if (f == CustomerField.DISPLAY_NAME) {
        sets.add("display_name = EXCLUDED.display_name");
      } else {
        sets.add(col + " = EXCLUDED." + col);
      }
    }
    if (sets.isEmpty()) {
      // Nothing to change, but DO UPDATE (not DO NOTHING) so RETURNING yields the existing row.
      sets.add("display_name = customers.display_name");
    }
    String keyColumn = column(key.field());
    boolean merging = d.mergeMetadata() && d.fields().contains(CustomerField.METADATA);
    return write(h -> h.createQuery("""
            INSERT INTO customers (tenant_id, id, display_name, phone, email, external_ref, metadata)
            VALUES (:tenant, :id, :display_name, :phone, :email, :external_ref, CAST(:metadata AS jsonb))
            ON CONFLICT (tenant_id, %s) DO UPDATE SET %s%s
            RETURNING %s, (xmax = 0) AS created""".formatted(keyColumn, String.join(", ", sets),
                merging ? " WHERE " + mergedWithinLimit("customers.metadata", "EXCLUDED.metadata") : "",
                CUSTOMER_COLUMNS))
        .bind("tenant", tenant)
        .bind("id", Ids.newId())
        .bindMap(customerValues(d))
        .map((rs, ctx) -> new UpsertResult(CUSTOMER.map(rs, ctx), rs.getBoolean("created")))
        .findOne())
        .orElseThrow(CustomerStore::metadataTooLarge);
  }

  /**
   * A merge must not grow the stored object past the size limit the request's own metadata is held
   * to. PostgreSQL prints jsonb with a space after each ':' and ',', so its text is a little longer
   * than the compact JSON the request was measured as; the merge is refused only when it is bigger
   * than the limit and than both of its parts, so replacing keys by values of the same size, or a
   * stored object that was already near the limit, never fails.
   */
  private static String mergedWithinLimit(String stored, String given) {
    return "octet_length((%1$s || %2$s)::text) <= greatest(%3$d, octet_length(%1$s::text), octet_length(%2$s::text))"
        .formatted(stored, given, MAX_METADATA_BYTES);
  }

  private static InvalidArgumentException metadataTooLarge() {
    return InvalidArgumentException.of("customer.metadata", "merged into the stored metadata it would exceed "
        + MAX_METADATA_BYTES + " bytes as JSON; remove keys (a field mask with \"metadata\" replaces the object)");
  }

  public Customer update(String tenant, UUID id, CustomerDraft d) {
    if (d.fields().isEmpty()) {
      return get(tenant, id);
    }
    List<String> sets = new ArrayList<>();
    for (CustomerField f : d.fields()) {
      sets.add(switch (f) {
        case DISPLAY_NAME -> "display_name = :display_name";
        case PHONE -> "phone = :phone";
        case EMAIL -> "email = :email";
        case EXTERNAL_REF -> "external_ref = :external_ref";
        case METADATA -> d.mergeMetadata()
            ? "metadata = metadata || CAST(:metadata AS jsonb)"
            : "metadata = CAST(:metadata AS jsonb)";
      });
    }
    boolean merging = d.mergeMetadata() && d.fields().contains(CustomerField.METADATA);
    return write(h -> {
      Optional<Customer> updated = h.createQuery("UPDATE customers SET " + String.join(", ", sets)
              + " WHERE tenant_id = :tenant AND id = :id"
              + (merging ? " AND " + mergedWithinLimit("metadata", "CAST(:metadata AS jsonb)") : "")
              + " RETURNING " + CUSTOMER_COLUMNS)
          .bind("tenant", tenant).bind("id", id)
          .bindMap(customerValues(d))
          .map(CUSTOMER)
          .findOne();
      if (updated.isPresent()) {
        return updated.get();
      }
      // Nothing updated: the customer is missing, or (only when merging) the merge was too large.
      boolean exists = h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id")
          .bind("tenant", tenant).bind("id", id).mapTo(Boolean.class).findOne().isPresent();
      throw exists && merging ? metadataTooLarge() : new NotFoundException("customer", id.toString());
    });
  }

  /** Newest first; keyset pagination on (created_at, id), which the recency index serves. */
  public CustomerPage list(String tenant, CustomerFilter filter, CustomerPage.Cursor after, int limit) {
    StringBuilder sql = new StringBuilder("SELECT " + CUSTOMER_COLUMNS + " FROM customers WHERE tenant_id = :tenant");
    if (filter.displayNamePrefix() != null) {
      sql.append(" AND lower(display_name) COLLATE \"C\" LIKE :name_prefix");
    }
    if (filter.phonePrefix() != null) {
      sql.append(" AND phone LIKE :phone_prefix");
    }
    if (filter.emailPrefix() != null) {
      sql.append(" AND email LIKE :email_prefix");
    }
    if (after != null) {
      sql.append(" AND (created_at, id) < (:after_created_at, :after_id)");
    }
    sql.append(" ORDER BY created_at DESC, id DESC LIMIT :limit");
    List<Customer> rows = read(h -> {
      Query q = h.createQuery(sql.toString()).bind("tenant", tenant).bind("limit", limit + 1);
      if (filter.displayNamePrefix() != null) {
        q.bind("name_prefix", TextQueries.likePrefix(filter.displayNamePrefix().toLowerCase(java.util.Locale.ROOT)));
      }
      if (filter.phonePrefix() != null) {
        q.bind("phone_prefix", TextQueries.likePrefix(filter.phonePrefix()));
      }
      if (filter.emailPrefix() != null) {
        q.bind("email_prefix", TextQueries.likePrefix(filter.emailPrefix()));
      }
      if (after != null) {
        q.bind("after_created_at", java.sql.Timestamp.from(after.createdAt())).bind("after_id", after.id());
      }
      return q.map(CUSTOMER).list();
    });
    if (rows.size() <= limit) {
      return new CustomerPage(rows, null);
    }
    List<Customer> page = rows.subList(0, limit);
    Customer last = page.get(limit - 1);
    return new CustomerPage(List.copyOf(page), new CustomerPage.Cursor(last.createdAt(), last.id()));
  }

  /**
   * Deletes a customer; with {@code erase}, everything of theirs first. The customer row is locked
   * FOR UPDATE up front, which conflicts with the KEY SHARE lock every foreign-key check takes, so
   * no conversation or memory can be added for this customer while the delete runs. An erase then
   * locks the customer's conversations too: an append holds its conversation's row lock until it
   * commits, so each racing append either commits first (and the message DELETE, a later statement
   * with a later snapshot, sees and counts its row) or waits and then finds the conversation gone
   * (NOT_FOUND). Without that lock, messages committed after the DELETE's snapshot went uncounted
   * with the conversation's cascade.
   */
  public ErasedCounts delete(String tenant, String actor, UUID id, boolean erase) {
    ErasedCounts erased = write(h -> {
      boolean exists = h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id FOR UPDATE")
          .bind("tenant", tenant).bind("id", id).mapTo(Boolean.class).findOne().isPresent();
      if (!exists) {
        throw new NotFoundException("customer", id.toString());
      }
      long memories;
      long messages;
      long conversations;
      if (erase) {
        List<UUID> live = h.createQuery("""
                SELECT id, deleted_at IS NULL AS live FROM conversations
                 WHERE tenant_id = :tenant AND customer_id = :id ORDER BY id FOR UPDATE""")
            .bind("tenant", tenant).bind("id", id)
            .map((rs, ctx) -> rs.getBoolean("live") ? rs.getObject("id", UUID.class) : null)
            .list().stream().filter(java.util.Objects::nonNull).toList();
        // Watchers learn that the conversations are gone; the events that carried free text
        // (handoff details) go with the customer, the rest name only ids.
        count(h, "DELETE FROM conversation_events WHERE tenant_id = :tenant AND customer_id = :id AND payload IS NOT NULL",
            tenant, id);
        ConversationEvents.recordAll(h, tenant, live, ConversationEvent.Kind.CONVERSATION_DELETED);
        // Tagged 'erase': the history triggers record nothing, the customer's history goes below.
        memories = h.createUpdate("DELETE FROM memories m USING " + MemoryHistoryStore.TAG
                + " WHERE m.tenant_id = :tenant AND m.customer_id = :id")
            .bind("tenant", tenant).bind("id", id)
            .bind("history_actor", actor).bind("history_change", "erase").execute();
        messages = count(h, """
            DELETE FROM messages WHERE tenant_id = :tenant AND conversation_id IN
              (SELECT c.id FROM conversations c WHERE c.tenant_id = :tenant AND c.customer_id = :id)""", tenant, id);
        conversations = count(h, "DELETE FROM conversations WHERE tenant_id = :tenant AND customer_id = :id", tenant, id);
      } else {
        // Expired means absent: expired memories must not block the delete (the sweeper may not
        // have reached them yet), so they go with the customer.
        count(h, "DELETE FROM memories WHERE tenant_id = :tenant AND customer_id = :id AND expires_at <= now()",
            tenant, id);
        Map<String, Object> deps = h.createQuery("""
                SELECT (SELECT count(*) FROM conversations
                         WHERE tenant_id = :tenant AND customer_id = :id AND deleted_at IS NULL) AS conversations,
                       (SELECT count(*) FROM memories WHERE tenant_id = :tenant AND customer_id = :id) AS memories""")
            .bind("tenant", tenant).bind("id", id).mapToMap().one();
        long convs = ((Number) deps.get("conversations")).longValue();
        long mems = ((Number) deps.get("memories")).longValue();
        if (convs > 0 || mems > 0) {
          throw new FailedPreconditionException("CUSTOMER_HAS_DEPENDENTS",
              "customer " + id + " still has " + convs + " conversation(s) and " + mems
                  + " memory(ies); delete them first or pass erase=true",
              Map.of("conversations", Long.toString(convs), "memories", Long.toString(mems)));
        }
        // Soft-deleted conversations are already gone for every caller; they go for good with
        // the customer (their messages by cascade), so they never block the delete.
        memories = 0;
        messages = 0;
        conversations = 0;
        count(h, "DELETE FROM conversations WHERE tenant_id = :tenant AND customer_id = :id", tenant, id);
      }
      long history = MemoryHistoryStore.deleteForCustomer(h, tenant, id);
      long addresses = count(h, "DELETE FROM customer_addresses WHERE tenant_id = :tenant AND customer_id = :id", tenant, id);
      count(h, "DELETE FROM customers WHERE tenant_id = :tenant AND id = :id", tenant, id);
      AuditLog.record(h, tenant, actor, erase ? "customer.erase" : "customer.delete", "customer", id,
          Map.of("addresses", addresses, "conversations", conversations, "messages", messages, "memories", memories,
              "memory_history", history));
      return new ErasedCounts(addresses, conversations, messages, memories, history);
    });
    events.committed();
    return erased;
  }

  // ---------------------------------------------------------------------------------------------

  static Optional<Customer> findCustomer(Handle h, String tenant, UUID id) {
    return h.createQuery("SELECT " + CUSTOMER_COLUMNS + " FROM customers WHERE tenant_id = :tenant AND id = :id")
        .bind("tenant", tenant)
        .bind("id", id)
        .map(CUSTOMER)
        .findOne();
  }

  private static long count(Handle h, String sql, String tenant, UUID id) {
    return h.createUpdate(sql).bind("tenant", tenant).bind("id", id).execute();
  }

  private static String column(CustomerField f) {
    return switch (f) {
      case DISPLAY_NAME -> "display_name";
      case PHONE -> "phone";
      case EMAIL -> "email";
      case EXTERNAL_REF -> "external_ref";
      case METADATA -> "metadata";
    };
  }

  /** The bind values of a customer's writable columns, by parameter name. */
  private static Map<String, Object> customerValues(CustomerDraft d) {
    Map<String, Object> v = new HashMap<>();
    v.put("display_name", nullToEmpty(d.displayName()));
    v.put("phone", d.phone());
    v.put("email", d.email());
    v.put("external_ref", d.externalRef());
    v.put("metadata", d.metadataJson() == null ? "{}" : d.metadataJson());
    return v;
  }

  /** The bind values of an address's writable columns, by parameter name. */
  static String nullToEmpty(String s) {
    return s == null ? "" : s;
  }
}
