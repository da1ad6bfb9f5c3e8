package dev.contextmemory.server.testing;

import dev.contextmemory.server.watch.WatchHub;
import dev.contextmemory.v1.ConversationEventKind;
import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.WatchConversationsRequest;
import dev.contextmemory.v1.WatchConversationsResponse;
import io.grpc.Channel;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A WatchConversations client for tests: responses go into a queue, the stream's end into
 * {@link #end}. With {@code autoRead} false it reads only what {@link #request} asks for (a slow
 * consumer); otherwise gRPC's default flow control reads as fast as responses come.
 */
public final class Watcher implements AutoCloseable {
  public final LinkedBlockingQueue<WatchConversationsResponse> received = new LinkedBlockingQueue<>();
  /** Completes normally (null) when the server completes, or with the error that ended the stream. */
  public final CompletableFuture<Throwable> end = new CompletableFuture<>();
  private volatile ClientCallStreamObserver<WatchConversationsRequest> call;

  public Watcher(Channel channel, WatchConversationsRequest request, boolean autoRead, int initial) {
    this(ConversationServiceGrpc.newStub(channel), request, autoRead, initial);
  }

  public Watcher(ConversationServiceGrpc.ConversationServiceStub stub, WatchConversationsRequest request,
      boolean autoRead, int initial) {
    stub.watchConversations(request, new ClientResponseObserver<WatchConversationsRequest, WatchConversationsResponse>() {
      @Override
      public void beforeStart(ClientCallStreamObserver<WatchConversationsRequest> c) {
        call = c;
        if (!autoRead) {
          c.disableAutoRequestWithInitial(initial);
        }
      }

      @Override
      public void onNext(WatchConversationsResponse r) {
        received.add(r);
      }

      @Override
      public void onError(Throwable t) {
        end.complete(t);
      }

      @Override
      public void onCompleted() {
        end.complete(null);
      }
    });
  }

  /**
   * Waits (up to 60 s) until {@code hub} has registered at least {@code streams} streams. A stream
   * opened without a cursor starts at the newest event committed when the server registers it, so
   * a test that writes right after opening one must wait for that, not sleep: on a loaded machine
   * the call can take seconds to reach its handler, and the first writes would go unseen.
   */
  public static void awaitStreams(WatchHub hub, int streams, Watcher... watchers) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (hub.streams() < streams) {
      for (Watcher w : watchers) {
        if (w.end.isDone()) {
          throw new AssertionError("a stream ended before it was registered: " + w.end.join());
        }
      }
      if (System.nanoTime() > until) {
        throw new AssertionError("the server registered " + hub.streams() + " streams within 60 s, not " + streams);
      }
      Thread.sleep(10);
    }
  }

  public void request(int n) {
    call.request(n);
  }

  /** The next response that is not a CHECKPOINT, or an AssertionError after {@code seconds}. */
  public WatchConversationsResponse next(int seconds) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (true) {
      WatchConversationsResponse r = received.poll(Math.max(1, until - System.nanoTime()), TimeUnit.NANOSECONDS);
      if (r == null) {
        throw new AssertionError("no event within " + seconds + " s" + (end.isDone() ? "; stream ended: " + end.join() : ""));
      }
      if (r.getKind() != ConversationEventKind.CONVERSATION_EVENT_KIND_CHECKPOINT) {
        return r;
      }
    }
  }

  /** The next {@code n} events (checkpoints skipped). */
  public List<WatchConversationsResponse> next(int n, int seconds) throws InterruptedException {
    List<WatchConversationsResponse> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(next(seconds));
    }
    return out;
  }

  /** The status that ended the stream, waiting up to {@code seconds}. */
  public StatusRuntimeException ended(int seconds) throws Exception {
    Throwable t = end.get(seconds, TimeUnit.SECONDS);
    if (!(t instanceof StatusRuntimeException sre)) {
      throw new AssertionError("stream ended with " + t);
    }
    return sre;
  }

  @Override
  public void close() {
    if (call != null && !end.isDone()) {
      call.cancel("test done", null);
    }
  }
}
