/**
 * The scenario DSL and the engine that runs it.
 *
 * <p>A {@link dev.contextmemory.loadtest.dsl.Scenario} is a named sequence of unary gRPC calls
 * ({@link dev.contextmemory.loadtest.dsl.Step}) that share a {@link
 * dev.contextmemory.loadtest.dsl.Session} filled by feeders; an {@link
 * dev.contextmemory.loadtest.dsl.Injection} says how sessions arrive (open: arrival rates;
 * closed: a fixed number of users); {@link dev.contextmemory.loadtest.dsl.Assertion}s judge the
 * result. The {@link dev.contextmemory.loadtest.dsl.Engine} measures every open-model call from
 * its intended start time, so a stalled server cannot hide the queue it causes.
 */
package dev.contextmemory.loadtest.dsl;
