use super::*;
use serde_json::json;

fn rules() -> RoomRules {
    RoomRules {
        subscribe: "subscribe".into(),
        room: "/room".into(),
        holds: BTreeMap::new(),
        unsubscribed: Some("unsubscribe".into()),
        unsubscribed_room: "/data/room".into(),
        filters: BTreeMap::new(),
        discriminator: vec!["/type".into()],
        decision: None,
        rooms: [(
            "scrape.progress".to_string(),
            vec![
                "scrape:all".to_string(),
                "scrape:{/data/job_id}".to_string(),
            ],
        )]
        .into_iter()
        .collect(),
    }
}

#[test]
fn events_need_a_held_room() {
    let r = rules();
    let mut h = Subscribed::default();
    let ev = |job: &str| json!({"type": "scrape.progress", "data": {"job_id": job}});
    assert!(h.received(&r, Some("scrape.progress"), &ev("j1")).is_some());
    h.sent(
        &r,
        Some("subscribe"),
        &json!({"type": "subscribe", "room": "scrape:j1"}),
    );
    assert_eq!(h.received(&r, Some("scrape.progress"), &ev("j1")), None);
    let other = h.received(&r, Some("scrape.progress"), &ev("j2")).unwrap();
    assert_eq!(other.keyword, "unsubscribed");
    assert!(
        other.message.contains("scrape:all, scrape:j2"),
        "{}",
        other.message
    );
    let ack = json!({"type": "unsubscribe", "data": {"room": "scrape:j1"}});
    assert_eq!(h.received(&r, Some("unsubscribe"), &ack), None);
    assert!(h.received(&r, Some("scrape.progress"), &ev("j1")).is_some());
    // Kinds the rules do not list are none of this check's business.
    assert_eq!(
        h.received(&r, Some("welcome"), &json!({"type": "welcome"})),
        None
    );
}

#[test]
fn an_event_that_does_not_name_its_room_passes_a_holder_of_that_shape() {
    // kite.md: case.updated carries no jurisdiction, so `cases:{jurisdiction}` is unknown.
    let mut r = rules();
    r.rooms.insert(
        "case.updated".into(),
        vec![
            "cases:all".into(),
            "cases:{/data/jurisdiction}".into(),
            "case:{/data/case_id}".into(),
        ],
    );
    let ev = json!({"type": "case.updated", "data": {"case_id": "sg/SGCA/2023/23"}});
    let mut h = Subscribed::default();
    let sub = |room: &str| json!({"type": "subscribe", "room": room});
    h.sent(&r, Some("subscribe"), &sub("scrape:all"));
    // Holds no room of any of its shapes: proven stray, and the message names them.
    let v = h.received(&r, Some("case.updated"), &ev).unwrap();
    assert!(
        v.message.contains("cases:all, case:sg/SGCA/2023/23"),
        "{}",
        v.message
    );
    // It names none of its rooms: the message says which shapes would have carried it.
    r.rooms.insert(
        "search.results".into(),
        vec!["search:{/data/search_id}".into()],
    );
    let nameless = json!({"type": "search.results", "data": {}});
    let v = h.received(&r, Some("search.results"), &nameless).unwrap();
    assert_eq!(
        v.message,
        "a search.results event while this connection holds no room that carries it \
         (search:{/data/search_id})"
    );
    h.sent(&r, Some("subscribe"), &sub("cases:Singapore"));
    assert_eq!(
        h.received(&r, Some("case.updated"), &ev),
        None,
        "cannot be judged"
    );
    // With the jurisdiction in the event, it is judged again.
    let named = json!({"type": "case.updated", "data": {"case_id": "x", "jurisdiction": "UK"}});
    assert!(h.received(&r, Some("case.updated"), &named).is_some());
}

