package dev.contextmemory.server.grpc;

import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.InvalidArgumentException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Base64;
import java.util.UUID;
import java.util.zip.CRC32;

/**
 * Opaque page tokens: a keyset position (time, id) plus a fingerprint of the filters it was issued
 * for, base64url-encoded. Clients must treat them as opaque; the format may change. A token reused
 * with other filters, or that is not ours, is INVALID_ARGUMENT rather than a silently wrong page.
 */
final class PageTokens {
  private static final String VERSION = "1";
  private static final String PARTS_VERSION = "2";

  private PageTokens() {}

  record Position(Instant time, UUID id) {}

  static String encode(Position p, String filterKey) {
    long micros = p.time().getEpochSecond() * 1_000_000L + p.time().getNano() / 1_000;
    String raw = VERSION + "|" + micros + "|" + p.id() + "|" + fingerprint(filterKey);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(raw.getBytes(StandardCharsets.UTF_8));
  }

  /** The position in {@code token}, or null for an empty token (first page). */
  static Position decode(String token, String filterKey, String field) {
    if (token.isEmpty()) {
      return null;
    }
    try {
      String raw = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
      String[] parts = raw.split("\\|", -1);
      if (parts.length == 4 && parts[0].equals(VERSION)) {
        long micros = Long.parseLong(parts[1]);
        UUID id = Ids.parseOrNull(parts[2]);
        if (id != null) {
          if (!parts[3].equals(fingerprint(filterKey))) {
            throw InvalidArgumentException.of(field, "was issued for other filters; repeat the call that returned it");
          }
          return new Position(Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L),
              Math.floorMod(micros, 1_000_000L) * 1_000L), id);
        }
      }
    } catch (IllegalArgumentException notOurs) {
      // bad base64 or number: fall through to the same answer as any other foreign token
    }
    throw InvalidArgumentException.of(field, "is not a page token issued by this server");
  }

  /**
   * A token for any keyset position given as its parts (none may contain '|'), fingerprinted
   * like {@link #encode(Position, String)}.
   */
  static String encodeParts(String filterKey, String... parts) {
    String raw = PARTS_VERSION + "|" + fingerprint(filterKey) + "|" + String.join("|", parts);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(raw.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The {@code arity} parts of a token made by {@link #encodeParts}, or null for an empty token.
   * {@code parse} turns them into the position and may throw IllegalArgumentException (or its
   * subclass NumberFormatException) for a token that is not ours.
   */
  static <T> T decodeParts(String token, String filterKey, String field, int arity,
      java.util.function.Function<String[], T> parse) {
    if (token.isEmpty()) {
      return null;
    }
    try {
      String raw = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
      String[] parts = raw.split("\\|", -1);
      if (parts.length == arity + 2 && parts[0].equals(PARTS_VERSION)) {
        if (!parts[1].equals(fingerprint(filterKey))) {
          throw InvalidArgumentException.of(field, "was issued for other filters; repeat the call that returned it");
        }
        T position = parse.apply(java.util.Arrays.copyOfRange(parts, 2, parts.length));
        if (position != null) {
          return position;
        }
      }
    } catch (IllegalArgumentException notOurs) {
      // bad base64, number or UUID: the same answer as any other foreign token
    }
    throw InvalidArgumentException.of(field, "is not a page token issued by this server");
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

  private static String fingerprint(String filterKey) {
    CRC32 crc = new CRC32();
    crc.update(filterKey.getBytes(StandardCharsets.UTF_8));
    return Long.toHexString(crc.getValue());
  }
}
