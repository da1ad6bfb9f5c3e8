/**
 * Java client library for context-memory. The generated stubs live in {@code dev.contextmemory.v1}
 * (module {@code proto}); the convenience client that wraps them arrives with its own issue.
 */
package dev.contextmemory.client;
