package dev.contextmemory.server.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.contextmemory.server.domain.InvalidArgumentException;
import org.junit.jupiter.api.Test;

/** The page-token MAC binds a token to its tenant, its filters and the key that issued it. */
class PageTokensTest {
  private static Long decode(PageTokens tokens, String tenant, String token, String filters) {
    return tokens.decode(tenant, token, filters, "page_token", 1, p -> Long.parseLong(p[0]));
  }

  @Test
  void aTokenIsGoodOnlyForItsTenantFiltersAndKey() {
    PageTokens tokens = PageTokens.withSecret("s3cret");
    String token = tokens.encode("tenant-a", "messages|x", "42");
    assertEquals(42L, decode(tokens, "tenant-a", token, "messages|x"));
    assertEquals(42L, decode(PageTokens.withSecret("s3cret"), "tenant-a", token, "messages|x"),
        "another replica with the same secret accepts it");

    InvalidArgumentException otherTenant = assertThrows(InvalidArgumentException.class,
        () -> decode(tokens, "tenant-b", token, "messages|x"));
    assertEquals("page_token", otherTenant.violations().get(0).field());
    assertThrows(InvalidArgumentException.class, () -> decode(tokens, "tenant-a", token, "messages|y"));
    assertThrows(InvalidArgumentException.class,
        () -> decode(PageTokens.withSecret("other"), "tenant-a", token, "messages|x"));
    assertThrows(InvalidArgumentException.class,
        () -> decode(PageTokens.withSecret(null), "tenant-a", token, "messages|x"));
    assertThrows(InvalidArgumentException.class, () -> decode(tokens, "tenant-a", "not base64 !", "messages|x"));
    assertEquals(null, decode(tokens, "tenant-a", "", "messages|x"));
  }
}
