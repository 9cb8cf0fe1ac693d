//! The arithmetic of a merge: the shards' results documents added into one.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::per_second::{origin, second_of};
use super::Shard;
use crate::metrics::recorder::FAIL_SAMPLES;
use crate::metrics::violations::{MAX_GROUPS, SAMPLES_PER_KEY};
use crate::metrics::{add_hist, new_histogram};
use crate::report::{
    Counters, Health, LoadReached, MetricResult, Results, SeriesPoint, ShardRecord, Status,
    Summary, ViolationGroup, Violations,
};
use crate::results::{DeliveryResult, UploadResult};

/// The shards (sorted by index, checked) as one result; thresholds are left for the caller.
pub(crate) fn results(shards: &[Shard], warnings: &[String]) -> Results {
    let first = &shards[0].results;
    let all = || shards.iter().map(|s| &s.results);
    let mut meta = first.meta.clone();
    let start = origin(shards);
    let end = shards
        .iter()
        .map(|s| s.started + std::time::Duration::from_secs_f64(s.results.meta.duration_s))
        .max()
        .unwrap_or(start);
    meta.started_at = humantime::format_rfc3339_millis(start).to_string();
    meta.ended_at = all()
        .all(|r| r.meta.ended_at.is_some())
        .then(|| humantime::format_rfc3339_millis(end).to_string());
    meta.duration_s = end.duration_since(start).map_or(0.0, |d| d.as_secs_f64());
    meta.threads = all().map(|r| r.meta.threads).sum();
    meta.host = hosts(shards);
    let series = series(shards, start);
    let mut health = health(shards);
    health.warnings.extend(warnings.iter().cloned());
    Results {
        version: first.version,
        status: status(shards),
        status_reason: reasons(shards),
        meta,
        load: load(shards, &series),
        metrics: metrics(shards),
        connect: summary(all().map(|r| &r.connect)),
        counters: counters(all()),
        series,
        violations: violations(all().map(|r| &r.violations)),
        thresholds: Vec::new(),
        health,
        delivery: delivery(all().filter_map(|r| r.delivery.as_ref())),
        uploads: uploads(all()),
        interval_log: None,
        shard: None,
        shards: shards.iter().map(record).collect(),
        capacity: None,
    }
}

fn record(s: &Shard) -> ShardRecord {
    let r = &s.results;
    ShardRecord {
        index: r.shard.as_ref().map_or(0, |i| i.index),
        file: s.file.clone(),
        host: r.meta.host.clone(),
        status: r.status,
        status_reason: r.status_reason.clone(),
        started_at: r.meta.started_at.clone(),
        health: r.health.clone(),
    }
}

fn hosts(shards: &[Shard]) -> String {
    let mut hosts: Vec<&str> = shards
        .iter()
        .map(|s| s.results.meta.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts.join(", ")
}

/// The worst of the shards' statuses: aborted, then interrupted, then running.
fn status(shards: &[Shard]) -> Status {
    let rank = |s: Status| match s {
        Status::Complete => 0,
        Status::Running => 1,
        Status::Interrupted => 2,
        Status::Aborted => 3,
    };
    shards
        .iter()
        .map(|s| s.results.status)
        .max_by_key(|&s| rank(s))
        .unwrap_or(Status::Complete)
}

fn reasons(shards: &[Shard]) -> Option<String> {
    let lines: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            let r = &s.results;
            let i = r.shard.as_ref()?;
            Some(format!(
                "shard {}/{}: {}",
                i.index,
                i.count,
                r.status_reason.as_deref()?
            ))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// Exact: the shards' histograms added.
fn summary<'a>(parts: impl Iterator<Item = &'a Summary>) -> Summary {
    let mut h = new_histogram();
    for s in parts {
        // Every one decoded when its shard was read.
        if let Ok(x) = s.histogram() {
            add_hist(&mut h, &x);
        }
    }
    Summary::from_histogram(&h)
}

fn metrics(shards: &[Shard]) -> BTreeMap<String, MetricResult> {
    let mut names: Vec<&String> = shards
        .iter()
        .flat_map(|s| s.results.metrics.keys())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of = || shards.iter().filter_map(|s| s.results.metrics.get(name));
            let m = MetricResult {
                latency: summary(of().map(|m| &m.latency)),
                service: summary(of().map(|m| &m.service)),
                timing: of().next().map(|m| m.timing).unwrap_or_default(),
            };
            (name.clone(), m)
        })
        .collect()
}

