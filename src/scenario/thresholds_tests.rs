//! Unit tests for threshold parsing.

use super::*;

#[test]
fn parses_violation_thresholds() {
    assert_eq!(
        parse("violations == 0").unwrap(),
        (Quantity::Violations(None), Cmp::Eq, 0.0)
    );
    assert_eq!(
        parse(r#"violations["scrape.progress"] == 0"#).unwrap(),
        (
            Quantity::Violations(Some("scrape.progress".into())),
            Cmp::Eq,
            0.0
        )
    );
    assert_eq!(
        parse("violations.rate < 0.01%").unwrap(),
        (Quantity::ViolationsRate, Cmp::Lt, 0.0001)
    );
    let e = parse("violations[scrape] == 0").unwrap_err();
    assert_eq!(e.offset, "violations[".len());
    let e = parse("violation == 0").unwrap_err();
    assert!(
        e.message.contains("did you mean 'violations'"),
        "{}",
        e.message
    );
}

#[test]
fn parses_each_family() {
    let lat = parse("latency.ack.p99 < 50ms").unwrap();
    assert_eq!(
        lat,
        (
            Quantity::Latency {
                metric: "ack".into(),
                stat: Stat::Percentile(99.0)
            },
            Cmp::Lt,
            50_000.0
        )
    );
    assert_eq!(
        parse("service.rtt.p99.9 <= 1.5s").unwrap().0,
        Quantity::Service {
            metric: "rtt".into(),
            stat: Stat::Percentile(99.9)
        }
    );
    assert_eq!(
        parse("connect.max<200us").unwrap(),
        (Quantity::Connect(Stat::Max), Cmp::Lt, 200.0)
    );
    assert_eq!(parse("errors.rate < 0.1%").unwrap().2, 0.001);
    assert_eq!(parse("errors.rate < 0.01").unwrap().2, 0.01);
    assert_eq!(
        parse("errors.count == 0").unwrap(),
        (Quantity::ErrorsCount, Cmp::Eq, 0.0)
    );
    assert_eq!(
        parse("errors.timeout != 3").unwrap().0,
        Quantity::ErrorsOfKind("timeout".into())
    );
    assert_eq!(
        parse("throughput.in >= 6000/m").unwrap(),
        (Quantity::ThroughputIn, Cmp::Ge, 100.0)
    );
    assert_eq!(parse("throughput.out > 10").unwrap().2, 10.0);
    assert_eq!(
        parse("connections.failed == 0").unwrap().0,
        Quantity::ConnectionsFailed
    );
    assert_eq!(
        parse("connections.opened >= 10").unwrap().0,
        Quantity::ConnectionsOpened
    );
    assert_eq!(
        parse("iterations.count > 1").unwrap().0,
        Quantity::Iterations
    );
    assert_eq!(parse("missed.count == 0").unwrap().0, Quantity::Missed);
    assert_eq!(
        parse("connect.mean < 1s").unwrap().0,
        Quantity::Connect(Stat::Mean)
    );
}

#[test]
fn errors_have_offsets() {
    let e = parse("latency.ack.p99 < 50").unwrap_err();
    assert_eq!(e.offset, 18);
    assert!(e.message.contains("needs a time unit"), "{}", e.message);
    let e = parse("latncy.ack.p99 < 5ms").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (
            0,
            "unknown quantity 'latncy.ack.p99' (did you mean 'latency'?)"
        )
    );
    let e = parse("latency.ack.q99 < 5ms").unwrap_err();
    assert_eq!(e.offset, 12);
    let e = parse("errors.count ~ 1").unwrap_err();
    assert_eq!(e.offset, 13);
    assert_eq!(parse("errors.count < 1.5").unwrap_err().offset, 15);
    assert_eq!(parse("latency.ack.p99 < 5parsecs").unwrap_err().offset, 19);
    assert!(parse("errors.rate < 5/s").is_err());
    assert!(parse("errors.count <").is_err());
}
