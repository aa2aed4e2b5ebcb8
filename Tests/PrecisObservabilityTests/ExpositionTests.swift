import Foundation
import PrecisObservability
import Testing

/// Each role's metrics, written in Prometheus's text format and read back by `PrometheusText`:
/// the names, types, help texts, labels and values the roles set.
@Suite struct ExpositionTests {
    func parsed(_ m: some MetricsExposing) throws -> PrometheusText {
        try PrometheusText.parse(String(decoding: m.exposition(), as: UTF8.self))
    }

    @Test func coordinatorMetricsRoundTrip() throws {
        let m = CoordinatorMetrics()
        m.planned(totalSteps: 40, step: 0)
        m.stepCompleted(step: 7, epoch: 0.35, loss: 4.25, learningRate: 1.5e-3, gradNorm: 2.5, examplesPerSecond: 12.5)
        m.stepCompleted(step: 8, epoch: 0.4, loss: 4.0, learningRate: 1.25e-3, gradNorm: 2.0, examplesPerSecond: 13)
        m.contribution(gradientWireBytes: 1000, gradientRawBytes: 4000, parameterWireBytes: 900, parameterRawBytes: 3600)
        m.contribution(gradientWireBytes: 500, gradientRawBytes: 2000, parameterWireBytes: 100, parameterRawBytes: 400)
        m.members(serversAlive: 2, serversLost: 1, workersAlive: 3, workersLost: 0)
        m.contributionsOpen(5)
        m.setPhase("training")
        m.checkpointSaved(seconds: 0.7)
        m.checkpointFailed()
        m.evaluationFinished(seconds: 42)
        m.hubPushFailed(seconds: 3)
        let p = try parsed(m)
        #expect(p.value("precis_step") == 8)
        #expect(p.value("precis_total_steps") == 40)
        #expect(p.value("precis_epoch") == 0.4)
        #expect(p.value("precis_loss") == 4.0)
        #expect(p.value("precis_learning_rate") == 1.25e-3)
        #expect(p.value("precis_grad_norm") == 2.0)
        #expect(p.value("precis_examples_per_second") == 13)
        #expect(p.value("precis_steps_completed_total") == 2)
        #expect(p.value("precis_contributions_total") == 2)
        #expect(p.value("precis_gradient_wire_bytes_total") == 1500)
        #expect(p.value("precis_gradient_raw_bytes_total") == 6000)
        #expect(p.value("precis_parameter_wire_bytes_total") == 1000)
        #expect(p.value("precis_parameter_raw_bytes_total") == 4000)
        #expect(p.value("precis_members", ["role": "server", "state": "alive"]) == 2)
        #expect(p.value("precis_members", ["role": "server", "state": "lost"]) == 1)
        #expect(p.value("precis_members", ["role": "worker", "state": "alive"]) == 3)
        #expect(p.value("precis_members", ["role": "worker", "state": "lost"]) == 0)
        #expect(p.value("precis_contributions_open") == 5)
        #expect(p.value("precis_run_phase", ["phase": "training"]) == 1)
        #expect(p.samples(named: "precis_run_phase").filter { $0.value == 1 }.count == 1)
        #expect(p.value("precis_checkpoint_seconds_count") == 1)
        #expect(p.value("precis_checkpoint_seconds_sum") == 0.7)
        #expect(p.value("precis_checkpoint_seconds_bucket", ["le": "1.0"]) == 1)
        #expect(p.value("precis_checkpoint_seconds_bucket", ["le": "0.5"]) == 0)
        #expect(p.value("precis_checkpoint_seconds_bucket", ["le": "+Inf"]) == 1)
        #expect(p.value("precis_checkpoint_failures_total") == 1)
        #expect(p.value("precis_evaluation_seconds_sum") == 42)
        #expect(p.value("precis_evaluation_failures_total") == 0)
        #expect(p.value("precis_hub_push_failures_total") == 1)
        #expect(p.value("precis_role_info", ["role": "coordinator"]) == 1)
        // Conventions: counters end in _total, every family has HELP and TYPE, all are precis_.
        for (name, type) in p.types {
            #expect(name.hasPrefix("precis_"), "\(name)")
            #expect(p.help[name].map { !$0.isEmpty } == true, "\(name) has no HELP")
            #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
        }
        #expect(p.types["precis_checkpoint_seconds"] == "histogram")
        #expect(p.types["precis_loss"] == "gauge")
    }

    @Test func serverMetricsRoundTrip() throws {
        let m = ServerMetrics(name: "ps0")
        m.assigned(partitions: 6, version: 3)
        m.received(bytes: 140)
        m.received(bytes: 60)
        m.pushed(decodeSeconds: 0.25)
        m.pushed(decodeSeconds: 0.5)
        m.applied(seconds: 1.5, version: 4)
        m.sentParameters(bytes: 1000)
        m.sent(bytes: 24)
        let p = try parsed(m)
        let l = ["member": "ps0"]
        #expect(p.value("precis_server_partitions", l) == 6)
        #expect(p.value("precis_server_version", l) == 4)
        #expect(p.value("precis_server_pushes_total", l) == 2)
        #expect(p.value("precis_server_updates_total", l) == 1)
        #expect(p.value("precis_server_decode_seconds_total", l) == 0.75)
        #expect(p.value("precis_server_optimizer_seconds_total", l) == 1.5)
        #expect(p.value("precis_server_received_bytes_total", l) == 200)
        #expect(p.value("precis_server_sent_bytes_total", l) == 1024)
        #expect(p.value("precis_server_parameter_replies_total", l) == 1)
        #expect(p.value("precis_role_info", ["role": "server", "member": "ps0"]) == 1)
        #expect(p.samples.allSatisfy { $0.labels["member"] == "ps0" })
    }

