package dev.contextmemory.server.store;

import dev.contextmemory.server.domain.Address;
import dev.contextmemory.server.domain.AddressDraft;
import dev.contextmemory.server.domain.AddressField;
import dev.contextmemory.server.domain.FailedPreconditionException;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.NotFoundException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.mapper.RowMapper;

/** A customer's postal addresses, part of the customer aggregate (their rows go with the customer). */
public final class AddressStore extends Store {
  public static final int MAX_ADDRESSES = 100;

  private static final String ADDRESS_COLUMNS =
      "id, customer_id, label, line1, line2, city, region, postal_code, country_code, is_primary,"
          + " metadata::text AS metadata, created_at, updated_at";

  private static final RowMapper<Address> ADDRESS = (rs, ctx) -> new Address(
      rs.getObject("id", UUID.class),
      rs.getObject("customer_id", UUID.class),
      rs.getString("label"),
      rs.getString("line1"),
      rs.getString("line2"),
      rs.getString("city"),
      rs.getString("region"),
      rs.getString("postal_code"),
      rs.getString("country_code"),
      rs.getBoolean("is_primary"),
      rs.getString("metadata"),
      rs.getTimestamp("created_at").toInstant(),
      rs.getTimestamp("updated_at").toInstant());

  public AddressStore(Jdbi jdbi) {
    super(jdbi);
  }


  /**
   * Adds an address. The customer row is locked FOR NO KEY UPDATE, which serializes address
   * changes of one customer (so "at most one primary" and the address limit hold under
   * concurrency) without blocking foreign-key checks of other writers.
   */
  public Address addAddress(String tenant, UUID customerId, AddressDraft d, String requestId) {
    return write(h -> {
      lockCustomer(h, tenant, customerId);
      if (requestId != null) {
        Optional<Address> first = h.createQuery("SELECT " + ADDRESS_COLUMNS + " FROM customer_addresses"
                + " WHERE tenant_id = :tenant AND customer_id = :customer AND create_request_id = :request_id")
            .bind("tenant", tenant).bind("customer", customerId).bind("request_id", requestId)
            .map(ADDRESS).findOne();
        if (first.isPresent()) {
          return first.get();
        }
      }
      long existing = h.createQuery("SELECT count(*) FROM customer_addresses WHERE tenant_id = :tenant AND customer_id = :customer")
          .bind("tenant", tenant).bind("customer", customerId).mapTo(Long.class).one();
      if (existing >= MAX_ADDRESSES) {
        throw new FailedPreconditionException("ADDRESS_LIMIT_REACHED",
            "customer " + customerId + " already has " + MAX_ADDRESSES + " addresses",
            Map.of("limit", Integer.toString(MAX_ADDRESSES)));
      }
      if (d.primary()) {
        demotePrimary(h, tenant, customerId);
      }
      return h.createQuery("""
              INSERT INTO customer_addresses (tenant_id, id, customer_id, label, line1, line2, city, region,
                                              postal_code, country_code, is_primary, metadata, create_request_id)
              VALUES (:tenant, :id, :customer, :label, :line1, :line2, :city, :region,
                      :postal_code, :country_code, :primary, CAST(:metadata AS jsonb), :request_id)
              RETURNING\s""" + ADDRESS_COLUMNS)
          .bind("tenant", tenant)
          .bind("id", Ids.newId())
          .bind("customer", customerId)
          .bindMap(addressValues(d))
          .bind("request_id", requestId)
          .map(ADDRESS)
          .one();
    });
  }

  public List<Address> listAddresses(String tenant, UUID customerId) {
    return read(h -> {
      if (CustomerStore.findCustomer(h, tenant, customerId).isEmpty()) {
        throw new NotFoundException("customer", customerId.toString());
      }
      return h.createQuery("SELECT " + ADDRESS_COLUMNS + " FROM customer_addresses"
              + " WHERE tenant_id = :tenant AND customer_id = :customer ORDER BY is_primary DESC, created_at, id")
          .bind("tenant", tenant).bind("customer", customerId).map(ADDRESS).list();
    });
  }

  public Address updateAddress(String tenant, UUID addressId, AddressDraft d) {
    return write(h -> {
      UUID customerId = h.createQuery("SELECT customer_id FROM customer_addresses WHERE tenant_id = :tenant AND id = :id")
          .bind("tenant", tenant).bind("id", addressId).mapTo(UUID.class).findOne()
          .orElseThrow(() -> new NotFoundException("address", addressId.toString()));
      lockCustomer(h, tenant, customerId);
      if (d.writes(AddressField.PRIMARY) && d.primary()) {
        demotePrimary(h, tenant, customerId);
      }
      List<String> sets = new ArrayList<>();
      for (AddressField f : d.fields()) {
        sets.add(switch (f) {
          case LABEL -> "label = :label";
          case LINE1 -> "line1 = :line1";
          case LINE2 -> "line2 = :line2";
          case CITY -> "city = :city";
          case REGION -> "region = :region";
          case POSTAL_CODE -> "postal_code = :postal_code";
          case COUNTRY_CODE -> "country_code = :country_code";
          case PRIMARY -> "is_primary = :primary";
          case METADATA -> "metadata = CAST(:metadata AS jsonb)";
        });
      }
      if (sets.isEmpty()) {
        sets.add("label = label");
      }
      return h.createQuery("UPDATE customer_addresses SET " + String.join(", ", sets)
              + " WHERE tenant_id = :tenant AND id = :id RETURNING " + ADDRESS_COLUMNS)
          .bind("tenant", tenant)
          .bind("id", addressId)
          .bindMap(addressValues(d))
          .map(ADDRESS)
          .one();
    });
  }

  /** Removes an address for good; the audit row (by {@code actor}) is written by the same statement. */
  public void removeAddress(String tenant, String actor, UUID addressId) {
    int deleted = write(h -> AuditLog.deleteAudited(h, tenant, actor, "address.remove", "address",
            "DELETE FROM customer_addresses a WHERE a.tenant_id = :tenant AND a.id = :id RETURNING a.id AS id")
        .bind("id", addressId).execute());
    if (deleted == 0) {
      throw new NotFoundException("address", addressId.toString());
    }
  }

  private static void lockCustomer(Handle h, String tenant, UUID customerId) {
    h.createQuery("SELECT true FROM customers WHERE tenant_id = :tenant AND id = :id FOR NO KEY UPDATE")
        .bind("tenant", tenant).bind("id", customerId).mapTo(Boolean.class).findOne()
        .orElseThrow(() -> new NotFoundException("customer", customerId.toString()));
  }

  private static void demotePrimary(Handle h, String tenant, UUID customerId) {
    h.createUpdate("UPDATE customer_addresses SET is_primary = false"
            + " WHERE tenant_id = :tenant AND customer_id = :customer AND is_primary")
        .bind("tenant", tenant).bind("customer", customerId).execute();
  }

  private static Map<String, Object> addressValues(AddressDraft d) {
    Map<String, Object> v = new HashMap<>();
    v.put("label", CustomerStore.nullToEmpty(d.label()));
    v.put("line1", CustomerStore.nullToEmpty(d.line1()));
    v.put("line2", CustomerStore.nullToEmpty(d.line2()));
    v.put("city", CustomerStore.nullToEmpty(d.city()));
    v.put("region", CustomerStore.nullToEmpty(d.region()));
    v.put("postal_code", CustomerStore.nullToEmpty(d.postalCode()));
    v.put("country_code", CustomerStore.nullToEmpty(d.countryCode()));
    v.put("primary", d.primary());
    v.put("metadata", d.metadataJson() == null ? "{}" : d.metadataJson());
    return v;
  }
}
