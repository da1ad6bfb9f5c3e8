package dev.contextmemory.server.testing;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Locale;

/**
 * A small real OpenAI-style {@code POST /v1/embeddings} server on the loopback interface (the JDK's
 * com.sun.net.httpserver), for the openai-compatible embedder's tests. Its "model" hashes each
 * lower-cased word into one of {@code dimension} buckets (a bag of words), so texts sharing words
 * are near and the vectors are deterministic. Scripted failures are answered first, in order.
 */
public final class FakeEmbeddingEndpoint implements AutoCloseable {
  /** A scripted answer: status, Retry-After header (null for none), delay before answering. */
  public record Failure(int status, String retryAfter, long delayMillis) {}

  /** What one request looked like. */
  public record Seen(long atNanos, int inputs, String authorization, String model) {}

  private final HttpServer http;
  private final java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newCachedThreadPool();
  private final int dimension;
  private final Deque<Failure> script = new ArrayDeque<>();
  private final List<Seen> seen = Collections.synchronizedList(new ArrayList<>());
  private volatile Failure always;

  public FakeEmbeddingEndpoint(int dimension) {
    this.dimension = dimension;
    try {
      http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    http.createContext("/v1/embeddings", this::handle);
    http.setExecutor(threads);
    http.start();
  }

  /** The base URL to configure, http://127.0.0.1:port/v1. */
  public String url() {
    return "http://127.0.0.1:" + http.getAddress().getPort() + "/v1";
  }

  /** Answers the next requests with these failures, in order, then normally again. */
  public synchronized FakeEmbeddingEndpoint failNext(Failure... failures) {
    script.addAll(List.of(failures));
    return this;
  }

  /** Answers every request with this failure until set to null. */
  public FakeEmbeddingEndpoint failAlways(Failure f) {
    always = f;
    return this;
  }

  public List<Seen> seen() {
    synchronized (seen) {
      return List.copyOf(seen);
    }
  }

  /** The fake model's vector of {@code text}. */
  public float[] vector(String text) {
    float[] v = new float[dimension];
    for (String w : text.toLowerCase(Locale.ROOT).split("[^a-z0-9]+")) {
      if (!w.isEmpty()) {
        v[Math.floorMod(w.hashCode(), dimension)] += 1;
      }
    }
    v[dimension - 1] += 0.01f; // never all zeros
    return v;
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      JsonObject req = JsonParser.parseString(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8))
          .getAsJsonObject();
      JsonArray input = req.getAsJsonArray("input");
      seen.add(new Seen(System.nanoTime(), input.size(), ex.getRequestHeaders().getFirst("Authorization"),
          req.get("model").getAsString()));
      Failure f;
      synchronized (this) {
        f = script.isEmpty() ? always : script.poll();
      }
      if (f != null) {
        if (f.delayMillis() > 0) {
          Thread.sleep(f.delayMillis());
        }
        if (f.retryAfter() != null) {
          ex.getResponseHeaders().add("Retry-After", f.retryAfter());
        }
        byte[] body = "{\"error\":{\"message\":\"scripted\"}}".getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(f.status(), body.length);
        ex.getResponseBody().write(body);
        return;
      }
      JsonArray data = new JsonArray();
      // Answered in reverse order with explicit indexes, as the API allows.
      for (int i = input.size() - 1; i >= 0; i--) {
        JsonObject item = new JsonObject();
        item.addProperty("index", i);
        JsonArray values = new JsonArray();
        for (float x : vector(input.get(i).getAsString())) {
          values.add(x);
        }
        item.add("embedding", values);
        data.add(item);
      }
      JsonObject res = new JsonObject();
      res.add("data", data);
      res.addProperty("model", req.get("model").getAsString());
      byte[] body = res.toString().getBytes(StandardCharsets.UTF_8);
      ex.getResponseHeaders().add("Content-Type", "application/json");
      ex.sendResponseHeaders(200, body.length);
      ex.getResponseBody().write(body);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  @Override
  public void close() {
    if (closed.getAndSet(true)) {
      return;
    }
    http.stop(0);
    threads.shutdownNow();
  }
}
