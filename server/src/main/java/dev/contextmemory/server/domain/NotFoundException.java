package dev.contextmemory.server.domain;

import java.util.Map;

/** No such resource for this tenant. Reason: {@code <RESOURCE>_NOT_FOUND}. */
public final class NotFoundException extends DomainException {
  private final String resourceType;
  private final String resourceName;

  public NotFoundException(String resourceType, String resourceName) {
    super(resourceType.toUpperCase(java.util.Locale.ROOT) + "_NOT_FOUND",
        resourceType + " " + resourceName + " not found", Map.of());
    this.resourceType = resourceType;
    this.resourceName = resourceName;
  }

  public String resourceType() {
    return resourceType;
  }

  public String resourceName() {
    return resourceName;
  }
}
