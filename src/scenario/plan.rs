//! The canonical, validated plan a scenario lowers into: the only thing the swarm sees.
//!
//! Everything here is already checked: durations are positive, weights sum above zero,
//! templates are compiled, metric names are interned into [`MetricId`]s so the hot path
//! indexes arrays instead of hashing strings.

use std::sync::Arc;
use std::time::Duration;

use super::template::{JsonTemplate, Template};

pub use super::pos::Pos;

/// Index of a named latency metric in [`Plan::metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId(pub u16);

/// A JSON pointer (RFC 6901), kept as text; `serde_json::Value::pointer` reads it.
pub type Pointer = String;

/// A validated scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `name:` of the scenario.
    pub name: String,
    /// `protocol:` profile name, if any (conformance uses it).
    pub protocol: Option<String>,
    /// Target URL (`ws://` or `wss://`); `--target` replaces it before lowering.
    pub target: String,
    /// How each VU opens its connection.
    pub connect: ConnectPlan,
    /// The load shape.
    pub load: LoadPlan,
    /// Weighted behaviours; each VU iteration picks one by weight.
    pub behaviours: Vec<Behaviour>,
    /// Declared automatic replies (app-level heartbeats), applied by every connection's reader.
    pub replies: Vec<AutoReply>,
    /// JSON pointers whose values, joined by `.`, name a frame's kind. Default `["/type"]`.
    pub kind_pointers: Vec<Pointer>,
    /// Pointer of the correlation id in requests and replies. Default `/id`.
    pub id_pointer: Pointer,
    /// Interned names of latency metrics; a [`MetricId`] indexes this.
    pub metrics: Vec<String>,
    /// Threshold expressions, parsed.
    pub thresholds: Vec<crate::scenario::thresholds::Threshold>,
    /// Seed for every random choice; from `seed:`, `--seed`, or drawn once and recorded.
    pub seed: u64,
    /// Grace period for in-flight iterations at the end of the run (`graceful_stop:`, default 5 s).
    pub graceful_stop: Duration,
    /// Hex SHA-256 of the scenario file's text (recorded in results).
    pub source_sha256: String,
    /// Initial template variables (`vars:`).
    pub vars: Vec<(String, serde_json::Value)>,
    /// Fan-out delivery tracking of inbound frames (`delivery:`), if any.
    pub delivery: Option<Arc<Delivery>>,
}

/// `delivery:`: every inbound frame that carries a sequence number is tracked per connection
/// and stream, counting gaps, reorderings and duplicates, and timing its delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Pointer of the per-stream sequence number (a non-negative integer).
    pub seq: Pointer,
    /// Pointer of the RFC 3339 send time; frames without it are counted but not timed.
    pub sent_at: Option<Pointer>,
    /// Pointers whose values together name the stream the sequence counts in; empty: one
    /// stream per connection.
    pub key: Vec<Pointer>,
    /// Only frames of these kinds are tracked; empty: every kind.
    pub kinds: Vec<String>,
    /// Histogram for receipt time − send time; set when `sent_at` is.
    pub metric: Option<MetricId>,
}

/// Connection options.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    /// Extra request headers (name, value template).
    pub headers: Vec<(String, Template)>,
    /// Query parameters appended to the target URL (name, value template).
    pub query: Vec<(String, Template)>,
    /// `Sec-WebSocket-Protocol` values offered.
    pub subprotocols: Vec<String>,
    /// TCP + TLS + upgrade deadline. Default 5 s.
    pub timeout: Duration,
    /// Accept any TLS certificate (self-signed test targets). Default false.
    pub insecure: bool,
    /// Largest inbound message accepted, bytes. Default 16 MiB.
    pub max_message_size: usize,
    /// The pause before a VU's next iteration after its connection failed or was lost
    /// (`max_tries` unused). Default: as the `reconnect` step's.
    pub backoff: Backoff,
}

/// The load model with its stages, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Closed (VUs) or open (arrival rate).
    pub model: LoadModel,
    /// Consecutive stages; each moves linearly from the previous level to `target`.
    pub stages: Vec<Stage>,
}

/// Which quantity the stages drive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// `target` is the number of concurrent VUs; each VU loops iterations.
    Closed,
    /// `target` is new iterations (sessions) per second, at most `max_vus` running at once.
    Open {
        /// Cap on concurrently running iterations.
        max_vus: u32,
    },
}

/// One load phase: from the previous level, linearly to `target` over `duration`.
/// A hold is a stage whose target equals the previous level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// VUs (closed) or iterations per second (open) at the end of the stage.
    pub target: f64,
}

impl LoadPlan {
    /// Total planned duration of all stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Level (VUs or rate) at `t` since the start; 0 before the first stage ramps up.
    pub fn level_at(&self, t: Duration) -> f64 {
        let mut start = Duration::ZERO;
        let mut from = 0.0;
        for s in &self.stages {
            let end = start + s.duration;
            if t < end {
                let frac = (t - start).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
                return from + (s.target - from) * frac;
            }
            from = s.target;
            start = end;
        }
        from
    }

