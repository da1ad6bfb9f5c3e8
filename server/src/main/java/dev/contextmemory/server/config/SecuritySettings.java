package dev.contextmemory.server.config;

import static dev.contextmemory.server.config.Settings.PREFIX;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Who may call and over what: authentication mode, TLS files and the per-tenant limits, read from
 * the CONTEXT_MEMORY_* variables with the rest of {@link Settings} (README and docs/security.md
 * document each).
 *
 * <p>The one rule enforced here, before anything binds: a server without authentication listens
 * on a loopback address only, unless the operator says in so many words that the network in front
 * of it is trusted (ALLOW_INSECURE). Otherwise anyone who reaches the port reads every tenant.
 */
public record SecuritySettings(
    AuthMode auth,
    boolean allowInsecure,
    Duration authCacheTtl,
    Duration lastUsedFlushInterval,
    boolean reflection,
    Path tlsCertFile,
    Path tlsKeyFile,
    Path tlsClientCaFile,
    Duration tlsReloadInterval,
    double keyRequestsPerSecond,
    int keyBurst,
    int tenantMaxConcurrentCalls) {

  /** How callers are authenticated. */
  public enum AuthMode {
    /** {@code authorization: Bearer cm_<prefix>_<secret>} on every call but health. */
    API_KEY,
    /** No authentication: every call acts for the default tenant with every scope. */
    NONE
  }

  public boolean tls() {
    return tlsCertFile != null;
  }

  static SecuritySettings read(Settings.Reader r, String host) {
    String mode = r.string("AUTH", "api-key").toLowerCase(java.util.Locale.ROOT);
    AuthMode auth = switch (mode) {
      case "api-key" -> AuthMode.API_KEY;
      case "none" -> AuthMode.NONE;
      default -> throw new IllegalArgumentException(PREFIX + "AUTH must be api-key or none, got '" + mode + "'");
    };
    boolean allowInsecure = r.bool("ALLOW_INSECURE", false);
    if (auth == AuthMode.NONE && !allowInsecure && !isLoopback(host)) {
      throw new IllegalArgumentException(PREFIX + "AUTH=none serves every tenant's data to anyone who reaches"
          + " the port, so it listens on a loopback address only, but " + PREFIX + "HOST is '" + host
          + "': set " + PREFIX + "AUTH=api-key (and create a key: scripts/run keys create), or " + PREFIX
          + "HOST=127.0.0.1, or " + PREFIX + "ALLOW_INSECURE=true if a trusted proxy authenticates callers");
    }
    Path cert = file(r, "TLS_CERT_FILE");
    Path key = file(r, "TLS_KEY_FILE");
    Path clientCa = file(r, "TLS_CLIENT_CA_FILE");
    if ((cert == null) != (key == null)) {
      throw new IllegalArgumentException(PREFIX + "TLS_CERT_FILE and " + PREFIX + "TLS_KEY_FILE go together: set both or neither");
    }
    if (clientCa != null && cert == null) {
      throw new IllegalArgumentException(PREFIX + "TLS_CLIENT_CA_FILE (mutual TLS) needs " + PREFIX
          + "TLS_CERT_FILE and " + PREFIX + "TLS_KEY_FILE");
    }
    int rate = r.integer("KEY_RATE_LIMIT", 0, 0, 1_000_000);
    return new SecuritySettings(
        auth,
        allowInsecure,
        // A revoked key works on for at most this long: the cache is what keeps key checks off the
        // database on the hot path.
        Duration.ofMillis(r.integer("AUTH_CACHE_TTL_MS", 30_000, 100, 300_000)),
        Duration.ofMillis(r.integer("AUTH_LAST_USED_FLUSH_MS", 10_000, 100, 60_000)),
        r.bool("REFLECTION", true),
        cert,
        key,
        clientCa,
        Duration.ofMillis(r.integer("TLS_RELOAD_INTERVAL_MS", 60_000, 100, 86_400_000)),
        rate,
        r.integer("KEY_RATE_BURST", Math.max(1, 2 * rate), 1, 10_000_000),
        r.integer("TENANT_MAX_CONCURRENT_CALLS", 64, 0, 100_000));
  }

  private static Path file(Settings.Reader r, String name) {
    String v = r.string(name, null);
    if (v == null) {
      return null;
    }
    Path p = Path.of(v);
    if (!Files.isReadable(p)) {
      throw new IllegalArgumentException(PREFIX + name + " names a file that cannot be read: " + v);
    }
    return p;
  }

  public static boolean isLoopback(String host) {
    try {
      for (InetAddress a : InetAddress.getAllByName(host)) {
        if (!a.isLoopbackAddress()) {
          return false;
        }
      }
      return true;
    } catch (UnknownHostException e) {
      return false;
    }
  }
}
