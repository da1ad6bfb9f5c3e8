package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.config.Settings;
import dev.contextmemory.server.testing.TestDatabase;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status.Code;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.testing.TlsTesting;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS and mutual TLS on the real Netty transport, with grpc-testing's test CA and certificates
 * (server0: CN *.test.google.com.au; server1: SAN *.test.google.fr; both signed by ca.pem).
 */
class TlsTest {
  @TempDir Path dir;

  private Path copy(String resource, String name) throws IOException {
    Path p = dir.resolve(name);
    try (InputStream in = TlsTesting.loadCert(resource)) {
      Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING);
    }
    return p;
  }

  private ContextMemoryServer serve(Map<String, String> extra) throws IOException {
    Map<String, String> env = new HashMap<>();
    env.put("CONTEXT_MEMORY_DB_URL", TestDatabase.create());
    env.put("CONTEXT_MEMORY_DB_POOL_SIZE", "2");
    env.put("CONTEXT_MEMORY_HOST", "127.0.0.1");
    env.put("CONTEXT_MEMORY_PORT", Integer.toString(freePort()));
    env.put("CONTEXT_MEMORY_AUTH", "none");
    env.put("CONTEXT_MEMORY_HEALTH_CHECK_INTERVAL_MS", "200");
    env.put("CONTEXT_MEMORY_SHUTDOWN_GRACE_SECONDS", "1");
    extra.forEach((k, v) -> env.put(Settings.PREFIX + k, v));
    return NettyTransport.serve(Settings.from(env));
  }

  private ManagedChannel channel(ContextMemoryServer server, ChannelCredentials creds, String authority) {
    var b = Grpc.newChannelBuilderForAddress("127.0.0.1", server.port(), creds);
    if (authority != null) {
      b.overrideAuthority(authority);
    }
    return b.build();
  }

  private ChannelCredentials trustingTestCa() throws IOException {
    try (InputStream ca = TlsTesting.loadCert("ca.pem")) {
      return TlsChannelCredentials.newBuilder().trustManager(ca).build();
    }
  }

  private static HealthCheckResponse.ServingStatus health(ManagedChannel ch) {
    return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
  }

  @Test
  void servesTlsAndRefusesPlaintextClientsCleanly() throws Exception {
    Map<String, String> tls = Map.of("TLS_CERT_FILE", copy("server1.pem", "s.pem").toString(),
        "TLS_KEY_FILE", copy("server1.key", "s.key").toString());
    try (ContextMemoryServer server = serve(tls)) {
      ManagedChannel plain = channel(server, InsecureChannelCredentials.create(), null);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> health(plain));
      assertEquals(Code.UNAVAILABLE, e.getStatus().getCode(), e::toString);
      plain.shutdownNow();

      ManagedChannel secure = channel(server, trustingTestCa(), "foo.test.google.fr");
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health(secure));
      secure.shutdownNow();
    }
  }

  @Test
  void mutualTlsRequiresAClientCertificateFromTheConfiguredCa() throws Exception {
    Map<String, String> mtls = Map.of("TLS_CERT_FILE", copy("server1.pem", "s.pem").toString(),
        "TLS_KEY_FILE", copy("server1.key", "s.key").toString(),
        "TLS_CLIENT_CA_FILE", copy("ca.pem", "clients.pem").toString());
    try (ContextMemoryServer server = serve(mtls)) {
      ManagedChannel anonymous = channel(server, trustingTestCa(), "foo.test.google.fr");
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> health(anonymous));
      assertEquals(Code.UNAVAILABLE, e.getStatus().getCode(), e::toString);
      anonymous.shutdownNow();

      ChannelCredentials withCert;
      try (InputStream ca = TlsTesting.loadCert("ca.pem");
           InputStream cert = TlsTesting.loadCert("client.pem");
           InputStream key = TlsTesting.loadCert("client.key")) {
        withCert = TlsChannelCredentials.newBuilder().trustManager(ca).keyManager(cert, key).build();
      }
      ManagedChannel authenticated = channel(server, withCert, "foo.test.google.fr");
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health(authenticated));
      authenticated.shutdownNow();
    }
  }

  @Test
  void rotatedCertificateFilesAreServedWithoutARestart() throws Exception {
    Path cert = copy("server0.pem", "s.pem");
    Path key = copy("server0.key", "s.key");
    Map<String, String> tls = Map.of("TLS_CERT_FILE", cert.toString(), "TLS_KEY_FILE", key.toString(),
        "TLS_RELOAD_INTERVAL_MS", "100");
    try (ContextMemoryServer server = serve(tls)) {
      ManagedChannel before = channel(server, trustingTestCa(), "x.test.google.com.au");
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health(before));
      before.shutdownNow();
      assertTrue(presented(server.port()).contains("CN=*.test.google.com.au"));

      // Rotate: server1's certificate and key replace server0's (a later modification time, as a
      // certificate manager's rename would give).
      copy("server1.pem", "s.pem.new");
      copy("server1.key", "s.key.new");
      Files.move(dir.resolve("s.key.new"), key, StandardCopyOption.REPLACE_EXISTING);
      Files.move(dir.resolve("s.pem.new"), cert, StandardCopyOption.REPLACE_EXISTING);
      FileTime later = FileTime.from(Instant.now().plusSeconds(5));
      Files.setLastModifiedTime(key, later);
      Files.setLastModifiedTime(cert, later);

      // New handshakes get the new certificate within a few reload intervals.
      String now = "";
      for (int i = 0; i < 100 && !now.contains("CN=*.test.google.com,"); i++) {
        Thread.sleep(100);
        now = presented(server.port());
      }
      assertTrue(now.contains("CN=*.test.google.com,"), "still presenting " + now);
      ManagedChannel after = channel(server, trustingTestCa(), "foo.test.google.fr");
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, health(after));
      after.shutdownNow();
      ManagedChannel old = channel(server, trustingTestCa(), "x.test.google.com.au");
      assertThrows(StatusRuntimeException.class, () -> health(old), "the old certificate is no longer served");
      old.shutdownNow();
    }
  }

  /** The subject of the certificate the server presents to a new connection (trusting anything). */
  static String presented(int port) throws Exception {
    javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLS");
    ctx.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
      public void checkClientTrusted(java.security.cert.X509Certificate[] c, String a) {}
      public void checkServerTrusted(java.security.cert.X509Certificate[] c, String a) {}
      public java.security.cert.X509Certificate[] getAcceptedIssuers() { return new java.security.cert.X509Certificate[0]; }
    }}, null);
    try (javax.net.ssl.SSLSocket sock = (javax.net.ssl.SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port)) {
      javax.net.ssl.SSLParameters params = sock.getSSLParameters();
      params.setApplicationProtocols(new String[] {"h2"});
      sock.setSSLParameters(params);
      sock.startHandshake();
      return ((java.security.cert.X509Certificate) sock.getSession().getPeerCertificates()[0]).getSubjectX500Principal().toString();
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }
}
