package dev.contextmemory.loadtest.dsl;

import io.grpc.MethodDescriptor;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * One unary gRPC call of a scenario: which method, how to build its request from the session, what
 * to save from the response for later steps, and when to make it at all (for calls that happen
 * in only some sessions, e.g. a memory written in one agent turn out of four).
 */
public record Step<Q, R>(
    MethodDescriptor<Q, R> method,
    Function<Session, Q> request,
    BiConsumer<Session, R> save,
    Predicate<Session> when) {

  public Step {
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(request, "request");
    Objects.requireNonNull(save, "save");
    Objects.requireNonNull(when, "when");
    if (method.getType() != MethodDescriptor.MethodType.UNARY) {
      throw new IllegalArgumentException(method.getFullMethodName() + " is not unary");
    }
  }

  public static <Q, R> Step<Q, R> call(MethodDescriptor<Q, R> method, Function<Session, Q> request) {
    return new Step<>(method, request, (s, r) -> {}, s -> true);
  }

  /** The same call, saving from its response what later steps need. */
  public Step<Q, R> saving(BiConsumer<Session, R> saver) {
    return new Step<>(method, request, saver, when);
  }

  /** The same call, made only in the sessions the predicate accepts. */
  public Step<Q, R> when(Predicate<Session> predicate) {
    return new Step<>(method, request, save, predicate);
  }

  /** The method's bare name, e.g. "AppendMessage". */
  public String name() {
    return method.getBareMethodName();
  }
}
