package dev.contextmemory.client;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP forwarder on a fixed local port, standing for the network between client and server. Its
 * {@link #cut()} is what a server crash looks like to a client: every open connection dies at once
 * (reset, mid-call) and new connections are refused, until {@link #restore()}.
 */
final class TcpLink implements AutoCloseable {
  private final int port;
  private final int serverPort;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private volatile ServerSocket listener;

  TcpLink(int port, int serverPort) {
    this.port = port;
    this.serverPort = serverPort;
    restore();
  }

  String target() {
    return "127.0.0.1:" + port;
  }

  /** Starts accepting again on the same port, forwarding to the server port. */
  synchronized void restore() {
    try {
      ServerSocket s = new ServerSocket();
      s.setReuseAddress(true);
      s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
      listener = s;
      Thread.ofVirtual().start(() -> accept(s));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Resets every open connection and refuses new ones. */
  synchronized void cut() {
    closeQuietly(listener);
    for (Socket s : sockets) {
      try {
        s.setSoLinger(true, 0); // RST, as when the peer's process is gone
      } catch (IOException ignored) {
        // already closed
      }
      closeQuietly(s);
    }
    sockets.clear();
  }

  @Override
  public void close() {
    cut();
  }

  private void accept(ServerSocket s) {
    while (!s.isClosed()) {
      Socket client;
      try {
        client = s.accept();
      } catch (IOException e) {
        continue; // the listener was closed by cut(): the loop ends
      }
      Socket server;
      try {
        server = new Socket(InetAddress.getLoopbackAddress(), serverPort);
      } catch (IOException e) {
        closeQuietly(client); // the server is down: the client sees its connection fail
        continue;
      }
      if (!register(s, client, server)) {
        return;
      }
      Thread.ofVirtual().start(() -> pipe(client, server));
      Thread.ofVirtual().start(() -> pipe(server, client));
    }
  }

  /**
   * Adds a connection pair unless {@code s} was cut meanwhile, under cut()'s lock: a connection
   * accepted while cut() ran (the listener's close does not stop an accept already returning)
   * would otherwise be left open past the cut, and a client's retry would reach the old server
   * through it (RetryAcrossRestartTest failed so once, its retry answered by the server being
   * stopped instead of the restarted one).
   */
  private synchronized boolean register(ServerSocket s, Socket client, Socket server) {
    if (s.isClosed() || listener != s) {
      closeQuietly(client);
      closeQuietly(server);
      return false;
    }
    sockets.add(client);
    sockets.add(server);
    return true;
  }

  private void pipe(Socket from, Socket to) {
    byte[] buf = new byte[16384];
    try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
      int n;
      while ((n = in.read(buf)) >= 0) {
        out.write(buf, 0, n);
        out.flush();
      }
    } catch (IOException e) {
      // one side is gone; closing both below ends the other pipe too
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c != null) {
      try {
        c.close();
      } catch (Exception ignored) {
        // nothing to do
      }
    }
  }
}
