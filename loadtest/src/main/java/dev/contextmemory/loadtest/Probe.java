package dev.contextmemory.loadtest;

import dev.contextmemory.loadtest.dsl.Calls;
import io.grpc.Channel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Finds which RPCs the server has not implemented yet: each is called once with an empty request,
 * which an implemented RPC rejects (INVALID_ARGUMENT: required fields are missing) without writing
 * anything, and an unimplemented one answers UNIMPLEMENTED. Any other failure means the server is
 * not usable and stops the run.
 */
final class Probe {
  private Probe() {}

  static Set<String> unimplemented(Channel channel, Collection<MethodDescriptor<?, ?>> methods) {
    Set<String> missing = new LinkedHashSet<>();
    for (MethodDescriptor<?, ?> m : methods) {
      Status.Code code = probe(channel, m);
      if (code == Status.Code.UNIMPLEMENTED) {
        missing.add(m.getFullMethodName());
      } else if (code != Status.Code.OK && code != Status.Code.INVALID_ARGUMENT) {
        throw new IllegalStateException("probing " + m.getFullMethodName() + " with an empty request answered "
            + code + "; expected INVALID_ARGUMENT (or UNIMPLEMENTED before its service lands)");
      }
    }
    return missing;
  }

  private static <Q, R> Status.Code probe(Channel channel, MethodDescriptor<Q, R> m) {
    @SuppressWarnings("unchecked")
    Q empty = ((MethodDescriptor.PrototypeMarshaller<Q>) m.getRequestMarshaller()).getMessagePrototype();
    try {
      Calls.blocking(channel, m, empty, Duration.ofSeconds(10));
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }
}
