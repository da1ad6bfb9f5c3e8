package dev.contextmemory.server.grpc;

import dev.contextmemory.server.auth.Scope;
import dev.contextmemory.v1.ConfirmMemoriesRequest;
import dev.contextmemory.v1.MemoryConfirmation;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The scope each RPC needs (docs/security.md has the table). Reads need READ; writes, appends and
 * soft deletes WRITE; anything that removes rows for good ERASE, since it cannot be undone and is
 * audited; key management ADMIN. One RPC depends on its request: ConfirmMemories needs ERASE when
 * an item rejects with {@code delete_on_reject}. A method missing here is refused (fail closed,
 * INTERNAL): TenantIsolationTest calls every method of every service with an all-scopes key, so a
 * new RPC without its entry fails there.
 */
final class ScopePolicy {
  /** The scope a call needs, given its request message (null before the message is known). */
  interface Rule {
    Scope required(Object request);

    /** Whether {@link #required} depends on the request, so it must be checked again per message. */
    boolean dependsOnRequest();
  }

  private static final Map<String, Rule> RULES = new HashMap<>();

  static {
    fixed(Scope.READ, "CustomerService", "GetCustomer", "LookupCustomer", "ListCustomers", "ListAddresses");
    fixed(Scope.WRITE, "CustomerService", "CreateCustomer", "UpsertCustomer", "UpdateCustomer", "AddAddress",
        "UpdateAddress");
    fixed(Scope.ERASE, "CustomerService", "DeleteCustomer", "RemoveAddress");
    fixed(Scope.READ, "ConversationService", "GetConversation", "ListConversations", "ListMessages",
        "SearchMessages", "GetConversationStats", "ListHandoffQueue", "ListHandoffs", "GetUsageMetrics",
        "WatchConversations");
    fixed(Scope.WRITE, "ConversationService", "GetOrCreateOpenConversation", "CloseConversation",
        "UpdateConversation", "DeleteConversation", "AppendMessage", "AppendMessages", "ImportMessages", "RequestHandoff",
        "AcceptHandoff", "CompleteHandoff", "CancelHandoff");
    fixed(Scope.READ, "MemoryService", "GetMemory", "ListMemories", "SearchMemories", "SearchConversations",
        "FetchContext", "ListMemoryHistory");
    fixed(Scope.WRITE, "MemoryService", "CreateMemory", "UpsertMemory", "UpdateMemory", "CreateMemories",
        "UpsertMemories", "ImportMemories");
    fixed(Scope.ERASE, "MemoryService", "DeleteMemory");
    RULES.put("contextmemory.v1.MemoryService/ConfirmMemories", byRequest(request -> {
      if (request instanceof ConfirmMemoriesRequest r) {
        for (MemoryConfirmation item : r.getConfirmationsList()) {
          if (item.getDeleteOnReject()) {
            return Scope.ERASE;
          }
        }
      }
      return Scope.WRITE;
    }));
    fixed(Scope.ADMIN, "AdminService", "CreateApiKey", "ListApiKeys", "RevokeApiKey");
  }

  private ScopePolicy() {}

  /** The rule of {@code fullMethodName}, or null for a method with none (refused). */
  static Rule rule(String fullMethodName) {
    return RULES.get(fullMethodName);
  }

  private static void fixed(Scope scope, String service, String... methods) {
    Rule rule = new Rule() {
      @Override
      public Scope required(Object request) {
        return scope;
      }

      @Override
      public boolean dependsOnRequest() {
        return false;
      }
    };
    for (String m : methods) {
      RULES.put("contextmemory.v1." + service + "/" + m, rule);
    }
  }

  private static Rule byRequest(Function<Object, Scope> scopeOf) {
    return new Rule() {
      @Override
      public Scope required(Object request) {
        return scopeOf.apply(request);
      }

      @Override
      public boolean dependsOnRequest() {
        return true;
      }
    };
  }
}
