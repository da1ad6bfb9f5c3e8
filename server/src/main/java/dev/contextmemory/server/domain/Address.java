package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.UUID;

/** A customer_addresses row. */
public record Address(
    UUID id,
    UUID customerId,
    String label,
    String line1,
    String line2,
    String city,
    String region,
    String postalCode,
    String countryCode,
    boolean primary,
    String metadataJson,
    Instant createdAt,
    Instant updatedAt) {}
