package dev.contextmemory.server.domain;

/** ListCustomers filters, normalized; null means no filter. */
public record CustomerFilter(String displayNamePrefix, String phonePrefix, String emailPrefix) {}
