import Prometheus

/// The registry's metric makers under one short spelling, each with its HELP text (the names are
/// given whole: `precis_…_total`, `…_seconds`, `…_bytes`). Making a metric a second time with the
/// same name and labels returns the same one.
extension PrometheusCollectorRegistry {
    func counter(_ name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func gauge(_ name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    func histogram(_ name: String, buckets: [Double], help: String) -> ValueHistogram {
        makeValueHistogram(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: [], buckets: buckets)
    }
}
