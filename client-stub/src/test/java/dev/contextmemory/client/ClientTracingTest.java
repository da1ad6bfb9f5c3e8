package dev.contextmemory.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.testing.TestDatabase;
import dev.contextmemory.v1.CreateCustomerRequest;
import dev.contextmemory.v1.Customer;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.ContextPropagators;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** The client sends the caller's trace context in W3C traceparent metadata, over a real socket. */
class ClientTracingTest {
  private static final Metadata.Key<String> TRACEPARENT = Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER);

  @Test
  void theCallersSpanReachesTheServerAsTraceparent() {
    List<String> seen = new CopyOnWriteArrayList<>();
    ServerInterceptor recorder = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        seen.add(String.valueOf(headers.get(TRACEPARENT)));
        return next.startCall(call, headers);
      }
    };
    OpenTelemetry otel = OpenTelemetry.propagating(ContextPropagators.create(W3CTraceContextPropagator.getInstance()));
    SpanContext caller = SpanContext.create("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331",
        TraceFlags.getSampled(), TraceState.getDefault());
    try (LiveServer server = LiveServer.start(TestDatabase.create(), 0, List.of(recorder));
        ContextMemoryClient traced = ContextMemoryClient.newBuilder(server.target()).openTelemetry(otel).build();
        ContextMemoryClient plain = ContextMemoryClient.newBuilder(server.target()).build()) {
      CreateCustomerRequest request = CreateCustomerRequest.newBuilder()
          .setCustomer(Customer.newBuilder().setDisplayName("Traced")).build();
      try (Scope ignored = Span.wrap(caller).makeCurrent()) {
        traced.customers().createCustomer(request);
        plain.customers().createCustomer(request);
      }
      assertEquals(2, seen.size(), seen::toString);
      String header = seen.get(0);
      assertTrue(header.startsWith("00-0af7651916cd43dd8448eb211c80319c-"), header);
      assertTrue(header.endsWith("-01"), header);
      assertNotEquals("null", header);
      assertEquals("null", seen.get(1), "without openTelemetry(...) the client sends no trace context");
    }
  }
}
