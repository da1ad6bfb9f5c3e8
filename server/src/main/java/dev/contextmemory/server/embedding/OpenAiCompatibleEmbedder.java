package dev.contextmemory.server.embedding;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.contextmemory.server.config.EmbeddingSettings;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Any OpenAI-style {@code POST /v1/embeddings} endpoint (OpenAI, Ollama, vLLM, Hugging Face TEI):
 * {@code {"model": ..., "input": [texts]}} in, {@code {"data": [{"index": i, "embedding": [...]}]}}
 * out. Texts go in batches of EMBEDDING_BATCH_SIZE; each request is bounded by EMBEDDING_TIMEOUT_MS
 * and retried up to EMBEDDING_MAX_RETRIES times on a timeout, a refused connection, 408, 429 or 5xx,
 * with exponential backoff and full jitter (base 200 ms, at most 10 s) or the endpoint's Retry-After
 * when it sends one (at most 60 s; a longer one ends the attempt, and the worker comes back later).
 * Error messages carry the status and the model, never the texts or the key.
 */
public final class OpenAiCompatibleEmbedder implements Embedder {
  private static final Duration BASE_BACKOFF = Duration.ofMillis(200);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(10);
  private static final Duration MAX_RETRY_AFTER = Duration.ofSeconds(60);
  /** An error body is read for the log only up to this many characters. */
  private static final int MAX_ERROR_BODY = 300;

  private final EmbeddingSettings s;
  private final URI endpoint;
  private final HttpClient http;

  public OpenAiCompatibleEmbedder(EmbeddingSettings s) {
    this.s = s;
    String u = s.url().toString().replaceAll("/+$", "");
    this.endpoint = URI.create(u.endsWith("/embeddings") ? u : u + "/embeddings");
    this.http = HttpClient.newBuilder().connectTimeout(s.timeout()).followRedirects(HttpClient.Redirect.NEVER).build();
  }

  @Override
  public String model() {
    return s.model();
  }

  @Override
  public int dimension() {
    return s.dimension();
  }

  @Override
  public List<float[]> embed(List<String> texts) {
    List<float[]> out = new ArrayList<>(texts.size());
    for (int i = 0; i < texts.size(); i += s.batchSize()) {
      out.addAll(batchWithRetries(texts.subList(i, Math.min(texts.size(), i + s.batchSize()))));
    }
    return out;
  }

  private List<float[]> batchWithRetries(List<String> texts) {
    for (int attempt = 0; ; attempt++) {
      try {
        return batch(texts);
      } catch (EmbeddingException e) {
        if (!e.retryable() || attempt >= s.maxRetries() || e.retryAfter().compareTo(MAX_RETRY_AFTER) > 0) {
          throw e;
        }
        long capped = Math.min(MAX_BACKOFF.toMillis(), BASE_BACKOFF.toMillis() << Math.min(attempt, 16));
        long wait = Math.max(e.retryAfter().toMillis(), ThreadLocalRandom.current().nextLong(capped + 1));
        try {
          Thread.sleep(wait);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new EmbeddingException("interrupted while backing off", true, null, ie);
        }
      }
    }
  }

  private List<float[]> batch(List<String> texts) {
    JsonObject body = new JsonObject();
    body.addProperty("model", s.model());
    JsonArray input = new JsonArray();
    texts.forEach(input::add);
    body.add("input", input);
    body.addProperty("encoding_format", "float");
    HttpRequest.Builder req = HttpRequest.newBuilder(endpoint).timeout(s.timeout())
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
    if (!s.apiKey().isEmpty()) {
      req.header("Authorization", "Bearer " + s.apiKey());
    }
    HttpResponse<String> res;
    try {
      res = http.send(req.build(), HttpResponse.BodyHandlers.ofString());
    } catch (HttpTimeoutException e) {
      throw new EmbeddingException("the embedding endpoint did not answer within " + s.timeout().toMillis() + " ms",
          true, null, e);
    } catch (IOException e) {
      throw new EmbeddingException("the embedding endpoint could not be reached: " + e.getClass().getSimpleName(),
          true, null, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new EmbeddingException("interrupted", true, null, e);
    }
    int code = res.statusCode();
    if (code != 200) {
      boolean retryable = code == 408 || code == 429 || code >= 500;
      String detail = res.body() == null ? "" : res.body().substring(0, Math.min(MAX_ERROR_BODY, res.body().length()));
      // The endpoint's error text says what is wrong with the request or the key; it quotes
      // neither input text in the APIs this targets, but stays out of the message anyway.
      throw new EmbeddingException("the embedding endpoint answered HTTP " + code + " for model " + s.model()
          + (detail.isEmpty() ? "" : " (" + detail.length() + " characters of error body)"), retryable,
          retryAfter(res), null);
    }
    return parse(res.body(), texts.size());
  }

  private List<float[]> parse(String json, int n) {
    float[][] out = new float[n][];
    try {
      JsonArray data = JsonParser.parseString(json).getAsJsonObject().getAsJsonArray("data");
      if (data == null || data.size() != n) {
        throw bad("expected " + n + " embeddings, got " + (data == null ? "none" : data.size()));
      }
      for (int i = 0; i < n; i++) {
        JsonObject item = data.get(i).getAsJsonObject();
        int index = item.has("index") ? item.get("index").getAsInt() : i;
        JsonArray values = item.getAsJsonArray("embedding");
        if (index < 0 || index >= n || out[index] != null || values == null) {
          throw bad("item " + i + " has a bad index or no embedding");
        }
        if (values.size() != s.dimension()) {
          throw bad("model " + s.model() + " returned " + values.size() + " dimensions, "
              + "CONTEXT_MEMORY_EMBEDDING_DIMENSION is " + s.dimension());
        }
        float[] v = new float[values.size()];
        int j = 0;
        for (JsonElement x : values) {
          v[j] = x.getAsFloat();
          if (!Float.isFinite(v[j++])) {
            throw bad("item " + i + " holds a non-finite value");
          }
        }
        out[index] = v;
      }
    } catch (RuntimeException e) {
      if (e instanceof EmbeddingException ee) {
        throw ee;
      }
      throw bad("the response is not an embeddings response (" + e.getClass().getSimpleName() + ")");
    }
    return List.of(out);
  }

  private static EmbeddingException bad(String message) {
    return new EmbeddingException("the embedding endpoint's answer is unusable: " + message, false, null, null);
  }

  /** Retry-After in seconds or as an HTTP date; zero when absent or unreadable. */
  static Duration retryAfter(HttpResponse<?> res) {
    String v = res.headers().firstValue("Retry-After").orElse("").trim();
    if (v.isEmpty()) {
      return Duration.ZERO;
    }
    try {
      return Duration.ofSeconds(Math.max(0, Long.parseLong(v)));
    } catch (NumberFormatException e) {
      try {
        Duration d = Duration.between(ZonedDateTime.now(), ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME));
        return d.isNegative() ? Duration.ZERO : d;
      } catch (RuntimeException e2) {
        return Duration.ZERO;
      }
    }
  }
}
