package dev.contextmemory.server.grpc;

import dev.contextmemory.server.auth.Caller;
import io.grpc.Context;

/**
 * The caller a call acts for, carried in the call's {@link Context}: {@link Authentication} puts
 * it there (from the API key, or the default tenant without authentication) before any service
 * code runs, and services read the tenant from here and nowhere else.
 */
public final class Tenants {
  private static final Context.Key<Caller> CALLER = Context.key("contextmemory-caller");

  private Tenants() {}

  /** The current call's tenant. */
  static String current() {
    return caller().tenant();
  }

  /** The current call's tenant, or null outside a call or before authentication set one. */
  static String currentOrNull() {
    Caller c = CALLER.get();
    return c == null ? null : c.tenant();
  }

  /** The current call's caller: tenant, audit actor and scopes. */
  static Caller caller() {
    Caller c = CALLER.get();
    if (c == null) {
      throw new IllegalStateException("no caller in context: is the Authentication interceptor installed?");
    }
    return c;
  }

  static Context with(Context context, Caller caller) {
    return context.withValue(CALLER, caller);
  }
}
