package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.server.config.Database;
import dev.contextmemory.server.store.ApiKeyStore;
import dev.contextmemory.server.store.AuditLog;
import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import dev.contextmemory.v1.GetCustomerRequest;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The client against a server that requires API keys: the key travels as a bearer token on every call. */
class ApiKeyClientTest {
  @Test
  void aClientWithAKeyActsForTheKeysTenant() {
    String dbUrl = TestDatabase.create();
    try (LiveServer server = LiveServer.start(dbUrl, NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)),
        List.of(), Map.of("AUTH", "api-key"))) {
      String key = new ApiKeyStore(Database.jdbi(server.pool())).create("acme", "client test",
          EnumSet.of(Scope.READ, Scope.WRITE), null, AuditLog.CLI_ACTOR).key();
      try (var withKey = ContextMemoryClient.newBuilder(server.target()).bearerToken(() -> key)
              .allowCredentialsOverPlaintext().build();
           var withoutKey = ContextMemoryClient.newBuilder(server.target()).build()) {
        Customer c = withKey.customers().createCustomer(CreateCustomerRequest.newBuilder()
            .setCustomer(Customer.newBuilder().setDisplayName("Keyed")).build()).getCustomer();
        GetCustomerRequest get = GetCustomerRequest.newBuilder().setCustomerId(c.getId()).build();
        assertEquals(c, withKey.customers().getCustomer(get).getCustomer());
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> withoutKey.customers().getCustomer(get));
        assertEquals(Code.UNAUTHENTICATED, e.getStatus().getCode());
      }
    }
  }
}
