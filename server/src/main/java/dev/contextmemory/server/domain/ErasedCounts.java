package dev.contextmemory.server.domain;

/** What a customer delete removed; {@code memoryHistory} counts recorded memory changes. */
public record ErasedCounts(long addresses, long conversations, long messages, long memories, long memoryHistory) {}
