package dev.contextmemory.client;

import dev.contextmemory.client.Targets.HostAndPort;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * Resolves a fixed list of {@code host:port} entries, for a client given several servers
 * ({@code "10.0.0.1:50051,10.0.0.2:50051"}): each address of each entry becomes one endpoint of
 * the channel's round_robin policy. Host names are looked up again whenever gRPC asks for a
 * refresh (after a connection fails), so a server that moves to a new IP is found.
 *
 * <p>The list travels in the channel's resolver arguments ({@link #ADDRESSES}), not in the target
 * URI, which cannot hold IPv6 literals in its path. The provider is registered once, globally,
 * under a scheme of its own, {@value #SCHEME}; it resolves nothing for channels that do not carry
 * the argument.
 */
final class StaticNameResolverProvider extends NameResolverProvider {
  static final String SCHEME = "contextmemory-static";
  static final NameResolver.Args.Key<List<HostAndPort>> ADDRESSES =
      NameResolver.Args.Key.create("contextmemory-static-addresses");

  private static final StaticNameResolverProvider INSTANCE = new StaticNameResolverProvider();
  private static boolean registered;

  static synchronized void register() {
    if (!registered) {
      NameResolverRegistry.getDefaultRegistry().register(INSTANCE);
      registered = true;
    }
  }

  /** The target string for a channel whose {@link #ADDRESSES} argument holds the list. */
  static String target() {
    return SCHEME + ":///list";
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
    if (!SCHEME.equals(targetUri.getScheme())) {
      return null;
    }
    List<HostAndPort> addresses = args.getArg(ADDRESSES);
    if (addresses == null || addresses.isEmpty()) {
      return null;
    }
    return new Resolver(addresses, args.getOffloadExecutor());
  }

  private static final class Resolver extends NameResolver {
    private final List<HostAndPort> entries;
    private final Executor executor;
    private Listener2 listener;

    Resolver(List<HostAndPort> entries, Executor executor) {
      this.entries = entries;
      // Name lookups block; gRPC supplies an executor for that. Without one, resolve inline.
      this.executor = executor != null ? executor : Runnable::run;
    }

    /** The first entry: what TLS verifies and what the :authority header says, unless overridden. */
    @Override
    public String getServiceAuthority() {
      return entries.get(0).toString();
    }

    @Override
    public void start(Listener2 listener) {
      this.listener = listener;
      resolve();
    }

    @Override
    public void refresh() {
      resolve();
    }

    private void resolve() {
      Listener2 l = listener;
      executor.execute(() -> {
        List<EquivalentAddressGroup> groups = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        for (HostAndPort e : entries) {
          try {
            for (InetAddress a : InetAddress.getAllByName(e.host())) {
              groups.add(new EquivalentAddressGroup(new InetSocketAddress(a, e.port())));
            }
          } catch (UnknownHostException ex) {
            failures.add(e + ": " + ex.getMessage());
          }
        }
        if (groups.isEmpty()) {
          l.onError(Status.UNAVAILABLE.withDescription("no address of " + entries + " resolves: " + failures));
        } else {
          l.onResult(ResolutionResult.newBuilder().setAddresses(groups).build());
        }
      });
    }

    @Override
    public void shutdown() {}
  }
}
