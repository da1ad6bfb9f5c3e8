/**
 * Load-test harness for context-memory, in Gatling's style on grpc-java and HdrHistogram:
 * {@link dev.contextmemory.loadtest.Main} sets up a data set through the public API, times the
 * database's own floor over JDBC ({@code scenarios.Baselines}), runs each scenario of
 * {@code scenarios.Scenarios} under its injection profile and writes the console table,
 * {@code report.json} and {@code report.html}.
 */
package dev.contextmemory.loadtest;
