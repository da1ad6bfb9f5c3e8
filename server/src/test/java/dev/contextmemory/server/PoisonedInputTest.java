package dev.contextmemory.server;

import static dev.contextmemory.server.testing.GrpcErrors.assertInvalid;
import static dev.contextmemory.server.testing.GrpcErrors.detail;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Status;
import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.TestServer;
import dev.contextmemory.v1.*;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 12, "Input that poisons or overflows": vectors that make cosine similarity NaN, negation-only
 * searches, error details too large for a client's trailer, configuration and field limits.
 */
class PoisonedInputTest {
  private static final int DIM = 768;
  private static CustomerServiceGrpc.CustomerServiceBlockingStub customers;
  private static ConversationServiceGrpc.ConversationServiceBlockingStub conversations;
  private static MemoryServiceGrpc.MemoryServiceBlockingStub memories;

  @BeforeAll
  static void start() {
    TestServer server = TestServer.shared();
    customers = CustomerServiceGrpc.newBlockingStub(server.channel());
    conversations = ConversationServiceGrpc.newBlockingStub(server.channel());
    memories = MemoryServiceGrpc.newBlockingStub(server.channel());
  }

  private static String newCustomer() {
    return customers.createCustomer(CreateCustomerRequest.newBuilder().setCustomer(Customer.newBuilder()
        .setPhone("+1555" + (2000000 + ThreadLocalRandom.current().nextInt(7999999)))).build()).getCustomer().getId();
  }

  /** Finite values whose float32 sum of squares overflows (the issue's [-3e38, 3e38, ...]). */
  private static List<Float> huge() {
    List<Float> v = new ArrayList<>();
    for (int i = 0; i < DIM; i++) {
      v.add(i % 2 == 0 ? -3e38f : 3e38f);
    }
    return v;
  }

  /** Non-zero values whose squares underflow float32 to zero: a zero norm in disguise. */
  private static List<Float> tiny() {
    List<Float> v = new ArrayList<>();
    for (int i = 0; i < DIM; i++) {
      v.add(1e-30f);
    }
    return v;
  }