    /// Parameter reply bytes by the reply's codec (a bf16-delta pull's full replies count as fp32).
    @Test func serverParameterReplyBytesByCodec() throws {
        let m = ServerMetrics(name: "ps0")
        m.sentParameters(bytes: 700, codec: "fp32")
        m.sentParameters(bytes: 200, codec: "bf16-delta")
        m.sentParameters(bytes: 220, codec: "bf16-delta")
        let p = try parsed(m)
        #expect(p.value("precis_server_parameter_reply_bytes_total", ["member": "ps0", "codec": "fp32"]) == 700)
        #expect(p.value("precis_server_parameter_reply_bytes_total", ["member": "ps0", "codec": "bf16-delta"]) == 420)
        #expect(p.value("precis_server_parameter_reply_bytes_total", ["member": "ps0", "codec": "bf16"]) == 0)
        #expect(p.value("precis_server_parameter_replies_total", ["member": "ps0"]) == 3)
        #expect(p.value("precis_server_sent_bytes_total", ["member": "ps0"]) == 1120)
    }

    @Test func workerMetricsRoundTrip() throws {
        let m = WorkerMetrics(name: "w\"1\\")   // a name that needs escaping in a label value
        m.contributionDone(computeSeconds: 1.5, waitSeconds: 0.25, encodeSeconds: 0.25, pushedBytes: 300, pulledBytes: 700, tokens: 1000, examples: 4)
        m.contributionDone(computeSeconds: 0.5, waitSeconds: 0.5, encodeSeconds: 0, pushedBytes: 100, pulledBytes: 100, tokens: 500, examples: 4)
        let p = try parsed(m)
        let l = ["member": "w\"1\\"]
        #expect(p.value("precis_worker_contributions_total", l) == 2)
        #expect(p.value("precis_worker_compute_seconds_total", l) == 2)
        #expect(p.value("precis_worker_wait_seconds_total", l) == 0.75)
        #expect(p.value("precis_worker_encode_seconds_total", l) == 0.25)
        #expect(p.value("precis_worker_step_compute_seconds", l) == 0.5)
        #expect(p.value("precis_worker_step_wait_seconds", l) == 0.5)
        #expect(p.value("precis_worker_pushed_bytes_total", l) == 400)
        #expect(p.value("precis_worker_pulled_bytes_total", l) == 800)
        #expect(p.value("precis_worker_tokens_total", l) == 1500)
        #expect(p.value("precis_worker_examples_total", l) == 8)
        #expect(p.value("precis_worker_tokens_per_second", l) == 500)
    }

    @Test func parserReadsTheFormat() throws {
        let text = """
        # A comment line
        # HELP x_total Things with a \\\\ and\\na newline
        # TYPE x_total counter
        x_total{a="1",b="q\\"uote\\\\",c="line\\nbreak"} 3 1700000000000
        x_total{a="2"} +Inf
        # TYPE y gauge
        y NaN
        y{z=""} -Inf

        # TYPE h histogram
        h_bucket{le="0.5"} 1
        h_bucket{le="+Inf"} 2
        h_sum 1.25e0
        h_count 2
        """
        let p = try PrometheusText.parse(text)
        #expect(p.help["x_total"] == "Things with a \\ and\na newline")
        #expect(p.value("x_total", ["b": "q\"uote\\", "c": "line\nbreak"]) == 3)
        #expect(p.value("x_total", ["a": "2"]) == .infinity)
        #expect(p.value("y").map { $0.isNaN } == true)
        #expect(p.value("y", ["z": ""]) == -.infinity)
        #expect(p.value("h_count") == 2)
        #expect(p.value("h_sum") == 1.25)
        #expect(p.samples.count == 8)
    }

    @Test(arguments: [
        ("x 1", "line 1: x has no TYPE line before it"),
        ("# TYPE x gauge\nx{a=\"1\" 1", "line 2: expected ',' or '}' after label a"),
        ("# TYPE x gauge\nx{a=1} 1", "line 2: label a's value is not quoted"),
        ("# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1", "line 2: label a given twice"),
        ("# TYPE x gauge\nx one", "line 2: 'one' is not a number"),
        ("# TYPE x gauge\nx", "line 2: expected a value and at most a timestamp after x"),
        ("# TYPE x sparkline", "line 1: 'sparkline' is not a metric type"),
        ("# TYPE x gauge\n# TYPE x gauge", "line 2: a second TYPE for x"),
        ("# TYPE 1x gauge", "line 1: '1x' is not a metric name"),
        ("# TYPE x gauge\nx{a=\"\\q\"} 1", "line 2: label a: unknown escape \\q"),
    ])
    func parserNamesTheLineOfAnError(text: String, message: String) {
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText.parse(text) }
        do { _ = try PrometheusText.parse(text) } catch { #expect(error.description == message) }
    }
}