    /// The highest level any stage reaches.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max)
    }
}

/// A named, weighted list of steps.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `name:` (defaults to `behaviour-N`).
    pub name: String,
    /// Relative weight (> 0).
    pub weight: f64,
    /// Steps run in order, once per iteration.
    pub steps: Vec<Step>,
    /// Request headers added to (or replacing, by name) the scenario's `connect.headers`.
    pub headers: Vec<(String, Template)>,
    /// Query parameters added to (or replacing, by name) the scenario's `connect.query`.
    pub query: Vec<(String, Template)>,
}

/// An automatic reply: when an inbound frame matches, send `reply` at once.
#[derive(Debug, Clone)]
pub struct AutoReply {
    /// Which frames trigger it.
    pub on: Matcher,
    /// What is sent back.
    pub reply: Payload,
}

/// What a send puts on the wire.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A JSON text message rendered from a template tree.
    Json(JsonTemplate),
    /// A text message rendered from a string template (need not be JSON).
    Text(Template),
    /// A binary message.
    Binary(Vec<u8>),
}

/// How an inbound frame is recognised. All given conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// The frame's kind (see [`Plan::kind_pointers`]) equals this.
    pub kind: Option<String>,
    /// The value at [`Plan::id_pointer`] equals this rendered template
    /// (rendered once when the expect starts).
    pub id: Option<Template>,
    /// The value at each pointer equals the rendered template (string comparison
    /// of the rendered text with the JSON value: strings compare raw, others as JSON text).
    pub fields: Vec<(Pointer, Template)>,
}

/// One step of a behaviour.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send one message.
    Send {
        /// What to send.
        payload: Payload,
        /// Skip outbound schema checking (negative tests).
        unchecked: bool,
    },
    /// Wait for a matching inbound frame.
    Expect(Expect),
    /// Receive (and count, and auto-reply) for a while.
    Listen {
        /// How long.
        duration: Duration,
    },
    /// Pause.
    Think(Think),
    /// Run `steps` `count` times, or until `duration` has passed (whichever is given;
    /// both: whichever ends first).
    Repeat {
        /// Iteration count.
        count: Option<u64>,
        /// Time limit.
        duration: Option<Duration>,
        /// The body.
        steps: Vec<Step>,
    },
    /// Run one branch, picked by weight.
    Choose {
        /// (weight > 0, steps).
        branches: Vec<(f64, Vec<Step>)>,
    },
    /// Pipelined requests at a fixed rate (or as fast as replies allow) with up to
    /// `in_flight` outstanding, each reply matched by id.
    Pace(Pace),
    /// `count` messages as fast as possible, or at `rate` per second.
    Burst {
        /// What to send each time.
        payload: Payload,
        /// How many.
        count: u64,
        /// Messages per second; `None` means as fast as the socket takes them.
        rate: Option<f64>,
        /// Skip outbound schema checking.
        unchecked: bool,
        /// How the server is expected to refuse the burst, if it must.
        rejected: Option<Rejected>,
    },
    /// A chunked upload of a generated file.
    Upload(Box<Upload>),
    /// Wait for the server to close the connection.
    ExpectClose {
        /// Expected close code; `None` accepts any.
        code: Option<u16>,
        /// Deadline.
        within: Duration,
    },
    /// Close (if open) and connect again, with exponential backoff and jitter.
    Reconnect(Backoff),
    /// Close the connection from the client side.
    Close {
        /// Close code sent. Default 1000.
        code: u16,
    },
    /// A step with `on_fail: continue`: when it fails, the iteration goes on.
    Continue(Box<Step>),
}

impl Step {
    /// Whether this step can fail, ending its iteration unless it says `on_fail: continue`:
    /// an `expect` or `expect_close` not met, a `burst` not refused as it must be, an
    /// `upload` that did not end as expected, a `send` skipped for a missing capture. (A
    /// `pace` counts its timeouts and goes on; a lost connection ends the iteration anyway.)
    pub fn may_fail(&self) -> bool {
        matches!(
            self,
            Step::Send { .. }
                | Step::Expect(_)
                | Step::ExpectClose { .. }
                | Step::Burst { .. }
                | Step::Upload(_)
        )
    }
}

/// An `expect` step.
#[derive(Debug, Clone)]
pub struct Expect {
    /// What to wait for.
    pub matcher: Matcher,
    /// Deadline from the step's start. Default 5 s.
    pub within: Duration,
    /// Histogram the latency goes into (from the last send of this VU, or from the step's
    /// start when nothing was sent yet).
    pub metric: Option<MetricId>,
    /// Values stored for later templates: (variable name, pointer into the matched frame).
    pub capture: Vec<(String, Pointer)>,
}

/// A `think` step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Think {
    /// Exactly this long.
    Fixed(Duration),
    /// Uniformly random in `[min, max]`.
    Range(Duration, Duration),
}

