//! Fan-out mode of `raw-client`: every connection subscribes, then counts the events that
//! arrive, their delivery latency (receipt time minus the event's `timestamp`, both on this
//! machine's clock) and sequence gaps or reorderings per connection.

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

use super::{open_all, runtime, share, Args, Ws};

/// Listening time before measuring starts.
const WARMUP: Duration = Duration::from_secs(1);

/// The fields of an event this client reads.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    timestamp: Option<&'a str>,
}

/// What one connection saw.
struct Seen {
    latency_us: Histogram<u64>,
    events: u64,
    gaps: u64,
    reordered: u64,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            events: 0,
            gaps: 0,
            reordered: 0,
        }
    }

    fn add(&mut self, other: &Seen) {
        let _ = self.latency_us.add(&other.latency_us);
        self.events += other.events;
        self.gaps += other.gaps;
        self.reordered += other.reordered;
    }
}

/// Subscribes every connection, measures for `--duration`, prints one JSON line.
pub fn run(args: &Args, threads: usize) -> Result<(), String> {
    let subscribe = args.fanout.clone().unwrap_or_default();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let (url, subscribe, barrier) = (args.url.clone(), subscribe.clone(), barrier.clone());
        let (n, duration, no_welcome) = (
            share(args.connections, t, threads),
            args.duration,
            args.no_welcome,
        );
        handles.push(std::thread::spawn(move || -> Result<Seen, String> {
            let rt = runtime().map_err(|e| e.to_string())?;
            let conns = rt.block_on(async {
                let mut conns = open_all(&url, n, no_welcome).await?;
                for ws in &mut conns {
                    ws.send(Message::text(subscribe.clone()))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(conns)
            });
            barrier.wait();
            let conns = conns?;
            // The first second is warm-up: frames queued while the connections were still
            // being opened and subscribed are read then, not measured.
            let warm = tokio::time::Instant::now() + WARMUP;
            let deadline = warm + duration;
            rt.block_on(async {
                let tasks: Vec<_> = conns
                    .into_iter()
                    .map(|ws| tokio::spawn(listen(ws, warm, deadline)))
                    .collect();
                let mut seen = Seen::new();
                for task in tasks {
                    seen.add(&task.await.map_err(|e| e.to_string())??);
                }
                Ok(seen)
            })
        }));
    }
    barrier.wait();
    let start = Instant::now() + WARMUP;
    let mut seen = Seen::new();
    for h in handles {
        seen.add(&h.join().map_err(|_| "worker thread panicked")??);
    }
    let secs = start.elapsed().as_secs_f64();
    let h = &seen.latency_us;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        r#"{{"deliveries":{},"duration_s":{secs:.3},"rate":{:.1},"p50_ms":{:.3},"p99_ms":{:.3},"max_ms":{:.3},"gaps":{},"reordered":{}}}"#,
        seen.events,
        seen.events as f64 / secs,
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
        seen.gaps,
        seen.reordered
    );
    Ok(())
}

/// Counts events on one connection until the deadline.
async fn listen(
    mut ws: Ws,
    warm: tokio::time::Instant,
    deadline: tokio::time::Instant,
) -> Result<Seen, String> {
    let mut seen = Seen::new();
    let mut expect: Option<u64> = None;
    loop {
        let item = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(item) => item,
            Err(_) => break,
        };
        let text = match item {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("server closed the connection".into()),
        };
        let now = now_us();
        let event: Event = serde_json::from_str(&text).map_err(|e| format!("event: {e}"))?;
        let (Some(seq), Some(stamp)) = (event.seq, event.timestamp) else {
            continue; // the subscribe ack, or another reply
        };
        let measured = tokio::time::Instant::now() >= warm;
        if measured {
            seen.events += 1;
        }
        if let Some(sent) = parse_rfc3339_us(stamp).filter(|_| measured) {
            let _ = seen.latency_us.record(now.saturating_sub(sent).max(1));
        }
        match expect {
            Some(e) if seq > e && measured => seen.gaps += seq - e,
            Some(e) if seq < e && measured => seen.reordered += 1,
            _ => {}
        }
        expect = Some(seq.max(expect.unwrap_or(0)) + 1);
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    Ok(seen)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Microseconds since the epoch of a `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` timestamp.
fn parse_rfc3339_us(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0i64;
    if b.get(19) == Some(&b'.') {
        let frac = s[20..].trim_end_matches('Z');
        let digits = &frac[..frac.len().min(6)];
        micros = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
    }
    // Days from the civil date (proleptic Gregorian, March-based years).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_timestamps() {
        assert_eq!(
            super::parse_rfc3339_us("1970-01-01T00:00:01.5Z"),
            Some(1_500_000)
        );
        assert_eq!(
            super::parse_rfc3339_us("2024-02-29T12:34:56.123456Z"),
            Some(1_709_210_096_123_456)
        );
    }
}
