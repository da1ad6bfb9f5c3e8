package dev.contextmemory.server.domain;

/** One bad field: its path in the request ("customer.phone", "update_mask.paths[1]") and why. */
public record FieldViolation(String field, String description) {}
