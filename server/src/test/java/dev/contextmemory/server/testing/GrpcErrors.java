package dev.contextmemory.server.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.function.Executable;

/** Assertions on the rich error model: status code, ErrorInfo reason, BadRequest field. */
public final class GrpcErrors {
  private GrpcErrors() {}

  /** Runs {@code call}, expects it to fail with {@code code} and ErrorInfo {@code reason}. */
  public static Status assertError(io.grpc.Status.Code code, String reason, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), () -> "status of " + e.getStatus());
    Status s = StatusProto.fromThrowable(e);
    assertNotNull(s, "no google.rpc.Status in the trailers of " + e.getStatus());
    ErrorInfo info = detail(s, ErrorInfo.class).orElseThrow(() -> new AssertionError("no ErrorInfo in " + s));
    assertEquals(reason, info.getReason(), () -> "reason of " + s);
    assertEquals("contextmemory.dev", info.getDomain());
    return s;
  }

  /** Like {@link #assertError} and also expects a BadRequest field violation naming {@code field}. */
  public static Status assertFieldError(io.grpc.Status.Code code, String reason, String field, Executable call) {
    Status s = assertError(code, reason, call);
    BadRequest br = detail(s, BadRequest.class).orElseThrow(() -> new AssertionError("no BadRequest in " + s));
    List<String> fields = br.getFieldViolationsList().stream().map(BadRequest.FieldViolation::getField).toList();
    assertTrue(fields.contains(field), () -> "expected a violation of " + field + ", got " + fields);
    return s;
  }

  public static Status assertInvalid(String field, Executable call) {
    return assertFieldError(io.grpc.Status.Code.INVALID_ARGUMENT, "INVALID_ARGUMENT", field, call);
  }

  public static <T extends Message> Optional<T> detail(Status s, Class<T> type) {
    for (Any any : s.getDetailsList()) {
      if (any.is(type)) {
        try {
          return Optional.of(any.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          fail(e);
        }
      }
    }
    return Optional.empty();
  }
}
