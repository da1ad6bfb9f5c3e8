package dev.contextmemory.client;

import java.util.ArrayList;
import java.util.List;

/**
 * Reads the target a client is built from: one gRPC target string ({@code "host:port"},
 * {@code "dns:///host:port"}, ...), passed to grpc-java unchanged, or a comma-separated list of
 * {@code host:port} entries, which the client balances over itself (see
 * {@link StaticNameResolverProvider}).
 */
final class Targets {
  private Targets() {}

  /** One entry of a static list. {@code host} is a name or an IP literal, IPv6 without brackets. */
  record HostAndPort(String host, int port) {
    /** The {@code host:port} form, with brackets around an IPv6 literal. */
    @Override
    public String toString() {
      return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
  }

  static boolean isList(String target) {
    return target.indexOf(',') >= 0;
  }

  /** Parses {@code "a:1, b:2, [::1]:3"}; every entry needs a port. */
  static List<HostAndPort> parseList(String target) {
    List<HostAndPort> out = new ArrayList<>();
    for (String raw : target.split(",", -1)) {
      String entry = raw.strip();
      if (entry.isEmpty()) {
        throw new IllegalArgumentException("empty entry in target list '" + target + "'");
      }
      out.add(parse(entry));
    }
    return List.copyOf(out);
  }

  static HostAndPort parse(String entry) {
    String host;
    String port;
    if (entry.startsWith("[")) {
      int close = entry.indexOf(']');
      if (close < 0 || close + 1 >= entry.length() || entry.charAt(close + 1) != ':') {
        throw new IllegalArgumentException("'" + entry + "' is not [ipv6]:port");
      }
      host = entry.substring(1, close);
      port = entry.substring(close + 2);
    } else {
      int colon = entry.lastIndexOf(':');
      if (colon <= 0 || entry.indexOf(':') != colon || entry.contains("/")) {
        throw new IllegalArgumentException("'" + entry + "' is not host:port (a list takes no schemes;"
            + " write an IPv6 address as [addr]:port)");
      }
      host = entry.substring(0, colon);
      port = entry.substring(colon + 1);
    }
    int p;
    try {
      p = Integer.parseInt(port);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("'" + entry + "' has no valid port", e);
    }
    if (host.isEmpty() || p < 1 || p > 65535) {
      throw new IllegalArgumentException("'" + entry + "' needs a host and a port in 1..65535");
    }
    return new HostAndPort(host, p);
  }
}
