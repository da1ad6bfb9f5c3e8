package dev.contextmemory.loadtest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.v1.ConversationServiceGrpc;
import dev.contextmemory.v1.GetConversationRequest;
import dev.contextmemory.v1.GetConversationResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@code --target H:P,H:P}: two real Netty servers, each gets every other call. */
class RoundRobinChannelTest {
  @Test
  void callsAlternateBetweenTheServers() throws Exception {
    List<Server> servers = new ArrayList<>();
    List<AtomicInteger> counts = List.of(new AtomicInteger(), new AtomicInteger());
    List<ManagedChannel> channels = new ArrayList<>();
    try {
      for (AtomicInteger count : counts) {
        servers.add(NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(new ConversationServiceGrpc.ConversationServiceImplBase() {
              @Override
              public void getConversation(GetConversationRequest req, StreamObserver<GetConversationResponse> out) {
                count.incrementAndGet();
                out.onNext(GetConversationResponse.getDefaultInstance());
                out.onCompleted();
              }
            }).build().start());
        channels.add(HarnessChannel.open("127.0.0.1", servers.getLast().getPort(), null));
      }
      ManagedChannel ch = new RoundRobinChannel(channels);
      for (int i = 0; i < 10; i++) {
        ConversationServiceGrpc.newBlockingStub(ch).getConversation(GetConversationRequest.getDefaultInstance());
      }
      assertEquals(5, counts.get(0).get());
      assertEquals(5, counts.get(1).get());
      ch.shutdownNow();
      assertTrue(ch.awaitTermination(5, TimeUnit.SECONDS));
      assertTrue(ch.isShutdown() && ch.isTerminated());
    } finally {
      channels.forEach(ManagedChannel::shutdownNow);
      for (Server s : servers) {
        s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }
}