fn sum_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += n;
    }
}

fn counters<'a>(all: impl Iterator<Item = &'a Results>) -> Counters {
    let mut c = Counters::default();
    for r in all {
        let x = &r.counters;
        let (cc, xc) = (&mut c.connections, &x.connections);
        cc.opened += xc.opened;
        cc.failed += xc.failed;
        cc.closed += xc.closed;
        cc.open_at_stop += xc.open_at_stop;
        sum_map(&mut cc.failed_by_cause, &xc.failed_by_cause);
        sum_map(&mut cc.closed_by_code, &xc.closed_by_code);
        for (cause, samples) in &xc.failed_samples {
            let kept = cc.failed_samples.entry(cause.clone()).or_default();
            for s in samples {
                if kept.len() < FAIL_SAMPLES && !kept.contains(s) {
                    kept.push(s.clone());
                }
            }
        }
        c.frames_in += x.frames_in;
        c.frames_out += x.frames_out;
        c.bytes_in += x.bytes_in;
        c.bytes_out += x.bytes_out;
        for (into, from) in [
            (&mut c.kinds_in, &x.kinds_in),
            (&mut c.kinds_out, &x.kinds_out),
        ] {
            for (k, n) in from {
                let e = into.entry(k.clone()).or_default();
                e.frames += n.frames;
                e.bytes += n.bytes;
            }
        }
        c.errors += x.errors;
        sum_map(&mut c.errors_by_kind, &x.errors_by_kind);
        c.ops += x.ops;
        c.missed += x.missed;
        let (q, xq) = (&mut c.requests, &x.requests);
        q.sent += xq.sent;
        q.replies += xq.replies;
        q.timeouts += xq.timeouts;
        q.unanswered += xq.unanswered;
    }
    c
}

/// Iterations summed; peaks from the merged series (all shards at one second), never
/// below a single shard's own peak.
fn load(shards: &[Shard], series: &[SeriesPoint]) -> LoadReached {
    let mut l = LoadReached {
        peak_vus: series.iter().map(|p| p.active_vus).max().unwrap_or(0),
        peak_connections: series
            .iter()
            .map(|p| p.active_connections)
            .max()
            .unwrap_or(0),
        peak_arrival_rate: None,
        iterations_ok: 0,
        iterations_failed: 0,
        iterations_started: 0,
        iterations_cut: 0,
        iterations_by_behaviour: Default::default(),
    };
    for s in shards {
        let x = &s.results.load;
        l.peak_vus = l.peak_vus.max(x.peak_vus);
        l.peak_connections = l.peak_connections.max(x.peak_connections);
        // Shards deal arrivals round-robin, so their peaks fall together: their sum.
        if let Some(r) = x.peak_arrival_rate {
            *l.peak_arrival_rate.get_or_insert(0.0) += r;
        }
        l.iterations_ok += x.iterations_ok;
        l.iterations_failed += x.iterations_failed;
        l.iterations_started += x.iterations_started;
        for (b, n) in &x.iterations_by_behaviour {
            *l.iterations_by_behaviour.entry(b.clone()).or_default() += n;
        }
        l.iterations_cut += x.iterations_cut;
    }
    l
}

/// The series on the wall clock: each shard's point goes to the merged second it began
/// in; counts add, gauges add, rates are recounted, percentiles come from the logs.
fn series(shards: &[Shard], start: SystemTime) -> Vec<SeriesPoint> {
    let mut out: Vec<SeriesPoint> = Vec::new();
    let mut bytes: Vec<(f64, f64)> = Vec::new();
    for s in shards {
        for p in &s.results.series {
            let began = s.started + std::time::Duration::from_secs_f64((p.t - p.span_s).max(0.0));
            let k = second_of(start, began);
            while out.len() <= k {
                out.push(SeriesPoint::default());
                bytes.push((0.0, 0.0));
            }
            let m = &mut out[k];
            m.span_s = m.span_s.max(p.span_s);
            m.add_counts(p);
            bytes[k].0 += p.bytes_in * p.span_s;
            bytes[k].1 += p.bytes_out * p.span_s;
        }
    }
    for (k, (m, (bi, bo))) in out.iter_mut().zip(bytes).enumerate() {
        let span = if m.span_s > 0.0 { m.span_s } else { 1.0 };
        m.span_s = span;
        m.t = k as f64 + span;
        m.msgs_in = m.frames_in as f64 / span;
        m.msgs_out = m.frames_out as f64 / span;
        m.bytes_in = bi / span;
        m.bytes_out = bo / span;
    }
    out
}

