package dev.contextmemory.server.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** CONTEXT_MEMORY_DB_READ_URL and its two bounds, as the server reads them. */
class StandbySettingsTest {
  private static Settings.StandbyReads read(Map<String, String> vars) {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", "jdbc:postgresql://primary:5432/cm");
    vars.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
    return Settings.from(env).standbyReads();
  }

  @Test
  void unsetMeansNoStandbys() {
    Settings.StandbyReads s = read(Map.of());
    assertFalse(s.enabled());
    assertEquals(Duration.ofMillis(1000), s.maxStaleness());
    assertEquals(Duration.ofMillis(50), s.tokenWait());
  }

  @Test
  void urlsSplitOnSpacesAndOnCommasThatStartAnotherUrl() {
    Settings.StandbyReads s = read(Map.of("DB_READ_URL",
        "jdbc:postgresql://a:5432/cm?user=x, jdbc:postgresql://b1:5432,b2:5432/cm  jdbc:postgresql://c/cm",
        "DB_READ_MAX_STALENESS_MS", "250", "DB_READ_TOKEN_WAIT_MS", "0"));
    assertTrue(s.enabled());
    assertEquals(List.of("jdbc:postgresql://a:5432/cm?user=x", "jdbc:postgresql://b1:5432,b2:5432/cm",
        "jdbc:postgresql://c/cm"), s.urls());
    assertEquals(Duration.ofMillis(250), s.maxStaleness());
    assertEquals(Duration.ZERO, s.tokenWait());
  }

  @Test
  void badValuesNameTheVariable() {
    var notJdbc = assertThrows(IllegalArgumentException.class,
        () -> read(Map.of("DB_READ_URL", "postgres://standby/cm")));
    assertTrue(notJdbc.getMessage().contains("CONTEXT_MEMORY_DB_READ_URL"), notJdbc.getMessage());
    var tooTight = assertThrows(IllegalArgumentException.class,
        () -> read(Map.of("DB_READ_URL", "jdbc:postgresql://s/cm", "DB_READ_MAX_STALENESS_MS", "20")));
    assertTrue(tooTight.getMessage().contains("CONTEXT_MEMORY_DB_READ_MAX_STALENESS_MS"), tooTight.getMessage());
  }
}
