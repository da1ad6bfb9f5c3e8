package dev.contextmemory.server.grpc;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import dev.contextmemory.server.domain.Address;
import dev.contextmemory.server.domain.Customer;
import java.time.Instant;

/** Domain rows to proto messages. */
final class ProtoMapping {
  private static final JsonFormat.Parser JSON = JsonFormat.parser();

  private ProtoMapping() {}

  static dev.contextmemory.v1.Customer customer(Customer c) {
    return dev.contextmemory.v1.Customer.newBuilder()
        .setId(c.id().toString())
        .setDisplayName(c.displayName())
        .setPhone(orEmpty(c.phone()))
        .setEmail(orEmpty(c.email()))
        .setExternalRef(orEmpty(c.externalRef()))
        .setMetadata(struct(c.metadataJson()))
        .setCreateTime(timestamp(c.createdAt()))
        .setUpdateTime(timestamp(c.updatedAt()))
        .build();
  }

  static dev.contextmemory.v1.Address address(Address a) {
    return dev.contextmemory.v1.Address.newBuilder()
        .setId(a.id().toString())
        .setCustomerId(a.customerId().toString())
        .setLabel(a.label())
        .setLine1(a.line1())
        .setLine2(a.line2())
        .setCity(a.city())
        .setRegion(a.region())
        .setPostalCode(a.postalCode())
        .setCountryCode(a.countryCode())
        .setPrimary(a.primary())
        .setMetadata(struct(a.metadataJson()))
        .setCreateTime(timestamp(a.createdAt()))
        .setUpdateTime(timestamp(a.updatedAt()))
        .build();
  }

  static Timestamp timestamp(Instant i) {
    return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }

  /** jsonb text (always an object, enforced by a CHECK constraint) to a Struct. */
  static Struct struct(String json) {
    if (json == null || json.equals("{}")) {
      return Struct.getDefaultInstance();
    }
    Struct.Builder b = Struct.newBuilder();
    try {
      JSON.merge(json, b);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("stored metadata is not a JSON object: " + e.getMessage(), e);
    }
    return b.build();
  }

  private static String orEmpty(String s) {
    return s == null ? "" : s;
  }
}
