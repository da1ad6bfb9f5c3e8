package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import dev.contextmemory.v1.AdminProto;
import dev.contextmemory.v1.ConversationProto;
import dev.contextmemory.v1.CustomerProto;
import dev.contextmemory.v1.MemoryProto;
import io.grpc.health.v1.HealthProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The grpcurl commands in README.md and docs/operations.md name real methods and send request
 * bodies that parse as those methods' requests (proto3 JSON; an unknown field or enum name fails).
 */
class OperatorDocsTest {
  private static final List<ServiceDescriptor> SERVICES = Stream.of(
          CustomerProto.getDescriptor(), ConversationProto.getDescriptor(), MemoryProto.getDescriptor(),
          AdminProto.getDescriptor(), HealthProto.getDescriptor())
      .flatMap(f -> f.getServices().stream()).toList();
  private static final Pattern BODY = Pattern.compile("-d '([^']*)'.*?\\s([\\w.]+)/(\\w+)\\s*$");

  @Test
  void everyGrpcurlCallParses() throws IOException {
    List<String> checked = new ArrayList<>();
    for (Path doc : List.of(Path.of("..", "README.md"), Path.of("..", "docs", "operations.md"))) {
      for (String command : commands(Files.readString(doc))) {
        if (!command.contains(" -d ")) {
          continue;
        }
        Matcher m = BODY.matcher(command);
        assertTrue(m.find(), () -> doc + ": cannot read the body and method of `" + command + "`");
        MethodDescriptor method = method(m.group(2), m.group(3), command);
        DynamicMessage.Builder request = DynamicMessage.newBuilder(method.getInputType());
        try {
          JsonFormat.parser().merge(m.group(1), request);
        } catch (InvalidProtocolBufferException e) {
          fail(doc + ": the body of `" + command + "` is not a " + method.getInputType().getFullName() + ": "
              + e.getMessage());
        }
        checked.add(method.getFullName());
      }
    }
    // Health, and at least one call of each API service.
    for (String service : List.of("grpc.health.v1.Health", "contextmemory.v1.CustomerService",
        "contextmemory.v1.ConversationService", "contextmemory.v1.MemoryService", "contextmemory.v1.AdminService")) {
      assertTrue(checked.stream().anyMatch(c -> c.startsWith(service + ".")), () -> "no call of " + service);
    }
  }

  @Test
  void everyDescribedSymbolExists() throws IOException {
    Pattern describe = Pattern.compile("grpcurl .*\\b(?:describe|list) ([\\w.]+)\\s*$");
    for (String command : commands(Files.readString(Path.of("..", "README.md")))) {
      Matcher m = describe.matcher(command);
      if (m.find()) {
        String symbol = m.group(1);
        boolean found = SERVICES.stream().anyMatch(s -> s.getFullName().equals(symbol)
            || s.getMethods().stream().anyMatch(x -> x.getFullName().equals(symbol))
            || s.getFile().findMessageTypeByName(symbol.substring(symbol.lastIndexOf('.') + 1)) != null
                && s.getFile().getPackage().equals(symbol.substring(0, symbol.lastIndexOf('.'))));
        assertTrue(found, () -> "`" + command + "` names no service, method or message: " + symbol);
      }
    }
  }

  private static MethodDescriptor method(String service, String name, String command) {
    ServiceDescriptor s = SERVICES.stream().filter(x -> x.getFullName().equals(service)).findFirst().orElse(null);
    assertNotNull(s, () -> "`" + command + "` calls an unknown service " + service);
    MethodDescriptor m = s.findMethodByName(name);
    assertNotNull(m, () -> "`" + command + "` calls an unknown method " + service + "/" + name);
    return m;
  }

  /**
   * The grpcurl commands of the code blocks, each joined into one line: a command goes on after a
   * line that ends with a backslash, or while a single-quoted argument (a JSON body) is open.
   */
  private static List<String> commands(String markdown) {
    List<String> out = new ArrayList<>();
    boolean inCode = false;
    StringBuilder current = null;
    for (String line : markdown.split("\n")) {
      String l = line.strip();
      if (l.startsWith("```")) {
        inCode = !inCode;
        current = null;
        continue;
      }
      if (!inCode) {
        continue;
      }
      if (current == null && (l.startsWith("$ grpcurl ") || l.startsWith("grpcurl "))) {
        current = new StringBuilder();
      }
      if (current != null) {
        boolean backslash = l.endsWith("\\");
        current.append(backslash ? l.substring(0, l.length() - 1) : l).append(' ');
        boolean quoteOpen = current.chars().filter(c -> c == '\'').count() % 2 == 1;
        if (!backslash && !quoteOpen) {
          out.add(current.toString().strip());
          current = null;
        }
      }
    }
    return out;
  }
}
