package dev.contextmemory.mcp;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The few JSON Schema shapes the tool inputs use, as the maps the MCP SDK sends. Objects are
 * closed ({@code additionalProperties: false}), so a misspelt argument is refused by the SDK's
 * input validation with the name of the property, before any call is made.
 */
final class Schema {
  private Schema() {}

  /** A closed object with these properties (in this order), of which {@code required} must be given. */
  static Map<String, Object> object(String description, Map<String, Object> properties, String... required) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("type", "object");
    if (description != null) {
      m.put("description", description);
    }
    m.put("properties", properties);
    if (required.length > 0) {
      m.put("required", List.of(required));
    }
    m.put("additionalProperties", false);
    return m;
  }

  /** Properties in the order given: name, schema, name, schema, ... */
  static Map<String, Object> props(Object... nameThenSchema) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < nameThenSchema.length; i += 2) {
      m.put((String) nameThenSchema[i], nameThenSchema[i + 1]);
    }
    return m;
  }

  static Map<String, Object> string(String description) {
    return typed("string", description);
  }

  static Map<String, Object> string(String description, int maxLength) {
    Map<String, Object> m = typed("string", description);
    m.put("maxLength", maxLength);
    return m;
  }

  /** One of the proto enum's value names, without its UNSPECIFIED. */
  static Map<String, Object> enumeration(String description, String... values) {
    Map<String, Object> m = typed("string", description);
    m.put("enum", List.of(values));
    return m;
  }

  static Map<String, Object> integer(String description, int minimum, int maximum) {
    Map<String, Object> m = typed("integer", description);
    m.put("minimum", minimum);
    m.put("maximum", maximum);
    return m;
  }

  static Map<String, Object> number(String description, double minimum, double maximum) {
    Map<String, Object> m = typed("number", description);
    m.put("minimum", minimum);
    m.put("maximum", maximum);
    return m;
  }

  static Map<String, Object> bool(String description) {
    return typed("boolean", description);
  }

  static Map<String, Object> array(String description, Map<String, Object> items, int minItems, int maxItems) {
    Map<String, Object> m = typed("array", description);
    m.put("items", items);
    m.put("minItems", minItems);
    m.put("maxItems", maxItems);
    return m;
  }

  /** A free-form JSON object (a google.protobuf.Struct). */
  static Map<String, Object> json(String description) {
    return typed("object", description);
  }

  private static Map<String, Object> typed(String type, String description) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("type", type);
    m.put("description", description);
    return m;
  }
}
