package dev.contextmemory.server.auth;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** What an API key may do; stored and printed in lower case ("read"). */
public enum Scope {
  READ,
  WRITE,
  ERASE,
  ADMIN;

  public static final Set<Scope> ALL = Set.copyOf(EnumSet.allOf(Scope.class));

  public String wireName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The scope named {@code name} (any case), or null. */
  public static Scope parse(String name) {
    for (Scope s : values()) {
      if (s.wireName().equalsIgnoreCase(name.strip())) {
        return s;
      }
    }
    return null;
  }
}
