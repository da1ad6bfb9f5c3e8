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
 * resolved address, wait-for-ready on every call, and retry policies that follow what a status says
 * about the first attempt:
 * <ul>
 *   <li>ABORTED (a transaction conflict or lock timeout: rolled back) and RESOURCE_EXHAUSTED (the
 *       server shed the call, or had no connection for it, or a rate limit: not run) mean nothing
 *       was done, so every unary RPC is retried on them;
 *   <li>UNAVAILABLE and CANCELLED (a server cancels calls still running past its shutdown grace)
 *       leave the outcome unknown, so only {@link #RETRYABLE} RPCs, which are safe to send twice,
 *       are retried on them too. DEADLINE_EXCEEDED is never retried: the deadline covers every
 *       attempt.
 * </ul>
 * ImportMessages and ImportMemories are never retried (re-run them whole: they skip what is stored). gRPC retries only
 * until the server starts to answer (the client repeats a {@link #RETRYABLE} call once when its server
 * died mid-answer: {@link CommittedCallRetry}), and only requests up to its retry buffer (1 MiB).
 */
final class ServiceConfig {
  private ServiceConfig() {}

  /**
   * RPCs a second attempt cannot harm: reads; calls the API documents as safe to retry
   * (GetOrCreateOpenConversation, UpsertCustomer, UpsertMemory, UpsertMemories, CloseConversation, and
   * the handoff transitions AcceptHandoff, CompleteHandoff and CancelHandoff, which replay when the
   * handoff is already where the call would take it); and creates and appends (CreateMemories and
   * RequestHandoff too), because {@link IdempotencyKeys} gives each of them (each item) a key the
   * server deduplicates on.
   * Left out, so retried only when nothing was done (ABORTED, RESOURCE_EXHAUSTED): updates and
   * deletes (a retried delete that succeeded answers NOT_FOUND) and ConfirmMemories (it counts
   * again). ImportMessages and ImportMemories are never retried.
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
      ConversationServiceGrpc.getRequestHandoffMethod(),
      ConversationServiceGrpc.getAcceptHandoffMethod(),
      ConversationServiceGrpc.getCompleteHandoffMethod(),
      ConversationServiceGrpc.getCancelHandoffMethod(),
      ConversationServiceGrpc.getListHandoffQueueMethod(),
      ConversationServiceGrpc.getListHandoffsMethod(),
      MemoryServiceGrpc.getCreateMemoryMethod(),
      MemoryServiceGrpc.getCreateMemoriesMethod(),
      MemoryServiceGrpc.getUpsertMemoryMethod(),
      MemoryServiceGrpc.getUpsertMemoriesMethod(),
      MemoryServiceGrpc.getListMemoryHistoryMethod(),
      MemoryServiceGrpc.getGetMemoryMethod(),
      MemoryServiceGrpc.getListMemoriesMethod(),
      MemoryServiceGrpc.getSearchMemoriesMethod(),
      MemoryServiceGrpc.getSearchConversationsMethod(),
      MemoryServiceGrpc.getFetchContextMethod());

  /** Codes after which the outcome is unknown, or nothing was done: retried for {@link #RETRYABLE}. */
  static final List<String> TRANSIENT_CODES = List.of("UNAVAILABLE", "CANCELLED", "ABORTED", "RESOURCE_EXHAUSTED");

  /** Codes after which nothing was done on the server: retried for every other unary RPC. */
  static final List<String> NOTHING_DONE_CODES = List.of("ABORTED", "RESOURCE_EXHAUSTED");

  /** The API services: their other unary methods are retried on {@link #NOTHING_DONE_CODES}. */
  static final List<String> SERVICES = List.of(
      CustomerServiceGrpc.SERVICE_NAME, ConversationServiceGrpc.SERVICE_NAME, MemoryServiceGrpc.SERVICE_NAME);

  /** Never retried: a client stream commits chunk by chunk. */
  static final List<MethodDescriptor<?, ?>> NEVER_RETRIED = List.of(ConversationServiceGrpc.getImportMessagesMethod(),
      MemoryServiceGrpc.getImportMemoriesMethod());

  /** Gets wait-for-ready but no retry (a health probe should see the truth at once). */
  static final String HEALTH = "grpc.health.v1.Health";

  /**
   * The channel's retry throttle (gRPC A6): every failed attempt takes a token, every success gives
   * back {@link #THROTTLE_TOKEN_RATIO}, and retries stop while the tokens are at or below half of
   * this. Sized for a replica crash: all calls in flight on the dead replica fail at once, and
   * with 10 tokens their retries were refused after the fifth failure (SIGKILL of one of 3
   * replicas failed up to 12 of 16 calls in flight after one attempt), although more than 99 % of
   * the calls succeeded. With 100, a burst of up to 50 failures is retried; a sustained failure rate above
   * about 9 % (when 0.1 per success no longer pays for 1 per failure) still drains the bucket, so
   * an overloaded or down cluster sees at most about 50 extra attempts per client before retries
   * stop, and they resume after about 10 successes per token. ClusterFailoverTest shows both.
   */
  static final double THROTTLE_MAX_TOKENS = 100;
  /** Tokens a successful call gives back (see {@link #THROTTLE_MAX_TOKENS}). */
  static final double THROTTLE_TOKEN_RATIO = 0.1;

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
    // A method matches its most specific entry: a method's own name before its service's.
    List<Object> methodConfigs = new ArrayList<>();
    methodConfigs.add(entry(methods(RETRYABLE), waitForReady, retry, TRANSIENT_CODES));
    methodConfigs.add(entry(methods(NEVER_RETRIED), waitForReady, retry, List.of()));
    List<Object> services = new ArrayList<>();
    for (String s : SERVICES) {
      services.add(Map.of("service", s));
    }
    methodConfigs.add(entry(services, waitForReady, retry, NOTHING_DONE_CODES));
    methodConfigs.add(entry(List.of(Map.of("service", HEALTH)), waitForReady, retry, List.of()));

    Map<String, Object> config = new LinkedHashMap<>();
    config.put("loadBalancingConfig", List.of(Map.of("round_robin", Map.of())));
    config.put("methodConfig", methodConfigs);
    config.put("retryThrottling", Map.of("maxTokens", THROTTLE_MAX_TOKENS, "tokenRatio", THROTTLE_TOKEN_RATIO));
    return config;
  }

  private static List<Object> methods(List<MethodDescriptor<?, ?>> methods) {
    List<Object> names = new ArrayList<>();
    for (MethodDescriptor<?, ?> m : methods) {
      names.add(Map.of("service", m.getServiceName(), "method", m.getBareMethodName()));
    }
    return names;
  }

  private static Map<String, Object> entry(List<Object> names, boolean waitForReady, Retry retry, List<String> codes) {
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("name", names);
    config.put("waitForReady", waitForReady);
    if (retry.maxAttempts() > 1 && !codes.isEmpty()) {
      config.put("retryPolicy", Map.of(
          "maxAttempts", (double) retry.maxAttempts(),
          "initialBackoff", seconds(retry.initialBackoff()),
          "maxBackoff", seconds(retry.maxBackoff()),
          "backoffMultiplier", retry.backoffMultiplier(),
          "retryableStatusCodes", codes));
    }
    return config;
  }

  /** A protobuf JSON Duration: decimal seconds with an "s". */
  static String seconds(Duration d) {
    return BigDecimal.valueOf(d.getSeconds()).add(BigDecimal.valueOf(d.getNano(), 9)).stripTrailingZeros()
        .toPlainString() + "s";
  }
}
