use super::*;

fn exchange(status: u16, millis: u64, ok: bool) -> Exchange<'static> {
    Exchange {
        method: "GET",
        destination: "http://api/x",
        status,
        bytes_in: 3,
        bytes_out: 10,
        duration: Duration::from_millis(millis),
        client_id: "c1",
        ok,
        ..Exchange::default()
    }
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn requests_are_counted_by_class_bytes_and_latency() {
    let metrics = Metrics::default();
    let id: Arc<str> = "c1".into();
    let (stats, _) = metrics.client(&id);
    metrics.record(&stats, &exchange(200, 2, true));
    metrics.record(&stats, &exchange(204, 30, true));
    metrics.record(&stats, &exchange(526, 20_000, false));
    metrics.record(&stats, &exchange(404, 2_000, true));
    let text = metrics.render(&[]);
    assert_eq!(sample(&text, "wsp_requests_total{class=\"2xx\"}"), 2.0);
    assert_eq!(sample(&text, "wsp_requests_total{class=\"4xx\"}"), 1.0);
    assert_eq!(sample(&text, "wsp_requests_total{class=\"5xx\"}"), 1.0);
    assert_eq!(sample(&text, "wsp_request_bytes_total"), 12.0);
    assert_eq!(sample(&text, "wsp_response_bytes_total"), 40.0);
    let bucket = |le: &str| {
        sample(
            &text,
            &format!("wsp_relay_duration_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("0.001"), 0.0);
    assert_eq!(bucket("0.005"), 1.0);
    assert_eq!(bucket("0.05"), 2.0, "cumulative");
    assert_eq!(bucket("2.5"), 3.0);
    assert_eq!(bucket("10"), 3.0);
    assert_eq!(bucket("+Inf"), 4.0);
    assert_eq!(sample(&text, "wsp_relay_duration_seconds_count"), 4.0);
    let sum = sample(&text, "wsp_relay_duration_seconds_sum");
    assert!((sum - 22.032).abs() < 1e-9, "{sum}");
}

#[test]
fn a_bound_belongs_to_its_own_bucket() {
    let metrics = Metrics::default();
    let (stats, _) = metrics.client(&"c".into());
    metrics.record(&stats, &exchange(200, 5, true));
    let text = metrics.render(&[]);
    assert_eq!(
        sample(&text, "wsp_relay_duration_seconds_bucket{le=\"0.005\"}"),
        1.0
    );
}

#[test]
fn reconnects_count_only_a_known_client_coming_back() {
    let metrics = Metrics::default();
    let id: Arc<str> = "c1".into();
    let (stats, first) = metrics.client(&id);
    assert!(first);
    metrics.registered(&stats, first, true);
    let (stats, first) = metrics.client(&id);
    assert!(!first);
    metrics.registered(&stats, first, false);
    let text = metrics.render(&[]);
    assert_eq!(sample(&text, "wsp_registrations_total"), 2.0);
    assert_eq!(sample(&text, "wsp_reconnects_total"), 0.0);
    metrics.registered(&stats, false, true);
    let text = metrics.render(&[]);
    assert_eq!(sample(&text, "wsp_reconnects_total"), 1.0);
}

#[test]
fn ids_of_gone_clients_are_forgotten_past_the_bound_but_not_live_ones() {
    let metrics = Metrics::default();
    let live: Arc<str> = "live".into();
    let (held, _) = metrics.client(&live);
    for n in 1..REMEMBERED_CLIENTS {
        let _ = metrics.client(&format!("gone-{n}").into());
    }
    let (_, first) = metrics.client(&"gone-1".into());
    assert!(!first, "remembered below the bound");
    let (_, first) = metrics.client(&"new".into());
    assert!(first);
    assert_eq!(
        metrics.clients.lock().len(),
        2,
        "the gone ones were forgotten"
    );
    let (again, first) = metrics.client(&live);
    assert!(
        !first && Arc::ptr_eq(&held, &again),
        "a live client keeps its counters"
    );
}

#[test]
fn client_views_join_the_pool_and_the_counters() {
    let metrics = Metrics::default();
    let id: Arc<str> = "b\"c\\".into();
    let (stats, first) = metrics.client(&id);
    metrics.registered(&stats, first, true);
    metrics.record(&stats, &exchange(200, 1, true));
    metrics.record(&stats, &exchange(200, 1, false));
    let pooled = |id: &Arc<str>, idle, busy| Pooled {
        id: id.clone(),
        idle,
        busy,
        size: 2,
    };
    let views = metrics.views(vec![pooled(&id, 2, 1), pooled(&"a".into(), 0, 0)]);
    assert_eq!(views[0].id, "a", "sorted by id");
    let v = &views[1];
    assert_eq!((v.idle, v.busy, v.requests, v.errors), (2, 1, 1, 1));
    assert_eq!(v.pool_idle_size, 2);
    assert!(v.connected_since > 1_700_000_000, "{}", v.connected_since);
    let text = metrics.render(&views);
    assert_eq!(
        sample(&text, r#"wsp_connections{client="b\"c\\",state="idle"}"#),
        2.0
    );
    assert_eq!(
        sample(&text, r#"wsp_connections{client="b\"c\\",state="busy"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"wsp_client_requests_total{client="a"}"#),
        0.0
    );
    assert_eq!(
        sample(&text, r#"wsp_client_errors_total{client="b\"c\\"}"#),
        1.0
    );
}

#[test]
fn every_family_has_help_and_type_before_its_samples() {
    let text = Metrics::default().render(&[]);
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap_or_default().to_string());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| typed.iter().any(|t| t == f))
                .unwrap_or(name);
            assert!(typed.iter().any(|t| t == family), "untyped {line}");
        }
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn the_access_line_says_what_happened() {
    let line = exchange(502, 12, true).to_string();
    assert_eq!(line, "GET http://api/x 502 in=3 out=10 12.0ms client=c1");
    let line = exchange(526, 1, false).to_string();
    assert!(line.ends_with(" client=c1 failed"), "{line}");
}
