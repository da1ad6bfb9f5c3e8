/**
 * The load test's data: a deterministic data set (customers, conversations, messages and memories
 * with clustered embeddings) derived from a seed, its set-up through the public API, and the
 * harness's own copy of the memory embeddings for exact (brute-force) nearest neighbours.
 */
package dev.contextmemory.loadtest.data;
