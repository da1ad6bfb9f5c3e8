package dev.contextmemory.server;

import dev.contextmemory.server.config.SecuritySettings;
import dev.contextmemory.server.config.Settings;
import io.grpc.InsecureServerCredentials;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The production transport: Netty on {@code HOST:PORT}, plaintext or TLS. With TLS, grpc-java's
 * advanced TLS managers re-read the PEM files every TLS_RELOAD_INTERVAL_MS and switch to a new
 * certificate (or client CA) when the files' modification time changes, so certificates rotate
 * without a restart: new handshakes use the new files, open connections keep theirs. A file that
 * fails to parse during a reload is logged by grpc-java and the previous credentials stay.
 */
final class NettyTransport implements Closeable {
  private final NettyServerBuilder builder;
  private final List<Closeable> reloaders;
  private final ScheduledExecutorService reloadTimer;

  private NettyTransport(NettyServerBuilder builder, List<Closeable> reloaders, ScheduledExecutorService reloadTimer) {
    this.builder = builder;
    this.reloaders = reloaders;
    this.reloadTimer = reloadTimer;
  }

  static NettyTransport create(Settings s) throws IOException {
    SecuritySettings sec = s.security();
    List<Closeable> reloaders = new ArrayList<>();
    ScheduledExecutorService timer = null;
    ServerCredentials credentials = InsecureServerCredentials.create();
    if (sec.tls()) {
      timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "tls-reload");
        t.setDaemon(true);
        return t;
      });
      long period = sec.tlsReloadInterval().toMillis();
      try {
        AdvancedTlsX509KeyManager keys = new AdvancedTlsX509KeyManager();
        reloaders.add(keys.updateIdentityCredentials(sec.tlsCertFile().toFile(), sec.tlsKeyFile().toFile(),
            period, TimeUnit.MILLISECONDS, timer)::close);
        TlsServerCredentials.Builder tls = TlsServerCredentials.newBuilder().keyManager(keys);
        if (sec.tlsClientCaFile() != null) {
          // Client certificates are checked against the CA only: a client has no host name to match.
          AdvancedTlsX509TrustManager clientCas = AdvancedTlsX509TrustManager.newBuilder()
              .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION)
              .build();
          reloaders.add(clientCas.updateTrustCredentials(sec.tlsClientCaFile().toFile(), period,
              TimeUnit.MILLISECONDS, timer)::close);
          tls.trustManager(clientCas).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
        }
        credentials = tls.build();
      } catch (GeneralSecurityException | IOException e) {
        timer.shutdownNow();
        throw new IllegalArgumentException("cannot use the TLS files (" + Settings.PREFIX + "TLS_CERT_FILE, "
            + Settings.PREFIX + "TLS_KEY_FILE, " + Settings.PREFIX + "TLS_CLIENT_CA_FILE): " + e.getMessage(), e);
      }
    }
    NettyServerBuilder netty = NettyServerBuilder.forAddress(new InetSocketAddress(s.host(), s.port()), credentials)
        // Clients of this API keep long-lived channels with keepalive pings (the Java client pings
        // every 30 s); allow that instead of answering with GOAWAY.
        .permitKeepAliveTime(20, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true);
    return new NettyTransport(netty, reloaders, timer);
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
    for (Closeable c : reloaders) {
      try {
        c.close();
      } catch (IOException ignored) {
        // nothing to release beyond the timer below
      }
    }
    if (reloadTimer != null) {
      reloadTimer.shutdownNow();
    }
  }
}
