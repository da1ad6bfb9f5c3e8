package dev.contextmemory.server.grpc;

import dev.contextmemory.server.auth.Caller;
import dev.contextmemory.server.auth.KeyVerifier;
import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.domain.PermissionDeniedException;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthGrpc;

/**
 * The first interceptor every call meets: it decides who the caller is (the API key in
 * {@code authorization: Bearer …}, or the default tenant when authentication is off), whether the
 * caller may make this call ({@link ScopePolicy}) and whether it is within its limits
 * ({@link CallLimits}), and then puts the caller into the call's Context ({@link Tenants}), where
 * everything below reads the tenant. A refused call is answered here and reaches no service.
 *
 * <p>The health service needs no key (load balancers and orchestrators probe it) and carries no
 * tenant data. Reflection needs a valid key of any scope when authentication is on.
 */
public final class Authentication implements ServerInterceptor {
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final KeyVerifier verifier; // null: authentication off
  private final Caller local;
  private final CallLimits limits;

  private Authentication(KeyVerifier verifier, Caller local, CallLimits limits) {
    this.verifier = verifier;
    this.local = local;
    this.limits = limits;
  }

  /** Every call must carry a valid API key. */
  public static Authentication apiKeys(KeyVerifier verifier, double keyRequestsPerSecond, int keyBurst,
      int tenantMaxConcurrentCalls) {
    return new Authentication(verifier, null, new CallLimits(keyRequestsPerSecond, keyBurst, tenantMaxConcurrentCalls));
  }

  /** No authentication: every call acts for {@code tenant} with every scope (limits still apply). */
  public static Authentication none(String tenant, double keyRequestsPerSecond, int keyBurst,
      int tenantMaxConcurrentCalls) {
    return new Authentication(null, new Caller(tenant, dev.contextmemory.server.store.AuditLog.LOCAL_ACTOR, Scope.ALL),
        new CallLimits(keyRequestsPerSecond, keyBurst, tenantMaxConcurrentCalls));
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String service = call.getMethodDescriptor().getServiceName();
    if (HealthGrpc.SERVICE_NAME.equals(service)) {
      return next.startCall(call, headers);
    }
    String method = call.getMethodDescriptor().getFullMethodName();
    boolean reflection = service != null && service.startsWith("grpc.reflection.");
    ScopePolicy.Rule rule = reflection ? null : ScopePolicy.rule(method);
    Caller caller;
    CallLimits.Permit permit;
    try {
      caller = verifier == null ? local : verifier.verify(headers.get(AUTHORIZATION));
      if (!reflection) {
        if (rule == null) {
          throw new IllegalStateException("no scope rule for " + method + ": add it to ScopePolicy");
        }
        Scope needed = rule.required(null);
        if (!caller.may(needed)) {
          throw new PermissionDeniedException(needed.wireName(), call.getMethodDescriptor().getBareMethodName());
        }
      }
      permit = limits.acquire(caller);
    } catch (RuntimeException e) {
      ExceptionInterceptor.close(call, e);
      return new ServerCall.Listener<>() {};
    }
    ServerCall<Q, R> releasing = new SimpleForwardingServerCall<>(call) {
      @Override
      public void close(Status status, Metadata trailers) {
        // Released before the answer goes out: its work is done, and a client that calls again
        // the moment it has the answer must not find this call still counted (CallLimitsTest saw
        // a tenant's sequential calls refused on a busy machine when the release came after).
        permit.release();
        super.close(status, trailers);
      }
    };
    ServerCall.Listener<Q> listener;
    try {
      listener = Contexts.interceptCall(Tenants.with(Context.current(), caller), releasing, headers, next);
    } catch (RuntimeException e) {
      permit.release();
      throw e;
    }
    return new SimpleForwardingServerCallListener<>(listener) {
      private boolean refused;

      @Override
      public void onMessage(Q message) {
        if (refused) {
          return;
        }
        if (rule != null && rule.dependsOnRequest()) {
          Scope needed = rule.required(message);
          if (!caller.may(needed)) {
            refused = true;
            ExceptionInterceptor.close(releasing, new PermissionDeniedException(needed.wireName(),
                call.getMethodDescriptor().getBareMethodName() + " with this request"));
            return;
          }
        }
        super.onMessage(message);
      }

      @Override
      public void onHalfClose() {
        try {
          if (!refused) {
            super.onHalfClose();
          }
        } finally {
          // A server stream's handler only registers it (WatchConversations) and returns: from
          // here on the stream holds no request thread, and its lifetime counts against the
          // tenant's stream cap (WatchHub) instead of its calls in flight.
          if (call.getMethodDescriptor().getType() == io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING) {
            permit.release();
          }
        }
      }

      @Override
      public void onCancel() {
        try {
          super.onCancel();
        } finally {
          permit.release();
        }
      }

      @Override
      public void onComplete() {
        try {
          super.onComplete();
        } finally {
          permit.release();
        }
      }
    };
  }
}
