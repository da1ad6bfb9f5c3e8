package dev.contextmemory.server.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;

/**
 * The tenant a call acts for, carried in the call's {@link Context}. Until authentication exists
 * every call acts for the one configured default tenant; the authentication interceptor will set
 * it from the caller's credentials instead, and nothing downstream changes.
 */
public final class Tenants implements ServerInterceptor {
  private static final Context.Key<String> TENANT = Context.key("contextmemory-tenant");

  private final String defaultTenant;

  public Tenants(String defaultTenant) {
    this.defaultTenant = defaultTenant;
  }

  /** The current call's tenant. */
  static String current() {
    String t = TENANT.get();
    if (t == null) {
      throw new IllegalStateException("no tenant in context: is the Tenants interceptor installed?");
    }
    return t;
  }

  /** The current call's tenant, or null outside a call or before authentication set one. */
  static String currentOrNull() {
    return TENANT.get();
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    return Contexts.interceptCall(Context.current().withValue(TENANT, defaultTenant), call, headers, next);
  }
}
