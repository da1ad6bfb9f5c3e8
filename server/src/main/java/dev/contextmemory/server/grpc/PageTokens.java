package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.InvalidArgumentException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.UUID;
import java.util.function.Function;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The one page-token format of every list and search: a keyset position (its parts joined by '|')
 * and an HMAC-SHA256 over the tenant, the request's filters and that position, base64url-encoded.
 * A token is good only for the tenant and the filters it was issued for, and an edited or forged
 * token fails the MAC: INVALID_ARGUMENT naming {@code page_token}, never a silently wrong page.
 * The key is CONTEXT_MEMORY_PAGE_TOKEN_SECRET, or random per process when that is unset (then tokens
 * do not survive a restart and are not accepted by another replica).
 */
public final class PageTokens {
  private static final String VERSION = "3";
  private static final String ALGORITHM = "HmacSHA256";
  /** A truncated tag: 128 bits of HMAC-SHA256 are ample against forgery (NIST SP 800-107). */
  private static final int TAG_BYTES = 16;

  private final SecretKeySpec key;
  /**
   * One keyed Mac per request thread: Mac.getInstance and init (a provider look-up and the HMAC key
   * schedule) cost more than tagging a page token itself, and ListConversations tags every page it
   * returns. doFinal leaves a Mac ready for the next token under the same key.
   */
  private final ThreadLocal<Mac> macs;

  private PageTokens(byte[] secret) {
    this.key = new SecretKeySpec(secret, ALGORITHM);
    this.macs = ThreadLocal.withInitial(this::newMac);
  }

  private Mac newMac() {
    try {
      Mac mac = Mac.getInstance(ALGORITHM);
      mac.init(key);
      return mac;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
    }
  }

  /** Tokens keyed by {@code secret}, or by 32 random bytes when it is null or empty. */
  public static PageTokens withSecret(String secret) {
    if (secret == null || secret.isEmpty()) {
      byte[] random = new byte[32];
      new SecureRandom().nextBytes(random);
      return new PageTokens(random);
    }
    return new PageTokens(secret.getBytes(StandardCharsets.UTF_8));
  }

  /** A token for the keyset position {@code parts} (none may contain '|'). */
  String encode(String tenant, String filterKey, String... parts) {
    String payload = VERSION + "|" + String.join("|", parts);
    byte[] p = payload.getBytes(StandardCharsets.UTF_8);
    byte[] tag = tag(tenant, filterKey, p);
    byte[] token = Arrays.copyOf(p, p.length + TAG_BYTES);
    System.arraycopy(tag, 0, token, p.length, TAG_BYTES);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(token);
  }

  /**
   * The position in {@code token}, or null for an empty token (the first page). {@code parse} turns
   * the {@code arity} parts into the position and may throw IllegalArgumentException; that only
   * happens for a token we issued in an older format, since the MAC is checked first.
   */
  <T> T decode(String tenant, String token, String filterKey, String field, int arity, Function<String[], T> parse) {
    if (token.isEmpty()) {
      return null;
    }
    try {
      byte[] raw = Base64.getUrlDecoder().decode(token);
      if (raw.length > TAG_BYTES) {
        byte[] payload = Arrays.copyOf(raw, raw.length - TAG_BYTES);
        byte[] tag = Arrays.copyOfRange(raw, raw.length - TAG_BYTES, raw.length);
        // Constant time: how many leading bytes matched must not leak through the answer's timing.
        if (MessageDigest.isEqual(tag, Arrays.copyOf(tag(tenant, filterKey, payload), TAG_BYTES))) {
          String[] parts = new String(payload, StandardCharsets.UTF_8).split("\\|", -1);
          if (parts.length == arity + 1 && parts[0].equals(VERSION)) {
            T position = parse.apply(Arrays.copyOfRange(parts, 1, parts.length));
            if (position != null) {
              return position;
            }
          }
        }
      }
    } catch (IllegalArgumentException notOurs) {
      // bad base64, number or UUID: the same answer as any other foreign token
    }
    throw InvalidArgumentException.of(field, "is not a page token this server issued for this request"
        + " (the same tenant and the same other fields); repeat the call without it to start over");
  }

  private byte[] tag(String tenant, String filterKey, byte[] payload) {
    Mac mac = macs.get();
    // Lengths first, so no two (tenant, filters) pairs feed the MAC the same bytes.
    byte[] t = tenant.getBytes(StandardCharsets.UTF_8);
    byte[] f = filterKey.getBytes(StandardCharsets.UTF_8);
    mac.update(lengthPrefix(t.length));
    mac.update(t);
    mac.update(lengthPrefix(f.length));
    mac.update(f);
    return mac.doFinal(payload);
  }

  private static byte[] lengthPrefix(int n) {
    return new byte[] {(byte) (n >>> 24), (byte) (n >>> 16), (byte) (n >>> 8), (byte) n};
  }

  /** Microseconds since the epoch (PostgreSQL's precision), "" for null. */
  static String micros(Instant t) {
    return t == null ? "" : Long.toString(t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000);
  }

  static Instant instant(String micros) {
    if (micros.isEmpty()) {
      return null;
    }
    long m = Long.parseLong(micros);
    return Instant.ofEpochSecond(Math.floorDiv(m, 1_000_000L), Math.floorMod(m, 1_000_000L) * 1_000L);
  }

  static UUID uuid(String s) {
    UUID id = Ids.parseOrNull(s);
    if (id == null) {
      throw new IllegalArgumentException("not a UUID");
    }
    return id;
  }
}
