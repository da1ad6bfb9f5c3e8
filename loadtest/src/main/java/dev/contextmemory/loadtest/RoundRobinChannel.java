package dev.contextmemory.loadtest;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Several servers as one channel, for load-testing replicas ({@code --target H:P,H:P}): each call
 * goes to the next server in turn, as gRPC's round_robin policy spreads calls over a cluster. One
 * channel per server keeps every server's connection and flow control separate, as a client with
 * round_robin has them.
 */
final class RoundRobinChannel extends ManagedChannel {
  private final List<ManagedChannel> channels;
  private final AtomicInteger next = new AtomicInteger();

  RoundRobinChannel(List<ManagedChannel> channels) {
    if (channels.isEmpty()) {
      throw new IllegalArgumentException("no channel");
    }
    this.channels = List.copyOf(channels);
  }

  @Override
  public <Q, R> ClientCall<Q, R> newCall(MethodDescriptor<Q, R> method, CallOptions options) {
    return channels.get(Math.floorMod(next.getAndIncrement(), channels.size())).newCall(method, options);
  }

  @Override
  public String authority() {
    return channels.get(0).authority();
  }

  @Override
  public ManagedChannel shutdown() {
    channels.forEach(ManagedChannel::shutdown);
    return this;
  }

  @Override
  public ManagedChannel shutdownNow() {
    channels.forEach(ManagedChannel::shutdownNow);
    return this;
  }

  @Override
  public boolean isShutdown() {
    return channels.stream().allMatch(ManagedChannel::isShutdown);
  }

  @Override
  public boolean isTerminated() {
    return channels.stream().allMatch(ManagedChannel::isTerminated);
  }

  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    for (ManagedChannel c : channels) {
      if (!c.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        return false;
      }
    }
    return true;
  }
}