  @Test
  void embeddingsWhoseNormOverflowsOrUnderflowsAreRejectedWhereverAVectorEnters() {
    String customer = newCustomer();
    for (List<Float> bad : List.of(huge(), tiny())) {
      assertInvalid("memory.embedding", () -> memories.upsertMemory(UpsertMemoryRequest.newBuilder()
          .setCustomerId(customer).setMemory(Memory.newBuilder().setKind(MemoryKind.MEMORY_KIND_FACT)
              .setKey("k").setContent("poison").addAllEmbedding(bad)).build()));
      assertInvalid("query_embedding", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
          .addAllQueryEmbedding(bad).build()));
      assertInvalid("query_embedding", () -> memories.fetchContext(FetchContextRequest.newBuilder()
          .setCustomerId(customer).addAllQueryEmbedding(bad).build()));
      assertInvalid("query_embedding", () -> memories.searchConversations(SearchConversationsRequest.newBuilder()
          .addAllQueryEmbedding(bad).build()));
      String conversation = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
          .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("t").build()).getConversation().getId();
      assertInvalid("conversation.summary_embedding", () -> conversations.updateConversation(
          UpdateConversationRequest.newBuilder().setConversation(Conversation.newBuilder().setId(conversation)
              .addAllSummaryEmbedding(bad)).build()));
    }
  }

  @Test
  void searchesWithoutAPositiveTermAreRejected() {
    String customer = newCustomer();
    for (String q : List.of("-x", "-refund -order", "the -x")) {
      assertInvalid("query", () -> conversations.searchMessages(SearchMessagesRequest.newBuilder().setQuery(q).build()));
      assertInvalid("query_text", () -> memories.searchMemories(SearchMemoriesRequest.newBuilder()
          .setQueryText(q).build()));
      assertInvalid("query_text", () -> memories.fetchContext(FetchContextRequest.newBuilder()
          .setCustomerId(customer).setQueryText(q).build()));
    }
    // A negated term beside a positive one is fine.
    conversations.searchMessages(SearchMessagesRequest.newBuilder().setQuery("refund -order").build());
  }

  @Test
  void manyFieldViolationsStayWithinAClientsTrailerLimitAndSayHowManyWereOmitted() {
    String customer = newCustomer();
    String conversation = conversations.getOrCreateOpenConversation(GetOrCreateOpenConversationRequest.newBuilder()
        .setCustomerId(customer).setChannel(Channel.CHANNEL_WEB).setThreadKey("v").build()).getConversation().getId();
    AppendMessagesRequest.Builder b = AppendMessagesRequest.newBuilder().setConversationId(conversation);
    for (int i = 0; i < 1000; i++) {
      b.addMessages(Message.newBuilder()); // no role, no content: two violations each
    }
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> conversations.appendMessages(b.build()));
    assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    Status s = StatusProto.fromThrowable(e);
    // grpc-status-details-bin travels base64-encoded in a trailer; clients cap headers at 8 KiB.
    int trailerBytes = (s.getSerializedSize() + 2) / 3 * 4;
    assertTrue(trailerBytes < 6 * 1024, "status details are " + trailerBytes + " bytes as a trailer");
    BadRequest br = detail(s, BadRequest.class).orElseThrow();
    assertTrue(br.getFieldViolationsCount() > 0 && br.getFieldViolationsCount() < 2000);
    ErrorInfo info = detail(s, ErrorInfo.class).orElseThrow();
    assertEquals(Integer.toString(2000 - br.getFieldViolationsCount()), info.getMetadataOrThrow("field_violations_omitted"));
  }

  @Test
  void addressCountryCodesMustBeAssignedIso3166Codes() {
    String customer = newCustomer();
    for (String code : List.of("AB", "UK", "EU", "XX", "ZZ")) {
      assertInvalid("address.country_code", () -> customers.addAddress(AddAddressRequest.newBuilder()
          .setCustomerId(customer).setAddress(Address.newBuilder().setLine1("1 Main St").setCountryCode(code)).build()));
    }
    customers.addAddress(AddAddressRequest.newBuilder().setCustomerId(customer)
        .setAddress(Address.newBuilder().setLine1("1 Main St").setCountryCode("gb")).build());
  }

  @Test
  void mergedCustomerMetadataCannotGrowPastItsLimitThroughUpsert() {
    ContactKey key = ContactKey.newBuilder().setEmail("grow" + ThreadLocalRandom.current().nextLong() + "@x.test").build();
    String tenK = "x".repeat(10_000);
    customers.upsertCustomer(UpsertCustomerRequest.newBuilder().setContactKey(key).setCustomer(Customer.newBuilder()
        .setMetadata(Struct.newBuilder().putFields("a", Value.newBuilder().setStringValue(tenK).build()))).build());
    assertInvalid("customer.metadata", () -> customers.upsertCustomer(UpsertCustomerRequest.newBuilder()
        .setContactKey(key).setCustomer(Customer.newBuilder().setMetadata(Struct.newBuilder()
            .putFields("b", Value.newBuilder().setStringValue(tenK).build()))).build()));
    // Replacing a key with a value of the same size does not grow the object.
    customers.upsertCustomer(UpsertCustomerRequest.newBuilder().setContactKey(key).setCustomer(Customer.newBuilder()
        .setMetadata(Struct.newBuilder().putFields("a", Value.newBuilder().setStringValue("y".repeat(10_000)).build())))
        .build());
  }

  @Test
  void configurationRejectsWhatPgvectorCannotIndexAndDefaultsToGrpcsMessageSize() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Settings.from(Map.of(
        "CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://localhost/x", "CONTEXT_MEMORY_EMBEDDING_DIMENSION", "2001")));
    assertTrue(e.getMessage().contains("CONTEXT_MEMORY_EMBEDDING_DIMENSION"), e.getMessage());
    Settings s = Settings.from(Map.of("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://localhost/x",
        "CONTEXT_MEMORY_EMBEDDING_DIMENSION", "2000"));
    assertEquals(4 * 1024 * 1024, s.maxInboundMessageBytes());
  }
}
