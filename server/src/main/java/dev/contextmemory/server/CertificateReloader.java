package dev.contextmemory.server;

import io.grpc.util.AdvancedTlsX509KeyManager;
import io.grpc.util.AdvancedTlsX509TrustManager;
import io.grpc.util.CertificateUtils;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the PEM files named by TLS_CERT_FILE / TLS_KEY_FILE (and TLS_CLIENT_CA_FILE) through
 * grpc-java's advanced TLS managers, and swaps in new contents when the files change, so
 * certificates rotate without a restart: new handshakes get the new certificate, open connections
 * keep theirs.
 *
 * <p>Why not the managers' own file watching: it polls at most once a minute and reloads only when
 * the certificate and the key file both changed, so a renewal that keeps its key (only the
 * certificate file is rewritten) would never be picked up. Here a change of either file's
 * modification time or size triggers a reload, and a certificate and key that do not belong
 * together (a rotation caught between its two writes) are not installed: the previous pair stays
 * until the next check finds a matching one.
 */
final class CertificateReloader implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(CertificateReloader.class);

  private final Path certFile;
  private final Path keyFile;
  private final Path clientCaFile;
  private final AdvancedTlsX509KeyManager keyManager = new AdvancedTlsX509KeyManager();
  private final AdvancedTlsX509TrustManager clientCas;
  private final ScheduledExecutorService timer;
  private String identityVersion = "";
  private String clientCaVersion = "";

  /** Loads the files now (failing on unusable ones) and checks them every {@code interval}. */
  CertificateReloader(Path certFile, Path keyFile, Path clientCaFile, Duration interval)
      throws IOException, GeneralSecurityException {
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.clientCaFile = clientCaFile;
    // Client certificates are checked against the CA only: a client has no host name to match.
    this.clientCas = clientCaFile == null ? null : AdvancedTlsX509TrustManager.newBuilder()
        .setVerification(AdvancedTlsX509TrustManager.Verification.CERTIFICATE_ONLY_VERIFICATION).build();
    reload();
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "tls-reload");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleWithFixedDelay(this::reloadLogged, interval.toMillis(), interval.toMillis(), TimeUnit.MILLISECONDS);
  }

  AdvancedTlsX509KeyManager keyManager() {
    return keyManager;
  }

  /** The trust manager for client certificates, or null without mutual TLS. */
  AdvancedTlsX509TrustManager clientCas() {
    return clientCas;
  }

  private void reloadLogged() {
    try {
      reload();
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      log.warn("TLS files changed but cannot be used yet; still serving the previous ones: {}", e.toString());
    }
  }

  private synchronized void reload() throws IOException, GeneralSecurityException {
    String identity = version(certFile) + "|" + version(keyFile);
    if (!identity.equals(identityVersion)) {
      X509Certificate[] chain;
      PrivateKey key;
      try (InputStream c = Files.newInputStream(certFile); InputStream k = Files.newInputStream(keyFile)) {
        chain = CertificateUtils.getX509Certificates(c);
        key = CertificateUtils.getPrivateKey(k);
      }
      if (chain.length == 0 || !belongTogether(key, chain[0].getPublicKey())) {
        throw new GeneralSecurityException("the private key does not belong to the certificate");
      }
      keyManager.updateIdentityCredentials(chain, key);
      if (!identityVersion.isEmpty()) {
        log.info("TLS certificate reloaded: {}, valid until {}", chain[0].getSubjectX500Principal(),
            chain[0].getNotAfter().toInstant());
      }
      identityVersion = identity;
    }
    if (clientCaFile != null) {
      String ca = version(clientCaFile);
      if (!ca.equals(clientCaVersion)) {
        clientCas.updateTrustCredentials(clientCaFile.toFile());
        if (!clientCaVersion.isEmpty()) {
          log.info("TLS client CA file reloaded");
        }
        clientCaVersion = ca;
      }
    }
  }

  private static String version(Path p) throws IOException {
    return Files.getLastModifiedTime(p).toMillis() + ":" + Files.size(p);
  }

  /** Signs a random nonce with the key and verifies it with the certificate's public key. */
  private static boolean belongTogether(PrivateKey key, PublicKey certificateKey) throws GeneralSecurityException {
    String algorithm = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      case "Ed25519", "EdDSA" -> "Ed25519";
      default -> null;
    };
    if (algorithm == null) {
      return true; // cannot check this key type here; the handshake will
    }
    byte[] nonce = new byte[32];
    new SecureRandom().nextBytes(nonce);
    Signature signer = Signature.getInstance(algorithm);
    signer.initSign(key);
    signer.update(nonce);
    byte[] signature = signer.sign();
    Signature verifier = Signature.getInstance(algorithm);
    verifier.initVerify(certificateKey);
    verifier.update(nonce);
    return verifier.verify(signature);
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
