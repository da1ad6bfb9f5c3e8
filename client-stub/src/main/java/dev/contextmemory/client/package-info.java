/**
 * Java client library for context-memory. The generated messages and stubs are in
 * {@code dev.contextmemory.v1} (module {@code proto}, a dependency of this one);
 * {@link dev.contextmemory.client.ContextMemoryClient} sets up a channel with deadlines, keepalive,
 * safe retries, automatic idempotency keys, optional TLS and bearer credentials, and hands out the
 * generated stubs on it.
 */
package dev.contextmemory.client;
