package dev.contextmemory.server;

import dev.contextmemory.server.config.SecuritySettings;
import dev.contextmemory.server.config.Settings;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.GeneralSecurityException;
import java.util.concurrent.TimeUnit;

/**
 * The production transport: Netty on {@code HOST:PORT}, plaintext or TLS (mutual TLS with a client
 * CA file); the certificate files are watched by {@link CertificateReloader}.
 */
final class NettyTransport implements Closeable {
  private final NettyServerBuilder builder;
  private final CertificateReloader certificates; // null: plaintext

  private NettyTransport(NettyServerBuilder builder, CertificateReloader certificates) {
    this.builder = builder;
    this.certificates = certificates;
  }

  static NettyTransport create(Settings s) throws IOException {
    SecuritySettings sec = s.security();
    CertificateReloader certificates = null;
    ServerCredentials credentials = InsecureServerCredentials.create();
    if (sec.tls()) {
      try {
        certificates = new CertificateReloader(sec.tlsCertFile(), sec.tlsKeyFile(), sec.tlsClientCaFile(),
            sec.tlsReloadInterval());
      } catch (GeneralSecurityException | IOException e) {
        throw new IllegalArgumentException("cannot use the TLS files (" + Settings.PREFIX + "TLS_CERT_FILE, "
            + Settings.PREFIX + "TLS_KEY_FILE, " + Settings.PREFIX + "TLS_CLIENT_CA_FILE): " + e.getMessage(), e);
      }
      TlsServerCredentials.Builder tls = TlsServerCredentials.newBuilder().keyManager(certificates.keyManager());
      if (certificates.clientCas() != null) {
        tls.trustManager(certificates.clientCas()).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
      }
      credentials = tls.build();
    }
    NettyServerBuilder netty = NettyServerBuilder.forAddress(new InetSocketAddress(s.host(), s.port()), credentials)
        // Clients of this API keep long-lived channels with keepalive pings (the Java client pings
        // every 30 s); allow that instead of answering with GOAWAY.
        .permitKeepAliveTime(20, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true)
        // The server pings too: a WatchConversations stream whose client vanished without a FIN
        // (a dead host, a dropped NAT entry) ends within 80 s and frees its stream slot.
        .keepAliveTime(60, TimeUnit.SECONDS)
        .keepAliveTimeout(20, TimeUnit.SECONDS);
    return new NettyTransport(netty, certificates);
  }

  /** Starts the whole server on this transport; stopping the server stops the file watchers. */
  static ContextMemoryServer serve(Settings s) throws IOException {
    NettyTransport transport = create(s);
    try {
      ContextMemoryServer server = ContextMemoryServer.start(s, transport.builder);
      server.closeOnStop(transport);
      return server;
    } catch (RuntimeException | IOException e) {
      transport.close();
      throw e;
    }
  }

  /** Stops watching the certificate files. */
  @Override
  public void close() {
    if (certificates != null) {
      certificates.close();
    }
  }
}