#[test]
fn other_kinds_hold_rooms_and_without_a_confirmation_a_room_stays_held() {
    // CovetPy: a subscribe holds its id, a join_room its room; nothing confirms a leave.
    let r = RoomRules {
        subscribe: "subscribe".into(),
        room: "/id".into(),
        holds: [("join_room".to_string(), vec!["/data/room_id".to_string()])].into(),
        unsubscribed: None,
        unsubscribed_room: String::new(),
        filters: BTreeMap::new(),
        discriminator: vec!["/type".into()],
        decision: None,
        rooms: [(
            "stream_data".to_string(),
            vec!["{/data/subscription_id}".to_string()],
        )]
        .into_iter()
        .collect(),
    };
    let ev = |s: &str| json!({"type": "stream_data", "data": {"subscription_id": s}});
    let mut h = Subscribed::default();
    assert!(h.received(&r, Some("stream_data"), &ev("sub_1")).is_some());
    h.sent(
        &r,
        Some("subscribe"),
        &json!({"type": "subscribe", "id": "sub_1"}),
    );
    h.sent(
        &r,
        Some("join_room"),
        &json!({"type": "join_room", "id": "jr_1", "data": {"room_id": "lobby"}}),
    );
    assert_eq!(h.received(&r, Some("stream_data"), &ev("sub_1")), None);
    assert_eq!(h.received(&r, Some("stream_data"), &ev("lobby")), None);
    // The join's own id holds nothing: only its room does.
    assert!(h.received(&r, Some("stream_data"), &ev("jr_1")).is_some());
    // An unsubscribe is not confirmed: the stream stays held (batches may be on the way).
    h.sent(
        &r,
        Some("unsubscribe"),
        &json!({"type": "unsubscribe", "data": {"subscription_id": "sub_1"}}),
    );
    assert_eq!(h.received(&r, Some("stream_data"), &ev("sub_1")), None);
}

#[test]
fn a_holding_kind_may_name_its_room_at_one_of_several_pointers() {
    // Hexabase: a subscribe names a workspace, an organization or a project.
    let mut r = rules();
    r.holds.insert(
        "watch".into(),
        vec!["/data/workspace_id".into(), "/data/project_id".into()],
    );
    r.rooms
        .insert("status".into(), vec!["{/data/workspace_id}".into()]);
    r.rooms
        .insert("quota".into(), vec!["{/data/project_id}".into()]);
    let mut h = Subscribed::default();
    let watch = |field: &str, id: &str| json!({"type": "watch", "data": {field: id}});
    h.sent(&r, Some("watch"), &watch("workspace_id", "ws-1"));
    h.sent(&r, Some("watch"), &watch("project_id", "proj-1"));
    let status = |id: &str| json!({"type": "status", "data": {"workspace_id": id}});
    let quota = |id: &str| json!({"type": "quota", "data": {"project_id": id}});
    assert_eq!(h.received(&r, Some("status"), &status("ws-1")), None);
    assert_eq!(h.received(&r, Some("quota"), &quota("proj-1")), None);
    assert!(h.received(&r, Some("status"), &status("ws-2")).is_some());
    assert!(h.received(&r, Some("quota"), &quota("proj-2")).is_some());
    // An array at the pointer holds each string (or number, as its JSON text) in it;
    // other values hold nothing.
    h.sent(
        &r,
        Some("watch"),
        &json!({"type": "watch", "data": {"workspace_id": ["ws-3", 4, {"x": "ws-6"}, "ws-5"]}}),
    );
    assert_eq!(h.received(&r, Some("status"), &status("ws-3")), None);
    assert_eq!(h.received(&r, Some("status"), &status("ws-5")), None);
    assert_eq!(h.received(&r, Some("status"), &status("4")), None);
    assert!(h.received(&r, Some("status"), &status("ws-6")).is_some());
}

