package dev.contextmemory.server.grpc;

import com.google.protobuf.FieldMask;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.util.JsonFormat;
import dev.contextmemory.server.domain.FieldViolation;
import dev.contextmemory.server.domain.Ids;
import dev.contextmemory.server.domain.InvalidArgumentException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Function;

/**
 * Checks one request and collects every violation, so a caller learns about all bad fields at
 * once. Each method returns the cleaned value (strings stripped; empty becomes null) and records a
 * violation instead of throwing; {@link #throwIfInvalid()} ends the check.
 */
final class Validator {
  /** Metadata objects are capped so one row can't blow up every read of it. */
  static final int MAX_METADATA_BYTES = 16 * 1024;
  static final int MAX_REQUEST_ID_LENGTH = 128;
  static final int DEFAULT_PAGE_SIZE = 50;
  static final int MAX_PAGE_SIZE = 1000;

  private static final JsonFormat.Printer JSON = JsonFormat.printer().omittingInsignificantWhitespace();

  private final List<FieldViolation> violations = new ArrayList<>();

  void add(String field, String description) {
    violations.add(new FieldViolation(field, description));
  }

  boolean ok() {
    return violations.isEmpty();
  }

  void throwIfInvalid() {
    if (!violations.isEmpty()) {
      throw new InvalidArgumentException(violations);
    }
  }

  /** Runs a check that throws {@link InvalidArgumentException}, keeping its violations. */
  <T> T check(java.util.function.Supplier<T> check) {
    try {
      return check.get();
    } catch (InvalidArgumentException e) {
      violations.addAll(e.violations());
      return null;
    }
  }

  String text(String field, String value, int maxLength) {
    String s = value.strip();
    return s.isEmpty() ? null : raw(field, s, maxLength);
  }

  /** Text stored exactly as given (not stripped): length in characters, no NUL. Null if invalid. */
  String raw(String field, String s, int maxLength) {
    if (s.codePointCount(0, s.length()) > maxLength) {
      add(field, "must be at most " + maxLength + " characters");
      return null;
    }
    if (s.indexOf('\0') >= 0) {
      add(field, "must not contain NUL characters");
      return null;
    }
    return s;
  }

  String requiredText(String field, String value, int maxLength) {
    String s = text(field, value, maxLength);
    if (s == null && value.strip().isEmpty()) {
      add(field, "is required");
    }
    return s;
  }

  UUID id(String field, String value) {
    if (value.isEmpty()) {
      add(field, "is required");
      return null;
    }
    UUID id = Ids.parseOrNull(value);
    if (id == null) {
      add(field, "must be a UUID like 0190f5c4-8f3e-7a2b-9c1d-2e3f4a5b6c7d");
    }
    return id;
  }

  String requestId(String field, String value) {
    return text(field, value, MAX_REQUEST_ID_LENGTH);
  }

  /** A Struct as compact JSON text, or null when empty. */
  String metadata(String field, Struct struct) {
    if (struct.getFieldsCount() == 0) {
      return null;
    }
    String json;
    try {
      json = JSON.print(struct);
    } catch (InvalidProtocolBufferException | IllegalArgumentException e) {
      add(field, "must be a JSON object: " + e.getMessage());
      return null;
    }
    if (json.getBytes(StandardCharsets.UTF_8).length > MAX_METADATA_BYTES) {
      add(field, "must be at most " + MAX_METADATA_BYTES + " bytes as JSON");
      return null;
    }
    if (json.contains("\\u0000")) {
      add(field, "must not contain NUL characters");
      return null;
    }
    return json;
  }

  int pageSize(String field, int requested) {
    if (requested < 0) {
      add(field, "must not be negative");
      return DEFAULT_PAGE_SIZE;
    }
    return requested == 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
  }

  /**
   * The range of an embedding's squared norm in which pgvector's cosine distance is a number:
   * pgvector sums the squares in float32, so a sum past Float.MAX_VALUE is infinite and the
   * distance NaN, and a sum that underflows to zero divides zero by zero. Half the float maximum
   * leaves room for the order in which SIMD code adds the squares. V3's CHECK uses the same bounds.
   */
  static final double MIN_SQUARED_NORM = Float.MIN_NORMAL;
  static final double MAX_SQUARED_NORM = Float.MAX_VALUE / 2.0;

  /**
   * An embedding of exactly {@code dimension} finite values whose norm is neither zero nor past
   * float32's range (cosine similarity would be NaN for either), or null when empty and
   * {@code required} is false.
   */
  float[] embedding(String field, java.util.List<Float> values, int dimension, boolean required) {
    if (values.isEmpty()) {
      if (required) {
        add(field, "is required");
      }
      return null;
    }
    if (values.size() != dimension) {
      add(field, "must have exactly " + dimension + " values (the deployment's embedding dimension), got "
          + values.size());
      return null;
    }
    float[] v = new float[dimension];
    double squaredNorm = 0;
    // A proto's repeated float is a FloatList: read it unboxed (a bulk write checks 768,000 floats).
    com.google.protobuf.Internal.FloatList floats =
        values instanceof com.google.protobuf.Internal.FloatList f ? f : null;
    for (int i = 0; i < dimension; i++) {
      float x = floats != null ? floats.getFloat(i) : values.get(i);
      if (!Float.isFinite(x)) {
        add(field, "must hold finite numbers only; value [" + i + "] is " + x);
        return null;
      }
      squaredNorm += (double) x * x;
      v[i] = x;
    }
    if (squaredNorm < MIN_SQUARED_NORM) {
      add(field, "must not be all zeros or so small that its norm underflows float32"
          + " (cosine similarity is undefined for it); scale it up, cosine similarity ignores length");
      return null;
    }
    if (squaredNorm > MAX_SQUARED_NORM) {
      add(field, "has a norm too large for float32 arithmetic (cosine similarity would be NaN);"
          + " scale it down, cosine similarity ignores length");
      return null;
    }
    return v;
  }

  /** A timestamp, or null when unset; out-of-range seconds or nanos are a violation. */
  java.time.Instant timestamp(String field, boolean present, com.google.protobuf.Timestamp t) {
    if (!present) {
      return null;
    }
    if (!com.google.protobuf.util.Timestamps.isValid(t)) {
      add(field, "is not a valid timestamp (seconds within years 1-9999, nanos within 0..999,999,999)");
      return null;
    }
    return java.time.Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  /**
   * The fields an update writes. An empty mask means the fields that are set in the request
   * ({@code populated}); "*" means all of them; otherwise each path must be one of {@code byPath}.
   */
  <F extends Enum<F>> EnumSet<F> mask(FieldMask mask, Map<String, F> byPath, Class<F> type,
      Function<F, Boolean> populated) {
    EnumSet<F> fields = EnumSet.noneOf(type);
    if (mask.getPathsCount() == 0) {
      for (F f : byPath.values()) {
        if (populated.apply(f)) {
          fields.add(f);
        }
      }
      return fields;
    }
    for (int i = 0; i < mask.getPathsCount(); i++) {
      String path = mask.getPaths(i);
      if (path.equals("*")) {
        fields.addAll(byPath.values());
        continue;
      }
      F f = byPath.get(path);
      if (f == null) {
        add("update_mask.paths[" + i + "]", "unknown field '" + path + "'; allowed: " + String.join(", ", byPath.keySet()));
      } else {
        fields.add(f);
      }
    }
    return fields;
  }
}
