package dev.contextmemory.loadtest.dsl;

import java.util.List;
import java.util.Optional;

/**
 * The outcome of running one scenario under one injection.
 *
 * @param summary the whole sequence of steps per session (for one-step scenarios: that call)
 * @param steps one summary per step, in declaration order
 * @param unimplemented the full name of a method the server answered UNIMPLEMENTED, if any: the
 *     scenario's service has not landed yet, so the run stopped and is reported as skipped
 * @param dropped sessions not started because the harness's in-flight cap was reached (counted
 *     as errors in {@code summary})
 */
public record RunResult(
    String scenario,
    String injection,
    Summary summary,
    List<Summary> steps,
    Optional<String> unimplemented,
    long dropped) {}
