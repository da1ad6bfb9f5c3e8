package dev.contextmemory.loadtest.dsl;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** Unary calls as CompletableFutures, for set-up code that chains calls outside the engine. */
public final class Calls {
  private Calls() {}

  public static <Q, R> CompletableFuture<R> unary(Channel channel, MethodDescriptor<Q, R> method, Q request,
      Duration timeout) {
    CompletableFuture<R> f = new CompletableFuture<>();
    ClientCalls.asyncUnaryCall(
        channel.newCall(method, CallOptions.DEFAULT.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)),
        request, new StreamObserver<>() {
          private R response;

          @Override
          public void onNext(R value) {
            response = value;
          }

          @Override
          public void onError(Throwable t) {
            f.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            f.complete(response);
          }
        });
    return f;
  }

  /** The same call, waited for; failures surface as the StatusRuntimeException the server sent. */
  public static <Q, R> R blocking(Channel channel, MethodDescriptor<Q, R> method, Q request, Duration timeout) {
    try {
      return unary(channel, method, request, timeout).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
    } catch (ExecutionException e) {
      throw asStatus(e.getCause());
    }
  }

  /** The gRPC status behind a failure of {@link #unary}, unwrapped from the future's wrappers. */
  public static StatusRuntimeException asStatus(Throwable t) {
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t instanceof StatusRuntimeException sre ? sre : Status.fromThrowable(t).asRuntimeException();
  }
}
