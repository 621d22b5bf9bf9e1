package cn.medaid.client;

import cn.medaid.settlement.v1.Discharge;
import cn.medaid.settlement.v1.ReverseSettlementRequest;
import cn.medaid.settlement.v1.SettlementResult;
import cn.medaid.settlement.v1.SettlementServiceGrpc;
import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Settles, re-posts, conflicts, sends an invalid discharge and reverses, with the classes Maven
 * generated from medaid's .proto, and prints one JSON line per call: what the result or the
 * failure (its status, medaid's trailer, and the rich error model) said.
 */
public final class SettleClient {
  private static final Metadata.Key<String> MEDAID_CODE = Metadata.Key.of("medaid-error-code", Metadata.ASCII_STRING_MARSHALLER);

  public static void main(String[] args) throws Exception {
    String visit = args.length > 2 ? args[2] : "java-1";
    ManagedChannel channel = ManagedChannelBuilder.forAddress(args[0], Integer.parseInt(args[1])).usePlaintext().build();
    try {
      SettlementServiceGrpc.SettlementServiceBlockingStub stub = SettlementServiceGrpc.newBlockingStub(channel);
      Discharge discharge = Discharge.newBuilder()
          .setHospitalId("h-county").setVisitId(visit).setPersonId("p-java").setRegion("360827").setScheme("nrcms")
          .setVisitType("inpatient").setHospitalLevel("county").setAdmissionDate("2012-03-01").setDischargeDate("2012-03-10")
          .addDiagnosisCodes("C34.9").setTotalFen(2_000_000L).build();
      call("settle", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).settle(discharge));
      call("duplicate", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).settle(discharge));
      call("conflict", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).settle(discharge.toBuilder().setTotalFen(2_000_001L).build()));
      call("invalid", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).settle(discharge.toBuilder().setAdmissionDate("2012-13-01").build()));
      ReverseSettlementRequest reversal = ReverseSettlementRequest.newBuilder()
          .setHospitalId("h-county").setVisitId(visit).setReason("费用明细录入错误").build();
      call("reverse", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).reverse(reversal));
      call("reverse-again", () -> stub.withDeadlineAfter(10, TimeUnit.SECONDS).reverse(reversal));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private interface Call {
    SettlementResult run();
  }

  private static void call(String step, Call call) {
    try {
      SettlementResult r = call.run();
      System.out.printf("{\"step\":\"%s\",\"ok\":true,\"settlementId\":\"%s\",\"status\":\"%s\",\"created\":%b,\"duplicate\":%b,"
          + "\"fundPayFen\":%d,\"patientPayFen\":%d,\"totalFen\":%d}%n",
          step, r.getSettlementId(), r.getStatus(), r.getCreated(), r.getDuplicate(), r.getFundPayFen(), r.getPatientPayFen(), r.getTotalFen());
    } catch (StatusRuntimeException e) {
      String reason = "";
      List<String> fields = new ArrayList<>();
      com.google.rpc.Status rich = StatusProto.fromThrowable(e);
      if (rich != null) {
        for (Any detail : rich.getDetailsList()) {
          try {
            if (detail.is(ErrorInfo.class)) reason = detail.unpack(ErrorInfo.class).getReason();
            if (detail.is(BadRequest.class)) {
              for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) fields.add("\"" + v.getField() + "\"");
            }
          } catch (com.google.protobuf.InvalidProtocolBufferException bad) {
            throw new IllegalStateException(bad);
          }
        }
      }
      String trailer = e.getTrailers() == null ? "" : e.getTrailers().get(MEDAID_CODE);
      System.out.printf("{\"step\":\"%s\",\"ok\":false,\"status\":\"%s\",\"medaidCode\":\"%s\",\"reason\":\"%s\",\"fields\":[%s]}%n",
          step, e.getStatus().getCode(), trailer, reason, String.join(",", fields));
    }
  }
}
