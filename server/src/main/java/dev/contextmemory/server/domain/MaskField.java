package dev.contextmemory.server.domain;

/** A writable field of a resource, named as in an update mask path. */
public interface MaskField {
  String path();
}
