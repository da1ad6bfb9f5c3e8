package dev.contextmemory.server.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;

/**
 * The key format, {@code cm_<prefix>_<secret>}: a 10-character public prefix (50 random bits) that
 * finds the key, and a 32-character secret (160 random bits from {@link SecureRandom}) of which
 * only the SHA-256 is stored. Both are lower-case RFC 4648 base32, so a key survives any header,
 * shell or URL unescaped. A secret of 160 random bits needs no slow password hash: no one can
 * enumerate it, and SHA-256 keeps the check at about a microsecond on the hot path.
 */
public final class ApiKeySecrets {
  public static final int PREFIX_LENGTH = 10;
  public static final int SECRET_LENGTH = 32;
  private static final String ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
  private static final SecureRandom RANDOM = new SecureRandom();

  private ApiKeySecrets() {}

  /** A freshly generated key: its prefix, its secret, and the whole key to show once. */
  public record NewKey(String prefix, String secret) {
    public String key() {
      return "cm_" + prefix + "_" + secret;
    }

    public byte[] secretSha256() {
      return sha256(secret);
    }
  }

  /** A key as presented by a caller, split into its parts; nothing verified yet. */
  public record Presented(String prefix, String secret) {}

  public static NewKey generate() {
    return new NewKey(random(PREFIX_LENGTH), random(SECRET_LENGTH));
  }

  /** The parts of {@code key}, or null when it does not have the key format. */
  public static Presented parse(String key) {
    if (key == null || key.length() != 3 + PREFIX_LENGTH + 1 + SECRET_LENGTH || !key.startsWith("cm_")
        || key.charAt(3 + PREFIX_LENGTH) != '_') {
      return null;
    }
    String prefix = key.substring(3, 3 + PREFIX_LENGTH);
    String secret = key.substring(4 + PREFIX_LENGTH);
    return isBase32(prefix) && isBase32(secret) ? new Presented(prefix, secret) : null;
  }

  public static boolean isPrefix(String s) {
    return s != null && s.length() == PREFIX_LENGTH && isBase32(s);
  }

  /** Constant-time: the time taken does not depend on where the hashes differ. */
  public static boolean matches(Presented presented, byte[] storedSha256) {
    return MessageDigest.isEqual(sha256(presented.secret()), storedSha256);
  }

  static byte[] sha256(String secret) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.US_ASCII));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  private static String random(int length) {
    char[] c = new char[length];
    for (int i = 0; i < length; i++) {
      c[i] = ALPHABET.charAt(RANDOM.nextInt(ALPHABET.length()));
    }
    return new String(c);
  }

  private static boolean isBase32(String s) {
    for (int i = 0; i < s.length(); i++) {
      if (ALPHABET.indexOf(s.charAt(i)) < 0) {
        return false;
      }
    }
    return true;
  }
}
