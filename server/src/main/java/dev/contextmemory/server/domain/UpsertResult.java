package dev.contextmemory.server.domain;

/** The customer after an upsert, and whether the upsert created it. */
public record UpsertResult(Customer customer, boolean created) {}
