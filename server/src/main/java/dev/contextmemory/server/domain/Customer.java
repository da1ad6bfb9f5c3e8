package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.UUID;

/** A customer row. Absent contact fields are null; metadata is a JSON object's text. */
public record Customer(
    UUID id,
    String displayName,
    String phone,
    String email,
    String externalRef,
    String metadataJson,
    Instant createdAt,
    Instant updatedAt) {}
