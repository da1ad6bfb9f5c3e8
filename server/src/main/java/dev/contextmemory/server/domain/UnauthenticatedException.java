package dev.contextmemory.server.domain;

import java.util.Map;

/**
 * The call carries no usable API key. One message for unknown, wrong, revoked and expired keys, so
 * the answer never tells a caller whether a key exists. Reasons: API_KEY_MISSING,
 * API_KEY_MALFORMED, API_KEY_INVALID.
 */
public final class UnauthenticatedException extends DomainException {
  private UnauthenticatedException(String reason, String message) {
    super(reason, message, Map.of());
  }

  public static UnauthenticatedException missing() {
    return new UnauthenticatedException("API_KEY_MISSING",
        "this server requires an API key: send the header authorization: Bearer cm_<prefix>_<secret>");
  }

  public static UnauthenticatedException malformed() {
    return new UnauthenticatedException("API_KEY_MALFORMED",
        "the authorization header is not \"Bearer cm_<prefix>_<secret>\"");
  }

  public static UnauthenticatedException invalid() {
    return new UnauthenticatedException("API_KEY_INVALID", "the API key is not valid (unknown, revoked or expired)");
  }
}
