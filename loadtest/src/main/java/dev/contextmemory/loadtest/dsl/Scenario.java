package dev.contextmemory.loadtest.dsl;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A named sequence of gRPC calls with its feeders, its injection profile and its assertions,
 * Gatling's {@code scenario(...).feed(...).exec(...)} plus {@code inject(...)} and
 * {@code assertions(...)} in one value:
 *
 * <pre>{@code
 * Scenario.named("append_message")
 *     .feed("conversation", Feeder.random(conversationIds))
 *     .exec(Step.call(ConversationServiceGrpc.getAppendMessageMethod(), s -> request(s)))
 *     .warmUp(Injection.constantRate(100, Duration.ofSeconds(3)))
 *     .inject(Injection.constantRate(100, Duration.ofSeconds(15)))
 *     .targetP99Ms(10)
 *     .assertThat(Assertion.errorRate(0.001))
 *     .build();
 * }</pre>
 *
 * <p>The target p99 is kept apart from the other assertions because reports show it in its own
 * column and the command line can scale or override it.
 */
public final class Scenario {
  private final String name;
  private final List<Consumer<Session>> feeds;
  private final List<Step<?, ?>> steps;
  private final Injection warmUp;
  private final Injection injection;
  private final Double targetP99Ms;
  private final List<Assertion> assertions;

  private Scenario(Builder b) {
    this.name = b.name;
    this.feeds = List.copyOf(b.feeds);
    this.steps = List.copyOf(b.steps);
    this.warmUp = b.warmUp;
    this.injection = Objects.requireNonNull(b.injection, "inject(...) was not called for " + b.name);
    this.targetP99Ms = b.targetP99Ms;
    this.assertions = List.copyOf(b.assertions);
    if (steps.isEmpty()) {
      throw new IllegalArgumentException("scenario " + name + " has no steps");
    }
  }

  public static Builder named(String name) {
    return new Builder(name);
  }

  public String name() {
    return name;
  }

  public List<Step<?, ?>> steps() {
    return steps;
  }

  /** Fills a new session from the feeders, in the order they were declared. */
  public void feed(Session s) {
    feeds.forEach(f -> f.accept(s));
  }

  public Optional<Injection> warmUp() {
    return Optional.ofNullable(warmUp);
  }

  public Injection injection() {
    return injection;
  }

  public Optional<Double> targetP99Ms() {
    return Optional.ofNullable(targetP99Ms);
  }

  /** Every assertion the run must pass: p99 under the target (when there is one), then the others. */
  public List<Assertion> assertions() {
    List<Assertion> all = new ArrayList<>();
    if (targetP99Ms != null) {
      all.add(Assertion.p99(targetP99Ms));
    }
    all.addAll(assertions);
    return all;
  }

  /** Full names of the RPCs the scenario calls, e.g. "contextmemory.v1.ConversationService/AppendMessage". */
  public Set<String> methods() {
    Set<String> names = new LinkedHashSet<>();
    steps.forEach(s -> names.add(s.method().getFullMethodName()));
    return names;
  }

  /** The same scenario with another injection (the capacity search steps the rate this way). */
  public Scenario withInjection(Injection warm, Injection measured) {
    Builder b = toBuilder();
    b.warmUp = warm;
    b.injection = measured;
    return b.build();
  }

  /** The same scenario with another target p99 (the --target-scale and --override-target flags). */
  public Scenario withTargetP99Ms(Double ms) {
    Builder b = toBuilder();
    b.targetP99Ms = ms;
    return b.build();
  }

  private Builder toBuilder() {
    Builder b = new Builder(name);
    b.feeds.addAll(feeds);
    b.steps.addAll(steps);
    b.warmUp = warmUp;
    b.injection = injection;
    b.targetP99Ms = targetP99Ms;
    b.assertions.addAll(assertions);
    return b;
  }

  public static final class Builder {
    private final String name;
    private final List<Consumer<Session>> feeds = new ArrayList<>();
    private final List<Step<?, ?>> steps = new ArrayList<>();
    private final List<Assertion> assertions = new ArrayList<>();
    private Injection warmUp;
    private Injection injection;
    private Double targetP99Ms;

    private Builder(String name) {
      this.name = Objects.requireNonNull(name, "name");
    }

    /** Puts {@code feeder}'s next value into each new session under {@code key}. */
    public Builder feed(String key, Feeder<?> feeder) {
      feeds.add(s -> s.put(key, feeder.next(s)));
      return this;
    }

    public Builder exec(Step<?, ?> step) {
      steps.add(step);
      return this;
    }

    /** An unrecorded run before the measured one, so JIT compilation and cold caches stay out of it. */
    public Builder warmUp(Injection warm) {
      this.warmUp = warm;
      return this;
    }

    public Builder inject(Injection measured) {
      this.injection = measured;
      return this;
    }

    public Builder targetP99Ms(double ms) {
      this.targetP99Ms = ms;
      return this;
    }

    public Builder assertThat(Assertion... more) {
      assertions.addAll(List.of(more));
      return this;
    }

    public Scenario build() {
      return new Scenario(this);
    }
  }

  /** Convenience for profiles: seconds as a Duration. */
  public static Duration seconds(double s) {
    return Duration.ofMillis(Math.round(s * 1000));
  }
}
