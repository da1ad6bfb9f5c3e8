package dev.contextmemory.client;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.CustomerServiceGrpc;
import dev.contextmemory.v1.MemoryServiceGrpc;
import io.grpc.MethodDescriptor;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The gRPC service config the client installs as its channel's default: round_robin over every
 * resolved address, wait-for-ready on every call, and a retry policy on UNAVAILABLE for exactly the
 * RPCs that are safe to send twice.
 */
final class ServiceConfig {
  private ServiceConfig() {}

  /**
   * RPCs a second attempt cannot harm: reads; calls the API documents as safe to retry
   * (GetOrCreateOpenConversation, UpsertCustomer, UpsertMemory, CloseConversation); and creates and
   * appends, because {@link IdempotencyKeys} gives each of them a key the server deduplicates on.
   * Left out: updates and deletes (a retried delete that succeeded answers NOT_FOUND),
   * ConfirmMemories (it counts again), and the client-streaming ImportMessages (re-run it whole:
   * it skips what is stored).
   */
  static final List<MethodDescriptor<?, ?>> RETRYABLE = List.of(
      CustomerServiceGrpc.getCreateCustomerMethod(),
      CustomerServiceGrpc.getGetCustomerMethod(),
      CustomerServiceGrpc.getLookupCustomerMethod(),
      CustomerServiceGrpc.getUpsertCustomerMethod(),
      CustomerServiceGrpc.getListCustomersMethod(),
      CustomerServiceGrpc.getAddAddressMethod(),
      CustomerServiceGrpc.getListAddressesMethod(),
      ConversationServiceGrpc.getGetOrCreateOpenConversationMethod(),
      ConversationServiceGrpc.getGetConversationMethod(),
      ConversationServiceGrpc.getListConversationsMethod(),
      ConversationServiceGrpc.getCloseConversationMethod(),
      ConversationServiceGrpc.getAppendMessageMethod(),
      ConversationServiceGrpc.getAppendMessagesMethod(),
      ConversationServiceGrpc.getListMessagesMethod(),
      ConversationServiceGrpc.getSearchMessagesMethod(),
      ConversationServiceGrpc.getGetConversationStatsMethod(),
      MemoryServiceGrpc.getCreateMemoryMethod(),
      MemoryServiceGrpc.getUpsertMemoryMethod(),
      MemoryServiceGrpc.getGetMemoryMethod(),
      MemoryServiceGrpc.getListMemoriesMethod(),
      MemoryServiceGrpc.getSearchMemoriesMethod(),
      MemoryServiceGrpc.getSearchConversationsMethod(),
      MemoryServiceGrpc.getFetchContextMethod());

  /** Services whose other methods get wait-for-ready but no retry. */
  static final List<String> SERVICES = List.of(
      CustomerServiceGrpc.SERVICE_NAME, ConversationServiceGrpc.SERVICE_NAME, MemoryServiceGrpc.SERVICE_NAME,
      "grpc.health.v1.Health");

  /** Retry settings; {@code maxAttempts} 1 turns retries off. */
  record Retry(int maxAttempts, Duration initialBackoff, Duration maxBackoff, double backoffMultiplier) {
    Retry {
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts must be at least 1, got " + maxAttempts);
      }
      if (initialBackoff.isNegative() || initialBackoff.isZero() || maxBackoff.compareTo(initialBackoff) < 0) {
        throw new IllegalArgumentException("need 0 < initialBackoff <= maxBackoff, got " + initialBackoff
            + " and " + maxBackoff);
      }
      if (!(backoffMultiplier >= 1)) {
        throw new IllegalArgumentException("backoffMultiplier must be >= 1, got " + backoffMultiplier);
      }
    }
  }

  /** The config as grpc-java wants it: JSON-shaped maps, lists, strings and doubles. */
  static Map<String, Object> build(Retry retry, boolean waitForReady) {
    List<Object> methodConfigs = new ArrayList<>();
    if (retry.maxAttempts() > 1) {
      List<Object> names = new ArrayList<>();
      for (MethodDescriptor<?, ?> m : RETRYABLE) {
        names.add(Map.of("service", m.getServiceName(), "method", m.getBareMethodName()));
      }
      Map<String, Object> config = new LinkedHashMap<>();
      config.put("name", names);
      config.put("waitForReady", waitForReady);
      config.put("retryPolicy", Map.of(
          "maxAttempts", (double) retry.maxAttempts(),
          "initialBackoff", seconds(retry.initialBackoff()),
          "maxBackoff", seconds(retry.maxBackoff()),
          "backoffMultiplier", retry.backoffMultiplier(),
          "retryableStatusCodes", List.of("UNAVAILABLE")));
      methodConfigs.add(config);
    }
    // A method matches its most specific entry: the retryable ones above, every other one here.
    List<Object> services = new ArrayList<>();
    for (String s : SERVICES) {
      services.add(Map.of("service", s));
    }
    methodConfigs.add(Map.of("name", services, "waitForReady", waitForReady));

    Map<String, Object> config = new LinkedHashMap<>();
    config.put("loadBalancingConfig", List.of(Map.of("round_robin", Map.of())));
    config.put("methodConfig", methodConfigs);
    // Stops retrying while most calls fail (retries continue once tokens > 5; each failure takes
    // one, each success gives back 0.1), so an outage does not multiply the load on the server.
    config.put("retryThrottling", Map.of("maxTokens", 10.0, "tokenRatio", 0.1));
    return config;
  }

  /** A protobuf JSON Duration: decimal seconds with an "s". */
  static String seconds(Duration d) {
    return BigDecimal.valueOf(d.getSeconds()).add(BigDecimal.valueOf(d.getNano(), 9)).stripTrailingZeros()
        .toPlainString() + "s";
  }
}
