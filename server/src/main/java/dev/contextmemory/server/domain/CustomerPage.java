package dev.contextmemory.server.domain;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/** A page of customers, newest first, and the position after its last row (null at the end). */
public record CustomerPage(List<Customer> customers, Cursor next) {
  /** Keyset position: the (created_at, id) of the last row returned. */
  public record Cursor(Instant createdAt, UUID id) {}
}