/// Groups by (direction, kind, keyword, pointer, source): counts add, the first samples
/// are kept up to the per-group cap; past [`MAX_GROUPS`] groups, new ones fold.
fn violations<'a>(all: impl Iterator<Item = &'a Violations>) -> Violations {
    let mut v = Violations::default();
    let mut groups: Vec<ViolationGroup> = Vec::new();
    for x in all {
        v.checked += x.checked;
        v.frames += x.frames;
        v.total += x.total;
        v.folded += x.folded;
        for g in &x.groups {
            let same = |h: &ViolationGroup| {
                (h.dir, &h.kind, &h.keyword, &h.pointer, h.source)
                    == (g.dir, &g.kind, &g.keyword, &g.pointer, g.source)
            };
            match groups.iter().position(same) {
                Some(i) => {
                    let h = &mut groups[i];
                    h.count += g.count;
                    let room = SAMPLES_PER_KEY.saturating_sub(h.samples.len());
                    h.samples.extend(g.samples.iter().take(room).cloned());
                }
                None if groups.len() < MAX_GROUPS => groups.push(g.clone()),
                None => v.folded += g.count,
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    v.groups = groups;
    v
}

/// Every shard's health kept (in `shards`); here the worst of them, each reason and
/// warning naming its shard.
fn health(shards: &[Shard]) -> Health {
    let mut h = Health::default();
    for s in shards {
        let x = &s.results.health;
        let name = s.results.shard.as_ref().map_or_else(
            || s.file.clone(),
            |i| format!("shard {}/{}", i.index, i.count),
        );
        h.generator_saturated |= x.generator_saturated;
        h.reasons
            .extend(x.reasons.iter().map(|r| format!("{name}: {r}")));
        h.warnings
            .extend(x.warnings.iter().map(|w| format!("{name}: {w}")));
        // Generators on several machines: CPU and cores add up.
        h.cores += x.cores;
        for (into, from) in [(&mut h.cpu_mean, x.cpu_mean), (&mut h.cpu_peak, x.cpu_peak)] {
            if let Some(c) = from {
                *into.get_or_insert(0.0) += c;
            }
        }
        h.lag_p99_us = h.lag_p99_us.max(x.lag_p99_us);
        h.lag_max_us = h.lag_max_us.max(x.lag_max_us);
        h.stalls += x.stalls;
        if x.longest_stall_us > h.longest_stall_us {
            h.longest_stall_us = x.longest_stall_us;
            h.longest_stall_at_s = x.longest_stall_at_s;
        }
        h.send_late_max_us = h.send_late_max_us.max(x.send_late_max_us);
        h.missed_sends += x.missed_sends;
        h.fd_peak = h.fd_peak.max(x.fd_peak);
        h.fd_limit = match (h.fd_limit, x.fd_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        h.rss_peak_kib = match (h.rss_peak_kib, x.rss_peak_kib) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
    h
}

fn delivery<'a>(mut all: impl Iterator<Item = &'a DeliveryResult>) -> Option<DeliveryResult> {
    let mut d = all.next()?.clone();
    for x in all {
        d.received += x.received;
        d.gaps += x.gaps;
        d.reordered += x.reordered;
        d.duplicates += x.duplicates;
        d.untracked += x.untracked;
        d.streams += x.streams;
        d.resets += x.resets;
    }
    let seen = d.received + d.gaps;
    d.completeness = (d.received > 0).then(|| d.received as f64 / seen as f64);
    Some(d)
}

fn uploads<'a>(all: impl Iterator<Item = &'a Results>) -> BTreeMap<String, UploadResult> {
    let mut out: BTreeMap<String, UploadResult> = BTreeMap::new();
    for r in all {
        for (name, u) in &r.uploads {
            let Some(m) = out.get_mut(name) else {
                out.insert(name.clone(), u.clone());
                continue;
            };
            m.started += u.started;
            m.completed += u.completed;
            m.rejected += u.rejected;
            m.failed += u.failed;
            m.cut += u.cut;
            m.bytes += u.bytes;
            m.seconds += u.seconds;
        }
    }
    for u in out.values_mut() {
        u.mbps = (u.completed > 0 && u.seconds > 0.0).then(|| u.bytes as f64 / 1e6 / u.seconds);
    }
    out
}
