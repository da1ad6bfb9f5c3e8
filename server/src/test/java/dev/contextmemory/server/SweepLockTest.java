package dev.contextmemory.server;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.contextmemory.server.store.SweepLock;
import dev.contextmemory.server.testing.TestDatabase;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import org.junit.jupiter.api.Test;

/**
 * The sweepers' round lock: one holder at a time across servers, released when the holder closes
 * it or its session ends, and a holder whose session ended knows it (the round stops).
 */
class SweepLockTest {

  @Test
  void oneHolderAtATimeAndALostSessionIsNoticed() throws Exception {
    String db = TestDatabase.create();
    String holderUrl = db + "&ApplicationName=sweep-lock-holder";
    SweepLock first = new SweepLock(() -> DriverManager.getConnection(holderUrl));
    SweepLock second = new SweepLock(() -> DriverManager.getConnection(db));

    SweepLock.Held held = first.tryAcquire();
    assertNotNull(held);
    assertTrue(held.stillHeld());
    assertNull(second.tryAcquire(), "another server's round is running");

    held.close();
    SweepLock.Held next = second.tryAcquire();
    assertNotNull(next, "closing the round released the lock");
    next.close();

    SweepLock.Held doomed = first.tryAcquire();
    assertNotNull(doomed);
    try (Connection admin = DriverManager.getConnection(db); Statement st = admin.createStatement()) {
      // With a timeout it returns once the backend has exited: its session's locks are released by
      // then. Without one it returns after sending the signal, and the backend may still be on its
      // way out (its error already sent to the client) when the second server tries the lock below.
      st.execute("SELECT pg_terminate_backend(pid, 60000) FROM pg_stat_activity"
          + " WHERE application_name = 'sweep-lock-holder'");
    }
    assertFalse(doomed.stillHeld(), "the holder's session was ended: the round must stop");
    doomed.close();
    SweepLock.Held after = second.tryAcquire();
    assertNotNull(after, "the ended session took the lock with it");
    after.close();
  }
}