/// A `pace` step.
#[derive(Debug, Clone)]
pub struct Pace {
    /// What each request may be, by weight: one entry for `send:`, several for `mix:`.
    /// Each request picks one (no random draw when there is one).
    pub requests: Vec<PaceRequest>,
    /// Requests per second per connection; `None`: send whenever fewer than `in_flight`
    /// are outstanding (closed loop).
    pub rate: Option<f64>,
    /// Number of requests; with `duration`, whichever ends first. At least one is set.
    pub count: Option<u64>,
    /// Time limit for sending.
    pub duration: Option<Duration>,
    /// Most requests outstanding at once. Default 1.
    pub in_flight: u32,
    /// Reply deadline per request. Default 5 s.
    pub within: Duration,
    /// Skip outbound schema checking.
    pub unchecked: bool,
    /// Connections whose schedules interleave (set by `squall capacity`, not by scenarios):
    /// VU `v` paces on the run's clock, `(v - 1) mod spread` `spread`ths of an interval
    /// after a whole number of intervals since the run's start, so `spread` connections
    /// started together send evenly spaced rather than at once. 0: each schedule starts
    /// when its step does.
    pub spread: u64,
}

/// One kind of request of a `pace` step.
#[derive(Debug, Clone)]
pub struct PaceRequest {
    /// Relative weight (> 0).
    pub weight: f64,
    /// The request; it should carry a fresh id (e.g. `id: "{{seq}}"`).
    pub payload: Payload,
    /// Extra conditions a reply must meet besides its id (e.g. `kind`).
    pub reply: Matcher,
    /// Histogram for latency from the intended send time; service time goes to its
    /// companion histogram.
    pub metric: MetricId,
}

/// How a `burst` expects to be refused: the first matching frame, or the server closing.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// What counts as the refusal.
    pub by: RejectBy,
    /// Deadline after the burst's last send. Default 5 s.
    pub within: Duration,
    /// Histogram for the time from the burst's first send to the refusal.
    pub metric: Option<MetricId>,
}

/// What refuses a burst.
#[derive(Debug, Clone)]
pub enum RejectBy {
    /// A frame matching this (every one is taken, the first is timed).
    Frame(Matcher),
    /// The server closing the connection, with this code (`None`: any).
    Close(Option<u16>),
}

/// An `upload` step: a generated file sent as `start`, then one `chunk` message per piece.
#[derive(Debug, Clone)]
pub struct Upload {
    /// File size in bytes (at most 1 GiB).
    pub size: u64,
    /// Bytes per chunk (the last may be shorter). Default 64 KiB.
    pub chunk_size: u64,
    /// `{{upload.id}}`; default a v4 UUID from the VU's seeded generator.
    pub id: Option<Template>,
    /// `{{upload.name}}`; default `<upload.id>.bin`.
    pub name: Option<Template>,
    /// The message that opens the upload (a JSON body).
    pub start: Payload,
    /// A reply to wait for before the first chunk.
    pub started: Option<Wait>,
    /// The message sent per chunk (a JSON body).
    pub chunk: Payload,
    /// A reply per chunk; with it at most `in_flight` chunks are unacknowledged.
    pub chunk_ack: Option<Wait>,
    /// Most chunks unacknowledged at once (with `chunk_ack`). Default 1.
    pub in_flight: u32,
    /// A message sent after the last chunk (and its ack).
    pub finish: Option<Payload>,
    /// The reply that ends a successful upload; `within` counts from the last send.
    pub complete: Wait,
    /// This chunk is sent with a wrong `{{chunk.sha256}}`, and no chunk after it.
    pub corrupt: Option<u64>,
    /// The upload is expected to end in this reply instead of `complete`.
    pub expect_error: Option<Wait>,
    /// Histogram for start sent → outcome received; also the key of the upload counters.
    pub metric: MetricId,
    /// Skip outbound schema checking.
    pub unchecked: bool,
    /// Whether a template reads `{{upload.sha256}}` (the file is then hashed before `start`).
    pub needs_file_hash: bool,
}

impl Upload {
    /// Number of chunks: `ceil(size / chunk_size)`.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(self.chunk_size)
    }
}

/// A reply to wait for, with a deadline.
#[derive(Debug, Clone)]
pub struct Wait {
    /// What it must match.
    pub matcher: Matcher,
    /// Deadline. Default 5 s.
    pub within: Duration,
}

/// Reconnect policy: delay `initial * factor^try`, capped at `max`, with ±`jitter` fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// First delay. Default 100 ms.
    pub initial: Duration,
    /// Cap. Default 5 s.
    pub max: Duration,
    /// Multiplier. Default 2.
    pub factor: f64,
    /// Random spread as a fraction in `[0, 1]`. Default 0.2.
    pub jitter: f64,
    /// Attempts before the iteration fails. Default 5.
    pub max_tries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            factor: 2.0,
            jitter: 0.2,
            max_tries: 5,
        }
    }
}
