package dev.contextmemory.server.embedding;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.EmbeddingSettings;
import dev.contextmemory.server.testing.FakeEmbeddingEndpoint;
import dev.contextmemory.server.testing.FakeEmbeddingEndpoint.Failure;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The openai-compatible embedder against a real HTTP server started by the test. */
class OpenAiCompatibleEmbedderTest {
  private FakeEmbeddingEndpoint endpoint;

  @AfterEach
  void stop() {
    endpoint.close();
  }

  private OpenAiCompatibleEmbedder embedder(int dimension, String key, int timeoutMs, int retries, int batch) {
    return new OpenAiCompatibleEmbedder(new EmbeddingSettings(EmbeddingSettings.OPENAI, "fake-model", dimension,
        "fake-model", URI.create(endpoint.url()), key, Duration.ofMillis(timeoutMs), retries, batch, 3,
        Duration.ofMillis(100), 10, 1));
  }

  @Test
  void embedsInBatchesAndKeepsTheInputOrder() {
    endpoint = new FakeEmbeddingEndpoint(16);
    List<String> texts = List.of("one apple", "two pears", "three plums", "four figs", "five limes");
    List<float[]> out = embedder(16, "sk-test", 5_000, 0, 2).embed(texts);
    assertEquals(5, out.size());
    for (int i = 0; i < texts.size(); i++) {
      assertArrayEquals(endpoint.vector(texts.get(i)), out.get(i), texts.get(i));
    }
    assertEquals(List.of(2, 2, 1), endpoint.seen().stream().map(FakeEmbeddingEndpoint.Seen::inputs).toList());
    assertEquals("Bearer sk-test", endpoint.seen().get(0).authorization());
    assertEquals("fake-model", endpoint.seen().get(0).model());
  }

  @Test
  void noKeyMeansNoAuthorizationHeader() {
    endpoint = new FakeEmbeddingEndpoint(16);
    embedder(16, "", 5_000, 0, 8).embed(List.of("x"));
    assertNull(endpoint.seen().get(0).authorization());
  }

  @Test
  void serverErrorsAreRetriedWithBackoff() {
    endpoint = new FakeEmbeddingEndpoint(16).failNext(new Failure(500, null, 0), new Failure(503, null, 0));
    float[] v = embedder(16, "", 5_000, 3, 8).embed(List.of("retry me")).get(0);
    assertArrayEquals(endpoint.vector("retry me"), v);
    assertEquals(3, endpoint.seen().size());
  }

  @Test
  void rateLimitingWaitsForRetryAfter() {
    endpoint = new FakeEmbeddingEndpoint(16).failNext(new Failure(429, "1", 0));
    embedder(16, "", 5_000, 2, 8).embed(List.of("slow down"));
    List<FakeEmbeddingEndpoint.Seen> seen = endpoint.seen();
    assertEquals(2, seen.size());
    // The retry came no sooner than the endpoint asked (a lower bound the embedder must honour).
    assertTrue(seen.get(1).atNanos() - seen.get(0).atNanos() >= 1_000_000_000L,
        "retried after " + (seen.get(1).atNanos() - seen.get(0).atNanos()) / 1_000_000 + " ms");
  }

  @Test
  void aRetryAfterBeyondAMinuteEndsTheAttemptForTheWorkerToComeBackLater() {
    endpoint = new FakeEmbeddingEndpoint(16).failAlways(new Failure(429, "120", 0));
    EmbeddingException e = assertThrows(EmbeddingException.class, () -> embedder(16, "", 5_000, 3, 8).embed(List.of("x")));
    assertTrue(e.retryable());
    assertEquals(Duration.ofSeconds(120), e.retryAfter());
    assertEquals(1, endpoint.seen().size());
  }

  @Test
  void aTimedOutRequestIsRetried() {
    endpoint = new FakeEmbeddingEndpoint(16).failNext(new Failure(200, null, 3_000));
    float[] v = embedder(16, "", 300, 2, 8).embed(List.of("slow then fine")).get(0);
    assertArrayEquals(endpoint.vector("slow then fine"), v);
    assertTrue(endpoint.seen().size() >= 2, "seen " + endpoint.seen().size());
  }

  @Test
  void aTimeoutIsRetriedThenReportedAsRetryable() {
    endpoint = new FakeEmbeddingEndpoint(16).failAlways(new Failure(200, null, 3_000));
    EmbeddingException e = assertThrows(EmbeddingException.class,
        () -> embedder(16, "", 300, 1, 8).embed(List.of("too slow")));
    assertTrue(e.retryable());
    assertTrue(e.getMessage().contains("did not answer"), e.getMessage());
  }

  @Test
  void aClientErrorIsNotRetriedAndTheMessageQuotesNoInput() {
    endpoint = new FakeEmbeddingEndpoint(16).failAlways(new Failure(400, null, 0));
    EmbeddingException e = assertThrows(EmbeddingException.class,
        () -> embedder(16, "sk-secret", 5_000, 3, 8).embed(List.of("my phone is +15551234567")));
    assertFalse(e.retryable());
    assertEquals(1, endpoint.seen().size());
    assertTrue(e.getMessage().contains("HTTP 400"), e.getMessage());
    assertFalse(e.getMessage().contains("5551234567") || e.getMessage().contains("sk-secret"), e.getMessage());
  }

  @Test
  void aVectorOfAnotherDimensionIsRefused() {
    endpoint = new FakeEmbeddingEndpoint(8);
    EmbeddingException e = assertThrows(EmbeddingException.class, () -> embedder(16, "", 5_000, 3, 8).embed(List.of("x")));
    assertFalse(e.retryable());
    assertTrue(e.getMessage().contains("returned 8 dimensions"), e.getMessage());
  }

  @Test
  void anUnreachableEndpointIsRetryable() {
    endpoint = new FakeEmbeddingEndpoint(16);
    String url = endpoint.url();
    endpoint.close();
    EmbeddingException e = assertThrows(EmbeddingException.class, () -> new OpenAiCompatibleEmbedder(
        new EmbeddingSettings(EmbeddingSettings.OPENAI, "m", 16, "m", URI.create(url), "", Duration.ofMillis(500), 0, 8,
            3, Duration.ofMillis(100), 10, 1)).embed(List.of("x")));
    assertTrue(e.retryable());
  }
}