#[test]
fn past_the_cap_of_held_rooms_nothing_is_judged() {
    let r = rules();
    let mut h = Subscribed::default();
    let ev = |job: &str| json!({"type": "scrape.progress", "data": {"job_id": job}});
    let sub = |n: usize| json!({"type": "subscribe", "room": format!("scrape:{n}")});
    for n in 0..HELD_CAP {
        h.sent(&r, Some("subscribe"), &sub(n));
    }
    assert!(h.received(&r, Some("scrape.progress"), &ev("x")).is_some());
    h.sent(&r, Some("subscribe"), &sub(HELD_CAP));
    assert_eq!(h.received(&r, Some("scrape.progress"), &ev("x")), None);
    h.clear();
    assert!(h.received(&r, Some("scrape.progress"), &ev("x")).is_some());
}

#[test]
fn rooms_fit_template_shapes() {
    assert!(fits("cases:{/j}", "cases:Singapore"));
    assert!(!fits("cases:{/j}", "cases:"));
    assert!(!fits("cases:{/j}", "case:x"));
    assert!(fits("a:{/x}:b:{/y}", "a:1:b:2"));
    assert!(!fits("a:{/x}:b:{/y}", "a:1:b:"));
    assert!(fits("workers:all", "workers:all"));
    assert!(!fits("workers:all", "workers:x"));
}

#[test]
fn templates_fill_from_the_event() {
    let v = json!({"data": {"id": 7, "s": "x"}});
    let expanded = |t: &str| {
        let mut out = String::new();
        expand(t, &v, &mut out).then_some(out)
    };
    assert_eq!(expanded("a:{/data/s}:{/data/id}").as_deref(), Some("a:x:7"));
    assert_eq!(expanded("a:{/data/none}"), None);
    assert_eq!(expanded("plain").as_deref(), Some("plain"));
}

/// KECS-like rules: event types are rooms; clusters and status narrow them.
fn narrowing() -> RoomRules {
    let map = |pairs: &[(&str, &[&str])]| -> FxHashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|t| t.to_string()).collect()))
            .collect()
    };
    let filter = |request: &str, events: &[(&str, &[&str])]| Filter {
        request: request.into(),
        events: map(events),
    };
    RoomRules {
        subscribe: "sub".into(),
        room: "/types".into(),
        holds: BTreeMap::new(),
        unsubscribed: None,
        unsubscribed_room: String::new(),
        rooms: map(&[("event.task", &["task"]), ("event.cluster", &["cluster"])]),
        filters: [
            (
                "clusters".to_string(),
                filter(
                    "/clusters",
                    &[(
                        "event.task",
                        &["{/p/task/clusterArn}", "{/p/task/clusterArn|after_last:/}"],
                    )],
                ),
            ),
            (
                "status".to_string(),
                filter(
                    "/filters/status",
                    &[("event.task", &["{/p/task/lastStatus}"])],
                ),
            ),
        ]
        .into(),
        discriminator: vec!["/type".into(), "/p/eventType".into()],
        decision: None,
    }
}

fn task(cluster: &str, status: &str) -> Value {
    json!({"type": "event", "p": {"eventType": "task", "task": {
        "clusterArn": format!("arn:aws:ecs:us-east-1:0:cluster/{cluster}"),
        "lastStatus": status}}})
}

