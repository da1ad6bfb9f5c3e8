package dev.contextmemory.server.grpc;

import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * A request whose bytes are not a valid message (truncated, wrong wire types, a string field that
 * is not UTF-8) is the caller's mistake, but grpc-java's protobuf marshaller reports it as
 * an error of its own. This wraps each method's request marshaller so that such a request reaches
 * {@link ExceptionInterceptor} as a null message, which answers INVALID_ARGUMENT with ErrorInfo
 * reason MALFORMED_REQUEST (no field can be named: the message could not be read).
 */
public final class MalformedRequests {
  private MalformedRequests() {}

  public static ServerServiceDefinition wrap(ServerServiceDefinition service) {
    ServiceDescriptor original = service.getServiceDescriptor();
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
      methods.add(withCheckedRequests(m));
    }
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
        .setSchemaDescriptor(original.getSchemaDescriptor());
    methods.forEach(m -> descriptor.addMethod(m.getMethodDescriptor()));
    ServerServiceDefinition.Builder wrapped = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(wrapped::addMethod);
    return wrapped.build();
  }

  private static <Q, R> ServerMethodDefinition<Q, R> withCheckedRequests(ServerMethodDefinition<Q, R> m) {
    return ServerMethodDefinition.create(wrapMethod(m.getMethodDescriptor()), m.getServerCallHandler());
  }

  private static <Q, R> MethodDescriptor<Q, R> wrapMethod(MethodDescriptor<Q, R> m) {
    MethodDescriptor.Marshaller<Q> requests = m.getRequestMarshaller();
    MethodDescriptor.Marshaller<Q> checked = new MethodDescriptor.Marshaller<>() {
      @Override
      public InputStream stream(Q value) {
        return requests.stream(value);
      }

      @Override
      public Q parse(InputStream stream) {
        try {
          return requests.parse(stream);
        } catch (RuntimeException e) {
          // A marshaller's exception can't carry a status to the caller (grpc-java answers UNKNOWN),
          // so hand the listener a null message instead: ExceptionInterceptor answers it. Not only
          // StatusRuntimeException: protobuf-java 3.25's stream decoder throws
          // ArrayIndexOutOfBoundsException for some truncated varints (found by RequestFuzzTest).
          return null;
        }
      }
    };
    return m.toBuilder(checked, m.getResponseMarshaller()).build();
  }
}
