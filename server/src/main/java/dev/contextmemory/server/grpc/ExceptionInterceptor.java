package dev.contextmemory.server.grpc;

import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;

/**
 * Lets service methods simply throw: whatever escapes a handler is turned into a status by
 * {@link ErrorMapper} and closes the call, instead of grpc-java's bare UNKNOWN. Also answers the
 * requests {@link MalformedRequests} could not parse.
 */
public final class ExceptionInterceptor implements ServerInterceptor {
  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    ServerCall.Listener<Q> delegate;
    try {
      delegate = next.startCall(call, headers);
    } catch (RuntimeException e) {
      close(call, e);
      return new ServerCall.Listener<>() {};
    }
    return new SimpleForwardingServerCallListener<>(delegate) {
      // Set once the call has been answered with an error: the handler hears nothing more.
      private boolean failed;

      @Override
      public void onMessage(Q message) {
        if (failed) {
          return;
        }
        if (message == null) { // bytes that are no valid message: see MalformedRequests
          failed = true;
          close(call, ErrorMapper.malformedRequest());
          return;
        }
        try {
          super.onMessage(message);
        } catch (RuntimeException e) {
          failed = true;
          close(call, e);
        }
      }

      @Override
      public void onHalfClose() {
        if (failed) {
          return;
        }
        try {
          super.onHalfClose();
        } catch (RuntimeException e) {
          failed = true;
          close(call, e);
        }
      }

      @Override
      public void onReady() {
        if (failed) {
          return;
        }
        try {
          super.onReady();
        } catch (RuntimeException e) {
          failed = true;
          close(call, e);
        }
      }
    };
  }

  static <Q, R> void close(ServerCall<Q, R> call, RuntimeException e) {
    StatusRuntimeException sre = ErrorMapper.toException(e);
    Metadata trailers = sre.getTrailers() != null ? sre.getTrailers() : new Metadata();
    try {
      call.close(sre.getStatus(), trailers);
    } catch (IllegalStateException alreadyClosed) {
      // The call was already closed (e.g. cancelled by the client): nobody is listening.
    }
  }
}
