package dev.contextmemory.server.grpc;

import io.grpc.Context;
import io.grpc.Metadata;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The consistency token of read-your-writes on standbys (docs/scaling.md): the WAL position of a
 * call's last commit, sent back in the {@value #HEADER} trailer of every write and accepted in the
 * same request header by reads. A token is 16 hex digits of the LSN (fixed width, so clients can
 * keep the newest by comparing strings), a dot and a truncated HMAC-SHA256 over them, keyed like
 * page tokens (CONTEXT_MEMORY_PAGE_TOKEN_SECRET): a forged far-future token cannot pin a caller's
 * reads to the primary with no end. A token that does not verify (another deployment's, or a
 * replica's with a different secret) makes the read go to the primary, which is never stale.
 */
public final class ConsistencyTokens {
  /** The trailer (on writes) and request header (on reads) that carries the token. */
  public static final String HEADER = "x-cm-consistency-token";
  static final Metadata.Key<String> KEY = Metadata.Key.of(HEADER, Metadata.ASCII_STRING_MARSHALLER);
  /** A read's token that did not verify: served as if it needed the primary. */
  static final long UNVERIFIED = Long.MAX_VALUE;
  private static final int TAG_BYTES = 12;
  private static final String ALGORITHM = "HmacSHA256";
  private static final byte[] DOMAIN = "context-memory consistency token v1|".getBytes(StandardCharsets.UTF_8);
  /** The commit positions of the current call, when the call is a write on a server with standbys. */
  static final Context.Key<AtomicLong> COMMITS = Context.key("cm-commit-lsn");

  private final SecretKeySpec key;

  private ConsistencyTokens(byte[] secret) {
    this.key = new SecretKeySpec(secret, ALGORITHM);
  }

  /** Tokens keyed by {@code secret}, or by 32 random bytes when it is null or empty. */
  public static ConsistencyTokens withSecret(String secret) {
    if (secret == null || secret.isEmpty()) {
      byte[] random = new byte[32];
      new SecureRandom().nextBytes(random);
      return new ConsistencyTokens(random);
    }
    return new ConsistencyTokens(secret.getBytes(StandardCharsets.UTF_8));
  }

  /** The store's commit sink: keeps the highest commit position of the current call, if it is a write. */
  public static void recordCommit(long lsn) {
    AtomicLong commits = COMMITS.get();
    if (commits != null) {
      commits.accumulateAndGet(lsn, Math::max);
    }
  }

  String encode(long lsn) {
    String position = HexFormat.of().withUpperCase().toHexDigits(lsn);
    return position + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(tag(position));
  }

  /** The LSN in {@code token}; {@link #UNVERIFIED} for one this deployment did not issue. */
  long decode(String token) {
    int dot = token.indexOf('.');
    if (dot != 16) {
      return UNVERIFIED;
    }
    String position = token.substring(0, dot);
    try {
      byte[] tag = Base64.getUrlDecoder().decode(token.substring(dot + 1));
      if (MessageDigest.isEqual(tag, tag(position))) {
        return HexFormat.fromHexDigitsToLong(position);
      }
    } catch (IllegalArgumentException notOurs) {
      // bad base64 or hex: like any other foreign token
    }
    return UNVERIFIED;
  }

  private byte[] tag(String position) {
    try {
      Mac mac = Mac.getInstance(ALGORITHM);
      mac.init(key);
      mac.update(DOMAIN);
      return Arrays.copyOf(mac.doFinal(position.getBytes(StandardCharsets.US_ASCII)), TAG_BYTES);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
    }
  }
}
