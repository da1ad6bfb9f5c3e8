package dev.contextmemory.server.testing;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import io.grpc.Metadata;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;

/** API keys for tests: created in the test server's own database, attached to stubs as a bearer header. */
public final class TestKeys {
  private TestKeys() {}

  public static ApiKeyStore store(TestServer server) {
    return new ApiKeyStore(Database.jdbi(server.server().pool()));
  }

  /** A new key of {@code tenant} with {@code scopes}; the whole key, as a client sends it. */
  public static String create(TestServer server, String tenant, Scope... scopes) {
    return create(server, tenant, null, scopes);
  }

  public static String create(TestServer server, String tenant, Instant expiresAt, Scope... scopes) {
    return store(server).create(tenant, "test key", EnumSet.copyOf(List.of(scopes)), expiresAt, AuditLog.CLI_ACTOR).key();
  }

  /** {@code stub} sending {@code authorization: Bearer <key>} with every call. */
  public static <S extends AbstractStub<S>> S withKey(S stub, String key) {
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(bearer(key)));
  }

  public static Metadata bearer(String key) {
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
    return md;
  }
}
