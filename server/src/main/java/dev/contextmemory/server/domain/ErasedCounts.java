package dev.contextmemory.server.domain;

/** What a customer delete removed. */
public record ErasedCounts(long addresses, long conversations, long messages, long memories) {}
