package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.contextmemory.client.Targets.HostAndPort;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class TargetsTest {
  @Test
  void listsOfHostAndPort() {
    assertEquals(List.of(new HostAndPort("a.example", 1), new HostAndPort("10.0.0.2", 50051),
        new HostAndPort("::1", 7)), Targets.parseList("a.example:1, 10.0.0.2:50051 ,[::1]:7"));
    assertEquals("[::1]:7", new HostAndPort("::1", 7).toString());
  }

  @Test
  void badEntriesAreRefused() {
    for (String bad : List.of("a:1,", "a:1,b", "a:1,b:0", "a:1,b:65536", "a:1,dns:///b:2", "a:1,::1:5", "a:1,[::1]",
        "a:1,:5", "a:1,b:x")) {
      assertThrows(IllegalArgumentException.class, () -> Targets.parseList(bad), bad);
    }
  }

  @Test
  void durationsAreWrittenAsProtobufJson() {
    assertEquals("0.1s", ServiceConfig.seconds(Duration.ofMillis(100)));
    assertEquals("5s", ServiceConfig.seconds(Duration.ofSeconds(5)));
    assertEquals("1.5s", ServiceConfig.seconds(Duration.ofMillis(1500)));
  }
}