#[test]
fn filters_narrow_a_subscribes_rooms_and_name_the_field_that_decides() {
    let r = narrowing();
    let mut h = Subscribed::default();
    h.sent(
        &r,
        Some("sub"),
        &json!({"types": ["task"], "clusters": ["production"],
            "filters": {"status": ["RUNNING", "PENDING"]}}),
    );
    let got = |h: &mut Subscribed, v: Value, kind: &str| h.received(&r, Some(kind), &v);
    assert_eq!(
        got(&mut h, task("production", "RUNNING"), "event.task"),
        None
    );
    // Another cluster: reported at the cluster's field, naming what was asked.
    let v = got(&mut h, task("staging", "RUNNING"), "event.task").unwrap();
    assert_eq!(
        (v.keyword.as_str(), v.pointer.as_str()),
        ("unsubscribed", "/p/task/clusterArn")
    );
    assert!(
        v.message.contains("asked only for clusters production"),
        "{}",
        v.message
    );
    // Another status: at the status field.
    let v = got(&mut h, task("production", "STOPPED"), "event.task").unwrap();
    assert_eq!(v.pointer, "/p/task/lastStatus");
    // A field the event leaves out proves nothing: it passes that filter.
    let mut no_status = task("production", "x");
    no_status["p"]["task"]
        .as_object_mut()
        .unwrap()
        .remove("lastStatus");
    assert_eq!(got(&mut h, no_status, "event.task"), None);
    // A type no subscribe listed: at the discriminator part that names it.
    let cluster = json!({"type": "event", "p": {"eventType": "cluster"}});
    let v = got(&mut h, cluster.clone(), "event.cluster").unwrap();
    assert_eq!(v.pointer, "/p/eventType");
    // A second subscribe that does not narrow admits what the first left out.
    h.sent(
        &r,
        Some("sub"),
        &json!({"types": ["task", "cluster"], "clusters": []}),
    );
    assert_eq!(got(&mut h, task("staging", "STOPPED"), "event.task"), None);
    assert_eq!(got(&mut h, cluster, "event.cluster"), None);
}

#[test]
fn an_event_passes_when_any_narrowed_subscribe_admits_it() {
    let r = narrowing();
    let mut h = Subscribed::default();
    let sub = |c: &str| json!({"types": ["task"], "clusters": [c]});
    h.sent(&r, Some("sub"), &sub("production"));
    h.sent(
        &r,
        Some("sub"),
        &sub("arn:aws:ecs:us-east-1:0:cluster/staging"),
    );
    assert_eq!(
        h.received(&r, Some("event.task"), &task("production", "R")),
        None
    );
    assert_eq!(
        h.received(&r, Some("event.task"), &task("staging", "R")),
        None
    );
    assert!(h
        .received(&r, Some("event.task"), &task("dev", "R"))
        .is_some());
    h.clear();
    assert!(h.narrowed.is_empty());
}

#[test]
fn numbers_name_rooms_as_their_json_text() {
    // NewLoom: a connection holds the chats it posts to; chat ids are integers.
    let r = RoomRules {
        subscribe: "message".into(),
        room: "/chat_id".into(),
        holds: [("typing".to_string(), vec!["/chat_id".to_string()])].into(),
        unsubscribed: None,
        unsubscribed_room: String::new(),
        rooms: [
            (
                "message".to_string(),
                vec!["{/message/chat_id}".to_string()],
            ),
            ("typing".to_string(), vec!["{/chat_id}".to_string()]),
        ]
        .into_iter()
        .collect(),
        filters: BTreeMap::new(),
        discriminator: vec!["/type".into()],
        decision: None,
    };
    let mut h = Subscribed::default();
    let msg = |chat: u64| json!({"type": "message", "message": {"chat_id": chat}});
    let v = h.received(&r, Some("message"), &msg(123)).unwrap();
    assert_eq!(v.pointer, "/message/chat_id");
    h.sent(
        &r,
        Some("message"),
        &json!({"type": "message", "chat_id": 123}),
    );
    h.sent(&r, Some("typing"), &json!({"type": "typing", "chat_id": 7}));
    assert_eq!(h.received(&r, Some("message"), &msg(123)), None);
    assert_eq!(h.received(&r, Some("message"), &msg(7)), None);
    let v = h.received(&r, Some("typing"), &json!({"type": "typing", "chat_id": 9}));
    assert_eq!(v.unwrap().pointer, "/chat_id");
}

#[test]
fn after_last_takes_an_arns_name() {
    let v = json!({"arn": "arn:aws:ecs:r:0:service/production/web-api", "n": 5});
    let expanded = |t: &str| {
        let mut out = String::from("x");
        expand(t, &v, &mut out).then_some(out)
    };
    assert_eq!(expanded("{/arn|after_last:/}").as_deref(), Some("xweb-api"));
    assert_eq!(expanded("a:{/n|after_last:/}").as_deref(), Some("xa:5"));
    assert_eq!(bare("/arn|after_last:/"), "/arn");
}
