package dev.contextmemory.client;

import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Sends a safe-to-repeat unary call once more when the connection died while the server was
 * answering it. gRPC's retry policy ends when the response headers arrive (the call is then
 * "committed"): a replica killed between its response headers and its trailers fails the call
 * UNAVAILABLE after one attempt, whatever the policy says, although repeating it is harmless. This
 * interceptor repeats such a call, once, on the same channel (round_robin takes it to another
 * replica), with the same request, so a create or append sends the same idempotency key and the
 * server answers from the stored row if the first attempt committed.
 *
 * <p>Only for {@link ServiceConfig#RETRYABLE} RPCs, only on UNAVAILABLE that arrives after the
 * response headers (anything earlier is the channel's retry policy's), at most once per call, never
 * after the caller cancelled, and within the call's own deadline (the repeat keeps its
 * CallOptions). So it adds at most one attempt per call that lost its replica mid-answer, which
 * shedding and overload never cause (they answer trailers-only, before any header), and leaves the
 * retry throttle to the channel.
 *
 * <p>The response's headers and message are held back until the call ends, so a caller never sees
 * those of an attempt that then failed; a unary call delivers them at its end anyway. It sits below
 * {@link IdempotencyKeys} (the repeat carries the key already filled in) and above
 * {@link ConsistencyTokens} (the repeat carries the newest token).
 */
final class CommittedCallRetry implements ClientInterceptor {
  private final Set<String> methods;

  CommittedCallRetry(List<MethodDescriptor<?, ?>> retryable) {
    this.methods = retryable.stream().map(MethodDescriptor::getFullMethodName).collect(Collectors.toUnmodifiableSet());
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(MethodDescriptor<ReqT, RespT> method,
      CallOptions options, Channel next) {
    if (method.getType() != MethodDescriptor.MethodType.UNARY || !methods.contains(method.getFullMethodName())) {
      return next.newCall(method, options);
    }
    return new RepeatableCall<>(method, options, next);
  }

  /** A unary call that may run a second attempt; the caller's calls are replayed on it. */
  private static final class RepeatableCall<ReqT, RespT> extends ClientCall<ReqT, RespT> {
    private final MethodDescriptor<ReqT, RespT> method;
    private final CallOptions options;
    private final Channel next;
    private final Object lock = new Object();
    // Guarded by lock: what the caller did so far, to replay on a second attempt.
    private ClientCall<ReqT, RespT> current;
    private Listener<RespT> listener;
    private Metadata headers;
    private ReqT message;
    private boolean messageSent;
    private int requested;
    private boolean halfClosed;
    private boolean cancelled;
    private boolean repeated;

    RepeatableCall(MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      this.method = method;
      this.options = options;
      this.next = next;
    }

    @Override
    public void start(Listener<RespT> responseListener, Metadata requestHeaders) {
      synchronized (lock) {
        listener = responseListener;
        headers = new Metadata();
        headers.merge(requestHeaders); // a copy: interceptors below add to the headers they are given
        current = next.newCall(method, options);
        current.start(new Attempt(current), requestHeaders);
      }
    }

    @Override
    public void request(int n) {
      synchronized (lock) {
        requested += n;
        current.request(n);
      }
    }

    @Override
    public void sendMessage(ReqT m) {
      synchronized (lock) {
        message = m;
        messageSent = true;
        current.sendMessage(m);
      }
    }

    @Override
    public void halfClose() {
      synchronized (lock) {
        halfClosed = true;
        current.halfClose();
      }
    }

    @Override
    public void cancel(String why, Throwable cause) {
      ClientCall<ReqT, RespT> call;
      synchronized (lock) {
        cancelled = true;
        call = current;
      }
      if (call != null) {
        call.cancel(why, cause);
      }
    }

    @Override
    public boolean isReady() {
      synchronized (lock) {
        return current.isReady();
      }
    }

    @Override
    public void setMessageCompression(boolean enabled) {
      synchronized (lock) {
        current.setMessageCompression(enabled);
      }
    }

    @Override
    public Attributes getAttributes() {
      synchronized (lock) {
        return current.getAttributes();
      }
    }

    /** Starts the second attempt with everything the caller sent; false if it may not run. */
    private boolean repeat(ClientCall<ReqT, RespT> failed) {
      synchronized (lock) {
        if (repeated || cancelled || current != failed) {
          return false;
        }
        repeated = true;
        Metadata copy = new Metadata();
        copy.merge(headers);
        current = next.newCall(method, options);
        current.start(new Attempt(current), copy);
        if (requested > 0) {
          current.request(requested);
        }
        if (messageSent) {
          current.sendMessage(message);
        }
        if (halfClosed) {
          current.halfClose();
        }
        return true;
      }
    }

    /** One attempt's events: held until it ends, then passed on, or dropped for a second attempt. */
    private final class Attempt extends Listener<RespT> {
      private final ClientCall<ReqT, RespT> call;
      private Metadata responseHeaders;
      private RespT response;

      Attempt(ClientCall<ReqT, RespT> call) {
        this.call = call;
      }

      @Override
      public void onHeaders(Metadata h) {
        responseHeaders = h;
      }

      @Override
      public void onMessage(RespT m) {
        response = m;
      }

      @Override
      public void onReady() {
        Listener<RespT> l;
        synchronized (lock) {
          l = current == call ? listener : null;
        }
        if (l != null) {
          l.onReady();
        }
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        // UNAVAILABLE after the headers: the server had begun to answer when its connection went.
        if (status.getCode() == Status.Code.UNAVAILABLE && responseHeaders != null && repeat(call)) {
          return;
        }
        Listener<RespT> l;
        synchronized (lock) {
          l = listener;
        }
        if (responseHeaders != null) {
          l.onHeaders(responseHeaders);
        }
        if (response != null) {
          l.onMessage(response);
        }
        l.onClose(status, trailers);
      }
    }
  }
}
