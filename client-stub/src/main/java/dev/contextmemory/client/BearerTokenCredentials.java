package dev.contextmemory.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * Sends {@code authorization: Bearer <token>} with every call. The supplier is asked once per
 * call, on gRPC's application executor (it may block to fetch or refresh a token), so a rotating
 * token needs no new client. A supplier that throws or returns an empty token fails the call with
 * UNAUTHENTICATED before anything is sent.
 *
 * <p>A token is sent only over TLS unless plaintext was allowed explicitly (for a sidecar or proxy
 * on the same host that terminates TLS): over a plaintext connection the call fails with
 * UNAUTHENTICATED, so a misconfigured client never leaks a token.
 */
public final class BearerTokenCredentials extends CallCredentials {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Supplier<String> tokens;
  private final boolean allowPlaintext;

  public BearerTokenCredentials(Supplier<String> tokens, boolean allowPlaintext) {
    this.tokens = Objects.requireNonNull(tokens, "tokens");
    this.allowPlaintext = allowPlaintext;
  }

  @Override
  public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
    if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY && !allowPlaintext) {
      applier.fail(Status.UNAUTHENTICATED.withDescription("refusing to send a bearer token over a connection"
          + " without TLS; use TLS, or allow plaintext credentials on the client builder"));
      return;
    }
    appExecutor.execute(() -> {
      String token;
      try {
        token = tokens.get();
      } catch (RuntimeException e) {
        applier.fail(Status.UNAUTHENTICATED.withDescription("the bearer token supplier failed: " + e).withCause(e));
        return;
      }
      if (token == null || token.isBlank()) {
        applier.fail(Status.UNAUTHENTICATED.withDescription("the bearer token supplier returned no token"));
        return;
      }
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token.strip());
      applier.apply(headers);
    });
  }
}
